"""Journeys on the customer's timeline: entering a journey, leaving it (and why), and
each message a journey step sent or could not send."""

import uuid

from django.utils.html import format_html
from django.utils.translation import gettext as _

from rapport.journeys.models import Enrolment, StepRun
from rapport.profiles.selectors import TimelineEntry, profile_family_ids
from rapport.profiles.timeline_sentences import quoted

LIMIT = 200
_EXIT = uuid.UUID("6f1d7c1e-3c57-4c36-8f43-0b8f0a2f1d11")
_STEP = uuid.UUID("0d0e6d0c-6a1e-4d35-9d47-5b8c9c0b7e22")


def enrolment_entries(workspace, profile, wanted: set, channel: str | None) -> list[TimelineEntry]:
    if "event" not in wanted or channel not in (None, "", "journey"):
        return []
    family = profile_family_ids(profile_id=profile.pk)
    enrolments = list(
        Enrolment.objects.filter(workspace=workspace, profile_id__in=family)
        .select_related("journey")
        .order_by("-entered_at")[:LIMIT]
    )
    names = {e.pk: e.journey.name for e in enrolments}
    entries = []
    for e in enrolments:
        base = {"journey_id": str(e.journey_id), "name": e.journey.name, "enrolment_id": str(e.pk)}
        entries.append(
            TimelineEntry(
                kind="event",
                id=e.pk,
                at=e.entered_at,
                channel="journey",
                title=f"journey entered: {e.journey.name}"[:300],
                data={"journey": {**base, "what": "entered", "holdout": e.holdout}},
            )
        )
        if e.exited_at is not None:
            entries.append(
                TimelineEntry(
                    kind="event",
                    id=uuid.uuid5(_EXIT, str(e.pk)),
                    at=e.exited_at,
                    channel="journey",
                    title=f"journey {e.state}: {e.journey.name}"[:300],
                    data={"journey": {**base, "what": e.state, "reason": e.exit_reason}},
                )
            )
    runs = StepRun.objects.filter(
        workspace=workspace,
        enrolment_id__in=list(names),
        outcome__in=("sent", "failed", "task_pending", "task_created"),
    ).order_by("-at")[:LIMIT]
    for run in runs:
        entries.append(
            TimelineEntry(
                kind="event",
                id=uuid.uuid5(_STEP, str(run.pk)),
                at=run.at,
                channel="journey",
                title=f"journey step {run.step}: {run.outcome}"[:300],
                data={
                    "journey": {
                        "journey_id": str(run.journey_id),
                        "name": names.get(run.enrolment_id, ""),
                        "enrolment_id": str(run.enrolment_id),
                        "what": run.outcome,
                        "step": run.step,
                        "detail": run.detail,
                    }
                },
            )
        )
    return entries


def enrolment_sentence(entry):
    data = entry.data["journey"]
    what = data["what"]
    if what == "entered":
        wording = (
            _("Entered the journey")
            if not data.get("holdout")
            else _("Entered the journey (holdout: receives nothing)")
        )
    elif what == "converted":
        wording = _("Reached the goal of the journey")
    elif what == "completed":
        wording = _("Finished the journey")
    elif what == "exited":
        wording = _("Left the journey")
    elif what == "sent":
        wording = _("A message was sent by the journey")
    elif what == "failed":
        wording = _("A step of the journey failed")
    elif what in ("task_pending", "task_created"):
        wording = _("A task was noted by the journey")
    else:
        wording = _("Moved in the journey")
    return format_html("{} {}", wording, quoted(data.get("name", "")))
