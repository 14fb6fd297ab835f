"""Reads of the sales app, each scoped to a workspace: pipelines with their stages,
deals (the board, the list, a deal's history), tasks in the reader's time zone, notes,
owners and the weighted forecast."""

from __future__ import annotations

import uuid
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone
from django.utils.translation import gettext

from rapport.core.selectors import object_get
from rapport.sales.models import (
    Deal,
    DealStageChange,
    LeadModel,
    LeadScore,
    Note,
    Notification,
    Owner,
    Pipeline,
    Stage,
    StageKind,
    Task,
)
from rapport.tenancy.models import Membership, User, Workspace

BOARD_PER_STAGE = 50


def zone_of(*, workspace: Workspace, user: User | None, override: str = "") -> zoneinfo.ZoneInfo:
    """The reader's time zone: the one asked for, theirs, the workspace's reporting
    zone, or UTC."""
    for name in (
        override,
        getattr(user, "time_zone", "") if user else "",
        _workspace_zone(workspace),
    ):
        if name:
            try:
                return zoneinfo.ZoneInfo(name)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                continue
    return zoneinfo.ZoneInfo("UTC")


def _workspace_zone(workspace: Workspace) -> str:
    from rapport.analytics.selectors import analytics_settings_get

    return analytics_settings_get(workspace_id=workspace.pk).timezone


def member_of(*, workspace: Workspace, user: User | None) -> Membership | None:
    if user is None:
        return None
    return Membership.objects.filter(workspace=workspace, user=user).first()


# --- Pipelines and deals ------------------------------------------------------------


def pipeline_list(*, workspace: Workspace) -> QuerySet[Pipeline]:
    return (
        Pipeline.objects.filter(workspace=workspace)
        .prefetch_related("stages")
        .order_by("position", "created_at")
    )


def pipeline_get(*, workspace: Workspace, pipeline_id: uuid.UUID) -> Pipeline:
    return object_get(
        pipeline_list(workspace=workspace),
        message=gettext("No pipeline with id %(pk)s in this workspace"),
        pk=pipeline_id,
    )


def deal_list(
    *,
    workspace: Workspace,
    pipeline_id: uuid.UUID | None = None,
    stage_id: uuid.UUID | None = None,
    status: str | None = None,
    owner_id: uuid.UUID | None = None,
    profile_id: uuid.UUID | None = None,
    account_id: uuid.UUID | None = None,
    q: str = "",
) -> QuerySet[Deal]:
    deals = Deal.objects.filter(workspace=workspace).select_related(
        "stage", "pipeline", "owner__user"
    )
    for field, value in (
        ("pipeline_id", pipeline_id),
        ("stage_id", stage_id),
        ("status", status),
        ("owner_id", owner_id),
        ("profile_id", profile_id),
        ("account_id", account_id),
    ):
        if value is not None:
            deals = deals.filter(**{field: value})
    if q:
        deals = deals.filter(name__icontains=q)
    return deals.order_by("-updated_at", "pk")


def deal_get(*, workspace: Workspace, deal_id: uuid.UUID) -> Deal:
    return object_get(
        deal_list(workspace=workspace),
        message=gettext("No deal with id %(pk)s in this workspace"),
        pk=deal_id,
    )


def deal_history(*, deal: Deal) -> QuerySet[DealStageChange]:
    return DealStageChange.objects.filter(workspace_id=deal.workspace_id, deal=deal).order_by(
        "at", "created_at"
    )


@dataclass
class BoardColumn:
    stage: Stage
    deals: list[Deal]
    count: int
    total: dict[str, Decimal]


def board(
    *, workspace: Workspace, pipeline: Pipeline, owner_id: uuid.UUID | None = None
) -> list[BoardColumn]:
    """A pipeline's stages, each with its count and amount per currency, and its first
    deals (the most recently moved): a board of thousands of deals stays one page."""
    stages = list(pipeline.stages.all())
    deals = Deal.objects.filter(workspace=workspace, pipeline=pipeline)
    if owner_id is not None:
        deals = deals.filter(owner_id=owner_id)
    totals: dict[Any, dict] = {s.pk: {"count": 0, "total": {}} for s in stages}
    for row in (
        deals.values("stage_id", "currency")
        .annotate(n=Count("id"), amount=Sum("amount"))
        .order_by()
    ):
        column = totals.setdefault(row["stage_id"], {"count": 0, "total": {}})
        column["count"] += row["n"]
        column["total"][row["currency"]] = row["amount"] or Decimal(0)
    columns = []
    for stage in stages:
        first = list(
            deals.filter(stage=stage)
            .select_related("owner__user")
            .order_by("-stage_changed_at", "pk")[:BOARD_PER_STAGE]
        )
        columns.append(BoardColumn(stage=stage, deals=first, **totals[stage.pk]))
    return columns


