"""The sales API: `/pipelines`, `/deals` (with `/move` and `/history`), `/forecast`,
`/tasks`, `/notes`, `/notifications`, and the owners of customers and accounts.
docs/sales.md has examples."""

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from django.http import HttpRequest
from django.utils.translation import gettext
from ninja import Field, Query, Router, Schema, Status
from pydantic import (
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    StrictBool,
    StrictInt,
    StringConstraints,
)

from rapport.core.errors import InvalidInputError
from rapport.core.pagination import LimitOffsetPagination, paginate
from rapport.profiles import selectors as profile_selectors
from rapport.sales import selectors, services
from rapport.sales.models import Deal, Note, Task

router = Router(tags=["sales"])


def _text_only(value):
    # A number would pass as seconds since 1970; a time or a day is written as text.
    if value is not None and not isinstance(value, str):
        raise ValueError(gettext("an ISO 8601 text (a day 2027-01-31, a time with its UTC offset)"))
    return value


Time = Annotated[AwareDatetime, BeforeValidator(_text_only)]
Day = Annotated[date, BeforeValidator(_text_only)]

Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"\S")]
StageName = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"\S")]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$")]
Amount = Annotated[Decimal, Field(ge=0, le=services.MAX_AMOUNT, allow_inf_nan=False)]
Version = Annotated[StrictInt, Field(ge=1, le=2**31 - 1)]


class MemberRef(Schema):
    id: uuid.UUID
    name: str
    email: str


def _member_ref(member) -> dict | None:
    if member is None:
        return None
    return {"id": member.pk, "name": member.user.name, "email": member.user.email}


# --- Pipelines --------------------------------------------------------------------------


class DealStageIn(Schema):
    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID | None = Field(None, description="An existing stage's id (to keep it)")
    name: StageName
    probability: Annotated[StrictInt, Field(ge=0, le=100)] | None = Field(
        None, description="Chance of winning a deal at this stage, in percent"
    )
    kind: Literal["open", "won", "lost"] = "open"


class SalesPipelineIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: StageName
    currency: Currency = "USD"
    stages: list[DealStageIn] | None = Field(
        None,
        min_length=1,
        max_length=30,
        description="In order; the default sales stages when left out",
    )


class SalesPipelinePatch(Schema):
    model_config = ConfigDict(extra="forbid")

    name: StageName | None = None
    currency: Currency | None = None
    stages: list[DealStageIn] | None = Field(None, min_length=1, max_length=30)


class DealStageOut(Schema):
    id: uuid.UUID
    name: str
    position: int
    probability: int
    kind: str


class SalesPipelineOut(Schema):
    id: uuid.UUID
    name: str
    currency: str
    stages: list[DealStageOut]
    created_at: datetime

    @staticmethod
    def resolve_stages(obj) -> list:
        return list(obj.stages.all())


@router.get("/pipelines", response=list[SalesPipelineOut], summary="The pipelines and their stages")
def pipeline_list(request: HttpRequest):
    request.auth.require("sales.read")
    return list(selectors.pipeline_list(workspace=request.auth.workspace))


@router.post("/pipelines", response={201: SalesPipelineOut}, summary="Add a pipeline")
def pipeline_create(request: HttpRequest, payload: SalesPipelineIn):
    request.auth.require("sales.configure")
    pipeline = services.pipeline_create(
        workspace=request.auth.workspace,
        actor=request.auth.actor,
        name=payload.name,
        currency=payload.currency,
        stages=[s.model_dump() for s in payload.stages] if payload.stages is not None else None,
    )
    return Status(
        201, selectors.pipeline_get(workspace=request.auth.workspace, pipeline_id=pipeline.pk)
    )


@router.get("/pipelines/{pipeline_id}", response=SalesPipelineOut, summary="A pipeline")
def pipeline_get(request: HttpRequest, pipeline_id: uuid.UUID):
    request.auth.require("sales.read")
    return selectors.pipeline_get(workspace=request.auth.workspace, pipeline_id=pipeline_id)


@router.patch(
    "/pipelines/{pipeline_id}",
    response=SalesPipelineOut,
    summary="Rename a pipeline, or replace its stages (stages left out are removed)",
)
def pipeline_update(request: HttpRequest, pipeline_id: uuid.UUID, payload: SalesPipelinePatch):
    request.auth.require("sales.configure")
    workspace = request.auth.workspace
    pipeline = selectors.pipeline_get(workspace=workspace, pipeline_id=pipeline_id)
    data = payload.model_dump(exclude_unset=True, exclude_none=True)
    services.pipeline_update(pipeline=pipeline, actor=request.auth.actor, data=data)
    return selectors.pipeline_get(workspace=workspace, pipeline_id=pipeline_id)


