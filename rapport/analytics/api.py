"""Analytics over the API: KPIs of a period (and their history from the daily
snapshots), the funnel, cohorts, the loyalty curve and the RFM grid with revenue, each
also as CSV (`format=csv`); the customers behind a number, and saving them as a
segment; what the KPIs count."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from django.http import HttpRequest
from django.utils.translation import gettext
from ninja import Field, Query, Router, Schema, Status
from pydantic import ConfigDict, field_validator, model_validator

from rapport.analytics import export, kpis, selectors, services
from rapport.analytics import tasks as analytics_tasks
from rapport.analytics.funnel import FunnelQuery, errors_at_field
from rapport.core.errors import InvalidInputError
from rapport.core.types import IsoDate
from rapport.profiles.models import Profile
from rapport.tenancy.pii import shown_json

router = Router(tags=["analytics"])
Format = Literal["json", "csv"]
CUSTOMERS_SHOWN = 100


class AnalyticsSettingsOut(Schema):
    timezone: str
    refund_event: str
    nps_event: str
    nps_property: str
    message_events: list[str]
    engagement_events: list[str]


class AnalyticsSettingsPatch(Schema):
    model_config = ConfigDict(extra="forbid")

    timezone: str | None = Field(None, min_length=1, max_length=64)
    refund_event: str | None = Field(None, min_length=1, max_length=255)
    nps_event: str | None = Field(None, min_length=1, max_length=255)
    nps_property: str | None = Field(None, min_length=1, max_length=255)
    message_events: list[str] | None = Field(None, max_length=50)
    engagement_events: list[str] | None = Field(None, max_length=50)


class SnapshotTakeIn(Schema):
    model_config = ConfigDict(extra="forbid")

    day: IsoDate | None = Field(None, description="The last day (default: yesterday)")
    backfill_days: int = Field(0, ge=0, le=730, strict=True)


class SnapshotsQueuedOut(Schema):
    task_id: str


class KpiDrill(Schema):
    model_config = ConfigDict(extra="forbid")

    figure: Literal[kpis.DRILLABLE] = "customers"  # type: ignore[valid-type]
    start: IsoDate | None = None
    end: IsoDate | None = None
    segment: uuid.UUID | None = None


class FunnelDrill(Schema):
    model_config = ConfigDict(extra="forbid")

    query: FunnelQuery
    step: int = Field(1, ge=1, le=8, strict=True)
    outcome: Literal["reached", "dropped"] = "reached"
    group: str | None = Field(None, max_length=255)

    _whole = field_validator("query", mode="wrap")(errors_at_field)


class CohortDrill(Schema):
    model_config = ConfigDict(extra="forbid")

    by: Literal["signup", "first_purchase"] = "signup"
    month: str = Field(pattern=r"^\d{4}-\d{2}$")
    offset: int = Field(0, ge=0, le=23, strict=True)
    segment: uuid.UUID | None = None


class DrillIn(Schema):
    """Exactly one of `kpi`, `funnel`, `cohort`: the number whose customers you want."""

    model_config = ConfigDict(extra="forbid")

    kpi: KpiDrill | None = None
    funnel: FunnelDrill | None = None
    cohort: CohortDrill | None = None

    _whole = field_validator("kpi", "funnel", "cohort", mode="wrap")(errors_at_field)

    @model_validator(mode="after")
    def _one(self) -> DrillIn:
        if sum(part is not None for part in (self.kpi, self.funnel, self.cohort)) != 1:
            raise ValueError(gettext("give exactly one of kpi, funnel or cohort"))
        return self


class DrillSegmentIn(DrillIn):
    name: str = Field(min_length=1, max_length=200)


class CustomerOut(Schema):
    id: uuid.UUID
    traits: dict
    first_seen_at: datetime | None
    last_seen_at: datetime | None


class CustomersOut(Schema):
    count: int
    customers: list[CustomerOut]


class DrillSegmentOut(Schema):
    id: uuid.UUID
    name: str
    kind: str
    size: int


def _read(request: HttpRequest):
    request.auth.require("analytics.read")
    return request.auth.workspace


@router.get("/settings", response=AnalyticsSettingsOut, summary="What the KPIs count")
def settings_get(request: HttpRequest):
    return services.analytics_settings_get(workspace_id=_read(request).pk)


@router.patch("/settings", response=AnalyticsSettingsOut, summary="Change what the KPIs count")
def settings_update(request: HttpRequest, payload: AnalyticsSettingsPatch):
    request.auth.require("analytics.manage")
    return services.analytics_settings_update(
        workspace=request.auth.workspace,
        actor=request.auth.actor,
        **payload.model_dump(exclude_none=True),
    )


@router.get("/kpis", summary="Customer KPIs of a period against the previous one")
def kpis_get(
    request: HttpRequest,
    start: IsoDate | None = None,
    end: IsoDate | None = None,
    segment: uuid.UUID | None = None,
    format: Format = "json",
):
    report = selectors.kpis_report(
        workspace=_read(request), first=start, last=end, segment_id=segment
    )
    if format == "csv":
        return export.csv_response(export.kpis_rows(report), "kpis.csv")
    return report


@router.get("/kpis/history", summary="The daily KPI snapshots of the last days")
def kpi_history_get(
    request: HttpRequest,
    window: int = Query(30, description="7, 30 or 90 days"),
    segment: uuid.UUID | None = None,
    days: int = Query(90, ge=1, le=730),
    format: Format = "json",
):
    history = selectors.kpi_history(
        workspace=_read(request), window=window, segment_id=segment, days=days
    )
    if format == "csv":
        return export.csv_response(export.history_rows(history), f"kpis-{window}d-history.csv")
    return {"window": window, "snapshots": history}


@router.get("/dashboard", summary="The home dashboard: the latest snapshot against the last")
def dashboard_get(
    request: HttpRequest,
    window: int = Query(30, description="7, 30 or 90 days"),
    segment: uuid.UUID | None = None,
):
    return selectors.home_dashboard(workspace=_read(request), window=window, segment_id=segment)


@router.post(
    "/snapshots/take",
    response={202: SnapshotsQueuedOut},
    summary="Take (or retake) KPI snapshots, back-filling past days (a worker)",
)
def snapshots_take(request: HttpRequest, payload: SnapshotTakeIn):
    request.auth.require("analytics.manage")
    if payload.day is not None and payload.day > date.today():
        raise InvalidInputError(gettext("a snapshot is of a day that has begun"), field="day")
    result = analytics_tasks.kpi_snapshots_backfill.enqueue(
        workspace_id=str(request.auth.workspace.pk),
        day=payload.day.isoformat() if payload.day else None,
        backfill_days=payload.backfill_days,
    )
    return Status(202, {"task_id": str(result.id)})


@router.post("/funnel", summary="An end-to-end funnel, optionally broken down")
def funnel_post(request: HttpRequest, payload: FunnelQuery, format: Format = "json"):
    report = selectors.funnel_report(workspace=_read(request), query=payload)
    if format == "csv":
        return export.csv_response(export.funnel_rows(report), "funnel.csv")
    return report


@router.get("/cohorts", summary="Retention and revenue per customer by cohort month")
def cohorts_get(
    request: HttpRequest,
    by: Literal["signup", "first_purchase"] = "signup",
    last_month: str | None = Query(None, pattern=r"^\d{4}-\d{2}$"),
    months: int = Query(12, ge=1, le=24),
    segment: uuid.UUID | None = None,
    format: Format = "json",
):
    report = selectors.cohorts_report(
        workspace=_read(request), by=by, last_month=last_month, months=months, segment_id=segment
    )
    if format == "csv":
        return export.csv_response(export.cohorts_rows(report), f"cohorts-{by}.csv")
    return report


@router.get("/lifecycle", summary="The loyalty curve: customers per stage at each month end")
def lifecycle_get(
    request: HttpRequest,
    last_month: str | None = Query(None, pattern=r"^\d{4}-\d{2}$"),
    months: int = Query(12, ge=1, le=24),
    cohort: str | None = Query(None, pattern=r"^\d{4}-\d{2}$"),
    segment: uuid.UUID | None = None,
    format: Format = "json",
):
    report = selectors.loyalty_report(
        workspace=_read(request),
        last_month=last_month,
        months=months,
        cohort=cohort,
        segment_id=segment,
    )
    if format == "csv":
        return export.csv_response(export.loyalty_rows(report), "lifecycle.csv")
    return report


@router.get("/rfm", summary="The RFM grid with customers and revenue per cell")
def rfm_get(request: HttpRequest, format: Format = "json"):
    report = selectors.rfm_report(workspace=_read(request))
    if format == "csv":
        return export.csv_response(export.rfm_rows(report), "rfm.csv")
    return report


def drill_ids(workspace, payload: DrillIn) -> list[str]:
    if payload.kpi is not None:
        return selectors.kpi_customers(
            workspace=workspace,
            figure=payload.kpi.figure,
            first=payload.kpi.start,
            last=payload.kpi.end,
            segment_id=payload.kpi.segment,
        )
    if payload.funnel is not None:
        return selectors.funnel_customers(
            workspace=workspace,
            query=payload.funnel.query,
            step=payload.funnel.step,
            outcome=payload.funnel.outcome,
            group=payload.funnel.group,
        )
    return selectors.cohort_customers(
        workspace=workspace,
        by=payload.cohort.by,
        month=payload.cohort.month,
        offset=payload.cohort.offset,
        segment_id=payload.cohort.segment,
    )


@router.post("/customers", response=CustomersOut, summary="The customers behind a number")
def customers_post(request: HttpRequest, payload: DrillIn):
    workspace = _read(request)
    ids = drill_ids(workspace, payload)
    shown = list(
        Profile.objects.filter(workspace=workspace, pk__in=ids[:CUSTOMERS_SHOWN]).order_by(
            "-last_seen_at", "-id"
        )
    )
    customers: list[dict[str, Any]] = [
        {
            "id": p.pk,
            "traits": shown_json(request.auth, p.traits),
            "first_seen_at": p.first_seen_at,
            "last_seen_at": p.last_seen_at,
        }
        for p in shown
    ]
    return {"count": len(ids), "customers": customers}


@router.post(
    "/segments",
    response={201: DrillSegmentOut},
    summary="Save the customers behind a number as a static segment",
)
def drill_segment_create(request: HttpRequest, payload: DrillSegmentIn):
    workspace = _read(request)
    request.auth.require("segments.manage")
    ids = drill_ids(workspace, payload)
    segment = services.drill_down_save(
        workspace=workspace,
        name=payload.name,
        profile_ids=ids,
        description=f"From analytics: {payload.model_dump_json(exclude={'name'})[:1000]}",
        actor=request.auth.actor,
    )
    return Status(201, segment)


ROUTERS = [("v1/analytics", router)]
