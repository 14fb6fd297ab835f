"""Segments in the UI: the list with sizes and trends, the visual rule builder (with a
live preview), one segment's members, history and exports, the RFM grid and the
lifecycle."""

import json

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from rapport.core.errors import InvalidInputError, PermissionDeniedError, RapportError
from rapport.core.safe_csv import csv_streaming_response
from rapport.segments import rules, selectors, services
from rapport.segments import tasks as segment_tasks
from rapport.segments.export import audience_count as segment_export_counts
from rapport.segments.models import Segment
from rapport.tenancy.commerce import commerce_settings_get
from rapport.web import bulk
from rapport.web.customers import customer_summary
from rapport.web.lists import (
    column_choices,
    column_headers,
    column_move_redirect,
    customer_cells,
    state_from_query,
    trait_keys_offered,
)
from rapport.web.pages import error_text, page_query, workspace_page

LIST_TREND_DAYS = 14
DETAIL_TREND_DAYS = 30
MEMBERS_PAGE = 25
HISTORY_SHOWN = 25
MAX_LIST_LINES = 100_000


def sparkline(points: list[tuple], *, width: int = 120, height: int = 28) -> str:
    """An SVG polyline's points for a trend (drawn by the template, no script)."""
    sizes = [n for _, n in points]
    if not sizes:
        return ""
    low, high = min(sizes), max(sizes)
    span = (high - low) or 1
    step = width / max(1, len(sizes) - 1)
    return " ".join(
        f"{i * step:.1f},{height - 2 - (n - low) * (height - 4) / span:.1f}"
        for i, n in enumerate(sizes)
    )


@workspace_page("segments.read")
def segment_list(request: HttpRequest) -> HttpResponse:
    workspace = request.principal.workspace
    q = request.GET.get("q", "").strip()[:200]
    rows = []
    for segment in selectors.segment_list(workspace=workspace, q=q)[:200]:
        trend = selectors.segment_trend(segment=segment, days=LIST_TREND_DAYS)
        start = trend[0][1] if trend else 0
        rows.append(
            {
                "segment": segment,
                "rule_text": selectors.rule_describe(segment.rule) if segment.rule else "",
                "points": sparkline(trend),
                "change": segment.size - start,
            }
        )
    context = {"rows": rows, "q": q, "can_manage": request.principal.has_perm("segments.manage")}
    return render(request, "web/segments/list.html", context)


def _builder_context(request: HttpRequest, segment: Segment | None, rule_json: str) -> dict:
    workspace = request.principal.workspace
    others = selectors.segment_list(workspace=workspace)
    if segment is not None:
        others = others.exclude(pk=segment.pk)
    stages = selectors.stage_names(workspace=workspace)
    settings = commerce_settings_get(workspace=workspace)
    options = rules.BuilderOptions(
        segments=[{"id": str(s.pk), "name": s.name} for s in others[:500]],
        stages=[{"key": k, "name": v} for k, v in stages.items()],
        purchase_event=settings.purchase_event,
        currency=settings.reporting_currency,
    )
    return {
        "segment": segment,
        "rule_json": rule_json,
        # Every condition of the rule language and its fields: rule-builder.js has none.
        "builder_options": rules.builder_options(options),
    }


def _posted_rule(request: HttpRequest) -> dict | None:
    raw = request.POST.get("rule", "").strip()
    if not raw:
        return None
    if len(raw) > 200_000:
        raise InvalidInputError(_("the rule is too long"), field="rule")
    try:
        return json.loads(raw)
    except ValueError:
        raise InvalidInputError(_("the rule is not valid JSON"), field="rule") from None