@router.delete("/pipelines/{pipeline_id}", response={204: None}, summary="Remove an empty pipeline")
def pipeline_delete(request: HttpRequest, pipeline_id: uuid.UUID):
    request.auth.require("sales.configure")
    pipeline = selectors.pipeline_get(workspace=request.auth.workspace, pipeline_id=pipeline_id)
    services.pipeline_delete(pipeline=pipeline, actor=request.auth.actor)
    return Status(204, None)


# --- Deals ------------------------------------------------------------------------------


class DealPatch(Schema):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    amount: Amount | None = None
    currency: Currency | None = None
    expected_close: Day | None = None
    owner_id: uuid.UUID | None = Field(None, description="A member's id; null: nobody")
    profile_id: uuid.UUID | None = None
    account_id: uuid.UUID | None = None
    version: Version | None = Field(
        None, description="The version you read: a deal changed since is refused (409)"
    )


class DealIn(DealPatch):
    name: Name
    pipeline_id: uuid.UUID | None = Field(
        None, description="Its pipeline (starts at the first stage)"
    )
    stage_id: uuid.UUID | None = Field(None, description="Or the stage to start at")


class DealMove(Schema):
    model_config = ConfigDict(extra="forbid")

    stage_id: uuid.UUID
    version: Version | None = Field(
        None, description="The version you read: a deal moved or changed since is refused (409)"
    )


class DealOut(Schema):
    id: uuid.UUID
    name: str
    pipeline_id: uuid.UUID
    stage_id: uuid.UUID
    stage: str
    status: str
    probability: int
    amount: str = Field(description="Decimal text, in `currency`")
    currency: str
    expected_close: date | None
    owner: MemberRef | None
    profile_id: uuid.UUID | None
    account_id: uuid.UUID | None
    stage_changed_at: datetime
    closed_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_stage(obj: Deal) -> str:
        return obj.stage.name

    @staticmethod
    def resolve_probability(obj: Deal) -> int:
        return obj.stage.probability

    @staticmethod
    def resolve_amount(obj: Deal) -> str:
        return str(obj.amount.normalize()) if obj.amount else "0"

    @staticmethod
    def resolve_owner(obj: Deal):
        return _member_ref(obj.owner)


class DealChangeOut(Schema):
    id: uuid.UUID
    from_stage: str
    to_stage: str
    by: str
    at: datetime

    @staticmethod
    def resolve_from_stage(obj) -> str:
        return obj.from_name

    @staticmethod
    def resolve_to_stage(obj) -> str:
        return obj.to_name

    @staticmethod
    def resolve_by(obj) -> str:
        return obj.actor_label


NULLABLE_DEAL = {"expected_close", "owner_id", "profile_id", "account_id"}


def _given(payload, nullable: set) -> dict:
    return {
        k: v
        for k, v in payload.model_dump(exclude_unset=True).items()
        if k != "version" and (v is not None or k in nullable)
    }


@router.get("/deals", response=list[DealOut], summary="Deals, newest change first")
@paginate(LimitOffsetPagination)
def deal_list(
    request: HttpRequest,
    pipeline_id: uuid.UUID | None = None,
    stage_id: uuid.UUID | None = None,
    status: Literal["open", "won", "lost"] | None = None,
    owner_id: uuid.UUID | None = None,
    profile_id: uuid.UUID | None = None,
    account_id: uuid.UUID | None = None,
    q: str = "",
):
    request.auth.require("sales.read")
    return selectors.deal_list(
        workspace=request.auth.workspace,
        pipeline_id=pipeline_id,
        stage_id=stage_id,
        status=status,
        owner_id=owner_id,
        profile_id=profile_id,
        account_id=account_id,
        q=q[:200],
    )


@router.post("/deals", response={201: DealOut}, summary="Open a deal")
def deal_create(request: HttpRequest, payload: DealIn):
    request.auth.require("sales.write")
    data = _given(payload, NULLABLE_DEAL)
    deal = services.deal_create(
        workspace=request.auth.workspace, actor=request.auth.actor, data=data
    )
    return Status(201, selectors.deal_get(workspace=request.auth.workspace, deal_id=deal.pk))


