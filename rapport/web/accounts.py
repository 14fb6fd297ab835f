"""Accounts (companies): the list, one account with its place in the hierarchy, its
people and the combined timeline of everything they did, and undoing an account merge."""

from django.core.paginator import Paginator
from django.db.models import Count, F
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Lower
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from rapport.core.errors import InvalidInputError
from rapport.profiles import lists, selectors
from rapport.profiles import services as profile_services
from rapport.profiles.models import AccountMember
from rapport.web import bulk
from rapport.web.customers import customer_summary, timeline_context
from rapport.web.lists import (
    _shown_value,
    column_choices,
    column_headers,
    column_move_redirect,
    state_from_query,
    view_of_state,
    view_redirect,
    views_context,
)
from rapport.web.merge_reasons import merges_shown
from rapport.web.pages import trait_rows, traits_shown, workspace_page

ACCOUNTS_PAGE = 50
MEMBERS_SHOWN = 25
TIMELINE_PAGE = 30
ANCESTORS_SHOWN = 20


def _account_order(state):
    key = state.sort_key
    if key == "name":
        return (Lower("name"), Lower("group_id"))
    if key in ("last_seen", "first_seen"):
        return (F(f"{key}_at"),)
    return (KeyTransform(key.removeprefix(lists.TRAIT_PREFIX), "traits"),)


def account_cells(principal, accounts: list, columns: list[str]) -> list[dict]:
    """Per account, the chosen columns' values (people counted for this page only)."""
    ids = [a.pk for a in accounts]
    members = (
        dict(
            AccountMember.objects.filter(account_id__in=ids)
            .values("account_id")
            .annotate(n=Count("id"))
            .values_list("account_id", "n")
        )
        if "members" in columns
        else {}
    )
    rows = []
    for account in accounts:
        traits = traits_shown(principal, account.traits)
        cells = []
        for key in columns:
            if key == "domain":
                value = traits.get("domain") or traits.get("website") or ""
            elif key == "parent":
                value = (account.parent.name or account.parent.group_id) if account.parent else ""
            elif key == "members":
                value = members.get(account.pk, 0)
            elif key in ("last_seen", "first_seen"):
                value = getattr(account, f"{key}_at")
            else:
                value = _shown_value(traits.get(key.removeprefix(lists.TRAIT_PREFIX)))
            label = lists.column_get("accounts", key).label
            cells.append({"key": key, "value": value, "label": label})
        rows.append({"account": account, "cells": cells})
    return rows


@workspace_page("profiles.read")
def account_list(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    opened = view_redirect(request, "accounts", "web:account_list")
    if opened is not None:
        return opened
    state = state_from_query("accounts", request.GET)
    state.view = view_of_state(request, state)
    moved = column_move_redirect(request, state)
    if moved is not None:
        return moved
    q = state.filters.get("q", "").strip()
    if len(q) > 255:
        raise InvalidInputError(gettext("at most 255 characters"), field="q")
    accounts = selectors.account_list(workspace=principal.workspace, q=q or None)
    order = _account_order(state)
    ordering = [
        o.desc(nulls_last=True) if state.descending else o.asc(nulls_last=True) for o in order
    ]
    ordering.append("-id" if state.descending else "id")
    page = Paginator(accounts.select_related("parent").order_by(*ordering), ACCOUNTS_PAGE).get_page(
        request.GET.get("page")
    )
    keys = sorted(
        {k for traits in accounts.values_list("traits", flat=True)[:300] for k in traits or {}}
        | {c.removeprefix(lists.TRAIT_PREFIX) for c in state.columns if c.startswith("trait:")}
    )
    context = {
        "q": q,
        "page": page,
        "state": state,
        "query": state.query(page=None) + "&",
        "headers": column_headers(state),
        "name_sort_link": state.sort_link("name"),
        "sort_key": state.sort_key,
        "columns": column_choices(state, [k for k in keys if lists.TRAIT_KEY.match(k)][:30]),
        "rows": account_cells(principal, list(page.object_list), state.columns),
        "address": state.query(),
        "filter_pairs": [("q", q)] if q else [],
        "bulk_actions": bulk.actions_for(principal, bulk.ACCOUNTS),
        **views_context(request, state),
    }
    template = "web/accounts/_results.html" if request.htmx else "web/accounts/list.html"
    return render(request, template, context)


def _ancestors(account) -> list:
    """The account's parents, nearest first (a cycle in bad data stops the walk)."""
    chain, seen, parent = [], {account.pk}, account.parent
    while parent is not None and parent.pk not in seen and len(chain) < ANCESTORS_SHOWN:
        chain.append(parent)
        seen.add(parent.pk)
        parent = parent.parent
    return chain


def _timeline_context(request: HttpRequest, account_id) -> dict:
    page = selectors.account_timeline_page(
        workspace=request.principal.workspace,
        account_id=account_id,
        cursor=request.GET.get("cursor") or None,
        limit=TIMELINE_PAGE,
    )
    return timeline_context(request, page, reverse("web:account_timeline", args=[account_id]))


@workspace_page("profiles.read")
def account_detail(request: HttpRequest, account_id) -> HttpResponse:
    principal = request.principal
    workspace = principal.workspace
    account = selectors.account_get(workspace=workspace, account_id=account_id)
    if account.merged_into_id:
        return redirect("web:account_detail", account_id=account.merged_into_id)
    members = selectors.account_members(workspace=workspace, account_id=account.pk)
    traits = traits_shown(principal, account.traits)
    context = {
        "account": account,
        "ancestors": list(reversed(_ancestors(account))),
        "children": list(account.children.filter(merged_into__isnull=True).order_by("name")),
        "traits": trait_rows(traits, account.trait_sources),
        "member_count": members.count(),
        "members": [
            customer_summary(principal, p)
            for p in members.order_by("-last_seen_at", "-id").prefetch_related("identifiers")[
                :MEMBERS_SHOWN
            ]
        ],
        "merges": merges_shown(
            principal,
            selectors.account_merge_list(workspace=workspace, account=account)[:20],
            "account_merge",
        ),
        "can_merge": principal.has_perm("profiles.merge"),
        **_timeline_context(request, account.pk),
    }
    return render(request, "web/accounts/detail.html", context)


@workspace_page("profiles.read")
def account_timeline(request: HttpRequest, account_id) -> HttpResponse:
    """The next page of the account's timeline (endless scrolling fetches it)."""
    return render(request, "web/customers/_timeline.html", _timeline_context(request, account_id))


@workspace_page("profiles.merge")
@require_http_methods(["GET", "POST"])
def account_unmerge(request: HttpRequest, merge_id) -> HttpResponse:
    principal = request.principal
    merge = selectors.account_merge_get(workspace=principal.workspace, merge_id=merge_id)
    if request.method == "POST":
        profile_services.account_unmerge(merge=merge, actor=principal.actor)
        return redirect("web:account_detail", account_id=merge.survivor_id)
    shown = merges_shown(principal, [merge], "account_merge")[0]
    return render(request, "web/accounts/unmerge.html", {"merge": shown})
