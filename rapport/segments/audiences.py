"""Scheduled audience exports: a segment's hashed audience (`google` or `meta`, as
rapport/segments/export.py writes it) written to a file daily or weekly, for an ad
platform's scheduled upload to fetch (`GET .../runs/{run_id}/download`).

Each run is an export of its own, made at run time: the members as they are then, and
only the identifiers their consent allows then (a consent withdrawn since the last run
leaves the next file). Runs are audited like any export (action "segment.export", the
actor "audience schedule"). The files live under RAPPORT_EXPORT_DIR
(<workspace>/<schedule>/<run>.csv); only the last RAPPORT_AUDIENCE_RUNS_KEPT runs of a
schedule keep theirs (older runs' files are deleted, their counts stay). A run's time
is the schedule's hour (UTC), every day or every seventh day; the workers look for due
schedules every RAPPORT_AUDIENCE_CHECK_SECONDS.
"""

import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from rapport.core.errors import InvalidInputError, NotFoundError
from rapport.segments.export import HASHED_FORMATS, segment_export
from rapport.segments.models import AudienceRun, AudienceSchedule, Segment
from rapport.tenancy.models import Workspace
from rapport.tenancy.services import Actor, audit_log_record

logger = logging.getLogger(__name__)

SCHEDULE_MAX_PER_SEGMENT = 10


def export_dir() -> Path:
    return Path(settings.RAPPORT_EXPORT_DIR)


def next_run(*, every: str, hour: int, after: datetime) -> datetime:
    """The first time at `hour` (UTC) after `after`; a weekly schedule's next run after
    a run is a week on."""
    start = after + (timedelta(days=6) if every == AudienceSchedule.Every.WEEKLY else timedelta())
    at = start.astimezone(UTC)
    candidate = at.replace(hour=hour, minute=0, second=0, microsecond=0)
    if candidate <= at:
        candidate += timedelta(days=1)
    return candidate


def audience_schedule_create(
    *, segment: Segment, format: str, every: str, hour: int, actor: Actor
) -> AudienceSchedule:
    if format not in HASHED_FORMATS:
        raise InvalidInputError(
            gettext("format must be one of %(choices)s") % {"choices": ", ".join(HASHED_FORMATS)},
            field="format",
        )
    if every not in AudienceSchedule.Every.values:
        raise InvalidInputError(gettext("every must be daily or weekly"), field="every")
    if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23:
        raise InvalidInputError(gettext("hour must be 0 to 23 (UTC)"), field="hour")
    with transaction.atomic():
        if (
            AudienceSchedule.objects.select_for_update().filter(segment=segment).count()
            >= SCHEDULE_MAX_PER_SEGMENT
        ):
            raise InvalidInputError(
                gettext("a segment has at most %(max)s audience schedules")
                % {"max": SCHEDULE_MAX_PER_SEGMENT},
                field="segment",
            )
        schedule = AudienceSchedule.objects.create(
            workspace_id=segment.workspace_id,
            segment=segment,
            format=format,
            every=every,
            hour=hour,
            # The first run at the next such hour, whatever the period.
            next_run_at=next_run(
                every=AudienceSchedule.Every.DAILY, hour=hour, after=timezone.now()
            ),
            created_by=actor.label,
        )
        audit_log_record(
            workspace=segment.workspace,
            actor=actor,
            action="audience_schedule.create",
            target=segment,
            details={"schedule": str(schedule.pk), "format": format, "every": every, "hour": hour},
        )
    return schedule


def audience_schedule_list(*, segment: Segment):
    return AudienceSchedule.objects.filter(
        workspace_id=segment.workspace_id, segment=segment
    ).order_by("created_at")


def audience_schedule_get(*, segment: Segment, schedule_id: Any) -> AudienceSchedule:
    found = audience_schedule_list(segment=segment).filter(pk=schedule_id).first()
    if found is None:
        raise NotFoundError(gettext("audience schedule not found"))
    return found


