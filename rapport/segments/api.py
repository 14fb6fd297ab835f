"""Segments, RFM and the lifecycle over the API. The rule language is described at
`GET /api/v1/segments/rule-schema` (JSON Schema) and in docs/segments.md."""

import uuid
from datetime import date, datetime
from typing import Any, Literal

from django.http import HttpRequest
from django.utils.translation import gettext
from ninja import Field, Query, Router, Schema, Status
from pydantic import ConfigDict

from rapport.core.errors import MethodNotAllowedError
from rapport.core.pagination import LimitOffsetPagination, paginate
from rapport.core.safe_csv import csv_file_response, csv_streaming_response
from rapport.profiles import selectors as profile_selectors
from rapport.segments import rules, selectors, services
from rapport.segments import tasks as segment_tasks
from rapport.tenancy.api import UnconvertedOut
from rapport.tenancy.pii import MaskedPage, masked_record


class SegmentIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: Literal["dynamic", "static"] = "dynamic"
    description: str = Field("", max_length=5000)
    rule: dict[str, Any] | None = Field(
        None, description="The rule of a dynamic segment (see /segments/rule-schema)"
    )


class SegmentPatch(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=5000)
    rule: dict[str, Any] | None = None


class SegmentOut(Schema):
    id: uuid.UUID
    name: str
    description: str
    kind: str
    rule: dict
    rule_text: str
    depends_on: list[str]
    timed: bool = Field(description="Re-checked on a schedule as well as on events")
    size: int
    refreshed_at: datetime | None
    refresh_seconds: float | None
    created_by: str
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_rule_text(obj) -> str:
        return selectors.rule_describe(obj.rule) if obj.rule else ""


class RuleIn(Schema):
    model_config = ConfigDict(extra="forbid")

    rule: dict[str, Any]


class ProfileBrief(Schema):
    id: uuid.UUID
    traits: dict
    first_seen_at: datetime | None
    last_seen_at: datetime | None


class PreviewOut(Schema):
    count: int
    sample: list[ProfileBrief]
    seconds: float
    # Money conditions: purchases left out for want of a rate (never added raw).
    unconverted: list[UnconvertedOut] = []
    no_rate_today: list[str] = Field(
        [], description="Currencies of a rule amount with no rate today"
    )
    notes: list[str] = Field([], description="The above in words, in the caller's language")


class RefreshOut(Schema):
    task_id: str


class MembersIn(Schema):
    model_config = ConfigDict(extra="forbid")

    values: list[str] = Field(
        min_length=1,
        max_length=100_000,
        description="Profile ids, user ids, emails or phones of customers to add",
    )


class MembersAddedOut(Schema):
    added: int
    already: int
    unknown: list[str]
    unknown_count: int
    size: int


class SnapshotIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)


class StayOut(Schema):
    profile_id: uuid.UUID
    entered_at: datetime
    left_at: datetime | None


class TrendPoint(Schema):
    day: date
    size: int


class Membership(Schema):
    id: uuid.UUID
    name: str
    kind: str
    entered_at: datetime


class RfmOut(Schema):
    r: int
    f: int
    m: int
    cell: str
    recency_days: int
    frequency: int
    monetary: float
    currency: str = Field(description="ISO 4217: the currency of `monetary`")
    last_purchase_at: datetime
    computed_at: datetime


class LifecycleOut(Schema):
    stage: str
    stage_name: str
    sub_stage: str
    since: datetime


class ProfileScoresOut(Schema):
    segments: list[Membership]
    rfm: RfmOut | None
    lifecycle: LifecycleOut | None


router = Router(tags=["segments"])


@router.get("/rule-schema", summary="The segment rule language as JSON Schema")
def segment_rule_schema(request: HttpRequest):
    request.auth.require("segments.read")
    return rules.rule_schema()


@router.get("", response=list[SegmentOut], summary="Segments with their size")
@paginate(LimitOffsetPagination)
def segment_list(request: HttpRequest, q: str = Query("", max_length=200)):
    request.auth.require("segments.read")
    return selectors.segment_list(workspace=request.auth.workspace, q=q)


@router.post("", response={201: SegmentOut}, summary="Create a segment")
def segment_create(request: HttpRequest, payload: SegmentIn):
    request.auth.require("segments.manage")
    segment = services.segment_create(
        workspace=request.auth.workspace,
        name=payload.name,
        kind=payload.kind,
        rule=payload.rule,
        description=payload.description,
        actor=request.auth.actor,
        can_see_pii=request.auth.can_see_pii,
    )
    return Status(201, segment)


