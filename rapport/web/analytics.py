"""Analytics in the UI: the KPI dashboard (from the daily snapshots, and any period on
demand), the funnel, cohorts, the loyalty curve and the RFM grid with revenue, each
chart with PNG and CSV export; the customers behind a number, saved as a segment.

Charts are ECharts options built here and drawn by `static/web/charts.js` from the
vendored ECharts (no CDN)."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from pydantic import ValidationError

from rapport.analytics import export, kpis, selectors, services
from rapport.analytics import tasks as analytics_tasks
from rapport.analytics.api import DrillIn, drill_ids
from rapport.analytics.funnel import FunnelQuery
from rapport.core.errors import InvalidInputError, RapportError
from rapport.core.money import money_format
from rapport.profiles.models import Profile
from rapport.segments import selectors as segment_selectors
from rapport.segments.rfm import cell_label
from rapport.web.customers import customer_summary
from rapport.web.pages import error_text, workspace_page

# The figures a KPI's customers can be drilled into, in words.
FIGURES = {
    "customers": gettext_lazy("customers"),
    "new_customers": gettext_lazy("new customers"),
    "active_customers": gettext_lazy("active customers"),
    "churned": gettext_lazy("churned customers"),
    "retained": gettext_lazy("retained customers"),
    "buyers": gettext_lazy("buyers"),
    "engaged": gettext_lazy("engaged customers"),
    "promoters": gettext_lazy("promoters"),
    "detractors": gettext_lazy("detractors"),
    "clv": gettext_lazy("customers with a predicted CLV"),
}

LABELS = {
    "customers": gettext_lazy("Customers"),
    "new_customers": gettext_lazy("New customers"),
    "active_customers": gettext_lazy("Active customers"),
    "churn_rate": gettext_lazy("Churn rate"),
    "retention_rate": gettext_lazy("Retention rate"),
    "revenue": gettext_lazy("Revenue"),
    "orders": gettext_lazy("Orders"),
    "buyers": gettext_lazy("Buyers"),
    "average_order_value": gettext_lazy("Average order value"),
    "purchase_frequency": gettext_lazy("Purchase frequency"),
    "clv_average": gettext_lazy("Average predicted CLV"),
    "clv_total": gettext_lazy("Total predicted CLV"),
    "nps": gettext_lazy("NPS"),
    "nps_responses": gettext_lazy("NPS answers"),
    "engagement_rate": gettext_lazy("Engagement rate"),
}
# Which KPI's customers a card opens.
CARD_DRILL = {
    "customers": "customers",
    "new_customers": "new_customers",
    "active_customers": "active_customers",
    "churn_rate": "churned",
    "retention_rate": "retained",
    "buyers": "buyers",
    "orders": "buyers",
    "engagement_rate": "engaged",
    "clv_average": "clv",
    "clv_total": "clv",
    "nps": "promoters",
}
CUSTOMERS_SHOWN = 100
MAX_STEPS = 8
STEP_KINDS = ("event", "page", "trait", "stage")


def shown(value: Any, kind: str, currency: str = "") -> str:
    """A KPI value as people read it; money with its currency's sign, as the person's
    language writes it."""
    if value is None:
        return "-"
    # In the person's language (decimal comma and grouping in Russian).
    if kind == "percent":
        return _number(100 * value, 1) + "%"
    if kind == "money":
        return money_format(value, currency) if currency else _number(value, 2, force_grouping=True)
    if kind == "ratio":
        return _number(value, 2)
    if kind == "score":
        return _signed(value, 1) if value else "0"
    return number_format(int(value), force_grouping=True)


def _number(value: float, places: int, **kwargs) -> str:
    # number_format cuts the digits off; rounded first, as the f-strings it replaced.
    return number_format(round(value, places), places, **kwargs)


def _signed(value: float, places: int) -> str:
    return ("+" if value > 0 else "") + _number(value, places)


def change_shown(change: dict, kind: str) -> str:
    if change["difference"] is None:
        return ""
    if kind in ("percent",):
        return _("%(points)s pts") % {"points": _signed(100 * change["difference"], 1)}
    if kind == "score":
        return _signed(change["difference"], 1)
    if change["relative"] is None:
        return _signed(change["difference"], 2) if kind in ("money", "ratio") else ""
    return _signed(100 * change["relative"], 1) + "%"


def _segments(workspace) -> list:
    return list(segment_selectors.segment_list(workspace=workspace)[:200])


def _segment_param(request: HttpRequest) -> uuid.UUID | None:
    raw = request.GET.get("segment", "")
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidInputError(gettext("not a segment id"), field="segment") from None


def _date_param(request: HttpRequest, name: str) -> date | None:
    raw = request.GET.get(name, "")
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInputError(
            gettext("%(name)s is a date like 2026-10-31") % {"name": name}, field=name
        ) from None


def _int_param(request: HttpRequest, name: str, default: int, low: int, high: int) -> int:
    raw = request.GET.get(name, "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInputError(
            gettext("%(name)s is a whole number") % {"name": name}, field=name
        ) from None
    if not low <= value <= high:
        raise InvalidInputError(
            gettext("%(name)s is %(low)s to %(high)s") % {"name": name, "low": low, "high": high},
            field=name,
        )
    return value


def drill_url(spec: dict) -> str:
    return reverse("web:analytics_customers") + "?" + urlencode({"of": json.dumps(spec)})


def chart(
    chart_id: str, option: dict, *, fmt: str = "", label_format: str = "", currency: str = ""
) -> dict:
    spec = {"option": option, "format": fmt, "labelFormat": label_format, "currency": currency}
    return {"id": chart_id, "spec": spec}


def _day_label(day) -> str:
    """A day on a chart's axis, written as the person's language writes dates."""
    try:
        parsed = day if isinstance(day, date) else date.fromisoformat(str(day))
    except ValueError:
        return str(day)
    return date_format(parsed, "SHORT_DATE_FORMAT")


def _line(days: list[str], values: list, *, name: str, small: bool = False) -> dict:
    option: dict[str, Any] = {
        "grid": {"left": 4, "right": 4, "top": 4, "bottom": 4}
        if small
        else {"left": 56, "right": 16, "top": 24, "bottom": 32},
        "tooltip": {"trigger": "axis"},
        "xAxis": {
            "type": "category",
            "data": [_day_label(d) for d in days],
            "show": not small,
            "boundaryGap": False,
        },
        "yAxis": {"type": "value", "show": not small, "scale": True},
        "series": [
            {
                "type": "line",
                "name": name,
                # Money is Decimal; the chart draws numbers.
                "data": [float(v) if isinstance(v, Decimal) else v for v in values],
                "showSymbol": not small,
                "smooth": False,
                "areaStyle": {"opacity": 0.08},
            }
        ],
    }
    return option


# --- The KPI dashboard ----------------------------------------------------------------


@workspace_page("analytics.read")
def dashboard(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    workspace = principal.workspace
    window = _int_param(request, "window", 30, 7, 90)
    if window not in (7, 30, 90):
        raise InvalidInputError(gettext("window is 7, 30 or 90 days"), field="window")
    segment_id = _segment_param(request)
    board = selectors.home_dashboard(workspace=workspace, window=window, segment_id=segment_id)
    focus = request.GET.get("kpi", "revenue")
    if focus not in kpis.ORDER:
        focus = "revenue"
    cards, charts = [], []
    for row in board["kpis"]:
        name, kind = row["name"], kpis.KINDS[row["name"]]
        series = row["series"]
        chart_id = f"spark-{name}"
        charts.append(
            chart(
                chart_id,
                _line(
                    [d for d, _ in series],
                    [v for _, v in series],
                    name=str(LABELS[name]),
                    small=True,
                ),
                fmt=kind,
                currency=board["currency"],
            )
        )
        latest_day = board["latest"]["day"]
        drill = CARD_DRILL.get(name)
        cards.append(
            {
                "name": name,
                "label": LABELS[name],
                "value": shown(row["value"], kind, board["currency"]),
                "previous": shown(row["previous"], kind, board["currency"]),
                "change": change_shown(row["change"], kind),
                "good": row["change"]["good"],
                "definition": _(kpis.DEFINITIONS[name]),
                "chart": chart_id,
                "focus_url": "?"
                + urlencode({"window": window, "segment": segment_id or "", "kpi": name}),
                "drill_url": drill_url(
                    {
                        "kpi": {
                            "figure": drill,
                            "start": (latest_day - timedelta(days=window - 1)).isoformat(),
                            "end": latest_day.isoformat(),
                            "segment": str(segment_id) if segment_id else None,
                        }
                    }
                )
                if drill
                else "",
            }
        )
    focus_row = next((r for r in board["kpis"] if r["name"] == focus), None)
    if focus_row:
        charts.append(
            chart(
                "trend",
                _line(
                    [d for d, _ in focus_row["series"]],
                    [v for _, v in focus_row["series"]],
                    name=str(LABELS[focus]),
                ),
                fmt=kpis.KINDS[focus],
                currency=board["currency"],
            )
        )
    history_csv = _api_csv("kpis/history", window=window, segment=segment_id, days=90)
    context = {
        "board": board,
        "cards": cards,
        "charts": charts,
        "focus": focus,
        "focus_label": LABELS[focus],
        "window": window,
        "windows": (7, 30, 90),
        "segment_id": str(segment_id) if segment_id else "",
        "segments": _segments(workspace),
        "history_csv": history_csv,
        "can_manage": principal.has_perm("analytics.manage"),
        "timezone": services.analytics_settings_get(workspace_id=workspace.pk).timezone,
    }
    return render(request, "web/analytics/dashboard.html", context)


@workspace_page("analytics.manage")
@require_POST
def snapshots_take(request: HttpRequest) -> HttpResponse:
    analytics_tasks.kpi_snapshots_backfill.enqueue(
        workspace_id=str(request.principal.workspace.pk), day=None, backfill_days=30
    )
    return redirect(reverse("web:analytics") + "?queued=1")


@workspace_page("analytics.read")
def period_report(request: HttpRequest) -> HttpResponse:
    """The KPIs of any period against the one before, computed live (and cached)."""
    workspace = request.principal.workspace
    segment_id = _segment_param(request)
    first, last = _date_param(request, "start"), _date_param(request, "end")
    report = selectors.kpis_report(
        workspace=workspace, first=first, last=last, segment_id=segment_id
    )
    if request.GET.get("format") == "csv":
        return export.csv_response(export.kpis_rows(report), "kpis.csv")
    period = report["period"]
    rows = []
    for name in kpis.ORDER:
        kind = kpis.KINDS[name]
        drill = CARD_DRILL.get(name)
        rows.append(
            {
                "label": LABELS[name],
                "value": shown(report["figures"][name], kind, report["currency"]),
                "previous": shown(report["previous"][name], kind, report["currency"]),
                "change": change_shown(report["changes"][name], kind),
                "good": report["changes"][name]["good"],
                "definition": _(kpis.DEFINITIONS[name]),
                "drill_url": drill_url(
                    {
                        "kpi": {
                            "figure": drill,
                            "start": period["first"],
                            "end": period["last"],
                            "segment": str(segment_id) if segment_id else None,
                        }
                    }
                )
                if drill
                else "",
            }
        )
    context = {
        "report": report,
        "rows": rows,
        "start": period["first"],
        "end": period["last"],
        "segment_id": str(segment_id) if segment_id else "",
        "segments": _segments(workspace),
        "csv_url": "?" + urlencode({**request.GET.dict(), "format": "csv"}),
    }
    return render(request, "web/analytics/period.html", context)


# --- The funnel -----------------------------------------------------------------------


def _default_steps(workspace) -> list[dict]:
    purchase = services.definitions_get(workspace=workspace).purchase_event
    return [
        {"page": "*"},
        {"event": "Signed Up"},
        {"event": purchase, "label": _("First purchase")},
        {"event": purchase, "label": _("Second purchase")},
    ]


def _steps_from(request: HttpRequest) -> list[dict]:
    steps = []
    for n in range(1, MAX_STEPS + 1):
        kind = request.GET.get(f"kind{n}", "")
        value = request.GET.get(f"value{n}", "").strip()
        label = request.GET.get(f"label{n}", "").strip()
        if not kind or not value:
            continue
        if kind not in STEP_KINDS:
            raise InvalidInputError(
                gettext("step %(n)s: unknown kind") % {"n": n}, field=f"kind{n}"
            )
        step: dict[str, Any] = {}
        if kind == "trait" and "=" in value:
            name, _eq, wanted = value.partition("=")
            step = {"trait": name.strip(), "value": wanted.strip()}
        else:
            step = {kind: value}
        if label:
            step["label"] = label
        steps.append(step)
    return steps


def _step_form(steps: list[dict]) -> list[dict]:
    rows = []
    for n in range(MAX_STEPS):
        step = steps[n] if n < len(steps) else {}
        kind = next((k for k in STEP_KINDS if k in step), "")
        value = step.get(kind, "") if kind else ""
        if kind == "trait" and step.get("value") is not None:
            value = f"{value}={step['value']}"
        rows.append({"n": n + 1, "kind": kind, "value": value, "label": step.get("label", "")})
    return rows


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 3600:
        return _("%(n)s min") % {"n": round(seconds / 60)}
    if seconds < 2 * 86400:
        return _("%(n)s h") % {"n": _number(seconds / 3600, 1)}
    return _("%(n)s days") % {"n": _number(seconds / 86400, 1)}


@workspace_page("analytics.read")
def funnel_page(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    workspace = principal.workspace
    today = selectors.today(workspace)
    steps = _steps_from(request) or _default_steps(workspace)
    start = _date_param(request, "start") or today - timedelta(days=90)
    end = _date_param(request, "end") or today - timedelta(days=1)
    conversion = request.GET.get("conversion_days") or None
    breakdown = request.GET.get("breakdown") or None
    segment_id = _segment_param(request)
    by_segments = [s for s in request.GET.getlist("segments") if s][:20]
    raw = {
        "steps": steps,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "conversion_days": int(conversion) if conversion and conversion.isdigit() else None,
        "breakdown": breakdown,
        "segment": str(segment_id) if segment_id else None,
        "segments": by_segments,
    }
    context: dict[str, Any] = {
        "form": {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "conversion_days": conversion or "",
            "breakdown": breakdown or "",
            "segment": str(segment_id) if segment_id else "",
            "segments": by_segments,
        },
        "step_rows": _step_form(steps),
        "step_kinds": [
            ("event", _("Event")),
            ("page", _("Page (* = any)")),
            ("trait", _("Trait (name or name=value)")),
            ("stage", _("Lifecycle stage")),
        ],
        "breakdowns": [
            ("utm_source", _("Campaign source (UTM)")),
            ("utm_medium", _("Campaign medium (UTM)")),
            ("utm_campaign", _("Campaign (UTM)")),
            ("segment", _("Segment")),
        ],
        "segments": _segments(workspace),
        "stages": segment_selectors.stage_names(workspace=workspace),
    }
    try:
        query = FunnelQuery.model_validate(raw)
    except ValidationError as error:
        context["error"] = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        return render(request, "web/analytics/funnel.html", context, status=422)
    report = selectors.funnel_report(workspace=workspace, query=query)
    if request.GET.get("format") == "csv":
        return export.csv_response(export.funnel_rows(report), "funnel.csv")
    query_json = query.model_dump(mode="json")
    rows = []
    for step, asked in zip(report["steps"], query.steps, strict=False):
        rows.append(
            {
                **step,
                # A label or an event name people gave (not translated).
                "named": bool(asked.label or asked.event),
                "from_previous": shown(step["conversion_from_previous"], "percent"),
                "from_start": shown(step["conversion_from_start"], "percent"),
                "median": _duration(step["median_seconds_from_previous"]),
                "reached_url": drill_url({"funnel": {"query": query_json, "step": step["step"]}}),
                "dropped_url": drill_url(
                    {"funnel": {"query": query_json, "step": step["step"], "outcome": "dropped"}}
                )
                if step["step"] < len(report["steps"])
                else "",
            }
        )
    names = {str(s.pk): s.name for s in context["segments"]}
    groups = [
        {
            "value": names.get(group["value"], group["value"]),
            "cells": [
                {
                    "customers": s["customers"],
                    "share": shown(s["conversion_from_start"], "percent"),
                    "url": drill_url(
                        {
                            "funnel": {
                                "query": query_json,
                                "step": s["step"],
                                "group": group["value"] if breakdown != "segment" else None,
                            }
                        }
                    )
                    if breakdown != "segment"
                    else "",
                }
                for s in group["steps"]
            ],
        }
        for group in report["groups"]
    ]
    option = {
        "grid": {"left": 160, "right": 40, "top": 16, "bottom": 24},
        "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}},
        "xAxis": {"type": "value"},
        "yAxis": {
            "type": "category",
            "inverse": True,
            "data": [s["label"] for s in report["steps"]],
        },
        "series": [
            {
                "type": "bar",
                "name": _("Customers"),
                "data": [
                    {"value": s["customers"], "href": r["reached_url"]}
                    for s, r in zip(report["steps"], rows, strict=True)
                ],
                "label": {"show": True, "position": "right"},
            }
        ],
    }
    if report["groups"]:
        option["legend"] = {"top": 0}
        option["grid"]["top"] = 40
        option["series"] = [
            {
                "type": "bar",
                "name": names.get(g["value"], g["value"]),
                "data": [s["customers"] for s in g["steps"]],
            }
            for g in report["groups"]
        ]
    context.update(
        {
            "report": report,
            "rows": rows,
            "groups": groups,
            "charts": [chart("funnel-chart", option)],
            "csv_url": "?" + urlencode({**_flat(request.GET), "format": "csv"}, doseq=True),
        }
    )
    return render(request, "web/analytics/funnel.html", context)


def _flat(query_dict) -> dict:
    return {key: query_dict.getlist(key) for key in query_dict if key != "format"}


# --- Cohorts, the loyalty curve, RFM --------------------------------------------------


def _heat_scale(top: float) -> dict:
    """A heat map's colour scale, from nothing to its largest cell, under the chart."""
    return {
        "min": 0,
        "max": top or 1,
        "calculable": True,
        "orient": "horizontal",
        "left": "center",
        "bottom": 0,
        "inRange": {"color": ["#f0f4ff", "#2454d6"]},
    }