@router.get("/deals/{deal_id}", response=DealOut, summary="A deal")
def deal_get(request: HttpRequest, deal_id: uuid.UUID):
    request.auth.require("sales.read")
    return selectors.deal_get(workspace=request.auth.workspace, deal_id=deal_id)


@router.patch("/deals/{deal_id}", response=DealOut, summary="Change a deal (the fields given)")
def deal_update(request: HttpRequest, deal_id: uuid.UUID, payload: DealPatch):
    request.auth.require("sales.write")
    deal = selectors.deal_get(workspace=request.auth.workspace, deal_id=deal_id)
    data = _given(payload, NULLABLE_DEAL)
    data.pop("pipeline_id", None)
    data.pop("stage_id", None)
    return services.deal_update(
        deal=deal, actor=request.auth.actor, data=data, version=payload.version
    )


@router.post("/deals/{deal_id}/move", response=DealOut, summary="Move a deal to a stage")
def deal_move(request: HttpRequest, deal_id: uuid.UUID, payload: DealMove):
    request.auth.require("sales.write")
    deal = selectors.deal_get(workspace=request.auth.workspace, deal_id=deal_id)
    return services.deal_move(
        deal=deal, actor=request.auth.actor, stage_id=payload.stage_id, version=payload.version
    )


@router.get("/deals/{deal_id}/history", response=list[DealChangeOut], summary="A deal's moves")
def deal_history(request: HttpRequest, deal_id: uuid.UUID):
    request.auth.require("sales.read")
    deal = selectors.deal_get(workspace=request.auth.workspace, deal_id=deal_id)
    return list(selectors.deal_history(deal=deal))


@router.delete("/deals/{deal_id}", response={204: None}, summary="Delete a deal")
def deal_delete(request: HttpRequest, deal_id: uuid.UUID):
    request.auth.require("sales.write")
    deal = selectors.deal_get(workspace=request.auth.workspace, deal_id=deal_id)
    services.deal_delete(deal=deal, actor=request.auth.actor)
    return Status(204, None)


class ForecastRow(Schema):
    owner_id: uuid.UUID | None
    owner: str
    month: date
    currency: str
    deals: int
    amount: str
    weighted: str = Field(description="The amount weighted by each deal's stage probability")
    model_weighted: str = Field(
        description="Weighted by the customer's lead score (by the stage where unscored)"
    )

    @staticmethod
    def resolve_amount(obj) -> str:
        return str(round(obj["amount"], 2))

    @staticmethod
    def resolve_weighted(obj) -> str:
        return str(round(obj["weighted"], 2))

    @staticmethod
    def resolve_model_weighted(obj) -> str:
        return str(round(obj["model_weighted"], 2))


@router.get(
    "/forecast",
    response=list[ForecastRow],
    summary="Open deals by owner and month of expected close, weighted by stage",
)
def forecast(request: HttpRequest, pipeline_id: uuid.UUID | None = None):
    request.auth.require("sales.read")
    return selectors.forecast(workspace=request.auth.workspace, pipeline_id=pipeline_id)


# --- Tasks ------------------------------------------------------------------------------


class TaskPatch(Schema):
    model_config = ConfigDict(extra="forbid")

    title: Name | None = None
    description: Annotated[str, StringConstraints(max_length=5000)] | None = None
    due_at: Time | None = Field(None, description="When it is due (with its UTC offset)")
    due_date: Day | None = Field(None, description="Or the day it is due (all day)")
    remind_at: Time | None = None
    assignee_id: uuid.UUID | None = Field(None, description="A member's id (default: you)")
    profile_id: uuid.UUID | None = None
    account_id: uuid.UUID | None = None
    deal_id: uuid.UUID | None = None


class TaskIn(TaskPatch):
    title: Name


class TaskDone(Schema):
    model_config = ConfigDict(extra="forbid")

    done: StrictBool = True


