"""Reads: the KPI report of a period, the home dashboard from snapshots, the funnel,
cohorts, the loyalty curve and the RFM grid with revenue, and the customers behind any
of their numbers. Computed results are cached until new data reaches the workspace
(`services.data_version`), or for an hour at most."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Sum
from django.utils import timezone
from django.utils.translation import gettext

from rapport.analytics import cohorts, funnel, kpis
from rapport.analytics.models import KpiSnapshot
from rapport.analytics.periods import Period, month_add, period_make, zone_get
from rapport.analytics.services import analytics_settings_get, data_version, definitions_get
from rapport.core.errors import InvalidInputError
from rapport.core.money import money_stored, to_decimal
from rapport.segments import rfm
from rapport.segments import selectors as segment_selectors
from rapport.segments import services as segment_services
from rapport.segments.models import RfmScore
from rapport.tenancy.commerce import money_rates_get, money_version
from rapport.tenancy.models import Workspace

CACHE_SECONDS = 3600
MAX_COHORT_MONTHS = 24


def _cached(workspace: Workspace, kind: str, params: dict, compute: Callable[[], dict]) -> dict:
    # New data, or a new reporting currency or exchange rate, ends a cached result.
    version = [data_version(workspace.pk), money_version(workspace_id=workspace.pk)]
    raw = json.dumps([str(workspace.pk), kind, params, version], sort_keys=True, default=str)
    key = "analytics:" + hashlib.sha256(raw.encode()).hexdigest()
    hit = cache.get(key)
    if hit is not None:
        return {**hit, "cached": True}
    result = compute()
    result.pop("_members", None)
    cache.set(key, result, timeout=CACHE_SECONDS)
    return {**result, "cached": False}


def zone_of(workspace: Workspace):
    return zone_get(analytics_settings_get(workspace_id=workspace.pk).timezone)


def today(workspace: Workspace) -> date:
    return timezone.now().astimezone(zone_of(workspace)).date()


def scope_get(workspace: Workspace, segment_id: Any) -> kpis.Scope:
    """Every customer, or a segment of this workspace (404 for another's)."""
    if segment_id in (None, ""):
        return kpis.Scope(workspace_id=workspace.pk)
    segment = segment_selectors.segment_get(workspace=workspace, segment_id=segment_id)
    return kpis.Scope(workspace_id=workspace.pk, segment_id=segment.pk)


def period_get(workspace: Workspace, first: date | None, last: date | None) -> Period:
    """A period of whole local days; by default the last 30 complete days."""
    zone = zone_of(workspace)
    yesterday = timezone.now().astimezone(zone).date() - timedelta(days=1)
    last = last or yesterday
    first = first or (last - timedelta(days=29))
    return period_make(first, last, zone)


def kpis_report(
    *, workspace: Workspace, first: date | None, last: date | None, segment_id: Any = None
) -> dict[str, Any]:
    """The KPIs of a period against the previous period of the same length."""
    period = period_get(workspace, first, last)
    scope = scope_get(workspace, segment_id)

    def compute() -> dict:
        definitions = definitions_get(workspace=workspace)
        now = kpis.kpis_compute(scope=scope, period=period, definitions=definitions)
        before = kpis.kpis_compute(scope=scope, period=period.previous(), definitions=definitions)
        return {
            "period": period.as_dict(),
            "previous_period": period.previous().as_dict(),
            "segment": str(scope.segment_id) if scope.segment_id else None,
            "figures": {name: now[name] for name in kpis.ORDER},
            "previous": {name: before[name] for name in kpis.ORDER},
            "changes": {
                name: kpis.kpi_change(name, now[name], before[name]) for name in kpis.ORDER
            },
            "parts": now["parts"],
            "currency": now["currency"],
            "unconverted": now["unconverted"],
            "definitions": kpis.DEFINITIONS,
            "seconds": round(now["seconds"] + before["seconds"], 3),
        }

    params = {"period": period.as_dict(), "segment": str(scope.segment_id)}
    return _cached(workspace, "kpis", params, compute)


def _snapshots(workspace: Workspace, window: int, segment_id: Any):
    return KpiSnapshot.objects.filter(
        workspace=workspace, window_days=window, segment_id=segment_id
    ).order_by("-day")


def kpi_history(
    *, workspace: Workspace, window: int = 30, segment_id: Any = None, days: int = 90
) -> list[dict[str, Any]]:
    """The snapshots of the last `days` days, oldest first."""
    if window not in (7, 30, 90):
        raise InvalidInputError(gettext("window is 7, 30 or 90 days"), field="window")
    scope = scope_get(workspace, segment_id)
    rows = _snapshots(workspace, window, scope.segment_id).values(
        "day", "figures", "backfilled", "computed_at", *_SNAPSHOT_MONEY
    )[:days]
    return [_snapshot_row(row) for row in rows][::-1]


_SNAPSHOT_MONEY = ("currency", *kpis.MONEY_FIGURES)


def _snapshot_row(row: dict[str, Any]) -> dict[str, Any]:
    """A snapshot as a reader gets it: its money (Decimal columns) back in its figures,
    with their currency."""
    money = {name: row.pop(name) for name in kpis.MONEY_FIGURES}
    row["figures"] = kpis.snapshot_figures(row["figures"], row.pop("currency"), money)
    return row


def home_dashboard(
    *, workspace: Workspace, window: int = 30, segment_id: Any = None, days: int = 90
) -> dict[str, Any]:
    """The KPIs from the latest snapshot against the snapshot `window` days earlier
    (the previous period, as it was then), with each KPI's history."""
    history = kpi_history(workspace=workspace, window=window, segment_id=segment_id, days=days)
    if not history:
        return {"window": window, "latest": None, "kpis": [], "history": []}
    latest = history[-1]
    wanted = latest["day"] - timedelta(days=window)
    earlier = (
        _snapshots(workspace, window, scope_get(workspace, segment_id).segment_id)
        .filter(day=wanted)
        .values("day", "figures", *_SNAPSHOT_MONEY)
        .first()
    )
    if earlier is not None:
        earlier = _snapshot_row(earlier)
    # Snapshots from before currencies were kept are in today's reporting currency.
    currency = latest["figures"].get("currency") or money_rates_get(workspace=workspace).reporting

    def figure(snapshot: dict[str, Any] | None, name: str) -> Any:
        # Money of a snapshot in another currency (taken before the reporting currency
        # changed) is neither compared with nor drawn beside today's.
        if snapshot is None:
            return None
        figures = snapshot["figures"]
        if kpis.KINDS[name] == "money" and (figures.get("currency") or currency) != currency:
            return None
        return figures.get(name)

    rows = []
    for name in kpis.ORDER:
        now = figure(latest, name)
        before = figure(earlier, name)
        rows.append(
            {
                "name": name,
                "value": now,
                "previous": before,
                "change": kpis.kpi_change(name, now, before),
                "definition": kpis.DEFINITIONS[name],
                "series": [[h["day"].isoformat(), figure(h, name)] for h in history],
            }
        )
    return {
        "window": window,
        "currency": currency,
        "unconverted": latest["figures"].get("unconverted", []),
        "latest": {
            "day": latest["day"],
            "computed_at": latest["computed_at"],
            "backfilled": latest["backfilled"],
        },
        "previous_day": earlier["day"] if earlier else None,
        "kpis": rows,
    }


def funnel_report(*, workspace: Workspace, query: funnel.FunnelQuery) -> dict[str, Any]:
    period = period_make(query.start, query.end, zone_of(workspace))
    scope = scope_get(workspace, query.segment)
    for segment_id in query.segments:
        scope_get(workspace, segment_id)

    def compute() -> dict:
        return funnel.funnel_compute(
            query=query,
            period=period,
            scope=scope,
            definitions=definitions_get(workspace=workspace),
        )

    return _cached(workspace, "funnel", query.model_dump(mode="json"), compute)


def funnel_customers(
    *, workspace: Workspace, query: funnel.FunnelQuery, step: int, outcome: str, group: str | None
) -> list[str]:
    if not 1 <= step <= len(query.steps):
        raise InvalidInputError(
            gettext("step is 1 to %(count)s") % {"count": len(query.steps)}, field="step"
        )
    period = period_make(query.start, query.end, zone_of(workspace))
    result = funnel.funnel_compute(
        query=query,
        period=period,
        scope=scope_get(workspace, query.segment),
        definitions=definitions_get(workspace=workspace),
    )
    return funnel.funnel_members(
        result["_members"], workspace_id=workspace.pk, step=step, outcome=outcome, group=group
    )


def _month(value: str | None, field: str, default: date) -> date:
    if not value:
        return default
    try:
        year, month = (int(part) for part in value.split("-"))
        return date(year, month, 1)
    except ValueError:
        raise InvalidInputError(
            gettext("%(field)s is a month like 2026-03") % {"field": field}, field=field
        ) from None


def cohorts_report(
    *,
    workspace: Workspace,
    by: str = "signup",
    last_month: str | None = None,
    months: int = 12,
    segment_id: Any = None,
) -> dict[str, Any]:
    if by not in cohorts.COHORT_KINDS:
        raise InvalidInputError(gettext("by is signup or first_purchase"), field="by")
    if not 1 <= months <= MAX_COHORT_MONTHS:
        raise InvalidInputError(
            gettext("months is 1 to %(max_cohort_months)s")
            % {"max_cohort_months": MAX_COHORT_MONTHS},
            field="months",
        )
    last = _month(last_month, "last_month", today(workspace).replace(day=1))
    scope = scope_get(workspace, segment_id)

    def compute() -> dict:
        return cohorts.cohorts_compute(
            scope=scope,
            definitions=definitions_get(workspace=workspace),
            zone=zone_of(workspace),
            by=by,
            last_month=last,
            months=months,
        )

    params = {"by": by, "last": last, "months": months, "segment": str(scope.segment_id)}
    return _cached(workspace, "cohorts", params, compute)


def cohort_customers(
    *, workspace: Workspace, by: str, month: str, offset: int, segment_id: Any = None
) -> list[str]:
    if by not in cohorts.COHORT_KINDS:
        raise InvalidInputError(gettext("by is signup or first_purchase"), field="by")
    if not 0 <= offset < MAX_COHORT_MONTHS:
        raise InvalidInputError(
            gettext("offset is 0 to %(value)s") % {"value": MAX_COHORT_MONTHS - 1}, field="offset"
        )
    return cohorts.cohort_customers(
        scope=scope_get(workspace, segment_id),
        definitions=definitions_get(workspace=workspace),
        zone=zone_of(workspace),
        by=by,
        month=_month(month, "month", date.today()),
        offset=offset,
    )


def loyalty_report(
    *,
    workspace: Workspace,
    last_month: str | None = None,
    months: int = 12,
    cohort: str | None = None,
    segment_id: Any = None,
) -> dict[str, Any]:
    if not 1 <= months <= MAX_COHORT_MONTHS:
        raise InvalidInputError(
            gettext("months is 1 to %(max_cohort_months)s")
            % {"max_cohort_months": MAX_COHORT_MONTHS},
            field="months",
        )
    last = _month(last_month, "last_month", today(workspace).replace(day=1))
    cohort_month = _month(cohort, "cohort", None) if cohort else None
    scope = scope_get(workspace, segment_id)
    names = segment_selectors.stage_names(workspace=workspace)

    def compute() -> dict:
        result = cohorts.loyalty_compute(
            scope=scope,
            zone=zone_of(workspace),
            last_month=last,
            months=months,
            cohort=cohort_month,
        )
        for row in result["stages"]:
            row["name"] = names.get(row["stage"], row["stage"])
        order = list(names)
        result["stages"].sort(
            key=lambda row: order.index(row["stage"]) if row["stage"] in order else len(order)
        )
        return result

    params = {"last": last, "months": months, "cohort": cohort, "segment": str(scope.segment_id)}
    return _cached(workspace, "loyalty", params, compute)


def rfm_report(*, workspace: Workspace) -> dict[str, Any]:
    """The RFM grid (recency against the frequency-monetary score) with customers and
    their lifetime purchase value per cell, and the same per named cell."""
    scores = RfmScore.objects.filter(workspace=workspace)
    # Decimal sums of Decimal columns: one currency (a refresh writes the reporting one).
    grid: dict[tuple[int, int], list] = {}
    for r_score, f, m, n, value in (
        scores.values("r", "f", "m")
        .annotate(n=Count("pk"), value=Sum("monetary"))
        .values_list("r", "f", "m", "n", "value")
    ):
        cell = grid.setdefault((r_score, rfm.fm_score(f, m)), [0, Decimal(0)])
        cell[0] += n
        cell[1] += to_decimal(value)
    named = {
        cell: (n, to_decimal(value))
        for cell, n, value in scores.values("cell")
        .annotate(n=Count("pk"), value=Sum("monetary"))
        .values_list("cell", "n", "value")
    }
    latest = scores.order_by("-computed_at").values_list("computed_at", flat=True).first()
    currency = scores.exclude(currency="").values_list("currency", flat=True).first()
    return {
        "currency": currency or money_rates_get(workspace=workspace).reporting,
        "unconverted": segment_services.rfm_unconverted(workspace=workspace),
        "grid": [
            {
                "r": r_score,
                "fm": fm,
                "cell": rfm.rfm_cell(r_score, fm, fm),
                "customers": grid.get((r_score, fm), [0, Decimal(0)])[0],
                "revenue": money_stored(grid.get((r_score, fm), [0, Decimal(0)])[1]),
            }
            for r_score in range(1, 6)
            for fm in range(1, 6)
        ],
        "cells": [
            {
                "cell": name,
                "customers": named.get(name, (0, Decimal(0)))[0],
                "revenue": money_stored(named.get(name, (0, Decimal(0)))[1]),
            }
            for name in rfm.CELLS
        ],
        "computed_at": latest,
    }


def kpi_customers(
    *, workspace: Workspace, figure: str, first: date | None, last: date | None, segment_id: Any
) -> list[str]:
    if figure not in kpis.DRILLABLE:
        raise InvalidInputError(
            gettext("figure is one of %(choices)s") % {"choices": ", ".join(kpis.DRILLABLE)},
            field="figure",
        )
    ids = kpis.kpi_customers(
        scope=scope_get(workspace, segment_id),
        period=period_get(workspace, first, last),
        definitions=definitions_get(workspace=workspace),
        figure=figure,
    )
    return [str(pk) for pk in ids.values_list(ids.query.values_select[0], flat=True)]


def last_months(workspace: Workspace, months: int) -> list[str]:
    current = today(workspace).replace(day=1)
    return [month_add(current, -k).strftime("%Y-%m") for k in range(months)]
