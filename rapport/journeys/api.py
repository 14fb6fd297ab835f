"""Journeys over the API.

`POST /journeys` takes the journey graph (docs/journeys.md; its schema is
`JourneyGraph` in the OpenAPI document) and makes a draft; `PUT` replaces the graph
with a new version (`PATCH` changes only the top-level keys it names); `start`,
`pause`, `stop` run it; `GET /journeys/{id}` answers the graph with the per-step
counts and the goal's conversion against the holdout. A wrong graph is a 422 whose
`details` name each wrong path (`steps.welcome.next`)."""

import uuid
from datetime import datetime
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext
from ninja import Body, Field, Router, Schema, Status
from pydantic import ConfigDict, StrictInt, model_validator

from rapport.core.errors import InvalidInputError
from rapport.core.pagination import LimitOffsetPagination, paginate
from rapport.identity.selectors import customer_resolve
from rapport.journeys import selectors, services
from rapport.journeys.graph import JourneyGraph, journey_validate
from rapport.journeys.models import Journey
from rapport.profiles.models import Profile

router = Router(tags=["journeys"])

GRAPH_BODY = {
    "requestBody": {
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JourneyGraph"}}},
        "required": True,
    }
}


class JourneyStepCounts(Schema):
    entered: int
    waiting: int
    passed: int
    exited: int


class JourneyConversion(Schema):
    goal: dict | None = Field(None, description="The goal: an event (with `where`) or a rule")
    enrolled: int = Field(description="Customers enrolled and messaged")
    enrolled_converted: int
    enrolled_rate: float | None
    holdout: int = Field(description="Customers in the holdout: enrolled, never messaged")
    holdout_converted: int
    holdout_rate: float | None
    lift: float | None = Field(description="enrolled_rate - holdout_rate")
    lift_low: float | None = Field(description="The lift's 95 % confidence interval, low end")
    lift_high: float | None = Field(description="The lift's 95 % confidence interval, high end")
    relative_lift: float | None
    significant: bool


class JourneyVersionOut(Schema):
    number: int
    created_at: datetime
    created_by: str
    live: int = Field(description="Customers still on this version")


class JourneySummaryOut(Schema):
    id: uuid.UUID
    name: str
    description: str
    status: Journey.Status
    version: int
    trigger_type: str
    holdout_percent: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None


class JourneyOut(JourneySummaryOut):
    graph: JourneyGraph
    states: dict[str, int] = Field(description="Enrolments per state")
    steps: dict[str, JourneyStepCounts] = Field(description="Per step key")
    conversion: JourneyConversion
    versions: list[JourneyVersionOut]


class JourneyProblem(Schema):
    path: str
    message: str


class JourneyValidation(Schema):
    valid: bool
    problems: list[JourneyProblem]


class EnrolmentIn(Schema):
    model_config = ConfigDict(extra="forbid")

    profile_id: uuid.UUID | None = None
    user_id: str | None = Field(None, min_length=1, max_length=255)

    @model_validator(mode="after")
    def _one(self):
        if (self.profile_id is None) == (self.user_id is None):
            raise ValueError(gettext("give profile_id or user_id (one of them)"))
        return self


class EnrolmentOut(Schema):
    id: uuid.UUID
    journey_id: uuid.UUID
    profile_id: uuid.UUID
    state: str
    step: str
    holdout: bool
    entered_at: datetime
    due_at: datetime | None


class JourneyMigrateIn(Schema):
    model_config = ConfigDict(extra="forbid")

    from_version: StrictInt = Field(ge=1, description="Move the customers on this version")
    version: StrictInt | None = Field(None, ge=1, description="To this one (the current one)")
    mapping: dict[str, str] = Field(
        default_factory=dict,
        max_length=200,
        description="Old step key -> new step key; unnamed keys keep their name",
    )


class JourneyMigrateOut(Schema):
    moved: int


def _out(journey: Journey, *, full: bool = True) -> dict[str, Any]:
    out = {f: getattr(journey, f) for f in JourneySummaryOut.model_fields}
    if not full:
        return out
    workspace = journey.workspace
    out["graph"] = selectors.journey_graph(workspace=workspace, journey=journey)
    out["states"] = selectors.journey_state_counts(workspace=workspace, journey=journey)
    out["steps"] = selectors.journey_step_counts(workspace=workspace, journey=journey)
    out["conversion"] = selectors.journey_conversion(workspace=workspace, journey=journey)
    out["versions"] = selectors.journey_versions(workspace=workspace, journey=journey)
    return out


def _journey(request: HttpRequest, journey_id: uuid.UUID) -> Journey:
    return selectors.journey_get(workspace=request.auth.workspace, journey_id=journey_id)


@router.get("/journeys", response=list[JourneySummaryOut], summary="Journeys, newest first")
@paginate(LimitOffsetPagination)
def journey_list(request: HttpRequest):
    request.auth.require("journeys.read")
    return [_out(j, full=False) for j in selectors.journey_list(workspace=request.auth.workspace)]