class TaskOut(Schema):
    id: uuid.UUID
    title: str
    description: str
    due_at: datetime | None
    due_date: date | None
    all_day: bool
    overdue: bool = Field(description="Past due where the reader is (their time zone)")
    remind_at: datetime | None
    assignee: MemberRef | None
    profile_id: uuid.UUID | None
    account_id: uuid.UUID | None
    deal_id: uuid.UUID | None
    done: bool
    done_at: datetime | None
    created_by: str
    created_at: datetime

    @staticmethod
    def resolve_due_at(obj: Task):
        return None if obj.all_day else obj.due_at

    @staticmethod
    def resolve_due_date(obj: Task):
        return obj.due_at.date() if obj.all_day and obj.due_at else None

    @staticmethod
    def resolve_overdue(obj: Task, context) -> bool:
        request = context["request"]
        # Read once a request, not once a task.
        zone = getattr(request, "_sales_zone", None)
        if zone is None:
            zone = selectors.zone_of(workspace=request.auth.workspace, user=request.auth.user)
            request._sales_zone = zone
        return selectors.task_is_overdue(obj, zone=zone)

    @staticmethod
    def resolve_assignee(obj: Task):
        return _member_ref(obj.assignee)

    @staticmethod
    def resolve_done(obj: Task) -> bool:
        return obj.done_at is not None


NULLABLE_TASK = {
    "due_at",
    "due_date",
    "remind_at",
    "assignee_id",
    "profile_id",
    "account_id",
    "deal_id",
}


def _task_data(payload) -> dict:
    data = _given(payload, NULLABLE_TASK)
    if "due_date" in data:
        if data.get("due_at") is not None and data["due_date"] is not None:
            raise InvalidInputError(gettext("Give due_at or due_date, not both"), field="due_date")
        day = data.pop("due_date")
        if day is not None:
            data["due_at"] = selectors.all_day_due(day)
            data["all_day"] = True
        elif "due_at" not in data:
            data["due_at"] = None
    elif "due_at" in data:
        data["all_day"] = False
    return data


@router.get("/tasks", response=list[TaskOut], summary="Tasks (mine, today, overdue...)")
@paginate(LimitOffsetPagination)
def task_list(
    request: HttpRequest,
    view: Literal["open", "today", "overdue", "upcoming", "done", "all"] = "open",
    assignee: Annotated[str, Query(description="`me`, a member's id, or empty: everyone's")] = "",
    profile_id: uuid.UUID | None = None,
    account_id: uuid.UUID | None = None,
    deal_id: uuid.UUID | None = None,
):
    request.auth.require("sales.read")
    workspace = request.auth.workspace
    assignee_id = None
    if assignee == "me":
        member = selectors.member_of(workspace=workspace, user=request.auth.user)
        if member is None:
            return Task.objects.none()
        assignee_id = member.pk
    elif assignee:
        try:
            assignee_id = uuid.UUID(assignee)
        except ValueError:
            raise InvalidInputError(
                gettext("assignee is `me` or a member's id"), field="assignee"
            ) from None
    return selectors.task_list(
        workspace=workspace,
        view=view,
        assignee_id=assignee_id,
        profile_id=profile_id,
        account_id=account_id,
        deal_id=deal_id,
        zone=selectors.zone_of(workspace=workspace, user=request.auth.user),
    )


@router.post("/tasks", response={201: TaskOut}, summary="Create a task")
def task_create(request: HttpRequest, payload: TaskIn):
    request.auth.require("activities.write")
    return Status(
        201,
        services.task_create(
            workspace=request.auth.workspace, actor=request.auth.actor, data=_task_data(payload)
        ),
    )


@router.get("/tasks/{task_id}", response=TaskOut, summary="A task")
def task_get(request: HttpRequest, task_id: uuid.UUID):
    request.auth.require("sales.read")
    return selectors.task_get(workspace=request.auth.workspace, task_id=task_id)


@router.patch("/tasks/{task_id}", response=TaskOut, summary="Change a task (the fields given)")
def task_update(request: HttpRequest, task_id: uuid.UUID, payload: TaskPatch):
    request.auth.require("activities.write")
    task = selectors.task_get(workspace=request.auth.workspace, task_id=task_id)
    return services.task_update(task=task, actor=request.auth.actor, data=_task_data(payload))


@router.post("/tasks/{task_id}/complete", response=TaskOut, summary="Mark a task done, or not done")
def task_complete(request: HttpRequest, task_id: uuid.UUID, payload: TaskDone):
    request.auth.require("activities.write")
    task = selectors.task_get(workspace=request.auth.workspace, task_id=task_id)
    return services.task_complete(task=task, actor=request.auth.actor, done=payload.done)