@router.post("/preview", response=PreviewOut, summary="How many customers a rule selects")
def segment_preview(request: HttpRequest, payload: RuleIn):
    request.auth.require("segments.read")
    preview = selectors.segment_preview(
        workspace=request.auth.workspace, rule=payload.rule, can_see_pii=request.auth.can_see_pii
    )
    return {
        "count": preview.count,
        "sample": [masked_record(request.auth, p, "profile") for p in preview.sample],
        "seconds": round(preview.seconds, 4),
        "unconverted": [u.to_json() for u in preview.unconverted],
        "no_rate_today": preview.no_rate_today,
        "notes": preview.money_notes,
    }


@router.get(
    "/profile/{profile_id}",
    response=ProfileScoresOut,
    summary="A customer's segments, RFM and lifecycle stage",
)
def profile_scores(request: HttpRequest, profile_id: uuid.UUID):
    request.auth.require("segments.read")
    workspace = request.auth.workspace
    profile = profile_selectors.profile_get(workspace=workspace, profile_id=profile_id)
    scores = selectors.profile_scores(workspace=workspace, profile=profile)
    lifecycle = None
    if scores.lifecycle is not None:
        lifecycle = {
            "stage": scores.lifecycle.stage,
            "stage_name": scores.stage_names.get(scores.lifecycle.stage, scores.lifecycle.stage),
            "sub_stage": scores.lifecycle.sub_stage,
            "since": scores.lifecycle.since,
        }
    return {"segments": scores.segments, "rfm": scores.rfm, "lifecycle": lifecycle}


@router.get("/{segment_id}", response=SegmentOut)
def segment_get(request: HttpRequest, segment_id: uuid.UUID):
    request.auth.require("segments.read")
    return selectors.segment_get(workspace=request.auth.workspace, segment_id=segment_id)


@router.patch("/{segment_id}", response=SegmentOut, summary="Rename, describe or change the rule")
def segment_update(request: HttpRequest, segment_id: uuid.UUID, payload: SegmentPatch):
    request.auth.require("segments.manage")
    segment = selectors.segment_get(workspace=request.auth.workspace, segment_id=segment_id)
    return services.segment_update(
        segment=segment,
        actor=request.auth.actor,
        name=payload.name,
        description=payload.description,
        rule=payload.rule,
        can_see_pii=request.auth.can_see_pii,
    )


@router.delete("/{segment_id}", response={204: None})
def segment_delete(request: HttpRequest, segment_id: uuid.UUID):
    request.auth.require("segments.manage")
    segment = selectors.segment_get(workspace=request.auth.workspace, segment_id=segment_id)
    services.segment_delete(segment=segment, actor=request.auth.actor)
    return Status(204, None)


@router.post(
    "/{segment_id}/refresh",
    response={202: RefreshOut},
    summary="Re-check every customer now (a worker runs it)",
)
def segment_refresh(request: HttpRequest, segment_id: uuid.UUID):
    request.auth.require("segments.manage")
    segment = selectors.segment_get(workspace=request.auth.workspace, segment_id=segment_id)
    result = segment_tasks.segment_refresh.enqueue(segment_id=str(segment.pk))
    return Status(202, {"task_id": str(result.id)})


@router.get("/{segment_id}/members", response=list[ProfileBrief], summary="Current members")
@paginate(LimitOffsetPagination)
def segment_members(request: HttpRequest, segment_id: uuid.UUID):
    request.auth.require("segments.read")
    workspace = request.auth.workspace
    segment = selectors.segment_get(workspace=workspace, segment_id=segment_id)
    return MaskedPage(
        selectors.segment_members(workspace=workspace, segment=segment),
        request.auth,
        kind="profile",
    )


@router.post(
    "/{segment_id}/members",
    response=MembersAddedOut,
    summary="Add customers to a static segment by id, user id, email or phone",
)
def segment_members_add(request: HttpRequest, segment_id: uuid.UUID, payload: MembersIn):
    request.auth.require("segments.manage")
    segment = selectors.segment_get(workspace=request.auth.workspace, segment_id=segment_id)
    return services.segment_members_add(
        segment=segment, values=payload.values, actor=request.auth.actor
    )


@router.get(
    "/{segment_id}/history",
    response=list[StayOut],
    summary="When each customer entered and left, latest first",
)
@paginate(LimitOffsetPagination)
def segment_history(request: HttpRequest, segment_id: uuid.UUID):
    request.auth.require("segments.read")
    segment = selectors.segment_get(workspace=request.auth.workspace, segment_id=segment_id)
    return selectors.segment_history(segment=segment)


