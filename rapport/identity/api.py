"""The workspace's identity rules."""

from django.http import HttpRequest
from ninja import Field, Router, Schema
from pydantic import ConfigDict

from rapport.identity import services


class RulesOut(Schema):
    priorities: dict[str, int]
    limits: dict[str, int]
    external_kinds: list[str]
    blocked_values: list[str]
    default_phone_region: str


class RulesPatch(Schema):
    model_config = ConfigDict(extra="forbid")

    priorities: dict[str, int] | None = Field(None, description="kind -> order (1 merges first)")
    limits: dict[str, int] | None = Field(None, description="kind -> values one profile may hold")
    external_kinds: list[str] | None = Field(None, max_length=50)
    blocked_values: list[str] | None = Field(None, max_length=1000)
    default_phone_region: str | None = Field(None, max_length=2)


router = Router(tags=["identity"])


@router.get("/rules", response=RulesOut)
def identity_rules_get(request: HttpRequest):
    request.auth.require("identity.read")
    return services.identity_rules_get(workspace_id=request.auth.workspace.pk)


@router.patch("/rules", response=RulesOut)
def identity_rules_update(request: HttpRequest, payload: RulesPatch):
    request.auth.require("identity.manage")
    return services.identity_rules_update(
        workspace=request.auth.workspace,
        actor=request.auth.actor,
        **payload.dict(exclude_unset=True),
    )


ROUTERS = [("v1/identity", router)]
