"""The action catalogue and the decision settings over the API (the decisions and
their outcomes are in api_decisions.py).

`POST /actions` adds an offer, a message or a service action; `GET/PATCH/DELETE
/actions/{key}` read, change (only the fields given) and remove it; `GET/PATCH
/decision-settings` read and change the control group, the channel and placement
weights, the response window and the half-life. docs/decisions.md has examples."""

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from django.http import HttpRequest
from django.utils.translation import gettext
from ninja import Field, Path, Router, Schema, Status
from pydantic import (
    AwareDatetime,
    ConfigDict,
    StrictBool,
    StrictInt,
    StringConstraints,
    field_validator,
)

from rapport.core.pagination import LimitOffsetPagination, paginate
from rapport.decisions import selectors, services
from rapport.decisions.models import Action

router = Router(tags=["decisions"])

ChannelName = Literal["web", "app", "assisted", "email", "sms", "push", "in_app", "webhook"]
Key = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"\S")]
Placement = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"\S")]
Lever = Annotated[float, Field(ge=0, le=1_000_000, strict=True)]
Share = Annotated[float, Field(gt=0, lt=1, strict=True)]
Money = Annotated[Decimal, Field(ge=0, le=services.MAX_VALUE, allow_inf_nan=False)]
ActionKey = Annotated[
    str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="The action's key")
]
Count = Annotated[StrictInt, Field(ge=1, le=2**31 - 1)]


ContentText = Annotated[str, StringConstraints(max_length=5000)]


class ActionPatch(Schema):
    model_config = ConfigDict(extra="forbid")

    key: Key | None = None
    name: Name | None = None
    description: str | None = Field(None, max_length=5000)
    kind: Literal["offer", "message", "service"] | None = None
    channels: list[ChannelName] | None = Field(None, min_length=1)
    placements: list[Placement] | None = Field(
        None, max_length=50, description="Where on its channels (empty: anywhere)"
    )
    content: dict[ChannelName, dict[str, ContentText]] | None = Field(
        None,
        description="What the customer sees, per channel: title (200), body (5000), "
        "image_url and link_url (http(s) or a path), cta (100), and up to 20 fields of "
        "your own (2000)",
    )
    template_id: uuid.UUID | None = Field(None, description="A message template instead")
    value: Money | None = Field(None, description="Money in `currency`, or a weight")
    currency: Annotated[str, StringConstraints(pattern=r"^([A-Za-z]{3})?$")] | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    budget: Count | None = Field(None, description="At most this many decisions give it")
    daily_capacity: Count | None = Field(None, description="At most this many a UTC day")
    eligibility: dict | None = Field(
        None, description="A rule in the segment rule language; empty: everyone"
    )
    lever: Lever | None = Field(None, description="The business lever (1: neutral)")
    channel_levers: dict[ChannelName, Lever] | None = None
    prior_propensity: Share | None = Field(None, description="Where a new action's model starts")
    enabled: StrictBool | None = None

    @field_validator("starts_at", "ends_at", mode="before")
    @classmethod
    def _time_is_text(cls, value):
        if value is not None and not isinstance(value, str):
            raise ValueError(gettext("an ISO 8601 time with its UTC offset"))
        return value


class ActionIn(ActionPatch):
    key: Key
    name: Name
    channels: list[ChannelName] = Field(min_length=1)


class ActionOut(Schema):
    key: str
    name: str
    description: str
    kind: str
    channels: list[str]
    placements: list[str]
    content: dict
    template_id: uuid.UUID | None
    value: str = Field(description="Decimal text")
    currency: str
    starts_at: datetime | None
    ends_at: datetime | None
    budget: int | None
    daily_capacity: int | None
    given: int = Field(description="Decisions that gave it (counted against the budget)")
    eligibility: dict
    lever: float
    channel_levers: dict
    prior_propensity: float
    enabled: bool
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_value(obj: Action) -> str:
        return str(obj.value)


