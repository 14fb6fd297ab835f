"""The sales team's work on the customer's timeline: a deal opened or moved, a note or
a logged call, a task made or done."""

import uuid

from django.utils.html import format_html
from django.utils.translation import gettext as _

from rapport.profiles.selectors import TimelineEntry, profile_family_ids
from rapport.profiles.timeline_sentences import quoted
from rapport.sales.models import DealStageChange, Note, Task

LIMIT = 200
_DONE = uuid.UUID("2a4f9d51-7b0e-4c1a-9d3e-6f5a8b7c9e10")


def sales_entries(workspace, profile, wanted: set, channel: str | None) -> list[TimelineEntry]:
    if "event" not in wanted or channel not in (None, "", "sales"):
        return []
    family = profile_family_ids(profile_id=profile.pk)
    entries = []
    changes = (
        DealStageChange.objects.filter(workspace=workspace, deal__profile_id__in=family)
        .select_related("deal")
        .order_by("-at")[:LIMIT]
    )
    for change in changes:
        entries.append(
            TimelineEntry(
                kind="event",
                id=change.pk,
                at=change.at,
                channel="sales",
                title=f"deal {change.deal.name}: {change.to_name}"[:300],
                data={
                    "sales": {
                        "what": "deal_moved" if change.from_name else "deal_opened",
                        "deal_id": str(change.deal_id),
                        "name": change.deal.name,
                        "from": change.from_name,
                        "to": change.to_name,
                        "by": change.actor_label,
                    }
                },
            )
        )
    for note in Note.objects.filter(workspace=workspace, profile_id__in=family).order_by(
        "-occurred_at"
    )[:LIMIT]:
        entries.append(
            TimelineEntry(
                kind="event",
                id=note.pk,
                at=note.occurred_at,
                channel="sales",
                title=f"{note.kind} by {note.author_label}"[:300],
                data={
                    "sales": {
                        "what": note.kind,
                        "note_id": str(note.pk),
                        "by": note.author_label,
                        "html": note.body,
                    }
                },
            )
        )
    for task in Task.objects.filter(workspace=workspace, profile_id__in=family).order_by(
        "-created_at"
    )[:LIMIT]:
        base = {"task_id": str(task.pk), "name": task.title, "by": task.created_by}
        entries.append(
            TimelineEntry(
                kind="event",
                id=task.pk,
                at=task.created_at,
                channel="sales",
                title=f"task: {task.title}"[:300],
                data={"sales": {**base, "what": "task_created"}},
            )
        )
        if task.done_at is not None:
            entries.append(
                TimelineEntry(
                    kind="event",
                    id=uuid.uuid5(_DONE, str(task.pk)),
                    at=task.done_at,
                    channel="sales",
                    title=f"task done: {task.title}"[:300],
                    data={"sales": {**base, "what": "task_done"}},
                )
            )
    return entries


def sales_sentence(entry):
    data = entry.data["sales"]
    what = data["what"]
    if what == "deal_opened":
        return format_html("{} {} ({})", _("Deal opened:"), quoted(data["name"]), data["to"])
    if what == "deal_moved":
        return format_html(
            "{} {}: {} → {} ({})",
            _("Deal moved"),
            quoted(data["name"]),
            data["from"],
            data["to"],
            data["by"],
        )
    if what == "task_created":
        return format_html("{} {}", _("Task:"), quoted(data["name"]))
    if what == "task_done":
        return format_html("{} {}", _("Task done:"), quoted(data["name"]))
    labels = {
        "call": _("Call logged by"),
        "meeting": _("Meeting logged by"),
        "email": _("Email logged by"),
    }
    return format_html("{} {}", labels.get(what, _("Note by")), data["by"])