@workspace_page("analytics.read")
def cohorts_page(request: HttpRequest) -> HttpResponse:
    workspace = request.principal.workspace
    by = request.GET.get("by", "signup")
    months = _int_param(request, "months", 12, 1, 24)
    metric = "revenue" if request.GET.get("metric") == "revenue" else "retention"
    segment_id = _segment_param(request)
    report = selectors.cohorts_report(
        workspace=workspace,
        by=by,
        last_month=request.GET.get("last_month") or None,
        months=months,
        segment_id=segment_id,
    )
    data = []
    for y, row in enumerate(report["rows"]):
        values = row["retention"] if metric == "retention" else row["revenue_per_customer"]
        for k, value in enumerate(values):
            if value is None:
                continue
            data.append(
                {
                    "value": [k, y, round(value, 4)],
                    "href": drill_url(
                        {
                            "cohort": {
                                "by": by,
                                "month": row["cohort"],
                                "offset": k,
                                "segment": str(segment_id) if segment_id else None,
                            }
                        }
                    ),
                }
            )
    values = [d["value"][2] for d in data] or [0]
    option = {
        "tooltip": {"position": "top"},
        "grid": {"left": 80, "right": 24, "top": 16, "bottom": 96},
        "xAxis": {
            "type": "category",
            "name": _("Months after"),
            "nameLocation": "middle",
            "nameGap": 28,
            "data": [str(k) for k in range(months)],
        },
        "yAxis": {
            "type": "category",
            "inverse": True,
            "data": [row["cohort"] for row in report["rows"]],
        },
        "visualMap": _heat_scale(max(values)),
        "series": [
            {
                "type": "heatmap",
                "name": _("Share active") if metric == "retention" else _("Revenue per customer"),
                "data": data,
                "label": {"show": True},
            }
        ],
    }
    table = [
        {
            "cohort": row["cohort"],
            "customers": row["customers"],
            "cells": [
                shown(v, "percent" if metric == "retention" else "money", report["currency"])
                for v in (
                    row["retention"] if metric == "retention" else row["revenue_per_customer"]
                )
            ],
        }
        for row in report["rows"]
    ]
    context = {
        "report": report,
        "table": table,
        "offsets": range(months),
        "by": by,
        "months": months,
        "metric": metric,
        "segment_id": str(segment_id) if segment_id else "",
        "segments": _segments(workspace),
        "charts": [
            chart(
                "cohort-chart",
                option,
                label_format="percent" if metric == "retention" else "money",
                fmt="percent" if metric == "retention" else "money",
                currency=report["currency"],
            )
        ],
        "csv_url": _api_csv("cohorts", by=by, months=months, segment=segment_id),
    }
    return render(request, "web/analytics/cohorts.html", context)


