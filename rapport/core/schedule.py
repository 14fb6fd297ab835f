"""Periodic jobs per workspace, run by the workers: no broker, no cron.

Apps register a job with how often it runs and the task to enqueue; every `rapport
worker` checks a few times a minute (`schedule_run_due`) and enqueues what is due. Which
worker enqueues a run is settled in the database (`ScheduledRun`), so that any number
of workers on any number of machines enqueue each run once."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone


@dataclass(frozen=True)
class Job:
    name: str
    every_seconds: Callable[[], int]
    enqueue: Callable[[str], None]


_JOBS: dict[str, Job] = {}


def schedule_register(
    name: str, *, every_seconds: Callable[[], int], enqueue: Callable[[str], None]
) -> None:
    """`enqueue(workspace_id)` runs in the transaction that claims the run."""
    _JOBS[name] = Job(name, every_seconds, enqueue)


def schedule_jobs() -> list[Job]:
    return list(_JOBS.values())


def schedule_run_due(*, now: datetime | None = None) -> list[tuple[str, str]]:
    """Enqueue every job that is due in any workspace; returns (job, workspace id)."""
    from rapport.core.models import ScheduledRun
    from rapport.tenancy.models import Workspace

    now = now or timezone.now()
    enqueued = []
    workspaces = list(Workspace.objects.values_list("pk", flat=True))
    for job in schedule_jobs():
        every = timedelta(seconds=max(1, job.every_seconds()))
        known = set(
            ScheduledRun.objects.filter(name=job.name).values_list("workspace_id", flat=True)
        )
        for workspace_id in workspaces:
            if workspace_id not in known:
                try:
                    with transaction.atomic():
                        ScheduledRun.objects.create(
                            name=job.name, workspace_id=workspace_id, next_at=now
                        )
                except IntegrityError:
                    pass  # another worker made it
            with transaction.atomic():
                claimed = ScheduledRun.objects.filter(
                    name=job.name, workspace_id=workspace_id, next_at__lte=now
                ).update(next_at=now + every, last_at=now)
                if claimed:
                    job.enqueue(str(workspace_id))
                    enqueued.append((job.name, str(workspace_id)))
    return enqueued


SCHEDULE_CHECK_SECONDS = 15


def schedule_thread_start() -> None:
    """Check the schedule every few seconds beside the worker's own loop."""
    import logging
    import threading
    import time

    from django.conf import settings
    from django.db import close_old_connections

    logger = logging.getLogger(__name__)

    def loop() -> None:
        while True:
            try:
                close_old_connections()
                schedule_run_due()
            except Exception:
                logger.exception("checking the schedule failed; trying again")
            time.sleep(getattr(settings, "RAPPORT_SCHEDULE_CHECK_SECONDS", SCHEDULE_CHECK_SECONDS))

    threading.Thread(target=loop, name="rapport-schedule", daemon=True).start()
