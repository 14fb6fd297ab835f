"""The cards of the home page: what needs the person now.

Each card is registered once with `home_card`: an order on the page, the permission a
person needs to see it, its template, and a function that builds its context from
the principal, or returns None when there is nothing to say (a card with nothing to
say is not shown). Apps that land later (tasks, conversations) register their own
cards in their `web` module the same way; the home view knows none of them.

Every card reads through its app's selectors and stays cheap at a million profiles:
counts on indexed columns, the latest KPI snapshot rather than a live computation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

# --- The registry ----------------------------------------------------------------------


@dataclass(frozen=True)
class HomeCard:
    key: str
    order: int
    template: str
    build: Callable[[Any], dict | None]
    perm: str | None = None


_CARDS: dict[str, HomeCard] = {}


def home_card(key: str, *, order: int, template: str, perm: str | None = None):
    """Register the decorated `build(principal) -> dict | None` as a home card."""

    def register(build: Callable[[Any], dict | None]) -> Callable[[Any], dict | None]:
        _CARDS[key] = HomeCard(key=key, order=order, template=template, build=build, perm=perm)
        return build

    return register


def home_cards_for(principal) -> list[dict]:
    """The cards this person sees now, in order: key, template and context."""
    shown = []
    for card in sorted(_CARDS.values(), key=lambda c: (c.order, c.key)):
        if card.perm and not principal.has_perm(card.perm):
            continue
        context = card.build(principal)
        if context is not None:
            shown.append({"key": card.key, "template": card.template, "context": context})
    return shown


# --- Getting started -------------------------------------------------------------------


@home_card("getting_started", order=0, template="web/home/_getting_started.html")
def _getting_started(principal) -> dict | None:
    from rapport.profiles.selectors import profile_list

    if profile_list(workspace=principal.workspace).exists():
        return None
    return {
        "can_sources": principal.has_perm("sources.manage"),
        "can_import": principal.has_perm("imports.manage"),
        "can_invite": principal.has_perm("members.manage"),
    }


# --- KPIs that moved -------------------------------------------------------------------

# The KPIs worth a glance every morning, in this order; the rest are on the dashboard.
HOME_KPIS = ("revenue", "active_customers", "new_customers", "churn_rate", "retention_rate")


@home_card("kpis", order=10, template="web/home/_kpis.html", perm="analytics.read")
def _kpis(principal) -> dict | None:
    from rapport.analytics import kpis
    from rapport.analytics.selectors import home_dashboard
    from rapport.web.analytics import LABELS, shown

    board = home_dashboard(workspace=principal.workspace, window=30, days=31)
    if not board["kpis"]:
        return None
    rows = []
    for row in board["kpis"]:
        if row["name"] not in HOME_KPIS:
            continue
        change = row["change"]
        relative = change["relative"]
        direction = ""
        if change["difference"]:
            direction = "up" if change["difference"] > 0 else "down"
        rows.append(
            {
                "name": row["name"],
                "label": LABELS[row["name"]],
                "value": shown(row["value"], kpis.KINDS[row["name"]], board.get("currency") or ""),
                "direction": direction,
                "percent": None if relative is None else round(abs(relative) * 100, 1),
                "good": change["good"],
            }
        )
    rows.sort(key=lambda r: HOME_KPIS.index(r["name"]))
    return {"rows": rows, "day": board["latest"]["day"], "url": reverse("web:analytics")}


# --- Segments that grew or shrank ------------------------------------------------------

SEGMENT_DAYS = 7
SEGMENTS_SHOWN = 5


@home_card("segments", order=20, template="web/home/_segments.html", perm="segments.read")
def _segments(principal) -> dict | None:
    from rapport.segments.selectors import segment_changes

    changes = segment_changes(workspace=principal.workspace, days=SEGMENT_DAYS)
    moved = [c for c in changes if c.entered or c.left]
    if not moved:
        return None
    moved.sort(key=lambda c: -abs(c.entered - c.left))
    rows = []
    for change in moved[:SEGMENTS_SHOWN]:
        net = change.entered - change.left
        rows.append(
            {
                "segment": change.segment,
                "url": reverse("web:segment_detail", args=[change.segment.pk]),
                "net": abs(net),
                "direction": "up" if net > 0 else "down" if net < 0 else "",
                "entered": change.entered,
                "left": change.left,
            }
        )
    return {"rows": rows, "days": SEGMENT_DAYS, "url": reverse("web:segment_list")}


# --- Duplicates waiting ----------------------------------------------------------------


@home_card("duplicates", order=30, template="web/home/_duplicates.html", perm="profiles.read")
def _duplicates(principal) -> dict | None:
    from rapport.identity.selectors import duplicate_candidate_counts

    counts = duplicate_candidate_counts(workspace=principal.workspace)
    if not any(counts.values()):
        return None
    return {
        "profiles": counts.get("profile", 0),
        "accounts": counts.get("account", 0),
        "url": reverse("web:duplicate_list"),
        "can_merge": principal.has_perm("profiles.merge"),
    }


# --- The pipeline and imports (the people who keep data flowing) -----------------------

# Work waiting longer than this is worth a look.
PIPELINE_LATE = timedelta(minutes=5)
IMPORT_DAYS = 7


@home_card("pipeline", order=40, template="web/home/_pipeline.html", perm="pipeline.manage")
def _pipeline(principal) -> dict | None:
    from rapport.ingest.selectors import pipeline_state

    now = timezone.now()
    troubled = [
        state
        for state in pipeline_state(workspace=principal.workspace)
        if state.failed
        or (state.oldest_waiting_at and now - state.oldest_waiting_at > PIPELINE_LATE)
    ]
    if not troubled:
        return None
    return {"states": troubled, "url": reverse("web:pipeline")}


@home_card("imports", order=50, template="web/home/_imports.html", perm="imports.manage")
def _imports(principal) -> dict | None:
    from rapport.ingest.selectors import import_job_failed

    since = timezone.now() - timedelta(days=IMPORT_DAYS)
    failed = list(import_job_failed(workspace=principal.workspace, since=since)[:5])
    if not failed:
        return None
    return {"jobs": failed, "days": IMPORT_DAYS, "url": reverse("web:import_list")}


# --- Recent changes, in words ----------------------------------------------------------

RECENT_SHOWN = 8
# What each audited action says, with who did it.
ACTION_SENTENCES = {
    "profile.merge": gettext_lazy("%(who)s merged two customers"),
    "profile.unmerge": gettext_lazy("%(who)s undid a merge of two customers"),
    "profile.erase": gettext_lazy("%(who)s erased a customer's personal data"),
    "account.merge": gettext_lazy("%(who)s merged two accounts"),
    "account.unmerge": gettext_lazy("%(who)s undid a merge of two accounts"),
    "consent.set": gettext_lazy("%(who)s changed a customer's consent"),
    "pii.export": gettext_lazy("%(who)s exported a customer's personal data"),
    "segment.create": gettext_lazy("%(who)s created a segment"),
    "segment.update": gettext_lazy("%(who)s changed a segment"),
    "segment.delete": gettext_lazy("%(who)s deleted a segment"),
    "segment.members.add": gettext_lazy("%(who)s added customers to a segment"),
    "segment.members.remove": gettext_lazy("%(who)s removed customers from a segment"),
    "accounts.export": gettext_lazy("%(who)s exported accounts"),
    "segment.export": gettext_lazy("%(who)s exported a segment"),
    "segments.settings.update": gettext_lazy("%(who)s changed how purchases are counted"),
    "lifecycle.stage.create": gettext_lazy("%(who)s added a lifecycle stage"),
    "lifecycle.stage.update": gettext_lazy("%(who)s changed a lifecycle stage"),
    "lifecycle.stage.delete": gettext_lazy("%(who)s deleted a lifecycle stage"),
    "identity.rules.update": gettext_lazy("%(who)s changed the identity rules"),
    "identity.duplicates.refresh": gettext_lazy("%(who)s looked for duplicates"),
    "identity.duplicate.dismiss": gettext_lazy("%(who)s marked two customers as different"),
    "analytics.settings.update": gettext_lazy("%(who)s changed the analytics settings"),
    "predictions.settings_update": gettext_lazy("%(who)s changed the prediction settings"),
    "predictions.churn_train": gettext_lazy("%(who)s trained the churn model"),
    "predictions.clv_train": gettext_lazy("%(who)s trained the lifetime value model"),
    "import.create": gettext_lazy("%(who)s started a file import"),
    "pipeline.retry": gettext_lazy("%(who)s retried failed pipeline work"),
    "pipeline.replay": gettext_lazy("%(who)s replayed events through the pipeline"),
    "source.create": gettext_lazy("%(who)s added a data source"),
    "source.update": gettext_lazy("%(who)s changed a data source"),
    "source.disable": gettext_lazy("%(who)s turned off a data source"),
    "write_key.create": gettext_lazy("%(who)s created a write key"),
    "write_key.revoke": gettext_lazy("%(who)s revoked a write key"),
    "token.create": gettext_lazy("%(who)s created an API token"),
    "token.revoke": gettext_lazy("%(who)s revoked an API token"),
    "member.add": gettext_lazy("%(who)s added a member"),
    "member.remove": gettext_lazy("%(who)s removed a member"),
    "member.change_role": gettext_lazy("%(who)s changed a member's role"),
    "invitation.create": gettext_lazy("%(who)s invited someone"),
    "invitation.revoke": gettext_lazy("%(who)s withdrew an invitation"),
    "invitation.accept": gettext_lazy("%(who)s joined the workspace"),
    "workspace.create": gettext_lazy("%(who)s created the workspace"),
    "workspace.update": gettext_lazy("%(who)s changed the workspace settings"),
}


def action_sentence(action: str, who: str) -> str:
    """An audited action as a sentence ("Alice merged two customers"), never a code."""
    sentence = ACTION_SENTENCES.get(action)
    if sentence is None:
        return _("%(who)s made a change") % {"who": who}
    return sentence % {"who": who}


RAPPORT_JOBS = {"system", "cli", "demo", "quickstart", "schedule", "import", "duplicate detection"}


def _who(entry) -> str:
    # Rapport's own jobs (the demo, the scheduler) act under internal labels: they are
    # Rapport to a person reading home.
    if (
        entry.actor_user_id is None
        and entry.actor_token_id is None
        and entry.actor_label in RAPPORT_JOBS
    ):
        return "Rapport"
    return entry.actor_label or "Rapport"


@home_card("recent", order=90, template="web/home/_recent.html", perm="audit.read")
def _recent(principal) -> dict | None:
    from rapport.tenancy.selectors import audit_log_list

    entries = list(audit_log_list(workspace=principal.workspace)[:RECENT_SHOWN])
    if not entries:
        return None
    return {
        "entries": [
            {"at": e.created_at, "sentence": action_sentence(e.action, _who(e))} for e in entries
        ]
    }
