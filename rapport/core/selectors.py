"""Reads shared by every app."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from rapport.core.errors import NotFoundError


def object_get(queryset: QuerySet, *, message: str, pk: uuid.UUID):
    """The row with this id from an already workspace-scoped queryset, or a 404 that
    does not say whether the id exists elsewhere. `message` is the caller's whole
    sentence for its kind of object, translated, with a `%(pk)s` placeholder:
    `gettext("No template with id %(pk)s in this workspace")`."""
    obj = queryset.filter(pk=pk).first()
    if obj is None:
        raise NotFoundError(message % {"pk": pk})
    return obj


# --- Workers and leases (rapport/core/leases.py) ------------------------------------------


@dataclass(frozen=True)
class WorkerRow:
    id: str
    host: str
    pid: int
    started_at: datetime
    beat_at: datetime
    # "alive", "late" (beat older than the lease, process still there), "stopped", "lost"
    state: str
    stopped_at: datetime | None
    lost_at: datetime | None
    running: list[dict]


@dataclass(frozen=True)
class TakeoverRow:
    task_id: str
    task_name: str
    lost_worker_id: str
    taken_by: str
    taken_at: datetime
    attempt: int
    outcome: str


@dataclass(frozen=True)
class LeasesState:
    lease_seconds: float
    max_takeovers: int
    workers: list[WorkerRow]
    takeovers: list[TakeoverRow]
    # RUNNING tasks whose worker is dead or unknown, waiting for a worker to take them.
    orphaned: int


def leases_state(*, takeovers_limit: int = 50, now: datetime | None = None) -> LeasesState:
    """The workers (newest first) with their last beat and the tasks they run, and the
    latest takeovers. System-wide: workers serve every workspace."""
    from django_tasks_db.models import DBTaskResult

    from rapport.core import leases
    from rapport.core.models import TaskTakeover, WorkerProcess

    now = now or leases.db_now()
    lease = leases.lease_seconds()
    running: dict[str, list[dict]] = {}
    for pk, worker_ids, started_at, path in DBTaskResult.objects.filter(
        status=leases.RUNNING
    ).values_list("pk", "worker_ids", "started_at", "task_path"):
        owner = worker_ids[-1] if worker_ids else ""
        running.setdefault(owner, []).append(
            {"task_id": str(pk), "task_name": path.rsplit(".", 1)[-1], "started_at": started_at}
        )
    workers = []
    for worker in WorkerProcess.objects.order_by("-started_at"):
        if worker.stopped_at is not None:
            state = "stopped"
        elif worker.lost_at is not None or not leases.worker_alive(worker, now=now, lease=lease):
            state = "lost"
        elif (now - worker.beat_at).total_seconds() >= lease:
            state = "late"
        else:
            state = "alive"
        workers.append(
            WorkerRow(
                id=worker.pk,
                host=worker.host,
                pid=worker.pid,
                started_at=worker.started_at,
                beat_at=worker.beat_at,
                state=state,
                stopped_at=worker.stopped_at,
                lost_at=worker.lost_at,
                running=running.get(worker.pk, []),
            )
        )
    live = {w.id for w in workers if w.state in ("alive", "late")}
    takeovers = [
        TakeoverRow(
            task_id=str(t.task_id),
            task_name=t.task_path.rsplit(".", 1)[-1],
            lost_worker_id=t.lost_worker_id,
            taken_by=t.taken_by,
            taken_at=t.taken_at,
            attempt=t.attempt,
            outcome=t.outcome,
        )
        for t in TaskTakeover.objects.order_by("-taken_at")[:takeovers_limit]
    ]
    return LeasesState(
        lease_seconds=lease,
        max_takeovers=leases.max_takeovers(),
        workers=workers,
        takeovers=takeovers,
        orphaned=sum(len(tasks) for owner, tasks in running.items() if owner not in live),
    )