# Fields that null clears; the others keep their value when given null.
NULLABLE = {
    "description",
    "placements",
    "content",
    "template_id",
    "starts_at",
    "ends_at",
    "budget",
    "daily_capacity",
    "eligibility",
    "channel_levers",
}


def _given(payload: ActionPatch) -> dict:
    data = {
        k: v
        for k, v in payload.model_dump(exclude_unset=True).items()
        if v is not None or k in NULLABLE
    }
    return data


@router.get("/actions", response=list[ActionOut], summary="The action catalogue")
@paginate(LimitOffsetPagination)
def action_list(
    request: HttpRequest,
    q: str = "",
    channel: ChannelName | None = None,
    enabled: bool | None = None,
):
    request.auth.require("decisions.read")
    return selectors.action_list(
        workspace=request.auth.workspace, q=q[:200], channel=channel, enabled=enabled
    )


@router.post("/actions", response={201: ActionOut}, summary="Add an action to the catalogue")
def action_create(request: HttpRequest, payload: ActionIn):
    request.auth.require("decisions.write")
    action = services.action_create(
        workspace=request.auth.workspace, actor=request.auth.actor, data=_given(payload)
    )
    return Status(201, action)


@router.get("/actions/{action_key}", response=ActionOut, summary="An action")
def action_get(request: HttpRequest, action_key: ActionKey):
    request.auth.require("decisions.read")
    return selectors.action_get(workspace=request.auth.workspace, key=action_key)


@router.patch(
    "/actions/{action_key}", response=ActionOut, summary="Change an action (the fields given)"
)
def action_update(request: HttpRequest, action_key: ActionKey, payload: ActionPatch):
    request.auth.require("decisions.write")
    action = selectors.action_get(workspace=request.auth.workspace, key=action_key)
    return services.action_update(action=action, actor=request.auth.actor, data=_given(payload))


@router.delete("/actions/{action_key}", response={204: None}, summary="Remove an action")
def action_delete(request: HttpRequest, action_key: ActionKey):
    request.auth.require("decisions.write")
    action = selectors.action_get(workspace=request.auth.workspace, key=action_key)
    services.action_delete(action=action, actor=request.auth.actor)
    return Status(204, None)


class DecisionSettingsOut(Schema):
    control_percent: int = Field(description="Share of customers in the control group, 0-50")
    control_mode: str = Field(description="random: a random eligible action; nothing: none")
    channel_weights: dict
    placement_weights: dict
    response_window_hours: int = Field(
        description="An impression with no answer in this window is a failure"
    )
    half_life_days: float = Field(description="Evidence this old weighs half")
    updated_at: datetime


class DecisionSettingsPatch(Schema):
    model_config = ConfigDict(extra="forbid")

    control_percent: Annotated[StrictInt, Field(ge=0, le=50)] | None = None
    control_mode: Literal["random", "nothing"] | None = None
    channel_weights: dict[ChannelName, Lever] | None = None
    placement_weights: dict[Placement, Lever] | None = Field(None, max_length=200)
    response_window_hours: Annotated[StrictInt, Field(ge=1, le=8760)] | None = None
    half_life_days: Annotated[float, Field(gt=0, le=3650, strict=True)] | None = None


@router.get("/decision-settings", response=DecisionSettingsOut, summary="The decision settings")
def decision_settings_get(request: HttpRequest):
    request.auth.require("decisions.read")
    return selectors.decision_settings_get(request.auth.workspace)


@router.patch(
    "/decision-settings",
    response=DecisionSettingsOut,
    summary="Change the control group, weights, response window or half-life",
)
def decision_settings_update(request: HttpRequest, payload: DecisionSettingsPatch):
    request.auth.require("decisions.write")
    return services.decision_settings_update(
        workspace=request.auth.workspace,
        actor=request.auth.actor,
        data={k: v for k, v in payload.model_dump(exclude_unset=True).items() if v is not None},
    )


ROUTERS = [("v1", router)]
