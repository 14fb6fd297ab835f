"""Customers: the list, the 360° page with its timeline, and the confirmed actions on
a customer (merge, unmerge, export, erase)."""

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from rapport.core.errors import InvalidInputError, RapportError
from rapport.identity import selectors as identity_selectors
from rapport.identity import services as identity_services
from rapport.predictions import selectors as prediction_selectors
from rapport.profiles import lists, selectors
from rapport.profiles.models import AccountMember, ConsentChannel
from rapport.segments import selectors as segment_selectors
from rapport.segments.rfm import CELLS as RFM_CELLS
from rapport.tenancy.pii import masked_record, shown_json
from rapport.web import bulk
from rapport.web.lists import (
    ListState,
    column_choices,
    column_headers,
    customer_cells,
    customer_order,
    state_from_query,
    trait_keys_offered,
    view_of_state,
    view_redirect,
    views_context,
)
from rapport.web.pages import (
    error_text,
    identifier_shown,
    trait_rows,
    traits_shown,
    uuid_or_none,
    workspace_page,
)

PAGE_SIZE = 50
CHURN_BANDS = {
    "high": gettext_lazy("High"),
    "medium": gettext_lazy("Medium"),
    "low": gettext_lazy("Low"),
}
TIMELINE_PAGE = 30


def _display_name(principal, profile) -> str:
    traits = traits_shown(principal, profile.traits)
    parts = ("firstName", "lastName", "first_name", "last_name")
    name = traits.get("name") or " ".join(str(traits[k]) for k in parts if traits.get(k))
    return str(name or traits.get("email") or _("Unnamed customer"))


def customer_summary(principal, profile) -> dict:
    identifiers = sorted(profile.identifiers.all(), key=lambda i: (i.kind, i.value))
    return {
        "id": profile.pk,
        "name": _display_name(principal, profile),
        "email": next(
            (
                identifier_shown(principal, "email", i.value)
                for i in identifiers
                if i.kind == "email"
            ),
            "",
        ),
        "user_id": next(
            (
                identifier_shown(principal, "user_id", i.value)
                for i in identifiers
                if i.kind == "user_id"
            ),
            "",
        ),
        "last_seen_at": profile.last_seen_at,
        "first_seen_at": profile.first_seen_at,
    }


def customers_filtered(principal, state: ListState):
    """The profiles the list's filters keep, and what the page says about them."""
    workspace = principal.workspace
    filters = state.filters
    account_id = uuid_or_none(filters.get("account")) if filters.get("account") else None
    if filters.get("account") and account_id is None:
        raise InvalidInputError("not an account id", field="account")
    segment_id = uuid_or_none(filters.get("segment")) if filters.get("segment") else None
    if filters.get("segment") and segment_id is None:
        raise InvalidInputError("not a segment id", field="segment")
    segment = (
        segment_selectors.segment_get(workspace=workspace, segment_id=segment_id)
        if segment_id
        else None
    )
    stages = segment_selectors.stage_names(workspace=workspace)
    stage = filters.get("stage", "")
    if stage and stage not in stages:
        raise InvalidInputError("not a lifecycle stage", field="stage")
    rfm_cell = filters.get("rfm", "")
    if rfm_cell and rfm_cell not in RFM_CELLS:
        raise InvalidInputError("not an RFM cell", field="rfm")
    churn_band = filters.get("churn", "")
    if churn_band and churn_band not in CHURN_BANDS:
        raise InvalidInputError("not a churn risk band (high, medium, low)", field="churn")
    within = segment_selectors.customers_within(
        workspace=workspace, segment=segment, stage=stage, rfm_cell=rfm_cell
    )
    if churn_band:
        at_risk = prediction_selectors.customers_in_band(workspace=workspace, band=churn_band)
        within = at_risk if within is None else within & at_risk
    profiles = selectors.profiles_filtered(
        workspace=workspace,
        q=filters.get("q"),
        account_id=account_id,
        consent=filters.get("consent") or None,
        within=within,
        traits=filters.get("trait") or None,
    )
    account = (
        selectors.account_get(workspace=workspace, account_id=account_id) if account_id else None
    )
    return profiles, {"segment": segment, "account": account, "stages": stages}


