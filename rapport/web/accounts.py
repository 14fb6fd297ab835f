"""Accounts (companies): the list, one account with its place in the hierarchy, its
people and the combined timeline of everything they did, and undoing an account merge."""

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from rapport.core.errors import InvalidInputError
from rapport.profiles import selectors
from rapport.profiles import services as profile_services
from rapport.tenancy.pii import masked_record
from rapport.web.customers import customer_summary, timeline_context
from rapport.web.pages import page_query, trait_rows, traits_shown, workspace_page

ACCOUNTS_PAGE = 50
MEMBERS_SHOWN = 25
TIMELINE_PAGE = 30
ANCESTORS_SHOWN = 20


@workspace_page("profiles.read")
def account_list(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()
    if len(q) > 255:
        raise InvalidInputError("at most 255 characters", field="q")
    accounts = selectors.account_list(workspace=request.principal.workspace, q=q or None)
    page = Paginator(accounts.select_related("parent"), ACCOUNTS_PAGE).get_page(
        request.GET.get("page")
    )
    context = {"q": q, "page": page, "query": page_query(request)}
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
        "merges": [
            masked_record(principal, merge, "account_merge")
            for merge in selectors.account_merge_list(workspace=workspace, account=account)[:20]
        ],
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
    shown = masked_record(principal, merge, "account_merge")
    return render(request, "web/accounts/unmerge.html", {"merge": shown})