@router.get("/{segment_id}/trend", response=list[TrendPoint], summary="Size per day")
def segment_trend(request: HttpRequest, segment_id: uuid.UUID, days: int = Query(30, ge=2, le=366)):
    request.auth.require("segments.read")
    segment = selectors.segment_get(workspace=request.auth.workspace, segment_id=segment_id)
    return [{"day": d, "size": n} for d, n in selectors.segment_trend(segment=segment, days=days)]


@router.post(
    "/{segment_id}/snapshot",
    response={201: SegmentOut},
    summary="A static segment of the current members",
)
def segment_snapshot(request: HttpRequest, segment_id: uuid.UUID, payload: SnapshotIn):
    request.auth.require("segments.manage")
    segment = selectors.segment_get(workspace=request.auth.workspace, segment_id=segment_id)
    snapshot = services.segment_snapshot(
        segment=segment, name=payload.name, actor=request.auth.actor
    )
    return Status(201, snapshot)


@router.post(
    "/{segment_id}/export",
    summary="Members as CSV: readable (csv, needs pii.export) or hashed (google, meta)",
    description=(
        "A POST (an export discloses personal data, so it is never a GET), audited. "
        "The format is a query parameter; the answer is the CSV, streamed."
    ),
)
def segment_export(
    request: HttpRequest,
    segment_id: uuid.UUID,
    format: Literal["csv", "google", "meta"] = "google",
):
    request.auth.require("segments.export")
    segment = selectors.segment_get(workspace=request.auth.workspace, segment_id=segment_id)
    export = services.segment_export(
        segment=segment,
        format=format,
        actor=request.auth.actor,
        can_see_pii=request.auth.has_perm("pii.export"),
    )
    response = csv_streaming_response(export.lines, f"segment-{segment.pk}-{format}.csv")
    for name, value in export.headers.items():
        response[name] = value
    return response


@router.get("/{segment_id}/export", include_in_schema=False)
def segment_export_get(request: HttpRequest, segment_id: uuid.UUID):
    """The old GET: answers 405 and discloses nothing."""
    raise MethodNotAllowedError(
        gettext(
            "An export is a POST: send POST /api/v1/segments/{id}/export?format=csv|google|meta"
        )
    )


# --- Scheduled audience exports ---------------------------------------------------------


class AudienceScheduleIn(Schema):
    model_config = ConfigDict(extra="forbid")

    format: Literal["google", "meta"] = Field(
        description="google: Customer Match (Email, Phone); meta: EMAIL, PHONE; SHA-256"
    )
    every: Literal["daily", "weekly"] = "daily"
    hour: int = Field(
        3, ge=0, le=23, strict=True, description="The hour of the day it runs at (UTC)"
    )


class AudienceCountsOut(Schema):
    members: int | None = None
    exported: int | None = None
    no_consent: int | None = None
    no_identifier: int | None = None


class AudienceScheduleOut(Schema):
    id: uuid.UUID
    segment_id: uuid.UUID
    format: str
    every: str
    hour: int
    next_run_at: datetime
    last_run_at: datetime | None
    last_counts: AudienceCountsOut
    created_by: str
    created_at: datetime


class AudienceRunOut(Schema):
    id: uuid.UUID
    status: str
    started_at: datetime
    finished_at: datetime | None
    counts: AudienceCountsOut
    size_bytes: int
    error: str
    # False once the run's file is gone (failed, or older than the runs kept).
    downloadable: bool


def _audience_run_out(run) -> dict:
    return {
        "id": run.pk,
        "status": run.status,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "counts": run.counts or {},
        "size_bytes": run.size_bytes,
        "error": run.error,
        "downloadable": bool(run.file),
    }


def _audience_schedule(request: HttpRequest, segment_id: uuid.UUID, schedule_id: uuid.UUID):
    from rapport.segments import audiences

    request.auth.require("segments.export")
    segment = selectors.segment_get(workspace=request.auth.workspace, segment_id=segment_id)
    return audiences.audience_schedule_get(segment=segment, schedule_id=schedule_id)


@router.post(
    "/{segment_id}/audience-schedules",
    response={201: AudienceScheduleOut},
    summary="Export the hashed audience to a file daily or weekly",
    description=(
        "Each run exports the members as they are then, with only the identifiers their "
        "consent allows then, to a file kept for download (the last runs only)."
    ),
)
def audience_schedule_create(
    request: HttpRequest, segment_id: uuid.UUID, payload: AudienceScheduleIn
):
    from rapport.segments import audiences

    request.auth.require("segments.export")
    segment = selectors.segment_get(workspace=request.auth.workspace, segment_id=segment_id)
    schedule = audiences.audience_schedule_create(
        segment=segment,
        format=payload.format,
        every=payload.every,
        hour=payload.hour,
        actor=request.auth.actor,
    )
    return Status(201, schedule)