@workspace_page("profiles.read")
def customer_list(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    workspace = principal.workspace
    opened = view_redirect(request, "customers", "web:customer_list")
    if opened is not None:
        return opened
    state = state_from_query("customers", request.GET)
    state.view = view_of_state(request, state)
    profiles, found = customers_filtered(principal, state)
    table = selectors.profile_table(
        workspace=workspace,
        profiles=profiles,
        order=customer_order(state),
        descending=state.descending,
        cursor=state.cursor,
        page=state.page,
        limit=PAGE_SIZE,
        count_cap=lists.COUNT_CAP["customers"],
    )
    filters = state.filters
    context = {
        "state": state,
        "q": filters.get("q", ""),
        "consent": filters.get("consent", ""),
        "account": found["account"],
        "channels": ConsentChannel.choices,
        "segment": found["segment"],
        "segments": list(segment_selectors.segment_list(workspace=workspace)[:200]),
        "static_segments": list(
            segment_selectors.segment_list(workspace=workspace).filter(kind="static")[:200]
        ),
        "stage": filters.get("stage", ""),
        "stages": sorted(found["stages"].items(), key=lambda item: item[1]),
        "rfm_cell": filters.get("rfm", ""),
        "rfm_cells": RFM_CELLS,
        "churn": filters.get("churn", ""),
        "churn_bands": CHURN_BANDS,
        "traits_filter": filters.get("trait", []),
        "headers": column_headers(state),
        "columns": column_choices(state, trait_keys_offered(workspace, state.columns)),
        "rows": customer_cells(principal, table.items, state.columns),
        "table": table,
        "next_cursor": table.next_cursor,
        "count_cap": lists.COUNT_CAP["customers"],
        # An estimate to two significant figures: 298,933 is "about 300,000".
        "count_shown": int(float(f"{table.count:.2g}")),
        "sort_key": state.sort_key,
        "name_sort_link": state.sort_link("name"),
        "next_link": (
            state.query(cursor=table.next_cursor)
            if table.next_cursor
            else state.query(page=table.next_page)
            if table.next_page
            else ""
        ),
        "first_link": state.query() if (state.cursor or state.page > 1) else "",
        "address": state.query(),
        "filter_pairs": [
            (name, value)
            for name, values in filters.items()
            for value in (values if isinstance(values, list) else [values])
        ],
        "bulk_actions": bulk.actions_for(principal, "customers"),
        **views_context(request, state),
    }
    template = "web/customers/_results.html" if request.htmx else "web/customers/list.html"
    return render(request, template, context)


def timeline_shown(principal, entries) -> list[dict]:
    """Timeline entries as a page shows them: masked for roles without pii.read."""
    items = []
    for entry in entries:
        detail = None
        event = masked_record(principal, entry.data.get("event"), "event")
        if event is not None:
            shown = {
                "type": event.type,
                "event": event.event,
                "properties": event.properties,
                "traits": event.traits,
            }
            detail = json.dumps(
                {k: v for k, v in shown.items() if v}, indent=2, cls=DjangoJSONEncoder
            )
        title = shown_json(principal, entry.title)
        items.append(
            {
                "kind": entry.kind,
                "at": entry.at,
                "channel": entry.channel,
                "title": title,
                # The title is the event's name as sent (not translated).
                "named": event is not None and event.type == "track",
                "detail": detail,
            }
        )
    return items


def timeline_context(request: HttpRequest, page, url: str) -> dict:
    """A timeline page as the templates show it, and the address of the next one (this
    page's query with the next cursor), which endless scrolling fetches."""
    context = {"items": timeline_shown(request.principal, page.items), "more_url": None}
    if page.next_cursor:
        query = request.GET.copy()
        query["cursor"] = page.next_cursor
        context["more_url"] = url + "?" + query.urlencode()
    return context


def _timeline_context(request: HttpRequest, profile_id) -> dict:
    principal = request.principal
    kinds = [k for k in request.GET.get("kind", "").split(",") if k]
    page = selectors.profile_timeline(
        workspace=principal.workspace,
        profile_id=profile_id,
        kinds=kinds or None,
        channel=request.GET.get("channel") or None,
        cursor=request.GET.get("cursor") or None,
        limit=TIMELINE_PAGE,
    )
    return timeline_context(request, page, reverse("web:customer_timeline", args=[profile_id]))


@workspace_page("profiles.read")
def customer_detail(request: HttpRequest, profile_id) -> HttpResponse:
    principal = request.principal
    workspace = principal.workspace
    profile = selectors.profile_get(workspace=workspace, profile_id=profile_id)
    if profile.merged_into_id:
        return redirect("web:customer_detail", profile_id=profile.merged_into_id)
    traits = traits_shown(principal, profile.traits)
    scores = segment_selectors.profile_scores(workspace=workspace, profile=profile)
    stage = scores.lifecycle.stage if scores.lifecycle else ""
    sub_stage = scores.lifecycle.sub_stage if scores.lifecycle else ""
    context = {
        "profile": profile,
        "name": _display_name(principal, profile),
        "traits": trait_rows(traits, profile.trait_sources),
        "identifiers": [
            {"kind": i.kind, "value": identifier_shown(principal, i.kind, i.value)}
            for i in sorted(profile.identifiers.all(), key=lambda i: (i.kind, i.value))
        ],
        "consents": [
            c
            for c in selectors.consent_current(workspace=workspace, profile_id=profile.pk)
            if c["at"] is not None
        ],
        "accounts": [
            m.account
            for m in AccountMember.objects.filter(profile=profile).select_related("account")
        ],
        "merges": [
            masked_record(principal, merge, "merge")
            for merge in identity_selectors.merge_list(workspace=workspace, profile=profile)[:20]
        ],
        "scores": scores,
        "predictions": prediction_selectors.profile_predictions(
            workspace=workspace, profile=profile
        ),
        "stage_name": scores.stage_names.get(stage, stage),
        "sub_stage_name": scores.stage_names.get(sub_stage, sub_stage),
        "can_merge": principal.has_perm("profiles.merge"),
        "can_export": principal.has_perm("pii.export"),
        "can_erase": principal.has_perm("profiles.erase"),
        "kind": request.GET.get("kind", ""),
        **_timeline_context(request, profile.pk),
    }
    return render(request, "web/customers/detail.html", context)


@workspace_page("profiles.read")
def customer_timeline(request: HttpRequest, profile_id) -> HttpResponse:
    """The next page of the timeline (endless scrolling fetches it)."""
    return render(request, "web/customers/_timeline.html", _timeline_context(request, profile_id))


@workspace_page("profiles.merge")
@require_http_methods(["GET", "POST"])
def customer_merge(request: HttpRequest, profile_id) -> HttpResponse:
    """Merge another customer into this one: pick, confirm, done."""
    principal = request.principal
    workspace = principal.workspace
    survivor = selectors.profile_get(workspace=workspace, profile_id=profile_id)
    other_text = (request.POST.get("other") or request.GET.get("other") or "").strip()
    reason = (request.POST.get("reason") or "").strip()
    other, error = None, None
    if other_text:
        other_id = uuid_or_none(other_text)
        if other_id is None:
            found = selectors.profile_page(workspace=workspace, q=other_text, limit=2).items
            found = [p for p in found if p.pk != survivor.pk]
            other = found[0] if len(found) == 1 else None
            if other is None:
                error = _("No single other customer has that identifier.")
        else:
            other = selectors.profile_get(workspace=workspace, profile_id=other_id)
    if request.method == "POST" and request.POST.get("confirm") == "yes" and other is not None:
        if not reason:
            error = _("Say why these are the same customer.")
        else:
            try:
                identity_services.profile_merge(
                    survivor=survivor, merged=other, reason=reason, actor=principal.actor
                )
            except RapportError as failure:
                error = error_text(failure)
            else:
                return redirect("web:customer_detail", profile_id=survivor.pk)
    context = {
        "survivor": customer_summary(principal, survivor),
        "other": customer_summary(principal, other) if other is not None else None,
        "other_text": other_text,
        "reason": reason,
        "error": error,
    }
    return render(request, "web/customers/merge.html", context, status=422 if error else 200)


@workspace_page("profiles.merge")
@require_http_methods(["GET", "POST"])
def customer_unmerge(request: HttpRequest, merge_id) -> HttpResponse:
    principal = request.principal
    merge = identity_selectors.merge_get(workspace=principal.workspace, merge_id=merge_id)
    if request.method == "POST":
        identity_services.profile_unmerge(merge=merge, actor=principal.actor)
        return redirect("web:customer_detail", profile_id=merge.survivor_id)
    shown = masked_record(principal, merge, "merge")
    return render(request, "web/customers/unmerge.html", {"merge": shown})


@workspace_page("pii.export")
def customer_export(request: HttpRequest, profile_id) -> HttpResponse:
    principal = request.principal
    profile = selectors.profile_get(workspace=principal.workspace, profile_id=profile_id)
    data = identity_services.profile_export(profile=profile, actor=principal.actor)
    response = HttpResponse(
        json.dumps(data, indent=2, cls=DjangoJSONEncoder), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="customer-{profile.pk}.json"'
    return response


@workspace_page("profiles.erase")
@require_http_methods(["GET", "POST"])
def customer_erase(request: HttpRequest, profile_id) -> HttpResponse:
    principal = request.principal
    profile = selectors.profile_get(workspace=principal.workspace, profile_id=profile_id)
    if request.method == "POST":
        if request.POST.get("confirm_id", "").strip() != str(profile.pk)[:8]:
            context = {
                "profile": customer_summary(principal, profile),
                "error": _("Type the first eight characters of the id to confirm."),
            }
            return render(request, "web/customers/erase.html", context, status=422)
        identity_services.profile_erase(profile=profile, actor=principal.actor)
        return redirect(reverse("web:customer_list") + "?erased=1")
    return render(
        request, "web/customers/erase.html", {"profile": customer_summary(principal, profile)}
    )
