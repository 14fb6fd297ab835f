"""The customer and account lists as a person arranges them: the columns they chose,
the order, the filters, all kept in the address (so a link reproduces the view), and
the saved views that keep an arrangement under a name.

Which columns exist is `rapport.profiles.lists` (one catalogue for the pages, saved
views and the API); this module reads their values for one page of rows, asking each
app through its selectors, and masks personal data as every page does.
"""

import json
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.db.models import F
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Lower
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from rapport.core.errors import InvalidInputError, PermissionDeniedError
from rapport.core.money import money_format
from rapport.predictions import selectors as prediction_selectors
from rapport.profiles import lists, selectors
from rapport.profiles import services as profile_services
from rapport.profiles.models import AccountMember, ConsentChannel, ConsentPurpose, Profile
from rapport.segments import selectors as segment_selectors
from rapport.tenancy.pii import shown_json
from rapport.web.pages import identifier_shown, uuid_or_none, workspace_page

# Trait keys offered as columns: those of the most recently seen customers (reading the
# keys of a million profiles to list them would be a scan).
TRAIT_SAMPLE = 300
TRAIT_KEYS_OFFERED = 30
LEGACY_SORTS = {"recent": "-last_seen", "oldest": "last_seen"}


@dataclass
class ListState:
    """What the address says: the columns, the sort, the filters, the saved view."""

    list_name: str
    columns: list[str]
    sort: str
    filters: dict
    view: object = None
    cursor: str | None = None
    page: int = 1
    errors: list[str] = field(default_factory=list)

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")

    @property
    def sort_key(self) -> str:
        return self.sort.removeprefix("-")

    def query(self, **changes) -> str:
        """This view's address (columns, sort, filters, view), with `changes`."""
        params: list[tuple[str, str]] = []
        values = {"col": self.columns, "sort": self.sort, **self.filters}
        if self.view is not None:
            values["view"] = str(self.view.pk)
        values.update(changes)
        for name, value in values.items():
            for item in value if isinstance(value, list) else [value]:
                if item not in (None, ""):
                    params.append((name, str(item)))
        return urlencode(params)

    def filter_query(self) -> str:
        return urlencode([(k, v) for k, vs in self.filters.items() for v in _as_list(vs)])

    def sort_link(self, key: str) -> str:
        """The address that sorts by `key`, the other way round when it already does."""
        if self.sort_key == key:
            target = key if self.descending else f"-{key}"
        else:
            target = f"-{key}" if key in ("last_seen", "first_seen", "churn", "clv") else key
        return self.query(sort=target, cursor=None, page=None)


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def state_from_query(list_name: str, query: QueryDict) -> ListState:
    """The list's arrangement from its address; unknown columns, sorts or filters are
    a 422 naming the parameter."""
    chosen = [c for c in query.getlist("col") if c]
    chosen += [
        lists.TRAIT_PREFIX + t.strip() for t in query.getlist("trait_col") if t and t.strip()
    ]
    columns = (
        lists.columns_clean(list_name, chosen, field="col")
        if chosen
        else list(lists.DEFAULT_COLUMNS[list_name])
    )
    columns = columns_moved(columns, query.get("move", ""))
    sort = query.get("sort", "")
    sort = lists.sort_clean(
        list_name, LEGACY_SORTS.get(sort, sort) if list_name == "customers" else sort
    )
    raw = {}
    for name, most in lists.FILTERS[list_name].items():
        values = [v for v in query.getlist(name) if v.strip()]
        if values:
            raw[name] = values if most > 1 else values[0]
    filters = lists.filters_clean(list_name, raw, field="")
    page_text = query.get("page", "1")
    if not page_text.isdigit() or not 1 <= int(page_text) <= 10_000:
        raise InvalidInputError(gettext("not a page number"), field="page")
    return ListState(
        list_name=list_name,
        columns=columns,
        sort=sort,
        filters=filters,
        cursor=query.get("cursor") or None,
        page=int(page_text),
    )


def columns_moved(columns: list[str], move: str) -> list[str]:
    """The columns with one moved a place: `move` is `up:<key>` or `down:<key>` (the
    column picker's buttons send it). A move past either end, or of a column not
    shown, changes nothing; anything else is a 422 naming `move`."""
    if not move:
        return columns
    direction, _sep, key = move.partition(":")
    if direction not in ("up", "down") or not key:
        raise InvalidInputError(gettext("write up:<column> or down:<column>"), field="move")
    if key not in columns:
        return columns
    moved = list(columns)
    at = moved.index(key)
    to = at - 1 if direction == "up" else at + 1
    if 0 <= to < len(moved):
        moved[at], moved[to] = moved[to], moved[at]
    return moved


