"""The sales team's pages (rapport.sales does the work): the deals board (drag a deal
to a stage), the deal list and the forecast, a deal's page (its moves, notes and
tasks), "My tasks", the sales panel of the person page, and the home page's task card.

A move from the board names the version of the deal the board was drawn from: a deal
someone else moved since is refused (409) and goes back to its column with a notice,
instead of silently overwriting their move."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape, linebreaks
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from rapport.core.errors import InvalidInputError, RapportError
from rapport.profiles import selectors as profile_selectors
from rapport.sales import selectors, services
from rapport.sales.models import NoteKind, StageKind
from rapport.tenancy.models import Membership
from rapport.web.home_cards import home_card
from rapport.web.navigation import NavItem, nav_item_register
from rapport.web.pages import error_text, page_query, uuid_or_none, workspace_page

READ = "sales.read"
WRITE = "sales.write"
ACTIVITIES = "activities.write"
LIST_PAGE = 50


def nav_register() -> None:
    nav_item_register(
        "work",
        NavItem("deals", gettext_lazy("Deals"), "web:deal_board", READ, ("deal_*",)),
    )
    nav_item_register(
        "work",
        NavItem("tasks", gettext_lazy("Tasks"), "web:task_list", READ, ("task_*",)),
    )


def _members(workspace) -> list[Membership]:
    return list(
        Membership.objects.filter(workspace=workspace)
        .select_related("user")
        .order_by("user__email")
    )


def _member_label(member) -> str:
    return (member.user.name or member.user.email) if member else ""


def _me(principal):
    return selectors.member_of(workspace=principal.workspace, user=principal.user)


def _zone(principal):
    return selectors.zone_of(workspace=principal.workspace, user=principal.user)


def _back(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next", "")
    return target if target.startswith("/") and not target.startswith("//") else default


def _money(amount: Decimal, currency: str) -> str:
    return f"{amount.quantize(Decimal('0.01')):,} {currency}".replace(",", "\u202f")


# --- The board -------------------------------------------------------------------------


@workspace_page(READ)
def deal_board(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    workspace = principal.workspace
    pipelines = list(selectors.pipeline_list(workspace=workspace))
    chosen = uuid_or_none(request.GET.get("pipeline"))
    pipeline = next((p for p in pipelines if p.pk == chosen), pipelines[0] if pipelines else None)
    me = _me(principal)
    mine = request.GET.get("owner") == "me" and me is not None
    columns = []
    if pipeline is not None:
        for column in selectors.board(
            workspace=workspace, pipeline=pipeline, owner_id=me.pk if mine else None
        ):
            columns.append(
                {
                    "stage": column.stage,
                    "count": column.count,
                    "more": column.count - len(column.deals),
                    "totals": [_money(v, c) for c, v in sorted(column.total.items())],
                    "deals": [
                        {
                            "deal": d,
                            "amount": _money(d.amount, d.currency),
                            "owner": _member_label(d.owner),
                        }
                        for d in column.deals
                    ],
                }
            )
    return render(
        request,
        "web/sales/board.html",
        {
            "pipelines": pipelines,
            "pipeline": pipeline,
            "columns": columns,
            "mine": mine,
            "can_write": principal.has_perm(WRITE),
            "can_configure": principal.has_perm("sales.configure"),
            "members": _members(workspace),
            "me": me,
            "moved": request.GET.get("moved") == "1",
        },
    )


@workspace_page("sales.configure")
@require_POST
def pipeline_new(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    pipeline = services.pipeline_create(
        workspace=principal.workspace,
        actor=principal.actor,
        name=request.POST.get("name", "").strip() or _("Sales"),
        currency=request.POST.get("currency", "").strip() or "USD",
    )
    return redirect(f"{reverse('web:deal_board')}?pipeline={pipeline.pk}")


@workspace_page(WRITE)
@require_POST
def deal_new(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    post = request.POST
    data: dict[str, Any] = {
        "name": post.get("name", ""),
        "pipeline_id": uuid_or_none(post.get("pipeline")),
    }
    if post.get("amount", "").strip():
        data["amount"] = post["amount"].strip().replace(",", ".")
    if post.get("currency", "").strip():
        data["currency"] = post["currency"].strip()
    if post.get("expected_close"):
        try:
            data["expected_close"] = date.fromisoformat(post["expected_close"])
        except ValueError:
            raise InvalidInputError(
                _("The expected close is not a date"), field="expected_close"
            ) from None
    if post.get("profile"):
        data["profile_id"] = uuid_or_none(post["profile"]) or post["profile"]
    if post.get("owner"):
        data["owner_id"] = uuid_or_none(post["owner"]) or post["owner"]
    deal = services.deal_create(workspace=principal.workspace, actor=principal.actor, data=data)
    return redirect("web:deal_detail", deal_id=deal.pk)


@workspace_page(WRITE)
@require_POST
def deal_move(request: HttpRequest, deal_id) -> HttpResponse:
    """A move from the board (fetch, answered in JSON) or from the deal's page (a form)."""
    principal = request.principal
    wants_json = "application/json" in request.headers.get("Accept", "")
    deal = selectors.deal_get(workspace=principal.workspace, deal_id=deal_id)
    version = request.POST.get("version", "")
    try:
        moved = services.deal_move(
            deal=deal,
            actor=principal.actor,
            stage_id=uuid_or_none(request.POST.get("stage")),  # none: "Choose a stage"
            version=int(version) if version.isdigit() else None,
        )
    except RapportError as error:
        if wants_json:
            return JsonResponse({"error": error_text(error)}, status=error.status)
        raise
    if wants_json:
        return JsonResponse(
            {"version": moved.version, "stage": moved.stage.name, "status": moved.status}
        )
    return redirect(_back(request, reverse("web:deal_detail", args=[deal.pk])))