@router.delete("/tasks/{task_id}", response={204: None}, summary="Delete a task")
def task_delete(request: HttpRequest, task_id: uuid.UUID):
    request.auth.require("activities.write")
    task = selectors.task_get(workspace=request.auth.workspace, task_id=task_id)
    services.task_delete(task=task, actor=request.auth.actor)
    return Status(204, None)


# --- Notes ------------------------------------------------------------------------------


class NoteIn(Schema):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["note", "call", "meeting", "email"] = "note"
    body: Annotated[str, StringConstraints(min_length=1, max_length=services.NOTE_MAX)] = Field(
        description="HTML (sanitised: bold, italics, lists, links, quotes) or text"
    )
    occurred_at: Time | None = Field(None, description="When the call or meeting was")
    profile_id: uuid.UUID | None = None
    account_id: uuid.UUID | None = None
    deal_id: uuid.UUID | None = None
    mentions: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=50,
        description="Members to notify (in Rapport and by email)",
    )


class NoteOut(Schema):
    id: uuid.UUID
    kind: str
    body: str
    occurred_at: datetime
    author: str
    profile_id: uuid.UUID | None
    account_id: uuid.UUID | None
    deal_id: uuid.UUID | None
    mentions: list[MemberRef]
    created_at: datetime

    @staticmethod
    def resolve_author(obj: Note) -> str:
        return obj.author_label

    @staticmethod
    def resolve_mentions(obj: Note) -> list:
        return [_member_ref(m) for m in obj.mentions.all()]


@router.get("/notes", response=list[NoteOut], summary="Notes and logged calls, meetings, emails")
@paginate(LimitOffsetPagination)
def note_list(
    request: HttpRequest,
    profile_id: uuid.UUID | None = None,
    account_id: uuid.UUID | None = None,
    deal_id: uuid.UUID | None = None,
):
    request.auth.require("sales.read")
    return selectors.note_list(
        workspace=request.auth.workspace,
        profile_id=profile_id,
        account_id=account_id,
        deal_id=deal_id,
    )


@router.post(
    "/notes", response={201: NoteOut}, summary="Write a note or log a call, meeting or email"
)
def note_create(request: HttpRequest, payload: NoteIn):
    request.auth.require("activities.write")
    note = services.note_create(
        workspace=request.auth.workspace, actor=request.auth.actor, data=payload.model_dump()
    )
    return Status(201, selectors.note_get(workspace=request.auth.workspace, note_id=note.pk))


@router.get("/notes/{note_id}", response=NoteOut, summary="A note")
def note_get(request: HttpRequest, note_id: uuid.UUID):
    request.auth.require("sales.read")
    return selectors.note_get(workspace=request.auth.workspace, note_id=note_id)


@router.delete("/notes/{note_id}", response={204: None}, summary="Delete a note")
def note_delete(request: HttpRequest, note_id: uuid.UUID):
    request.auth.require("activities.write")
    note = selectors.note_get(workspace=request.auth.workspace, note_id=note_id)
    services.note_delete(note=note, actor=request.auth.actor)
    return Status(204, None)


# --- Owners -----------------------------------------------------------------------------


class OwnerIn(Schema):
    model_config = ConfigDict(extra="forbid")

    member_id: uuid.UUID | None = Field(description="A member's id; null: no owner")


class OwnerOut(Schema):
    owner: MemberRef | None


class OwnersAssign(Schema):
    model_config = ConfigDict(extra="forbid")

    member_ids: list[uuid.UUID] = Field(min_length=1, max_length=100)
    profile_ids: list[uuid.UUID] = Field(default_factory=list, max_length=10_000)
    account_ids: list[uuid.UUID] = Field(default_factory=list, max_length=10_000)
    mode: Literal["one", "round_robin"] = Field(
        "round_robin", description="one: all to the one member; round_robin: in turn"
    )


class OwnersAssigned(Schema):
    profiles: int
    accounts: int
    members: int


@router.put("/profiles/{profile_id}/owner", response=OwnerOut, summary="Set a customer's owner")
def profile_owner_set(request: HttpRequest, profile_id: uuid.UUID, payload: OwnerIn):
    request.auth.require("sales.write")
    profile = profile_selectors.profile_get(workspace=request.auth.workspace, profile_id=profile_id)
    owner = services.owner_set(
        workspace=request.auth.workspace,
        actor=request.auth.actor,
        member_id=payload.member_id,
        profile=profile,
    )
    return {"owner": _member_ref(owner.member) if owner else None}