def forecast(*, workspace: Workspace, pipeline_id: uuid.UUID | None = None) -> list[dict]:
    """Open deals by owner and month of expected close: the amount, and the amount
    weighted by the stage's probability, per currency (never added across currencies)."""
    deals = Deal.objects.filter(
        workspace=workspace, status=StageKind.OPEN, expected_close__isnull=False
    )
    if pipeline_id is not None:
        deals = deals.filter(pipeline_id=pipeline_id)
    rows: dict[tuple, dict] = {}
    deals = list(deals.select_related("stage", "owner__user").order_by("expected_close"))
    scores = lead_scores_of(
        workspace=workspace, profile_ids=[d.profile_id for d in deals if d.profile_id]
    )
    for deal in deals:
        month = deal.expected_close.replace(day=1)
        key = (deal.owner_id, month, deal.currency)
        row = rows.setdefault(
            key,
            {
                "owner_id": deal.owner_id,
                "owner": _member_label(deal.owner),
                "month": month,
                "currency": deal.currency,
                "deals": 0,
                "amount": Decimal(0),
                "weighted": Decimal(0),
                "model_weighted": Decimal(0),
            },
        )
        row["deals"] += 1
        row["amount"] += deal.amount
        row["weighted"] += deal.amount * deal.stage.probability / 100
        # By the lead score where the customer has one, else by the stage.
        score = scores.get(deal.profile_id)
        chance = (
            Decimal(str(round(score.probability, 4)))
            if score
            else Decimal(deal.stage.probability) / 100
        )
        row["model_weighted"] += deal.amount * chance
    return sorted(rows.values(), key=lambda r: (r["month"], r["owner"], r["currency"]))


def won_by_month(*, workspace: Workspace, since: datetime | None = None) -> list[dict]:
    """Won deals' amounts per month of closing and currency (revenue for the KPIs)."""
    deals = Deal.objects.filter(workspace=workspace, status=StageKind.WON)
    if since is not None:
        deals = deals.filter(closed_at__gte=since)
    return list(
        deals.annotate(month=TruncMonth("closed_at"))
        .values("month", "currency")
        .annotate(deals=Count("id"), amount=Sum("amount"))
        .order_by("month", "currency")
    )


def _member_label(member: Membership | None) -> str:
    if member is None:
        return ""
    return member.user.name or member.user.email


# --- Tasks --------------------------------------------------------------------------


TASK_VIEWS = ("open", "today", "overdue", "upcoming", "done", "all")


def task_list(
    *,
    workspace: Workspace,
    view: str = "open",
    assignee_id: uuid.UUID | None = None,
    profile_id: uuid.UUID | None = None,
    account_id: uuid.UUID | None = None,
    deal_id: uuid.UUID | None = None,
    zone: zoneinfo.ZoneInfo | None = None,
    now: datetime | None = None,
) -> QuerySet[Task]:
    """Tasks in a view, read in `zone` (the reader's): overdue (due before now, or due
    on a day that has passed there), today (due later today there), upcoming (after
    today), open, done or all."""
    tasks = Task.objects.filter(workspace=workspace).select_related("assignee__user")
    for field, value in (
        ("assignee_id", assignee_id),
        ("profile_id", profile_id),
        ("account_id", account_id),
        ("deal_id", deal_id),
    ):
        if value is not None:
            tasks = tasks.filter(**{field: value})
    if view == "done":
        return tasks.filter(done_at__isnull=False).order_by("-done_at", "pk")
    if view == "all":
        return tasks.order_by("done_at", "due_at", "created_at", "pk")
    tasks = tasks.filter(done_at__isnull=True)
    if view == "open":
        return tasks.order_by("due_at", "created_at", "pk")
    start, end = day_bounds(zone=zone or zoneinfo.ZoneInfo("UTC"), now=now)
    now = now or timezone.now()
    # An all-day task is stored at the start of its day in UTC terms of its date: it is
    # overdue when its date is before the reader's today.
    today = start.astimezone(zone or zoneinfo.ZoneInfo("UTC")).date()
    day_start_utc = datetime.combine(today, time.min, tzinfo=zoneinfo.ZoneInfo("UTC"))
    overdue = Q(all_day=False, due_at__lt=now) | Q(all_day=True, due_at__lt=day_start_utc)
    if view == "overdue":
        return tasks.filter(overdue).order_by("due_at", "pk")
    if view == "today":
        return tasks.filter(
            Q(all_day=False, due_at__gte=now, due_at__lt=end)
            | Q(
                all_day=True,
                due_at__gte=day_start_utc,
                due_at__lt=day_start_utc + timedelta(days=1),
            )
        ).order_by("due_at", "pk")
    if view == "upcoming":
        return tasks.filter(
            Q(all_day=False, due_at__gte=end)
            | Q(all_day=True, due_at__gte=day_start_utc + timedelta(days=1))
        ).order_by("due_at", "pk")
    raise ValueError(view)


