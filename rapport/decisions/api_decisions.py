"""Decisions and outcomes over the API: what should this customer get now, here, and
what did they answer.

`POST /api/v1/decisions` decides (rapport/decisions/engine.py) and answers the actions
in order with the numbers and reasons behind each; `POST
/api/v1/decisions/{id}/outcomes` records the customer's answer, once per decision,
action and outcome. Both take an API token, or, for the web and app channels, a
source's write key as the HTTP Basic user name (as the Tracking API does), so that a
site or an app can ask directly; a write key can do nothing else here."""

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from django.http import HttpRequest
from django.utils.translation import gettext
from ninja import Field, Router, Schema
from ninja.security import HttpBasicAuth
from pydantic import ConfigDict, StrictInt, field_validator, model_validator

from rapport.core.errors import PermissionDeniedError
from rapport.decisions import engine, outcomes
from rapport.decisions.models import Channel, OutcomeKind
from rapport.identity.selectors import customer_resolve
from rapport.tenancy.auth import ApiTokenAuth, WorkspaceSessionAuth
from rapport.tenancy.models import Workspace
from rapport.tenancy.services import Actor

# The channels a write key may ask for: a customer who is on the site or in the app.
WRITE_KEY_CHANNELS = frozenset({"web", "app"})
MAX_CONTEXT_KEYS = 20

ChannelName = Literal["web", "app", "assisted", "email", "sms", "push", "in_app", "webhook"]
OutcomeName = Literal["impression", "clicked", "accepted", "declined", "converted"]


@dataclass
class WriteKeyPrincipal:
    """A source's write key, as it may be used here: decisions for the web and the app
    and their outcomes, nothing else."""

    workspace: Workspace
    source_id: uuid.UUID

    def require(self, code: str) -> None:
        if code != "decisions.decide":
            raise PermissionDeniedError(
                gettext("A write key may only ask for decisions and record their outcomes"),
                details={"permission": code},
            )

    @property
    def actor(self) -> Actor:
        return Actor.system("write key")


class WriteKeyAuth(HttpBasicAuth):
    def authenticate(self, request: HttpRequest, username: str, password: str):
        from rapport.tenancy.selectors import write_key_resolve

        grant = write_key_resolve(raw=username) if username else None
        if grant is None:
            return None
        workspace = Workspace.objects.filter(pk=grant.workspace_id).first()
        if workspace is None:
            return None
        return WriteKeyPrincipal(workspace=workspace, source_id=grant.source_id)


# The write key before the session: a session auth checks CSRF first, and a site's
# request with a write key carries no CSRF token.
AUTH = [ApiTokenAuth(), WriteKeyAuth(), WorkspaceSessionAuth()]
router = Router(tags=["decisions"])


class DecisionIn(Schema):
    model_config = ConfigDict(extra="forbid")

    profile_id: uuid.UUID | None = None
    user_id: str | None = Field(None, min_length=1, max_length=255)
    anonymous_id: str | None = Field(None, min_length=1, max_length=255)
    channel: ChannelName = Field(description="Where the answer will be shown or sent")
    placement: str = Field(
        "", max_length=100, description='The slot on the channel, e.g. "home_banner"'
    )
    limit: StrictInt = Field(1, ge=1, le=engine.MAX_LIMIT, description="At most this many actions")
    context: dict[str, Any] = Field(
        default_factory=dict,
        description='What the request knows, e.g. {"device": "mobile", "page": "/cart"}: '
        "predictors for the models",
    )

    @field_validator("context")
    @classmethod
    def _context_small(cls, value: dict) -> dict:
        if len(value) > MAX_CONTEXT_KEYS:
            raise ValueError(gettext("at most %(count)s keys") % {"count": MAX_CONTEXT_KEYS})
        for key, item in value.items():
            if len(key) > 100:
                raise ValueError(gettext("keys of at most 100 characters"))
            if not (item is None or isinstance(item, str | int | float | bool)) or (
                isinstance(item, str) and len(item) > 200
            ):
                raise ValueError(
                    gettext("%(key)s: text of at most 200 characters, a number or a boolean")
                    % {"key": key}
                )
        return value

    @model_validator(mode="after")
    def _one_customer(self):
        named = [v for v in (self.profile_id, self.user_id, self.anonymous_id) if v is not None]
        if len(named) != 1:
            raise ValueError(gettext("give profile_id, user_id or anonymous_id (one of them)"))
        return self