def column_move_redirect(request: HttpRequest, state: ListState) -> HttpResponse | None:
    """After a column moved, the list's own address with the new order (so that a
    reload does not move it again), the column picker left open."""
    if "move" not in request.GET:
        return None
    return redirect(f"{request.path}?{state.query(page=None, cursor=None)}&picker=open")


def state_of_view(view) -> ListState:
    return ListState(
        list_name=view.list,
        columns=list(view.columns),
        sort=view.sort or lists.DEFAULT_SORT[view.list],
        filters=dict(view.filters),
        view=view,
    )


def view_redirect(request: HttpRequest, list_name: str, url_name: str) -> HttpResponse | None:
    """Opening a saved view (`?view=<id>` alone), or the list bare when the person chose
    a default view: a redirect to the view's own address, so that the address says
    what is shown and back/forward work."""
    principal = request.principal
    keys = set(request.GET.keys()) - {"erased"}
    view = None
    if keys == {"view"}:
        view_id = uuid_or_none(request.GET["view"])
        if view_id is None:
            if request.GET["view"] == "none":
                return None
            raise InvalidInputError(gettext("not a saved view id"), field="view")
        view = selectors.saved_view_get(
            workspace=principal.workspace, user=principal.user, view_id=view_id
        )
    elif not keys:
        view = selectors.saved_view_default(
            workspace=principal.workspace, user=principal.user, list_name=list_name
        )
    if view is None:
        return None
    return redirect(reverse(url_name) + "?" + state_of_view(view).query())


def view_of_state(request: HttpRequest, state: ListState):
    """The saved view the address names (`view=<id>`), if it still exists."""
    view_id = uuid_or_none(request.GET.get("view"))
    if view_id is None:
        return None
    principal = request.principal
    return (
        selectors.saved_view_list(
            workspace=principal.workspace, user=principal.user, list_name=state.list_name
        )
        .filter(pk=view_id)
        .first()
    )


def views_context(request: HttpRequest, state: ListState) -> dict:
    principal = request.principal
    views = list(
        selectors.saved_view_list(
            workspace=principal.workspace, user=principal.user, list_name=state.list_name
        )[:100]
    )
    default = selectors.saved_view_default(
        workspace=principal.workspace, user=principal.user, list_name=state.list_name
    )
    can_share = principal.has_perm("views.share")
    current = state.view
    return {
        "views": views,
        "view": current,
        "view_is_default": bool(current and default and default.pk == current.pk),
        "view_changed": bool(
            current
            and (
                current.columns != state.columns
                or (current.sort or lists.DEFAULT_SORT[state.list_name]) != state.sort
                or current.filters != state.filters
            )
        ),
        "view_may_change": bool(
            current
            and selectors.saved_view_may_change(current, user=principal.user, can_share=can_share)
        ),
        "can_share": can_share,
        "list_name": state.list_name,
        "view_save_url": VIEW_URLS[state.list_name][0],
        "view_change_url": VIEW_URLS[state.list_name][1],
    }


# --- Columns ------------------------------------------------------------------------


def trait_keys_offered(workspace, chosen: list[str]) -> list[str]:
    recent = (
        Profile.objects.filter(workspace=workspace, merged_into__isnull=True)
        .order_by("-last_seen_at", "-id")
        .values_list("traits", flat=True)[:TRAIT_SAMPLE]
    )
    counts: dict[str, int] = {}
    for traits in recent:
        for key in traits or {}:
            if lists.TRAIT_KEY.match(key):
                counts[key] = counts.get(key, 0) + 1
    offered = sorted(counts, key=lambda k: (-counts[k], k))[:TRAIT_KEYS_OFFERED]
    for key in chosen:
        name = key.removeprefix(lists.TRAIT_PREFIX)
        if key.startswith(lists.TRAIT_PREFIX) and name not in offered:
            offered.append(name)
    return sorted(offered)


def column_headers(state: ListState) -> list[dict]:
    headers = []
    for key in state.columns:
        column = lists.column_get(state.list_name, key)
        headers.append(
            {
                "key": key,
                "label": column.label,
                # A trait's name is the workspace's own word, shown as sent.
                "trait": key.startswith(lists.TRAIT_PREFIX),
                "sortable": bool(column.sort),
                "sorted": state.sort_key == key,
                "descending": state.descending,
                "link": state.sort_link(key) if column.sort else "",
            }
        )
    return headers


