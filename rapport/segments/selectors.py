"""Reads: segments with their size and trend, members, membership history, a preview
of a rule, a customer's segments and scores, the RFM grid and the lifecycle."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Count, F, Q, QuerySet, Sum, Window
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from rapport.core.analytic import analytic_session
from rapport.core.money import unconverted_message
from rapport.core.selectors import object_get
from rapport.profiles.models import Profile
from rapport.segments import rfm
from rapport.segments import rules as r
from rapport.segments.compiler import Context, rule_profiles
from rapport.segments.models import (
    LifecycleChange,
    LifecycleStage,
    LifecycleState,
    RfmScore,
    Segment,
    SegmentMembership,
)
from rapport.segments.money import rule_no_rate_today, rule_unconverted
from rapport.tenancy.models import Workspace

PREVIEW_SAMPLE = 10


def segment_list(*, workspace: Workspace, q: str = "") -> QuerySet[Segment]:
    segments = Segment.objects.filter(workspace=workspace).order_by("name")
    if q:
        segments = segments.filter(name__icontains=q)
    return segments


def segment_get(*, workspace: Workspace, segment_id: Any) -> Segment:
    return object_get(
        Segment.objects.filter(workspace=workspace),
        message=_("No segment with id %(pk)s in this workspace"),
        pk=segment_id,
    )


def segment_members(*, workspace: Workspace, segment: Segment) -> QuerySet[Profile]:
    """The current members, most recently seen first."""
    current = SegmentMembership.objects.filter(segment=segment, left_at__isnull=True)
    return Profile.objects.filter(
        workspace=workspace, pk__in=current.values("profile_id")
    ).order_by("-last_seen_at", "-id")


def segment_history(*, segment: Segment) -> QuerySet[SegmentMembership]:
    """Every stay in the segment, the latest entries first."""
    return SegmentMembership.objects.filter(segment=segment).order_by("-entered_at", "-id")


def segment_trend(
    *, segment: Segment, days: int = 30, now: datetime | None = None
) -> list[tuple[date, int]]:
    """The segment's size at the end of each of the last `days` days, from its history:
    today's size, less those who entered since, plus those who left since."""
    now = now or timezone.now()
    start = (now - timedelta(days=days - 1)).date()
    rows = SegmentMembership.objects.filter(segment=segment)
    entered = dict(
        rows.filter(entered_at__date__gte=start)
        .annotate(day=TruncDate("entered_at"))
        .values("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    left = dict(
        rows.filter(left_at__date__gte=start)
        .annotate(day=TruncDate("left_at"))
        .values("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    size = rows.filter(left_at__isnull=True).count()
    trend: list[tuple[date, int]] = []
    day = now.date()
    while day >= start:
        trend.append((day, size))
        size = size - entered.get(day, 0) + left.get(day, 0)
        day -= timedelta(days=1)
    return list(reversed(trend))


@dataclass(frozen=True)
class SegmentChange:
    segment: Segment
    entered: int
    left: int


def segment_changes(
    *, workspace: Workspace, days: int = 7, now: datetime | None = None, limit: int = 50
) -> list[SegmentChange]:
    """How many entered and left each segment in the last `days` days (the newest
    `limit` segments), counted on the membership indexes: two grouped queries, not a
    trend per segment."""
    since = (now or timezone.now()) - timedelta(days=days)
    segments = list(Segment.objects.filter(workspace=workspace).order_by("-created_at")[:limit])
    ids = [s.pk for s in segments]
    rows = SegmentMembership.objects.filter(segment_id__in=ids)

    def counts(**where) -> dict:
        return dict(
            rows.filter(**where)
            .values("segment_id")
            .annotate(n=Count("id"))
            .values_list("segment_id", "n")
        )

    entered = counts(entered_at__gte=since)
    left = counts(left_at__gte=since)
    return [SegmentChange(s, entered.get(s.pk, 0), left.get(s.pk, 0)) for s in segments]


@dataclass(frozen=True)
class Preview:
    count: int
    sample: list[Profile]
    seconds: float
    # Purchases a money condition left out for want of an exchange rate, by currency;
    # and currencies a rule's amount is in that have no rate today.
    unconverted: list = field(default_factory=list)
    no_rate_today: list = field(default_factory=list)

    @property
    def money_notes(self) -> list[str]:
        """What was left out, in the person's language."""
        return [unconverted_message(u) for u in self.unconverted] + [
            _("No exchange rate for %(currency)s today: the rule's amount in it matches no one.")
            % {"currency": c}
            for c in self.no_rate_today
        ]


def segment_preview(
    *, workspace: Workspace, rule: Any, can_see_pii: bool, now: datetime | None = None
) -> Preview:
    """How many customers a rule selects now, and a few of them. `can_see_pii`: whether
    the caller may ask about emails, phones and identifiers (`segment_rule_check`)."""
    from rapport.segments.services import segment_rule_check

    parsed = segment_rule_check(workspace=workspace, rule=rule, can_see_pii=can_see_pii)
    started = time.perf_counter()
    with transaction.atomic():
        analytic_session()
        ctx = Context(workspace_id=workspace.pk, now=now or timezone.now())
        profiles = rule_profiles(parsed, ctx)
        # One evaluation of the rule gives both: the count rides on each sampled row.
        sample = list(profiles.annotate(matched=Window(Count("pk"))).order_by()[:PREVIEW_SAMPLE])
        unconverted = rule_unconverted(ctx)
    count = sample[0].matched if sample else 0
    return Preview(
        count=count,
        sample=sample,
        seconds=time.perf_counter() - started,
        unconverted=unconverted,
        no_rate_today=rule_no_rate_today(ctx),
    )


@dataclass(frozen=True)
class CustomerScores:
    segments: list[dict]
    rfm: RfmScore | None
    lifecycle: LifecycleState | None
    stage_names: dict[str, str]


def profile_scores(*, workspace: Workspace, profile: Profile) -> CustomerScores:
    """The segments a customer is in (since when), their RFM and lifecycle stage."""
    stays = (
        SegmentMembership.objects.filter(workspace=workspace, profile=profile, left_at__isnull=True)
        .select_related("segment")
        .order_by("segment__name")
    )
    return CustomerScores(
        segments=[
            {
                "id": s.segment_id,
                "name": s.segment.name,
                "kind": s.segment.kind,
                "entered_at": s.entered_at,
            }
            for s in stays
        ],
        rfm=RfmScore.objects.filter(workspace=workspace, profile=profile).first(),
        lifecycle=LifecycleState.objects.filter(workspace=workspace, profile=profile).first(),
        stage_names=stage_names(workspace=workspace),
    )


def stage_names(*, workspace: Workspace) -> dict[str, str]:
    """Each stage's name in the person's language, by key."""
    from rapport.segments.lifecycle import stage_label

    rows = LifecycleStage.objects.filter(workspace=workspace).values_list("key", "name")
    return {key: stage_label(key, name) for key, name in rows}


@dataclass(frozen=True)
class RfmGrid:
    # cells[r][fm] for r and fm 1..5 (index 0 unused): (count, cell name)
    cells: list[list[tuple[int, str]]]
    by_cell: list[tuple[str, int]]
    buyers: int
    computed_at: datetime | None
    # Per cell, its buyers' summed monetary value in `currency` (None: no buyers).
    monetary: dict[str, Decimal] = field(default_factory=dict)
    currency: str = ""


def rfm_grid(*, workspace: Workspace) -> RfmGrid:
    scores = RfmScore.objects.filter(workspace=workspace)
    counts: dict[tuple[int, int], int] = {}
    for r_score, f, m, n in (
        scores.values("r", "f", "m").annotate(n=Count("pk")).values_list("r", "f", "m", "n")
    ):
        key = (r_score, rfm.fm_score(f, m))
        counts[key] = counts.get(key, 0) + n
    cells = [
        [
            (counts.get((row, col), 0), rfm.rfm_cell(row, col, col) if row and col else "")
            for col in range(6)
        ]
        for row in range(6)
    ]
    by_cell = list(
        scores.values("cell", "currency")
        .annotate(n=Count("pk"), total=Sum("monetary"))
        .values_list("cell", "currency", "n", "total")
    )
    by_cell_counts = {cell: n for cell, _, n, _ in by_cell}
    # One refresh writes one currency: the reporting one of its time.
    currency = next((c for _, c, _, _ in by_cell if c), "")
    latest = scores.order_by("-computed_at").values_list("computed_at", flat=True).first()
    return RfmGrid(
        cells=cells,
        by_cell=[(name, by_cell_counts.get(name, 0)) for name in rfm.CELLS],
        buyers=sum(by_cell_counts.values()),
        computed_at=latest,
        monetary={cell: total for cell, _, _, total in by_cell},
        currency=currency,
    )


@dataclass(frozen=True)
class StageCount:
    stage: LifecycleStage
    count: int
    entered_30d: int
    sub_stages: list[StageCount]


def lifecycle_overview(*, workspace: Workspace, now: datetime | None = None) -> list[StageCount]:
    """Every stage in order with how many customers are in it now, and how many entered
    it in the last 30 days."""
    from rapport.segments.services import lifecycle_stages_ensure

    now = now or timezone.now()
    stages = lifecycle_stages_ensure(workspace_id=workspace.pk)
    states = LifecycleState.objects.filter(workspace=workspace)
    by_stage = dict(states.values("stage").annotate(n=Count("pk")).values_list("stage", "n"))
    by_sub = dict(
        states.exclude(sub_stage="")
        .values("sub_stage")
        .annotate(n=Count("pk"))
        .values_list("sub_stage", "n")
    )
    recent = LifecycleChange.objects.filter(workspace=workspace, at__gte=now - timedelta(days=30))
    # A move between two sub-stages of one stage is no entry into the stage.
    entered = dict(
        recent.exclude(from_stage=F("to_stage"))
        .values("to_stage")
        .annotate(n=Count("id"))
        .values_list("to_stage", "n")
    )
    entered_sub = dict(
        recent.exclude(to_sub_stage="")
        .values("to_sub_stage")
        .annotate(n=Count("id"))
        .values_list("to_sub_stage", "n")
    )
    children: dict[Any, list[LifecycleStage]] = {}
    for stage in stages:
        if stage.parent_id:
            children.setdefault(stage.parent_id, []).append(stage)
    return [
        StageCount(
            stage=stage,
            count=by_stage.get(stage.key, 0),
            entered_30d=entered.get(stage.key, 0),
            sub_stages=[
                StageCount(child, by_sub.get(child.key, 0), entered_sub.get(child.key, 0), [])
                for child in children.get(stage.pk, [])
            ],
        )
        for stage in stages
        if stage.parent_id is None
    ]


def lifecycle_stage_get(*, workspace: Workspace, stage_id: Any) -> LifecycleStage:
    return object_get(
        LifecycleStage.objects.filter(workspace=workspace),
        message=_("No lifecycle stage with id %(pk)s in this workspace"),
        pk=stage_id,
    )


def lifecycle_changes(*, workspace: Workspace, profile: Profile | None = None) -> QuerySet:
    changes = LifecycleChange.objects.filter(workspace=workspace).order_by("-at", "-id")
    if profile is not None:
        changes = changes.filter(profile=profile)
    return changes


def rule_describe(rule: dict) -> str:
    """A rule in words, for lists and the audit log ("plan is pro and did Order
    Completed at least 3 times in the last 90 days"), in the active language."""
    try:
        parsed = r.rule_parse(rule)
    except Exception:
        return ""
    return r.rule_describe(parsed)


def customers_within(
    *,
    workspace: Workspace,
    segment: Segment | None = None,
    stage: str = "",
    rfm_cell: str = "",
) -> Q | None:
    """A condition on profiles for the customer list: in the segment, at the lifecycle
    stage (or sub-stage), in the RFM cell."""
    parts = []
    if segment is not None:
        current = SegmentMembership.objects.filter(
            workspace=workspace, segment=segment, left_at__isnull=True
        )
        parts.append(Q(pk__in=current.values("profile_id")))
    if stage:
        states = LifecycleState.objects.filter(workspace=workspace).filter(
            Q(stage=stage) | Q(sub_stage=stage)
        )
        parts.append(Q(pk__in=states.values("profile_id")))
    if rfm_cell:
        scored = RfmScore.objects.filter(workspace=workspace, cell=rfm_cell)
        parts.append(Q(pk__in=scored.values("profile_id")))
    if not parts:
        return None
    condition = parts[0]
    for part in parts[1:]:
        condition &= part
    return condition


# --- Columns of the customer list (rapport/web/lists.py) ------------------------------


def lifecycle_stages_of(*, workspace: Workspace, profile_ids: list) -> dict:
    """Each listed customer's stage (its sub-stage when it has one), by profile id."""
    return {
        pk: sub or stage
        for pk, stage, sub in LifecycleState.objects.filter(
            workspace=workspace, profile_id__in=profile_ids
        ).values_list("profile_id", "stage", "sub_stage")
    }


def lifecycle_stage_order():
    """An expression for the outer profile query: its stage key, to sort by."""
    from django.db.models import OuterRef, Subquery

    return Subquery(LifecycleState.objects.filter(profile_id=OuterRef("pk")).values("stage")[:1])