@router.get(
    "/{segment_id}/audience-schedules",
    response=list[AudienceScheduleOut],
    summary="The segment's scheduled audience exports",
)
def audience_schedule_list(request: HttpRequest, segment_id: uuid.UUID):
    from rapport.segments import audiences

    request.auth.require("segments.export")
    segment = selectors.segment_get(workspace=request.auth.workspace, segment_id=segment_id)
    return list(audiences.audience_schedule_list(segment=segment))


@router.delete(
    "/{segment_id}/audience-schedules/{schedule_id}",
    response={204: None},
    summary="Stop a scheduled audience export (its files are deleted)",
)
def audience_schedule_delete(request: HttpRequest, segment_id: uuid.UUID, schedule_id: uuid.UUID):
    from rapport.segments import audiences

    schedule = _audience_schedule(request, segment_id, schedule_id)
    audiences.audience_schedule_delete(schedule=schedule, actor=request.auth.actor)
    return Status(204, None)


@router.get(
    "/{segment_id}/audience-schedules/{schedule_id}/runs",
    response=list[AudienceRunOut],
    summary="A scheduled audience export's runs, newest first",
)
def audience_run_list(request: HttpRequest, segment_id: uuid.UUID, schedule_id: uuid.UUID):
    from rapport.segments import audiences

    schedule = _audience_schedule(request, segment_id, schedule_id)
    return [_audience_run_out(run) for run in audiences.audience_runs(schedule=schedule)[:100]]


@router.get(
    "/{segment_id}/audience-schedules/{schedule_id}/runs/{run_id}/download",
    summary="The file of one run (CSV of SHA-256 hashes)",
)
def audience_run_download(
    request: HttpRequest, segment_id: uuid.UUID, schedule_id: uuid.UUID, run_id: uuid.UUID
):
    from rapport.core.errors import NotFoundError
    from rapport.segments import audiences

    schedule = _audience_schedule(request, segment_id, schedule_id)
    run = audiences.audience_run_get(schedule=schedule, run_id=run_id)
    path = audiences.audience_run_path(run)
    if path is None:
        raise NotFoundError(
            gettext("this run has no file (it failed, or is older than the runs kept)")
        )
    return csv_file_response(
        path, f"segment-{segment_id}-{schedule.format}-{run.started_at:%Y%m%d-%H%M}.csv"
    )


# --- RFM ------------------------------------------------------------------------------


class RfmCellOut(Schema):
    cell: str
    count: int
    monetary: str | None = Field(
        None, description="The cell's buyers' summed monetary value in `currency` (decimal text)"
    )


class RfmGridOut(Schema):
    buyers: int
    computed_at: datetime | None
    currency: str = Field(description="ISO 4217: the reporting currency of the last refresh")
    unconverted: list[UnconvertedOut] = Field(
        description="Purchases left out of monetary values: no exchange rate on their day"
    )
    cells: list[RfmCellOut]
    grid: list[list[int]] = Field(description="grid[r-1][fm-1]: customers with R and FM")


rfm_router = Router(tags=["segments"])


def _text(amount) -> str | None:
    return None if amount is None else str(amount)


@rfm_router.get("", response=RfmGridOut, summary="Customers per RFM cell and on the R x FM grid")
def rfm_get(request: HttpRequest):
    request.auth.require("segments.read")
    grid = selectors.rfm_grid(workspace=request.auth.workspace)
    return {
        "buyers": grid.buyers,
        "computed_at": grid.computed_at,
        "currency": grid.currency,
        "unconverted": services.rfm_unconverted(workspace=request.auth.workspace),
        "cells": [
            {"cell": c, "count": n, "monetary": _text(grid.monetary.get(c))}
            for c, n in grid.by_cell
        ],
        "grid": [[grid.cells[r][f][0] for f in range(1, 6)] for r in range(1, 6)],
    }


@rfm_router.post(
    "/refresh",
    response={202: RefreshOut},
    summary="Recompute RFM, then lifecycle stages and segments (a worker runs it)",
)
def rfm_refresh(request: HttpRequest):
    request.auth.require("segments.manage")
    result = segment_tasks.rfm_refresh.enqueue(workspace_id=str(request.auth.workspace.pk))
    return Status(202, {"task_id": str(result.id)})