@workspace_page("analytics.read")
def loyalty_page(request: HttpRequest) -> HttpResponse:
    workspace = request.principal.workspace
    months = _int_param(request, "months", 12, 1, 24)
    cohort = request.GET.get("cohort") or None
    segment_id = _segment_param(request)
    report = selectors.loyalty_report(
        workspace=workspace, months=months, cohort=cohort, segment_id=segment_id
    )
    option = {
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0},
        "grid": {"left": 56, "right": 16, "top": 48, "bottom": 32},
        "xAxis": {"type": "category", "boundaryGap": False, "data": report["months"]},
        "yAxis": {"type": "value"},
        "series": [
            {
                "type": "line",
                "name": row["name"],
                "stack": "stages",
                "areaStyle": {},
                "emphasis": {"focus": "series"},
                "data": row["customers"],
            }
            for row in report["stages"]
        ],
    }
    context = {
        "report": report,
        "months": months,
        "cohort": cohort or "",
        "cohorts": selectors.last_months(workspace, 24),
        "segment_id": str(segment_id) if segment_id else "",
        "segments": _segments(workspace),
        "charts": [chart("loyalty-chart", option)],
        "csv_url": _api_csv("lifecycle", months=months, cohort=cohort, segment=segment_id),
    }
    return render(request, "web/analytics/loyalty.html", context)