def column_choices(state: ListState, trait_keys: list[str]) -> list[dict]:
    """Every column the picker offers: the chosen ones first, in their order."""
    options = [(c.key, c.label) for c in lists.list_columns(state.list_name)]
    options += [(lists.TRAIT_PREFIX + k, k) for k in trait_keys]
    labels = dict(options)
    ordered = [k for k in state.columns if k in labels] + [
        k for k, _ in options if k not in state.columns
    ]
    last = len(state.columns) - 1
    return [
        {
            "key": k,
            "label": labels[k],
            "chosen": k in state.columns,
            "trait": k.startswith("trait:"),
            # Where it stands among the shown columns (the picker's up/down buttons).
            "first": n == 0,
            "last": n == last,
        }
        for n, k in enumerate(ordered)
    ]


def _shown_value(value) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, dict | list | bool):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def customer_cells(principal, profiles: list, columns: list[str], *, for_export=False) -> list:
    """Per profile: {column key: text} for the chosen columns, read in one query per
    kind of column (never one per row), masked for roles without pii.read."""
    from rapport.web.customers import CHURN_BANDS, customer_summary

    workspace = principal.workspace
    ids = [p.pk for p in profiles]
    wanted = set(columns)
    stages, stage_names, scores, accounts, consents = {}, {}, {"churn": {}, "clv": {}}, {}, {}
    if "stage" in wanted:
        stages = segment_selectors.lifecycle_stages_of(workspace=workspace, profile_ids=ids)
        stage_names = segment_selectors.stage_names(workspace=workspace)
    if wanted & {"churn", "clv"}:
        scores = prediction_selectors.scores_of(workspace=workspace, profile_ids=ids)
    if "account" in wanted:
        for link in (
            AccountMember.objects.filter(workspace=workspace, profile_id__in=ids)
            .select_related("account")
            .order_by("account__name")
        ):
            accounts.setdefault(link.profile_id, []).append(link.account)
    if "consent" in wanted:
        for pk, channel in selectors.consent_granted_channels(
            workspace=workspace,
            profile_ids=ids,
            channels=list(ConsentChannel.values),
            purpose=ConsentPurpose.MARKETING,
            now=timezone.now(),
        ):
            consents.setdefault(pk, []).append(channel)
    rows = []
    for profile in profiles:
        summary = customer_summary(principal, profile)
        traits = (
            shown_json(principal, profile.traits)
            if any(c.startswith(lists.TRAIT_PREFIX) for c in columns)
            else {}
        )
        cells: dict = {}
        for key in columns:
            if key == "email":
                cells[key] = summary["email"]
            elif key == "user_id":
                cells[key] = summary["user_id"]
            elif key == "stage":
                stage = stages.get(profile.pk, "")
                cells[key] = stage_names.get(stage, stage)
            elif key == "churn":
                score = scores["churn"].get(profile.pk)
                cells[key] = (
                    f"{CHURN_BANDS.get(score.band, score.band)} · {score.probability:.0%}"
                    if score
                    else ""
                )
            elif key == "clv":
                score = scores["clv"].get(profile.pk)
                cells[key] = (
                    ""
                    if score is None or score.clv is None
                    else money_format(score.clv, score.currency)
                    if score.currency
                    else f"{score.clv:,.2f}"
                )
            elif key == "last_seen":
                cells[key] = profile.last_seen_at
            elif key == "first_seen":
                cells[key] = profile.first_seen_at
            elif key == "account":
                cells[key] = ", ".join(a.name or a.group_id for a in accounts.get(profile.pk, []))
            elif key == "consent":
                cells[key] = ", ".join(sorted(consents.get(profile.pk, [])))
            elif key.startswith(lists.TRAIT_PREFIX):
                cells[key] = _shown_value(traits.get(key[len(lists.TRAIT_PREFIX) :]))
            else:  # a column another app registered, read by its own presenter
                cells[key] = COLUMN_READERS.get(key, lambda *_: "")(principal, profile)
        rows.append(
            {
                **summary,
                "summary": summary,
                "cells": [
                    {"key": k, "value": cells[k], "label": lists.column_get("customers", k).label}
                    for k in columns
                ],
            }
        )
    return rows


# Readers of columns other apps register (`owner`, later): key -> (principal, profile).
COLUMN_READERS: dict = {}


