"""Customers: the list, the 360° page with its timeline, and the confirmed actions on
a customer (merge, unmerge, export, erase)."""

import json
from datetime import datetime

from django.apps import apps
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from rapport.core.errors import InvalidInputError, RapportError
from rapport.identity import selectors as identity_selectors
from rapport.identity import services as identity_services
from rapport.predictions import selectors as prediction_selectors
from rapport.profiles import lists, selectors
from rapport.profiles import services as profile_services
from rapport.profiles.models import AccountMember, ConsentChannel
from rapport.profiles.timeline_sentences import (
    CHANNEL_LABELS,
    PURPOSE_LABELS,
    STATUS_LABELS,
    entry_sentence,
    money,
)
from rapport.segments import selectors as segment_selectors
from rapport.segments.rfm import CELLS as RFM_CELLS
from rapport.tenancy.models import Source
from rapport.tenancy.pii import masked_record, shown_json, shown_trait_changes
from rapport.web import bulk
from rapport.web.lists import (
    ListState,
    column_choices,
    column_headers,
    column_move_redirect,
    customer_cells,
    customer_order,
    state_from_query,
    trait_keys_offered,
    view_of_state,
    view_redirect,
    views_context,
)
from rapport.web.merge_reasons import merges_shown
from rapport.web.pages import (
    error_text,
    identifier_shown,
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
        raise InvalidInputError(gettext("not an account id"), field="account")
    segment_id = uuid_or_none(filters.get("segment")) if filters.get("segment") else None
    if filters.get("segment") and segment_id is None:
        raise InvalidInputError(gettext("not a segment id"), field="segment")
    segment = (
        segment_selectors.segment_get(workspace=workspace, segment_id=segment_id)
        if segment_id
        else None
    )
    stages = segment_selectors.stage_names(workspace=workspace)
    stage = filters.get("stage", "")
    if stage and stage not in stages:
        raise InvalidInputError(gettext("not a lifecycle stage"), field="stage")
    rfm_cell = filters.get("rfm", "")
    if rfm_cell and rfm_cell not in RFM_CELLS:
        raise InvalidInputError(gettext("not an RFM cell"), field="rfm")
    churn_band = filters.get("churn", "")
    if churn_band and churn_band not in CHURN_BANDS:
        raise InvalidInputError(gettext("not a churn risk band (high, medium, low)"), field="churn")
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
    moved = column_move_redirect(request, state)
    if moved is not None:
        return moved
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


def _change_rows(principal, changes: dict) -> list[dict]:
    """A person's edit as the timeline details it: each field, from what, to what."""
    shown = shown_trait_changes(principal, changes)
    return [
        {
            "name": name,
            "before": _value_text(change.get("from")),
            "after": None if change.get("removed") else _value_text(change.get("to")),
        }
        for name, change in sorted(shown.items())
    ]


def timeline_shown(principal, entries) -> list[dict]:
    """Timeline entries as a page shows them: a sentence each (rapport/profiles/
    timeline_sentences.py), masked for roles without pii.read."""
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
        edit = entry.data.get("trait_edit")
        items.append(
            {
                "kind": entry.kind,
                "at": entry.at,
                "channel": entry.channel,
                "title": shown_json(principal, entry.title),
                "sentence": entry_sentence(entry, event),
                # The title is the event's name as sent (not translated).
                "named": event is not None and event.type == "track",
                "detail": detail,
                "changes": _change_rows(principal, edit.changes) if edit else None,
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


def _timeline_context(request: HttpRequest, profile_id, profile=None) -> dict:
    principal = request.principal
    kinds = [k for k in request.GET.get("kind", "").split(",") if k]
    page = selectors.profile_timeline(
        workspace=principal.workspace,
        profile_id=profile_id,
        kinds=kinds or None,
        channel=request.GET.get("channel") or None,
        cursor=request.GET.get("cursor") or None,
        limit=TIMELINE_PAGE,
        profile=profile,
    )
    return timeline_context(request, page, reverse("web:customer_timeline", args=[profile_id]))


def _value_text(value) -> str:
    """A trait's value as a table cell reads it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(_("Yes") if value else _("No"))
    if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        return ", ".join(_value_text(v) for v in value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, cls=DjangoJSONEncoder)
    return str(value)


TRAIT_ROWS_MAX = 300
TRAIT_DEPTH_SHOWN = 4


def trait_table(traits: dict, sources: dict, source_names: dict) -> list[dict]:
    """Traits as a table of fields: nested objects as indented rows under their name
    (`address`, then `city` under it), lists of plain values joined, lists of objects numbered;
    where and when each top-level field was set, for its hover and details."""
    rows: list[dict] = []

    def add(name: str, path: str, value, depth: int, source: dict | None) -> None:
        if len(rows) >= TRAIT_ROWS_MAX:
            return
        nested = isinstance(value, dict) or (
            isinstance(value, list) and any(isinstance(v, dict | list) for v in value)
        )
        if nested and depth < TRAIT_DEPTH_SHOWN and value:
            rows.append(
                {
                    "name": name,
                    "path": path,
                    "depth": depth,
                    "value": "",
                    "group": True,
                    "source": source,
                }
            )
            items = (
                value.items()
                if isinstance(value, dict)
                else ((str(i + 1), v) for i, v in enumerate(value))
            )
            for key, item in items:
                add(str(key), f"{path}.{key}", item, depth + 1, None)
            return
        rows.append(
            {
                "name": name,
                "path": path,
                "depth": depth,
                "value": _value_text(value),
                "group": False,
                "source": source,
            }
        )

    for name in sorted(traits, key=str.lower):
        source = dict(sources.get(name) or {})
        if source.get("source_id"):
            source["source_name"] = source_names.get(source["source_id"], "")
        source["text"] = provenance_text(source)
        add(name, name, traits[name], 0, source)
    return rows


def provenance_text(source: dict) -> str:
    """Where and when a trait was set, in words (a row's hover)."""
    at = source.get("at")
    try:
        moment = datetime.fromisoformat(at) if at else None
    except ValueError:
        moment = None
    when = date_format(timezone.localtime(moment), "DATETIME_FORMAT") if moment else ""
    if source.get("actor"):
        return _("Set by %(who)s on %(when)s") % {"who": source["actor"], "when": when}
    if source.get("source_name"):
        return _("Set on %(when)s by the %(source)s source") % {
            "when": when,
            "source": source["source_name"],
        }
    return _("Set on %(when)s") % {"when": when} if when else ""


def _consent_summary(consents: list[dict]) -> dict:
    """Which channels may carry marketing now, and which said no."""
    granted = [
        CHANNEL_LABELS.get(c["channel"], c["channel"])
        for c in consents
        if c["purpose"] == "marketing" and c["status"] == "granted"
    ]
    denied = [
        CHANNEL_LABELS.get(c["channel"], c["channel"])
        for c in consents
        if c["purpose"] == "marketing" and c["status"] == "denied"
    ]
    return {"granted": granted, "denied": denied}


def _top_reason(churn):
    reasons = list(getattr(churn, "reasons", None) or [])
    if not reasons:
        return None
    return max(reasons, key=lambda r: r.get("contribution") or 0)


@workspace_page("profiles.read")
def customer_detail(request: HttpRequest, profile_id) -> HttpResponse:
    principal = request.principal
    workspace = principal.workspace
    profile = selectors.profile_get(workspace=workspace, profile_id=profile_id)
    if profile.merged_into_id:
        return redirect("web:customer_detail", profile_id=profile.merged_into_id)
    traits = traits_shown(principal, profile.traits)
    scores = segment_selectors.profile_scores(workspace=workspace, profile=profile)
    predictions = prediction_selectors.profile_predictions(workspace=workspace, profile=profile)
    stage = scores.lifecycle.stage if scores.lifecycle else ""
    sub_stage = scores.lifecycle.sub_stage if scores.lifecycle else ""
    consents = selectors.consent_current(
        workspace=workspace, profile_id=profile.pk, profile=profile
    )
    accounts = [
        m.account
        for m in AccountMember.objects.filter(profile=profile)
        .select_related("account")
        .order_by("account__name")
    ]
    source_names = {
        str(pk): name
        for pk, name in Source.objects.filter(workspace=workspace).values_list("pk", "name")
    }
    company = traits.get("company")
    if isinstance(company, dict):
        company = company.get("name")
    context = {
        "profile": profile,
        "name": _display_name(principal, profile),
        "company": accounts[0] if accounts else None,
        "company_text": company if isinstance(company, str) else "",
        "traits": trait_table(traits, profile.trait_sources, source_names),
        "identifiers": [
            {"kind": i.kind, "value": identifier_shown(principal, i.kind, i.value)}
            for i in sorted(profile.identifiers.all(), key=lambda i: (i.kind, i.value))
        ],
        "consents": [
            {
                **c,
                "channel_label": CHANNEL_LABELS.get(c["channel"], c["channel"]),
                "purpose_label": PURPOSE_LABELS.get(c["purpose"], c["purpose"]),
                "status_label": STATUS_LABELS.get(c["status"], c["status"]),
            }
            for c in consents
            if c["at"] is not None
        ],
        "consent_summary": _consent_summary(consents),
        "accounts": accounts,
        "merges": merges_shown(
            principal,
            identity_selectors.merge_list(workspace=workspace, profile=profile)[:20],
            "merge",
        ),
        "scores": scores,
        "predictions": predictions,
        "top_reason": _top_reason(predictions.churn),
        "clv_text": money(predictions.clv.clv, predictions.clv.currency)
        if predictions.clv is not None and predictions.clv.clv is not None
        else "",
        "clv_order_text": money(predictions.clv.expected_order_value, predictions.clv.currency)
        if predictions.clv is not None and predictions.clv.expected_order_value is not None
        else "",
        "stage_name": scores.stage_names.get(stage, stage),
        "sub_stage_name": scores.stage_names.get(sub_stage, sub_stage),
        "can_merge": principal.has_perm("profiles.merge"),
        "can_export": principal.has_perm("pii.export"),
        "can_erase": principal.has_perm("profiles.erase"),
        "can_edit": principal.has_perm("profiles.write"),
        "kind": request.GET.get("kind", ""),
        **_timeline_context(request, profile.pk, profile),
        **_journeys_context(principal, profile),
        **_next_action_context(request, profile),
        **_sales_context(principal, profile),
    }
    return render(request, "web/customers/detail.html", context)


def _sales_context(principal, profile) -> dict:
    """The owner in the header and the sales panel (when the sales app is installed)."""
    if not apps.is_installed("rapport.sales"):
        return {"show_sales": False, "owner": None}
    from rapport.web.sales import person_sales

    context = person_sales(principal, profile)
    context["owner"] = context["sales"]["owner_label"] if context["show_sales"] else None
    return context


def _journeys_context(principal, profile) -> dict:
    """The journeys the person is in, and where (when the journeys app is installed)."""
    if not apps.is_installed("rapport.journeys") or not principal.has_perm("journeys.read"):
        return {"show_journeys": False}
    from rapport.web.journeys import person_journeys

    return {"show_journeys": True, "journeys": person_journeys(principal, profile)}


def _next_action_context(request: HttpRequest, profile) -> dict:
    """The "Next best action" simulator (when the decisions app is installed)."""
    if not apps.is_installed("rapport.decisions"):
        return {"show_next_action": False}
    from rapport.web.decisions import simulator_context

    return simulator_context(request, profile)


COMMON_FIELDS = ("name", "email", "phone", "company")


def _form_rows(principal, profile) -> list[dict]:
    """The edit form's rows: the usual fields first, then the others by name. A field
    is locked when its value is nested (the API edits those) or, for a role without
    pii.read, when it holds personal data."""
    traits = profile.traits
    shown = traits_shown(principal, traits)
    names = [n for n in COMMON_FIELDS] + sorted(
        (n for n in traits if n not in COMMON_FIELDS), key=str.lower
    )
    rows = []
    for name in names:
        value = traits.get(name)
        nested = isinstance(value, dict | list)
        personal = not principal.can_see_pii and profile_services.trait_holds_personal_data(
            name, value if name in traits else None
        )
        rows.append(
            {
                "name": name,
                "present": name in traits,
                "value": "" if value is None else _value_text(shown.get(name)),
                "locked": nested or personal,
                "why": _("Personal data: your role cannot see or change it")
                if personal
                else (_("A nested value: edit it through the API") if nested else ""),
            }
        )
    return rows


def _typed(name: str, text: str, before):
    """What a person typed, as the type the field had (a number stays a number)."""
    if isinstance(before, bool):
        lowered = text.strip().lower()
        if lowered in ("true", "yes", "1", str(_("Yes")).lower()):
            return True
        if lowered in ("false", "no", "0", str(_("No")).lower()):
            return False
        raise InvalidInputError(_("type yes or no"), field=f"traits.{name}")
    if isinstance(before, int | float):
        try:
            number = float(text.strip().replace(",", "."))
        except ValueError:
            raise InvalidInputError(_("type a number"), field=f"traits.{name}") from None
        if number.is_integer() and isinstance(before, int):
            return int(number)
        return number
    return text


def _form_changes(request: HttpRequest, rows: list[dict], profile) -> dict:
    """The changes a submitted form asks for: edited values, cleared or ticked fields
    (removed), and one new field."""
    changes: dict = {}
    removing = set(request.POST.getlist("remove"))
    for row in rows:
        name = row["name"]
        if row["locked"]:
            continue
        if name in removing and row["present"]:
            changes[name] = None
            continue
        key = f"value:{name}"
        if key not in request.POST:
            continue
        text = request.POST[key].strip()
        if text == row["value"]:
            continue
        if not text:
            if row["present"]:
                changes[name] = None
            continue
        changes[name] = _typed(name, text, profile.traits.get(name))
    new_name = request.POST.get("new_name", "").strip()
    new_value = request.POST.get("new_value", "").strip()
    if new_name:
        if not new_value:
            raise InvalidInputError(_("give the new field a value"), field="new_value")
        changes[new_name] = new_value
    elif new_value:
        raise InvalidInputError(_("give the new field a name"), field="new_name")
    return changes


@workspace_page("profiles.write")
@require_http_methods(["GET", "POST"])
def customer_traits_edit(request: HttpRequest, profile_id) -> HttpResponse:
    """Edit a customer's fields: each change is kept as made by this person (the
    trait's source, the timeline, the audit log)."""
    principal = request.principal
    workspace = principal.workspace
    profile = selectors.profile_get(workspace=workspace, profile_id=profile_id)
    if profile.merged_into_id:
        return redirect("web:customer_traits_edit", profile_id=profile.merged_into_id)
    rows = _form_rows(principal, profile)
    error, status = None, 200
    if request.method == "POST":
        try:
            changes = _form_changes(request, rows, profile)
            if changes:
                profile_services.profile_traits_edit(
                    workspace=workspace,
                    profile=profile,
                    changes=changes,
                    actor=principal.actor,
                    can_see_pii=principal.can_see_pii,
                )
        except RapportError as failure:
            error, status = error_text(failure), failure.status
        else:
            return redirect("web:customer_detail", profile_id=profile.pk)
    context = {
        "profile": profile,
        "name": _display_name(principal, profile),
        "rows": rows,
        "error": error,
        "new_name": request.POST.get("new_name", ""),
        "new_value": request.POST.get("new_value", ""),
    }
    return render(request, "web/customers/traits_edit.html", context, status=status)


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
    shown = merges_shown(principal, [merge], "merge")[0]
    return render(request, "web/customers/unmerge.html", {"merge": shown})


@workspace_page("pii.export")
@require_http_methods(["GET", "POST"])
def customer_export(request: HttpRequest, profile_id) -> HttpResponse:
    """GET asks for confirmation and discloses nothing (a crawler following links must
    not export anyone); POST downloads everything held about the person, audited."""
    principal = request.principal
    profile = selectors.profile_get(workspace=principal.workspace, profile_id=profile_id)
    if request.method != "POST":
        return render(request, "web/customers/export.html", {"profile_id": profile.pk})
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