def _api_csv(path: str, **params: Any) -> str:
    """A CSV link to the analytics API. Unset filters are left out, not sent empty:
    the API validates `segment=` as a UUID and answers 422 to an empty one."""
    query = {k: v for k, v in params.items() if v not in (None, "")}
    return f"/api/v1/analytics/{path}?" + urlencode({**query, "format": "csv"})


@workspace_page("analytics.read")
def rfm_page(request: HttpRequest) -> HttpResponse:
    workspace = request.principal.workspace
    report = selectors.rfm_report(workspace=workspace)
    customers_url = reverse("web:customer_list")

    def heatmap(field: str, name: str) -> dict:
        # Money is Decimal; the chart draws numbers.
        cells = [{**c, field: float(c[field])} for c in report["grid"]]
        top = max((c[field] for c in cells), default=0) or 1
        return {
            "tooltip": {"position": "top"},
            "grid": {"left": 48, "right": 16, "top": 16, "bottom": 72},
            "xAxis": {"type": "category", "name": "FM", "data": ["1", "2", "3", "4", "5"]},
            "yAxis": {"type": "category", "name": "R", "data": ["1", "2", "3", "4", "5"]},
            "visualMap": _heat_scale(top),
            "series": [
                {
                    "type": "heatmap",
                    "name": name,
                    "label": {"show": True},
                    "data": [
                        {
                            "value": [c["fm"] - 1, c["r"] - 1, c[field]],
                            "name": cell_label(c["cell"]),
                            "href": f"{customers_url}?{urlencode({'rfm': c['cell']})}",
                        }
                        for c in cells
                    ],
                }
            ],
        }

    context = {
        "report": report,
        "customers_url": customers_url,
        "charts": [
            chart("rfm-count", heatmap("customers", str(_("Customers")))),
            chart(
                "rfm-revenue",
                heatmap("revenue", str(_("Revenue"))),
                fmt="money",
                label_format="money",
                currency=report["currency"],
            ),
        ],
        "csv_url": "/api/v1/analytics/rfm?format=csv",
    }
    return render(request, "web/analytics/rfm.html", context)