# --- Lifecycle ------------------------------------------------------------------------


class StageOut(Schema):
    id: uuid.UUID
    key: str
    name: str
    description: str
    rule: dict
    rule_text: str
    count: int
    entered_last_30_days: int
    sub_stages: list["StageOut"]


class StagePatch(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = Field(None, max_length=5000)
    rule: dict[str, Any] | None = None


class SubStageIn(Schema):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=60)
    name: str = Field(min_length=1, max_length=100)
    rule: dict[str, Any]


class StageChangeOut(Schema):
    profile_id: uuid.UUID
    from_stage: str
    from_sub_stage: str
    to_stage: str
    to_sub_stage: str
    at: datetime


def _stage_out(item) -> dict:
    stage = item.stage
    return {
        "id": stage.pk,
        "key": stage.key,
        "name": stage.name,
        "description": stage.description,
        "rule": stage.rule,
        "rule_text": selectors.rule_describe(stage.rule),
        "count": item.count,
        "entered_last_30_days": item.entered_30d,
        "sub_stages": [_stage_out(child) for child in item.sub_stages],
    }


lifecycle_router = Router(tags=["segments"])


@lifecycle_router.get(
    "", response=list[StageOut], summary="The stages in the order they are tried, with counts"
)
def lifecycle_get(request: HttpRequest):
    request.auth.require("segments.read")
    return [_stage_out(i) for i in selectors.lifecycle_overview(workspace=request.auth.workspace)]


@lifecycle_router.get(
    "/changes", response=list[StageChangeOut], summary="Moves between stages, latest first"
)
@paginate(LimitOffsetPagination)
def lifecycle_changes(request: HttpRequest):
    request.auth.require("segments.read")
    return selectors.lifecycle_changes(workspace=request.auth.workspace)


@lifecycle_router.post(
    "/refresh", response={202: RefreshOut}, summary="Place every customer again (a worker runs it)"
)
def lifecycle_refresh(request: HttpRequest):
    request.auth.require("segments.manage")
    result = segment_tasks.lifecycle_refresh.enqueue(workspace_id=str(request.auth.workspace.pk))
    return Status(202, {"task_id": str(result.id)})


def _overview_of(workspace, stage_id) -> dict:
    for item in selectors.lifecycle_overview(workspace=workspace):
        if item.stage.pk == stage_id:
            return _stage_out(item)
        for child in item.sub_stages:
            if child.stage.pk == stage_id:
                return _stage_out(child)
    raise AssertionError("stage vanished")


@lifecycle_router.patch(
    "/stages/{stage_id}", response=StageOut, summary="Rename a stage or change its rule"
)
def lifecycle_stage_update(request: HttpRequest, stage_id: uuid.UUID, payload: StagePatch):
    request.auth.require("lifecycle.manage")
    workspace = request.auth.workspace
    stage = selectors.lifecycle_stage_get(workspace=workspace, stage_id=stage_id)
    services.lifecycle_stage_update(
        stage=stage,
        actor=request.auth.actor,
        name=payload.name,
        description=payload.description,
        rule=payload.rule,
        can_see_pii=request.auth.can_see_pii,
    )
    return _overview_of(workspace, stage.pk)


@lifecycle_router.post(
    "/stages/{stage_id}/sub-stages",
    response={201: StageOut},
    summary="Add a sub-stage (tried before its stage)",
)
def lifecycle_sub_stage_create(request: HttpRequest, stage_id: uuid.UUID, payload: SubStageIn):
    request.auth.require("lifecycle.manage")
    workspace = request.auth.workspace
    parent = selectors.lifecycle_stage_get(workspace=workspace, stage_id=stage_id)
    stage = services.lifecycle_sub_stage_create(
        parent=parent,
        key=payload.key,
        name=payload.name,
        rule=payload.rule,
        actor=request.auth.actor,
        can_see_pii=request.auth.can_see_pii,
    )
    return Status(201, _overview_of(workspace, stage.pk))


@lifecycle_router.delete("/sub-stages/{sub_stage_id}", response={204: None})
def lifecycle_stage_delete(request: HttpRequest, sub_stage_id: uuid.UUID):
    request.auth.require("lifecycle.manage")
    stage = selectors.lifecycle_stage_get(workspace=request.auth.workspace, stage_id=sub_stage_id)
    services.lifecycle_stage_delete(stage=stage, actor=request.auth.actor)
    return Status(204, None)


ROUTERS = [("v1/segments", router), ("v1/rfm", rfm_router), ("v1/lifecycle", lifecycle_router)]