def audience_runs(*, schedule: AudienceSchedule):
    return AudienceRun.objects.filter(
        workspace_id=schedule.workspace_id, schedule=schedule
    ).order_by("-started_at")


def audience_run_get(*, schedule: AudienceSchedule, run_id: Any) -> AudienceRun:
    found = audience_runs(schedule=schedule).filter(pk=run_id).first()
    if found is None:
        raise NotFoundError(gettext("audience export run not found"))
    return found


def audience_run_path(run: AudienceRun) -> Path | None:
    """The run's file, or None when it has none (failed, or removed as too old)."""
    if not run.file:
        return None
    path = export_dir() / run.file
    return path if path.is_file() else None


def _files_delete(runs) -> None:
    for run in runs:
        if run.file:
            try:
                (export_dir() / run.file).unlink(missing_ok=True)
            except OSError:
                logger.warning("could not delete %s", run.file)


def audience_schedule_delete(*, schedule: AudienceSchedule, actor: Actor) -> None:
    runs = list(audience_runs(schedule=schedule))
    with transaction.atomic():
        schedule.delete()
        audit_log_record(
            workspace=Workspace.objects.get(pk=schedule.workspace_id),
            actor=actor,
            action="audience_schedule.delete",
            details={"schedule": str(schedule.pk), "segment": str(schedule.segment_id)},
        )
    _files_delete(runs)


def audience_schedule_run(
    *, schedule: AudienceSchedule, now: datetime | None = None
) -> AudienceRun:
    """One run now: the file written (to a temporary name, then renamed: a download
    never sees half a file), the counts kept, old runs' files removed."""
    now = now or timezone.now()
    run = AudienceRun(
        workspace_id=schedule.workspace_id, schedule=schedule, started_at=now, status="done"
    )
    relative = Path(str(schedule.workspace_id)) / str(schedule.pk) / f"{run.pk}.csv"
    target = export_dir() / relative
    partial = target.with_suffix(".partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        export = segment_export(
            segment=schedule.segment,
            format=schedule.format,
            actor=Actor.system("audience schedule"),
            can_see_pii=False,
        )
        with open(partial, "w", encoding="utf-8", newline="") as out:
            for line in export:
                out.write(line)
        os.replace(partial, target)
        run.counts = {
            "members": export.members,
            "exported": export.exported,
            "no_consent": export.no_consent,
            "no_identifier": export.no_identifier,
        }
        run.file = str(relative)
        run.size_bytes = target.stat().st_size
    except Exception as error:  # recorded on the run, shown in the API
        logger.exception("audience schedule %s failed", schedule.pk)
        partial.unlink(missing_ok=True)
        run.status = AudienceRun.Status.FAILED
        run.error = f"{type(error).__name__}: {error}"[:2000]
    run.finished_at = timezone.now()
    run.save()
    AudienceSchedule.objects.filter(pk=schedule.pk).update(last_run_at=now, last_counts=run.counts)
    kept = max(1, int(getattr(settings, "RAPPORT_AUDIENCE_RUNS_KEPT", 7)))
    old = list(audience_runs(schedule=schedule).exclude(file="")[kept:])
    _files_delete(old)
    AudienceRun.objects.filter(pk__in=[r.pk for r in old]).update(file="", size_bytes=0)
    return run


def audience_schedules_run_due(*, workspace_id: Any, now: datetime | None = None) -> int:
    """Every schedule of the workspace that is due, each claimed first (its next run
    moved on in a transaction of its own), so that two workers never run one twice."""
    now = now or timezone.now()
    done = 0
    due = AudienceSchedule.objects.filter(workspace_id=workspace_id, next_run_at__lte=now)
    for schedule in due.select_related("segment", "segment__workspace"):
        following = next_run(every=schedule.every, hour=schedule.hour, after=now)
        with transaction.atomic():
            claimed = AudienceSchedule.objects.filter(
                pk=schedule.pk, next_run_at=schedule.next_run_at
            ).update(next_run_at=following)
        if claimed:
            audience_schedule_run(schedule=schedule, now=now)
            done += 1
    return done