@workspace_page("segments.manage")
@require_http_methods(["GET", "POST"])
def segment_new(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    default = {"all": [{"trait": "", "op": "eq", "value": ""}]}
    context = _builder_context(request, None, json.dumps(default))
    context.update({"name": "", "description": "", "kind": "dynamic"})
    if request.method == "POST":
        context.update(
            {
                "name": request.POST.get("name", ""),
                "description": request.POST.get("description", ""),
                "kind": request.POST.get("kind", "dynamic"),
                "rule_json": request.POST.get("rule", ""),
            }
        )
        try:
            kind = context["kind"]
            segment = services.segment_create(
                workspace=principal.workspace,
                name=context["name"],
                kind=kind,
                rule=_posted_rule(request) if kind == "dynamic" else None,
                description=context["description"],
                actor=principal.actor,
                can_see_pii=principal.can_see_pii,
            )
        except RapportError as error:
            context["error"] = error_text(error)
            return render(request, "web/segments/edit.html", context, status=error.status)
        return redirect("web:segment_detail", segment_id=segment.pk)
    return render(request, "web/segments/edit.html", context)


@workspace_page("segments.manage")
@require_http_methods(["GET", "POST"])
def segment_edit(request: HttpRequest, segment_id) -> HttpResponse:
    principal = request.principal
    segment = selectors.segment_get(workspace=principal.workspace, segment_id=segment_id)
    context = _builder_context(request, segment, json.dumps(segment.rule or {"all": []}))
    context.update({"name": segment.name, "description": segment.description, "kind": segment.kind})
    if request.method == "POST":
        context.update(
            {
                "name": request.POST.get("name", ""),
                "description": request.POST.get("description", ""),
                "rule_json": request.POST.get("rule", ""),
            }
        )
        try:
            services.segment_update(
                segment=segment,
                actor=principal.actor,
                name=context["name"],
                description=context["description"],
                rule=_posted_rule(request) if segment.kind == "dynamic" else None,
                can_see_pii=principal.can_see_pii,
            )
        except RapportError as error:
            context["error"] = error_text(error)
            return render(request, "web/segments/edit.html", context, status=error.status)
        return redirect("web:segment_detail", segment_id=segment.pk)
    return render(request, "web/segments/edit.html", context)


@workspace_page("segments.read")
@require_POST
def segment_preview(request: HttpRequest) -> HttpResponse:
    """The builder's live count and sample (htmx)."""
    principal = request.principal
    try:
        preview = selectors.segment_preview(
            workspace=principal.workspace,
            rule=_posted_rule(request),
            can_see_pii=principal.can_see_pii,
        )
    except RapportError as error:
        return render(request, "web/segments/_preview.html", {"error": error_text(error)})
    return render(
        request,
        "web/segments/_preview.html",
        {
            "count": preview.count,
            "seconds": preview.seconds,
            "sample": [customer_summary(principal, p) for p in preview.sample],
            "money_notes": preview.money_notes,
        },
    )


@workspace_page("segments.read")
def segment_detail(request: HttpRequest, segment_id) -> HttpResponse:
    principal = request.principal
    workspace = principal.workspace
    segment = selectors.segment_get(workspace=workspace, segment_id=segment_id)
    trend = selectors.segment_trend(segment=segment, days=DETAIL_TREND_DAYS)
    members = selectors.segment_members(workspace=workspace, segment=segment)
    page = Paginator(members.prefetch_related("identifiers"), MEMBERS_PAGE).get_page(
        request.GET.get("page")
    )
    # The members with the columns the person chose (as the customer list takes them).
    state = state_from_query("customers", request.GET)
    moved = column_move_redirect(request, state)
    if moved is not None:
        return moved
    history = list(
        selectors.segment_history(segment=segment)
        .select_related("profile")
        .prefetch_related("profile__identifiers")[:HISTORY_SHOWN]
    )
    context = {
        "segment": segment,
        "rule_text": selectors.rule_describe(segment.rule) if segment.rule else "",
        "trend": trend,
        "points": sparkline(trend, width=600, height=80),
        "trend_low": min((n for _, n in trend), default=0),
        "trend_high": max((n for _, n in trend), default=0),
        "page": page,
        "members": customer_cells(principal, list(page.object_list), state.columns),
        "headers": column_headers(state),
        "state": state,
        "columns": column_choices(state, trait_keys_offered(workspace, state.columns)),
        "filter_pairs": [],
        "members_list_query": state.query(segment=str(segment.pk)),
        "address": state.query(),
        "bulk_actions": bulk.actions_for(principal, bulk.SEGMENT_MEMBERS, segment),
        "query": page_query(request),
        "history": [{"stay": h, "who": customer_summary(principal, h.profile)} for h in history],
        "can_manage": principal.has_perm("segments.manage"),
        "can_export": principal.has_perm("segments.export"),
        "can_export_readable": principal.has_perm("pii.export"),
        # Who a hashed export carries and leaves out, said before the download.
        "audience": segment_export_counts(segment=segment)
        if principal.has_perm("segments.export")
        else None,
        "pending": segment.kind == "dynamic" and segment.refreshed_at is None,
    }
    return render(request, "web/segments/detail.html", context)


@workspace_page("segments.manage")
@require_POST
def segment_refresh(request: HttpRequest, segment_id) -> HttpResponse:
    segment = selectors.segment_get(workspace=request.principal.workspace, segment_id=segment_id)
    segment_tasks.segment_refresh.enqueue(segment_id=str(segment.pk))
    return redirect("web:segment_detail", segment_id=segment.pk)


@workspace_page("segments.manage")
@require_POST
def segment_snapshot(request: HttpRequest, segment_id) -> HttpResponse:
    principal = request.principal
    segment = selectors.segment_get(workspace=principal.workspace, segment_id=segment_id)
    name = request.POST.get("name", "").strip() or _("%(name)s (snapshot)") % {"name": segment.name}
    snapshot = services.segment_snapshot(segment=segment, name=name, actor=principal.actor)
    return redirect("web:segment_detail", segment_id=snapshot.pk)


@workspace_page("segments.manage")
@require_POST
def segment_members_add(request: HttpRequest, segment_id) -> HttpResponse:
    """A static segment's list: pasted, or a file with one identifier per line (the
    first column of a CSV)."""
    principal = request.principal
    segment = selectors.segment_get(workspace=principal.workspace, segment_id=segment_id)
    text = request.POST.get("values", "")
    upload = request.FILES.get("file")
    if upload is not None:
        text += "\n" + upload.read().decode("utf-8", errors="replace")
    values = [line.split(",")[0].strip().strip('"') for line in text.splitlines()]
    values = [v for v in values if v][:MAX_LIST_LINES]
    result = services.segment_members_add(segment=segment, values=values, actor=principal.actor)
    return render(
        request,
        "web/segments/added.html",
        {"segment": segment, "result": result},
    )


@workspace_page("segments.manage")
@require_POST
def segment_delete(request: HttpRequest, segment_id) -> HttpResponse:
    principal = request.principal
    segment = selectors.segment_get(workspace=principal.workspace, segment_id=segment_id)
    services.segment_delete(segment=segment, actor=principal.actor)
    return redirect("web:segment_list")


EXPORT_FORMATS = ("csv", "google", "meta")


@workspace_page("segments.export")
@require_http_methods(["GET", "POST"])
def segment_export(request: HttpRequest, segment_id) -> HttpResponse:
    """GET asks for confirmation and discloses nothing (a crawler following the link
    exports no one); POST downloads the members, recorded in the audit log."""
    principal = request.principal
    segment = selectors.segment_get(workspace=principal.workspace, segment_id=segment_id)
    data = request.POST if request.method == "POST" else request.GET
    format = data.get("format", "google")
    if format not in EXPORT_FORMATS:
        raise InvalidInputError(_("not an export format"), field="format")
    if format == "csv" and not principal.has_perm("pii.export"):
        raise PermissionDeniedError(
            _("A readable export needs the permission to export personal data.")
        )
    if request.method != "POST":
        context = {
            "segment": segment,
            "format": format,
            "audience": segment_export_counts(segment=segment) if format != "csv" else None,
        }
        return render(request, "web/segments/export.html", context)
    export = services.segment_export(
        segment=segment,
        format=format,
        actor=principal.actor,
        can_see_pii=principal.has_perm("pii.export"),
    )
    response = csv_streaming_response(export.lines, f"segment-{segment.pk}-{format}.csv")
    for name, value in export.headers.items():
        response[name] = value
    return response


@workspace_page("segments.read")
def rfm_page(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    grid = selectors.rfm_grid(workspace=principal.workspace)
    rows = [
        {
            "r": r,
            "cells": [
                {"fm": f, "count": grid.cells[r][f][0], "name": grid.cells[r][f][1]}
                for f in range(1, 6)
            ],
        }
        for r in range(5, 0, -1)
    ]
    context = {
        "grid": grid,
        "rows": rows,
        "cells": [
            {"name": name, "count": n, "monetary": grid.monetary.get(name)}
            for name, n in grid.by_cell
        ],
        "settings": commerce_settings_get(workspace=principal.workspace),
        "unconverted": services.rfm_unconverted(workspace=principal.workspace),
        "can_manage": principal.has_perm("segments.manage"),
        "customers_url": reverse("web:customer_list"),
    }
    return render(request, "web/segments/rfm.html", context)


@workspace_page("segments.manage")
@require_POST
def rfm_refresh(request: HttpRequest) -> HttpResponse:
    segment_tasks.rfm_refresh.enqueue(workspace_id=str(request.principal.workspace.pk))
    return redirect(reverse("web:rfm") + "?queued=1")


def _place_name(names: dict[str, str], stage: str, sub_stage: str) -> str:
    """ "Onboarding · First purchase": a stage and its sub-stage, in the person's language."""
    if not stage:
        return ""
    if not sub_stage:
        return names.get(stage, stage)
    return f"{names.get(stage, stage)} · {names.get(sub_stage, sub_stage)}"


@workspace_page("segments.read")
def lifecycle_page(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    workspace = principal.workspace
    overview = selectors.lifecycle_overview(workspace=workspace)
    total = sum(item.count for item in overview) or 1
    changes = list(selectors.lifecycle_changes(workspace=workspace)[:20])
    names = selectors.stage_names(workspace=workspace)
    context = {
        "stages": [
            {
                "item": item,
                "rule_text": selectors.rule_describe(item.stage.rule),
                "share": round(100 * item.count / total),
                "subs": [
                    {"item": sub, "rule_text": selectors.rule_describe(sub.stage.rule)}
                    for sub in item.sub_stages
                ],
            }
            for item in overview
        ],
        "changes": [
            {
                "change": c,
                "from": _place_name(names, c.from_stage, c.from_sub_stage),
                "to": _place_name(names, c.to_stage, c.to_sub_stage),
            }
            for c in changes
        ],
        "can_manage": principal.has_perm("lifecycle.manage"),
        "can_refresh": principal.has_perm("segments.manage"),
    }
    return render(request, "web/segments/lifecycle.html", context)


@workspace_page("lifecycle.manage")
@require_POST
def lifecycle_stage_rename(request: HttpRequest, stage_id) -> HttpResponse:
    principal = request.principal
    stage = selectors.lifecycle_stage_get(workspace=principal.workspace, stage_id=stage_id)
    services.lifecycle_stage_update(
        stage=stage, actor=principal.actor, name=request.POST.get("name", "")
    )
    return redirect("web:lifecycle")


@workspace_page("segments.manage")
@require_POST
def lifecycle_refresh(request: HttpRequest) -> HttpResponse:
    segment_tasks.lifecycle_refresh.enqueue(workspace_id=str(request.principal.workspace.pk))
    return redirect(reverse("web:lifecycle") + "?queued=1")