@router.post(
    "/journeys",
    response={201: JourneyOut},
    summary="Write a journey (a draft) from its graph",
    openapi_extra=GRAPH_BODY,
)
def journey_create(request: HttpRequest, payload: dict = Body(...)):  # noqa: B008
    request.auth.require("journeys.write")
    journey = services.journey_create(
        workspace=request.auth.workspace, graph=payload, actor=request.auth.actor
    )
    return Status(201, _out(journey))


@router.get("/journeys/{journey_id}", response=JourneyOut, summary="A journey, counts, conversion")
def journey_get(request: HttpRequest, journey_id: uuid.UUID):
    request.auth.require("journeys.read")
    return _out(_journey(request, journey_id))


@router.put(
    "/journeys/{journey_id}",
    response=JourneyOut,
    summary="Replace the graph (a new version; customers in stay on theirs)",
    openapi_extra=GRAPH_BODY,
)
def journey_replace(request: HttpRequest, journey_id: uuid.UUID, payload: dict = Body(...)):  # noqa: B008
    request.auth.require("journeys.write")
    journey = _journey(request, journey_id)
    return _out(services.journey_update(journey=journey, graph=payload, actor=request.auth.actor))


@router.patch(
    "/journeys/{journey_id}",
    response=JourneyOut,
    summary="Change some top-level keys of the graph (a new version)",
    openapi_extra=GRAPH_BODY,
)
def journey_patch(request: HttpRequest, journey_id: uuid.UUID, payload: dict = Body(...)):  # noqa: B008
    request.auth.require("journeys.write")
    journey = _journey(request, journey_id)
    graph = {
        **selectors.journey_graph(workspace=request.auth.workspace, journey=journey),
        **payload,
    }
    return _out(services.journey_update(journey=journey, graph=graph, actor=request.auth.actor))


@router.post(
    "/journeys/{journey_id}/validate",
    response=JourneyValidation,
    summary="What stops the journey from starting",
)
def journey_check(request: HttpRequest, journey_id: uuid.UUID):
    request.auth.require("journeys.read")
    journey = _journey(request, journey_id)
    graph = selectors.journey_graph(workspace=request.auth.workspace, journey=journey)
    problems = journey_validate(workspace=request.auth.workspace, graph=graph)
    return {"valid": not problems, "problems": problems}


@router.post("/journeys/{journey_id}/start", response=JourneyOut, summary="Start or resume")
def journey_start(request: HttpRequest, journey_id: uuid.UUID):
    request.auth.require("journeys.write")
    journey = _journey(request, journey_id)
    return _out(services.journey_start(journey=journey, actor=request.auth.actor))


@router.post(
    "/journeys/{journey_id}/pause",
    response=JourneyOut,
    summary="Pause: due steps wait, nobody new enters",
)
def journey_pause(request: HttpRequest, journey_id: uuid.UUID):
    request.auth.require("journeys.write")
    journey = _journey(request, journey_id)
    return _out(services.journey_pause(journey=journey, actor=request.auth.actor))


@router.post(
    "/journeys/{journey_id}/stop",
    response=JourneyOut,
    summary="Stop: every customer still in exits",
)
def journey_stop(request: HttpRequest, journey_id: uuid.UUID):
    request.auth.require("journeys.write")
    journey = _journey(request, journey_id)
    return _out(services.journey_stop(journey=journey, actor=request.auth.actor))


@router.post(
    "/journeys/{journey_id}/migrate",
    response=JourneyMigrateOut,
    summary="Move the customers on an old version to the current one",
)
def journey_migrate(request: HttpRequest, journey_id: uuid.UUID, payload: JourneyMigrateIn):
    request.auth.require("journeys.write")
    journey = _journey(request, journey_id)
    known = {
        v["number"]
        for v in selectors.journey_versions(workspace=journey.workspace, journey=journey)
    }
    for name in ("from_version", "version"):
        number = getattr(payload, name)
        if number is not None and number not in known:
            raise InvalidInputError(
                gettext("no version %(number)s of this journey") % {"number": number}, field=name
            )
    moved = services.journey_migrate(
        journey=journey,
        from_version=payload.from_version,
        version=payload.version,
        mapping=payload.mapping,
        actor=request.auth.actor,
    )
    return {"moved": moved}


def _profile_of(request: HttpRequest, payload: EnrolmentIn) -> Profile:
    """The customer named by profile id or user id (after a merge, the survivor)."""
    return customer_resolve(
        workspace=request.auth.workspace, profile_id=payload.profile_id, user_id=payload.user_id
    )


@router.post(
    "/journeys/{journey_id}/enrolments",
    response={201: EnrolmentOut},
    summary="Enrol a customer (409 if in already, or re-entry says no)",
)
def enrolment_create(request: HttpRequest, journey_id: uuid.UUID, payload: EnrolmentIn):
    request.auth.require("journeys.write")
    journey = _journey(request, journey_id)
    profile = _profile_of(request, payload)
    enrolment = services.enrolment_create(
        journey=journey, profile=profile, actor=request.auth.actor
    )
    return Status(201, enrolment)


ROUTERS = [("v1", router)]