class DecidedAction(Schema):
    key: str
    name: str
    kind: str
    rank: int
    priority: float = Field(description="propensity x weights x value x levers")
    propensity: float = Field(description="The model's draw for this customer (0-1)")
    value: str = Field(description="Decimal text")
    currency: str
    content: dict = Field(description="The action's content for the channel")
    reasons: list[str] = Field(description="The rules that passed and the numbers behind the rank")


class DecisionOut(Schema):
    decision_id: uuid.UUID | None = Field(
        description="None only if the customer was erased meanwhile"
    )
    control: bool = Field(
        description="The customer is in the control group: a random eligible action, or none"
    )
    actions: list[DecidedAction]


class OutcomeIn(Schema):
    model_config = ConfigDict(extra="forbid")

    action: str = Field(min_length=1, max_length=64, description="The action's key")
    outcome: OutcomeName


class OutcomeOut(Schema):
    recorded: bool = Field(description="False when this outcome was recorded before")
    outcome_id: uuid.UUID


def _channel_allowed(request: HttpRequest, channel: str) -> None:
    if isinstance(request.auth, WriteKeyPrincipal) and channel not in WRITE_KEY_CHANNELS:
        raise PermissionDeniedError(
            gettext("A write key may ask for the web and app channels only; use an API token"),
            details={"field": "channel"},
        )


@router.post(
    "/decisions",
    response=DecisionOut,
    auth=AUTH,
    summary="Decide the next best action for a customer, on a channel and placement",
)
def decision_create(request: HttpRequest, payload: DecisionIn):
    request.auth.require("decisions.decide")
    _channel_allowed(request, payload.channel)
    workspace = request.auth.workspace
    profile = customer_resolve(
        workspace=workspace,
        profile_id=payload.profile_id,
        user_id=payload.user_id,
        anonymous_id=payload.anonymous_id,
    )
    result = engine.decision_make(
        workspace=workspace,
        profile=profile,
        channel=payload.channel,
        placement=payload.placement,
        limit=payload.limit,
        context=payload.context,
        origin="api",
    )
    return {
        "decision_id": result.decision_id,
        "control": result.control,
        "actions": [
            {
                "key": c.key,
                "name": c.action.name,
                "kind": c.action.kind,
                "rank": rank,
                "priority": c.priority,
                "propensity": c.propensity,
                "value": str(c.value),
                "currency": c.action.currency,
                "content": (c.action.content or {}).get(payload.channel, {}),
                "reasons": c.reasons,
            }
            for rank, c in enumerate(result.actions, start=1)
        ],
    }


@router.post(
    "/decisions/{decision_id}/outcomes",
    response=OutcomeOut,
    auth=AUTH,
    summary="Record a customer's answer to an action a decision gave (idempotent)",
)
def decision_outcome_create(request: HttpRequest, decision_id: uuid.UUID, payload: OutcomeIn):
    request.auth.require("decisions.decide")
    if isinstance(request.auth, WriteKeyPrincipal):
        from rapport.decisions.models import Decision

        channel = (
            Decision.objects.filter(workspace=request.auth.workspace, pk=decision_id)
            .values_list("channel", flat=True)
            .first()
        )
        if channel is not None:
            _channel_allowed(request, channel)
    record, created = outcomes.outcome_record(
        workspace=request.auth.workspace,
        decision_id=decision_id,
        action_key=payload.action,
        outcome=payload.outcome,
    )
    return {"recorded": created, "outcome_id": record.pk}


assert set(OutcomeKind.values) == set(OutcomeName.__args__)
assert set(Channel.values) == set(ChannelName.__args__)

ROUTERS = [("v1", router)]