@router.put("/accounts/{account_id}/owner", response=OwnerOut, summary="Set an account's owner")
def account_owner_set(request: HttpRequest, account_id: uuid.UUID, payload: OwnerIn):
    request.auth.require("sales.write")
    account = profile_selectors.account_get(workspace=request.auth.workspace, account_id=account_id)
    owner = services.owner_set(
        workspace=request.auth.workspace,
        actor=request.auth.actor,
        member_id=payload.member_id,
        account=account,
    )
    return {"owner": _member_ref(owner.member) if owner else None}


@router.post(
    "/owners/assign", response=OwnersAssigned, summary="Give many customers or accounts owners"
)
def owners_assign(request: HttpRequest, payload: OwnersAssign):
    request.auth.require("sales.write")
    return services.owners_assign(
        workspace=request.auth.workspace,
        actor=request.auth.actor,
        member_ids=payload.member_ids,
        profile_ids=payload.profile_ids,
        account_ids=payload.account_ids,
        mode=payload.mode,
    )


# --- Notifications ------------------------------------------------------------------------


class NotificationOut(Schema):
    id: uuid.UUID
    kind: str
    text: str
    link: str
    read: bool
    created_at: datetime

    @staticmethod
    def resolve_read(obj) -> bool:
        return obj.read_at is not None


class NotificationsRead(Schema):
    model_config = ConfigDict(extra="forbid")

    ids: list[uuid.UUID] | None = Field(
        None, max_length=1000, description="Those; all when left out"
    )


@router.get("/notifications", response=list[NotificationOut], summary="Your notifications")
@paginate(LimitOffsetPagination)
def notification_list(request: HttpRequest, unread: bool = False):
    member = selectors.member_of(workspace=request.auth.workspace, user=request.auth.user)
    if member is None:
        return []
    return selectors.notification_list(
        workspace=request.auth.workspace, member=member, unread=unread
    )


@router.post("/notifications/read", response={204: None}, summary="Mark your notifications read")
def notifications_read(request: HttpRequest, payload: NotificationsRead):
    member = selectors.member_of(workspace=request.auth.workspace, user=request.auth.user)
    if member is not None:
        services.notification_read(
            workspace=request.auth.workspace, member=member, notification_ids=payload.ids
        )
    return Status(204, None)


# --- Lead scoring ---------------------------------------------------------------------------


class LeadModelQueuedOut(Schema):
    task_id: str


class LeadModelOut(Schema):
    version: int
    deals: int = Field(description="Won and lost deals it learnt from")
    won: int
    metrics: dict = Field(
        description="Cross-validated roc_auc and brier, beside the prior-only baseline's"
    )
    created_at: datetime


class LeadScoreOut(Schema):
    profile_id: uuid.UUID
    probability: float | None = Field(description="Chance a deal with them is won; null: unscored")
    reasons: list[dict]
    model_version: int | None
    scored_at: datetime | None


@router.post(
    "/lead-models/train",
    response={202: LeadModelQueuedOut},
    summary="Train the lead score on won and lost deals, and score the leads (a worker)",
)
def lead_model_train(request: HttpRequest):
    request.auth.require("sales.write")
    from rapport.sales import tasks

    result = tasks.lead_model_train.enqueue(
        workspace_id=str(request.auth.workspace.pk), actor_label=request.auth.actor.label
    )
    return Status(202, {"task_id": str(result.id)})


@router.get("/lead-models", response=list[LeadModelOut], summary="The lead score's versions")
@paginate(LimitOffsetPagination)
def lead_model_list(request: HttpRequest):
    request.auth.require("sales.read")
    return selectors.lead_model_list(workspace=request.auth.workspace)


@router.get(
    "/profiles/{profile_id}/lead-score", response=LeadScoreOut, summary="A customer's lead score"
)
def lead_score_get(request: HttpRequest, profile_id: uuid.UUID):
    request.auth.require("sales.read")
    profile = profile_selectors.profile_get(workspace=request.auth.workspace, profile_id=profile_id)
    score = selectors.lead_score_of(workspace=request.auth.workspace, profile_id=profile.pk)
    return {
        "profile_id": profile.pk,
        "probability": score.probability if score else None,
        "reasons": score.reasons if score else [],
        "model_version": score.model.version if score else None,
        "scored_at": score.scored_at if score else None,
    }


ROUTERS = [("v1", router)]