def customer_order(state: ListState):
    """The sort as an expression over profiles; None for last seen (keyset-paged)."""
    key = state.sort_key
    if key == "last_seen":
        return None
    if key == "first_seen":
        return F("first_seen_at")
    if key == "name":
        from django.db.models.fields.json import KeyTextTransform

        return Lower(KeyTextTransform("name", "traits"))
    if key == "stage":
        return segment_selectors.lifecycle_stage_order()
    if key in ("churn", "clv"):
        return prediction_selectors.score_order(key)
    if key.startswith(lists.TRAIT_PREFIX):
        # The JSON value itself: numbers sort as numbers, text as text.
        return KeyTransform(key[len(lists.TRAIT_PREFIX) :], "traits")
    raise InvalidInputError(
        gettext("%(key)r is not a column this list sorts by") % {"key": key}, field="sort"
    )


def identifier_text(principal, kind: str, value: str) -> str:
    return identifier_shown(principal, kind, value)


# --- Saved views (the pages' forms; the API is rapport/profiles/api.py) -------------

LIST_URLS = {"customers": "web:customer_list", "accounts": "web:account_list"}
VIEW_URLS = {
    "customers": ("web:customer_view_save", "web:customer_view_change"),
    "accounts": ("web:account_view_save", "web:account_view_change"),
}


def _posted_state(request: HttpRequest, list_name: str) -> ListState:
    """The arrangement the form carries (the list's address, as hidden fields)."""
    return state_from_query(list_name, QueryDict(request.POST.get("state", "")))


@workspace_page("profiles.read")
@require_POST
def saved_view_save(request: HttpRequest, list_name: str) -> HttpResponse:
    """Save the list as it is now under a new name (private, or shared)."""
    if list_name not in lists.LISTS:
        raise InvalidInputError(gettext("not a list"), field="list")
    principal = request.principal
    state = _posted_state(request, list_name)
    shared = request.POST.get("shared") == "on"
    if shared and not principal.has_perm("views.share"):
        raise PermissionDeniedError(gettext("Your role does not allow sharing views"))
    view = profile_services.saved_view_create(
        workspace=principal.workspace,
        actor=principal.actor,
        list_name=list_name,
        name=request.POST.get("name", ""),
        shared=shared,
        columns=state.columns,
        sort=state.sort,
        filters=state.filters,
    )
    return redirect(reverse(LIST_URLS[list_name]) + "?" + state_of_view(view).query())


@workspace_page("profiles.read")
@require_POST
def saved_view_change(request: HttpRequest, list_name: str, view_id) -> HttpResponse:
    """Keep the current arrangement in the view, rename it, share it, make it the
    list's default for this person, or delete it."""
    if list_name not in lists.LISTS:
        raise InvalidInputError(gettext("not a list"), field="list")
    principal = request.principal
    view = selectors.saved_view_get(
        workspace=principal.workspace, user=principal.user, view_id=view_id
    )
    action = request.POST.get("action", "")
    list_url = reverse(LIST_URLS[list_name])
    if action == "default":
        profile_services.saved_view_default_set(
            workspace=principal.workspace, user=principal.user, list_name=view.list, view=view
        )
        return redirect(list_url + "?" + state_of_view(view).query())
    if action == "undefault":
        profile_services.saved_view_default_set(
            workspace=principal.workspace, user=principal.user, list_name=view.list, view=None
        )
        return redirect(list_url + "?" + state_of_view(view).query())
    can_share = principal.has_perm("views.share")
    if not selectors.saved_view_may_change(view, user=principal.user, can_share=can_share):
        raise PermissionDeniedError(gettext("Your role does not allow changing a shared view"))
    if action == "delete":
        profile_services.saved_view_delete(view=view, actor=principal.actor)
        return redirect(list_url + "?view=none")
    if action == "rename":
        view = profile_services.saved_view_update(
            view=view, actor=principal.actor, name=request.POST.get("name", "")
        )
    elif action == "update":
        state = _posted_state(request, list_name)
        view = profile_services.saved_view_update(
            view=view,
            actor=principal.actor,
            columns=state.columns,
            sort=state.sort,
            filters=state.filters,
        )
    elif action in ("share", "unshare"):
        if not can_share:
            raise PermissionDeniedError(gettext("Your role does not allow sharing views"))
        view = profile_services.saved_view_update(
            view=view, actor=principal.actor, shared=action == "share"
        )
    else:
        raise InvalidInputError(gettext("not an action on a view"), field="action")
    return redirect(list_url + "?" + state_of_view(view).query())