def day_bounds(
    *, zone: zoneinfo.ZoneInfo, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """Today's start and end where the reader is, as aware times."""
    local = (now or timezone.now()).astimezone(zone)
    start = datetime.combine(local.date(), time.min, tzinfo=zone)
    end = datetime.combine(local.date() + timedelta(days=1), time.min, tzinfo=zone)
    return start, end


def task_is_overdue(task: Task, *, zone: zoneinfo.ZoneInfo, now: datetime | None = None) -> bool:
    if task.done_at is not None or task.due_at is None:
        return False
    now = now or timezone.now()
    if task.all_day:
        return task.due_at.date() < now.astimezone(zone).date()
    return task.due_at < now


def task_get(*, workspace: Workspace, task_id: uuid.UUID) -> Task:
    return object_get(
        Task.objects.filter(workspace=workspace).select_related("assignee__user", "deal"),
        message=gettext("No task with id %(pk)s in this workspace"),
        pk=task_id,
    )


def task_counts(
    *, workspace: Workspace, assignee_id: uuid.UUID, zone: zoneinfo.ZoneInfo
) -> dict[str, int]:
    return {
        view: task_list(workspace=workspace, view=view, assignee_id=assignee_id, zone=zone).count()
        for view in ("overdue", "today", "upcoming")
    }


def all_day_due(day: date) -> datetime:
    """How an all-day task's date is stored: midnight UTC of that date."""
    return datetime.combine(day, time.min, tzinfo=zoneinfo.ZoneInfo("UTC"))


# --- Notes, notifications, owners -----------------------------------------------------


def note_list(
    *,
    workspace: Workspace,
    profile_id: uuid.UUID | None = None,
    account_id: uuid.UUID | None = None,
    deal_id: uuid.UUID | None = None,
) -> QuerySet[Note]:
    notes = Note.objects.filter(workspace=workspace).prefetch_related(
        Prefetch("mentions", queryset=Membership.objects.select_related("user"))
    )
    for field, value in (
        ("profile_id", profile_id),
        ("account_id", account_id),
        ("deal_id", deal_id),
    ):
        if value is not None:
            notes = notes.filter(**{field: value})
    return notes.order_by("-occurred_at", "pk")


def note_get(*, workspace: Workspace, note_id: uuid.UUID) -> Note:
    return object_get(
        note_list(workspace=workspace),
        message=gettext("No note with id %(pk)s in this workspace"),
        pk=note_id,
    )


def notification_list(
    *, workspace: Workspace, member: Membership, unread: bool = False
) -> QuerySet[Notification]:
    items = Notification.objects.filter(workspace=workspace, member=member)
    if unread:
        items = items.filter(read_at__isnull=True)
    return items.order_by("-created_at", "pk")


def owner_of(
    *, workspace: Workspace, profile_id: Any = None, account_id: Any = None
) -> Membership | None:
    query = Owner.objects.filter(workspace=workspace).select_related("member__user")
    owner = (
        query.filter(profile_id=profile_id) if profile_id else query.filter(account_id=account_id)
    ).first()
    return owner.member if owner else None


def owned_profile_ids(*, workspace: Workspace, member_id: Any) -> QuerySet:
    return Owner.objects.filter(
        workspace=workspace, member_id=member_id, profile__isnull=False
    ).values("profile_id")


def owned_account_ids(*, workspace: Workspace, member_id: Any) -> QuerySet:
    return Owner.objects.filter(
        workspace=workspace, member_id=member_id, account__isnull=False
    ).values("account_id")


# --- Lead scoring -----------------------------------------------------------------------------


def lead_model_list(*, workspace: Workspace) -> QuerySet[LeadModel]:
    return LeadModel.objects.filter(workspace=workspace).order_by("-version")


def lead_score_of(*, workspace: Workspace, profile_id: Any) -> LeadScore | None:
    return (
        LeadScore.objects.filter(workspace=workspace, profile_id=profile_id)
        .select_related("model")
        .first()
    )


def lead_scores_of(*, workspace: Workspace, profile_ids: list) -> dict:
    return {
        s.profile_id: s
        for s in LeadScore.objects.filter(workspace=workspace, profile_id__in=profile_ids)
    }