# --- The list and the forecast ------------------------------------------------------------


def _reason_text(reason: dict) -> dict:
    """A lead score's reason: what (translated), its value (data), and how much it moves
    the log-odds, with its sign."""
    from rapport.sales.leads import LABELS

    sign = "+" if reason["contribution"] > 0 else "\u2212"
    return {
        "label": str(LABELS.get(reason["feature"], reason["feature"])),
        "value": reason["value"],
        "effect": f"{sign}{abs(reason['contribution']):.2f}",
    }


@workspace_page(READ)
def deal_list(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    workspace = principal.workspace
    status = request.GET.get("status", "")
    owner = request.GET.get("owner", "")
    me = _me(principal)
    owner_id = me.pk if owner == "me" and me else uuid_or_none(owner)
    q = request.GET.get("q", "").strip()[:200]
    deals = selectors.deal_list(
        workspace=workspace,
        status=status if status in StageKind.values else None,
        owner_id=owner_id,
        pipeline_id=uuid_or_none(request.GET.get("pipeline")),
        q=q,
    )
    page = Paginator(deals, LIST_PAGE).get_page(request.GET.get("page"))
    shown = list(page.object_list)
    scores = selectors.lead_scores_of(
        workspace=workspace, profile_ids=[d.profile_id for d in shown if d.profile_id]
    )
    return render(
        request,
        "web/sales/list.html",
        {
            "page": page,
            "rows": [
                {
                    "deal": d,
                    "amount": _money(d.amount, d.currency),
                    "owner": _member_label(d.owner),
                    "lead_pct": round(scores[d.profile_id].probability * 100)
                    if d.profile_id in scores
                    else None,
                }
                for d in shown
            ],
            "query": page_query(request),
            "status": status,
            "owner": owner,
            "q": q,
            "statuses": StageKind.choices,
            "members": _members(workspace),
            "pipelines": list(selectors.pipeline_list(workspace=workspace)),
            "pipeline": request.GET.get("pipeline", ""),
        },
    )


@workspace_page(READ)
def deal_forecast(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    rows = selectors.forecast(workspace=principal.workspace)
    for row in rows:
        row["amount_text"] = _money(row["amount"], row["currency"])
        row["weighted_text"] = _money(row["weighted"], row["currency"])
        row["model_weighted_text"] = _money(row["model_weighted"], row["currency"])
    model = selectors.lead_model_list(workspace=principal.workspace).first()
    return render(
        request,
        "web/sales/forecast.html",
        {
            "rows": rows,
            "model": model,
            "auc": model.metrics.get("roc_auc") if model else None,
            "prior_auc": model.metrics.get("prior_roc_auc") if model else None,
            "can_train": principal.has_perm(WRITE),
            "queued": request.GET.get("queued") == "1",
        },
    )


@workspace_page(WRITE)
@require_POST
def lead_model_train(request: HttpRequest) -> HttpResponse:
    from rapport.sales import tasks

    tasks.lead_model_train.enqueue(
        workspace_id=str(request.principal.workspace.pk), actor_label=request.principal.actor.label
    )
    return redirect(f"{reverse('web:deal_forecast')}?queued=1")


# --- A deal ----------------------------------------------------------------------------------


@workspace_page(READ)
def deal_detail(request: HttpRequest, deal_id) -> HttpResponse:
    principal = request.principal
    workspace = principal.workspace
    deal = selectors.deal_get(workspace=workspace, deal_id=deal_id)
    profile = deal.profile if deal.profile_id else None
    return render(
        request,
        "web/sales/deal.html",
        {
            "deal": deal,
            "amount": _money(deal.amount, deal.currency),
            "owner": _member_label(deal.owner),
            "profile": profile,
            "stages": list(deal.pipeline.stages.all()),
            "history": list(selectors.deal_history(deal=deal)),
            "notes": list(selectors.note_list(workspace=workspace, deal_id=deal.pk)[:50]),
            "tasks": _task_rows(
                principal,
                selectors.task_list(workspace=workspace, view="all", deal_id=deal.pk)[:50],
            ),
            "members": _members(workspace),
            "note_kinds": NoteKind.choices,
            "can_write": principal.has_perm(WRITE),
            "can_note": principal.has_perm(ACTIVITIES),
        },
    )


@workspace_page(WRITE)
@require_POST
def deal_edit(request: HttpRequest, deal_id) -> HttpResponse:
    principal = request.principal
    deal = selectors.deal_get(workspace=principal.workspace, deal_id=deal_id)
    post = request.POST
    data: dict[str, Any] = {"name": post.get("name", "")}
    data["amount"] = post.get("amount", "0").strip().replace(",", ".") or "0"
    data["owner_id"] = uuid_or_none(post.get("owner"))
    try:
        data["expected_close"] = (
            date.fromisoformat(post["expected_close"]) if post.get("expected_close") else None
        )
    except ValueError:
        raise InvalidInputError(
            _("The expected close is not a date"), field="expected_close"
        ) from None
    version = post.get("version", "")
    services.deal_update(
        deal=deal,
        actor=principal.actor,
        data=data,
        version=int(version) if version.isdigit() else None,
    )
    return redirect("web:deal_detail", deal_id=deal.pk)


# --- Notes and tasks ---------------------------------------------------------------------------


def _note_body(text: str) -> str:
    """What was typed in the note box, as paragraphs (the text is escaped: a note typed
    in the UI is text; the API takes sanitised HTML)."""
    return linebreaks(escape(text.strip()))


@workspace_page(ACTIVITIES)
@require_POST
def note_new(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    post = request.POST
    data = {
        "kind": post.get("kind") if post.get("kind") in NoteKind.values else "note",
        "body": _note_body(post.get("body", "")),
        "profile_id": uuid_or_none(post.get("profile")),
        "deal_id": uuid_or_none(post.get("deal")),
        "account_id": uuid_or_none(post.get("account")),
        "mentions": [m for m in (uuid_or_none(v) for v in post.getlist("mentions")) if m],
    }
    services.note_create(workspace=principal.workspace, actor=principal.actor, data=data)
    return redirect(_back(request, reverse("web:task_list")))


def _task_rows(principal, tasks) -> list[dict]:
    zone = _zone(principal)
    now = timezone.now()
    return [
        {
            "task": t,
            "overdue": selectors.task_is_overdue(t, zone=zone, now=now),
            "due": (t.due_at.date() if t.all_day else timezone.localtime(t.due_at, zone))
            if t.due_at
            else None,
            "assignee": _member_label(t.assignee),
        }
        for t in tasks
    ]


TASK_VIEWS = [
    ("overdue", gettext_lazy("Overdue")),
    ("today", gettext_lazy("Today")),
    ("upcoming", gettext_lazy("Upcoming")),
    ("done", gettext_lazy("Done")),
]


@workspace_page(READ)
def task_list(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    workspace = principal.workspace
    me = _me(principal)
    everyone = request.GET.get("who") == "all" or me is None
    zone = _zone(principal)
    sections = []
    for view, label in TASK_VIEWS:
        tasks = selectors.task_list(
            workspace=workspace,
            view=view,
            assignee_id=None if everyone else me.pk,
            zone=zone,
        )
        shown = list(tasks[:LIST_PAGE])
        sections.append({"view": view, "label": label, "rows": _task_rows(principal, shown)})
    return render(
        request,
        "web/sales/tasks.html",
        {
            "sections": sections,
            "everyone": everyone,
            "zone": str(zone),
            "members": _members(workspace),
            "me": me,
            "can_write": principal.has_perm(ACTIVITIES),
        },
    )


@workspace_page(ACTIVITIES)
@require_POST
def task_new(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    post = request.POST
    data: dict[str, Any] = {
        "title": post.get("title", ""),
        "description": post.get("description", ""),
        "profile_id": uuid_or_none(post.get("profile")),
        "deal_id": uuid_or_none(post.get("deal")),
    }
    if post.get("assignee"):
        data["assignee_id"] = uuid_or_none(post["assignee"]) or post["assignee"]
    if post.get("due"):
        try:
            day = date.fromisoformat(post["due"])
        except ValueError:
            raise InvalidInputError(_("The due date is not a date"), field="due") from None
        data["due_at"] = selectors.all_day_due(day)
        data["all_day"] = True
    services.task_create(workspace=principal.workspace, actor=principal.actor, data=data)
    return redirect(_back(request, reverse("web:task_list")))


@workspace_page(ACTIVITIES)
@require_POST
def task_complete(request: HttpRequest, task_id) -> HttpResponse:
    principal = request.principal
    task = selectors.task_get(workspace=principal.workspace, task_id=task_id)
    services.task_complete(task=task, actor=principal.actor, done=request.POST.get("done") != "0")
    return redirect(_back(request, reverse("web:task_list")))


# --- The person page -------------------------------------------------------------------------


def person_sales(principal, profile) -> dict:
    """The sales panel of the person page: owner, deals, open tasks, the latest notes."""
    if not principal.has_perm(READ):
        return {"show_sales": False}
    workspace = principal.workspace
    owner = selectors.owner_of(workspace=workspace, profile_id=profile.pk)
    score = selectors.lead_score_of(workspace=workspace, profile_id=profile.pk)
    return {
        "show_sales": True,
        "sales": {
            "owner": owner,
            "lead_score": score,
            "lead_pct": round(score.probability * 100) if score else None,
            "lead_reasons": [_reason_text(r) for r in score.reasons] if score else [],
            "owner_label": _member_label(owner),
            "deals": [
                {"deal": d, "amount": _money(d.amount, d.currency)}
                for d in selectors.deal_list(workspace=workspace, profile_id=profile.pk)[:10]
            ],
            "tasks": _task_rows(
                principal,
                selectors.task_list(workspace=workspace, view="open", profile_id=profile.pk)[:10],
            ),
            "notes": list(selectors.note_list(workspace=workspace, profile_id=profile.pk)[:5]),
            "members": _members(workspace),
            "pipelines": list(selectors.pipeline_list(workspace=workspace)),
            "note_kinds": NoteKind.choices,
            "can_write": principal.has_perm(WRITE),
            "can_note": principal.has_perm(ACTIVITIES),
        },
    }


@workspace_page(WRITE)
@require_http_methods(["POST"])
def customer_owner_set(request: HttpRequest, profile_id) -> HttpResponse:
    principal = request.principal
    profile = profile_selectors.profile_get(workspace=principal.workspace, profile_id=profile_id)
    services.owner_set(
        workspace=principal.workspace,
        actor=principal.actor,
        member_id=uuid_or_none(request.POST.get("owner")),
        profile=profile,
    )
    return redirect("web:customer_detail", profile_id=profile.pk)


# --- Home --------------------------------------------------------------------------------------


@home_card("tasks", order=5, template="web/home/_tasks.html", perm=READ)
def _my_tasks(principal) -> dict | None:
    me = _me(principal)
    if me is None:
        return None
    zone = _zone(principal)
    counts = selectors.task_counts(workspace=principal.workspace, assignee_id=me.pk, zone=zone)
    if not counts["overdue"] and not counts["today"]:
        return None
    first = selectors.task_list(
        workspace=principal.workspace, view="overdue", assignee_id=me.pk, zone=zone
    )[:5]
    today = selectors.task_list(
        workspace=principal.workspace, view="today", assignee_id=me.pk, zone=zone
    )[:5]
    return {
        "counts": counts,
        "rows": _task_rows(principal, [*first, *today][:5]),
        "url": reverse("web:task_list"),
    }