# --- The customers behind a number ----------------------------------------------------


def _drill(request: HttpRequest, raw: str) -> tuple[DrillIn, list[str]]:
    if not raw or len(raw) > 20_000:
        raise InvalidInputError(_("which number's customers is missing"), field="of")
    try:
        payload = DrillIn.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as error:
        raise InvalidInputError(
            gettext("not a drill-down: %(error)s") % {"error": str(error)[:200]}, field="of"
        ) from None
    return payload, drill_ids(request.principal.workspace, payload)


def _describe(payload: DrillIn) -> str:
    if payload.kpi is not None:
        k = payload.kpi
        return _("%(figure)s, %(start)s to %(end)s") % {
            "figure": FIGURES.get(k.figure, k.figure),
            "start": _day_label(k.start) if k.start else "…",
            "end": _day_label(k.end) if k.end else "…",
        }
    if payload.funnel is not None:
        f = payload.funnel
        label = f.query.steps[f.step - 1].title
        what = _("dropped after") if f.outcome == "dropped" else _("reached")
        return f"{what} “{label}” ({f.query.start} - {f.query.end})"
    c = payload.cohort
    return _("cohort %(month)s, active %(offset)s months later") % {
        "month": c.month,
        "offset": c.offset,
    }


@workspace_page("analytics.read")
def customers_page(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    raw = request.GET.get("of", "")
    payload, ids = _drill(request, raw)
    profiles = (
        Profile.objects.filter(workspace=principal.workspace, pk__in=ids[:CUSTOMERS_SHOWN])
        .prefetch_related("identifiers")
        .order_by("-last_seen_at", "-id")
    )
    context = {
        "count": len(ids),
        "customers": [customer_summary(principal, p) for p in profiles],
        "shown": min(len(ids), CUSTOMERS_SHOWN),
        "description": _describe(payload),
        "of": raw,
        "can_save": principal.has_perm("segments.manage"),
    }
    return render(request, "web/analytics/customers.html", context)


@workspace_page("segments.manage")
@require_POST
def customers_save(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    raw = request.POST.get("of", "")
    try:
        payload, ids = _drill(request, raw)
        segment = services.drill_down_save(
            workspace=principal.workspace,
            name=request.POST.get("name", ""),
            profile_ids=ids,
            description=_("From analytics: %(what)s") % {"what": _describe(payload)},
            actor=principal.actor,
        )
    except RapportError as error:
        context = {"count": 0, "customers": [], "of": raw, "can_save": True}
        context["error"] = error_text(error)
        return render(request, "web/analytics/customers.html", context, status=error.status)
    return redirect("web:segment_detail", segment_id=segment.pk)
