"""Worker heartbeats and task leases: work claimed by a worker that died is taken over.

Every `rapport worker` records itself (`WorkerProcess`: id, host, pid, last beat) and
beats every few seconds from a thread of its own. The task queue already records which
worker claimed a task (`DBTaskResult.worker_ids[-1]`, written with the claim), so a
claim and its owner are committed together: there is no moment when a task is RUNNING
with no owner to check.

A worker is dead when it has not beaten within the lease
(`RAPPORT_WORKER_LEASE_SECONDS`), or at once when it ran on this host and its process is
gone. Every worker reaps: it marks dead workers lost, and puts each task they held back
to READY for any worker to run again, recording a `TaskTakeover`; a task taken over more
than `RAPPORT_TASK_MAX_TAKEOVERS` times (one that kills its worker each time) is failed
with a clear error instead of looping. Every change is a conditional UPDATE on the state
that was read, so two workers reaping at once take each task over once, on PostgreSQL
and on SQLite.

A worker that finds itself marked lost while it runs a task (it was cut off from the
database for longer than the lease) exits at once: its task already belongs to another
worker. And a worker records a task's result only if the task is still its own.
Tasks therefore run at least once, and each of them is written to be safe to run again.
"""

from __future__ import annotations

import contextvars
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.module_loading import import_string
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction

from rapport.core.models import TaskTakeover, WorkerProcess

logger = logging.getLogger(__name__)

RUNNING = "RUNNING"
READY = "READY"
FAILED = "FAILED"
# Rows of workers that stopped or were lost are kept this long for the Pipeline page.
WORKER_ROWS_KEPT = timedelta(days=7)
# A process that still runs but has not beaten for this many leases is dead all the
# same (a hung process, or another one that happens to have the same pid and start).
PROCESS_ALIVE_AT_MOST_LEASES = 10
# The exit status of a worker that finds its tasks taken over (EX_TEMPFAIL).
EXIT_LEASE_LOST = 75


class WorkerLost(Exception):
    """The error a task is failed with when its workers kept dying."""


def lease_seconds() -> float:
    return float(getattr(settings, "RAPPORT_WORKER_LEASE_SECONDS", 30))


def max_takeovers() -> int:
    return int(getattr(settings, "RAPPORT_TASK_MAX_TAKEOVERS", 3))


def beat_seconds() -> float:
    """How often a worker beats: three times a lease, and at least every 5 s."""
    return max(0.1, min(5.0, lease_seconds() / 3))


# --- The task being run -----------------------------------------------------------------

_current_task: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "rapport_current_task", default=None
)


def task_run_key() -> str:
    """The id of the queued task this code runs in ("" outside a worker). A task taken
    over runs again with the same id: an effect keyed by it happens once per task,
    however many workers start it."""
    return _current_task.get() or ""


def task_running(task_id: str) -> contextvars.Token:
    return _current_task.set(task_id)


def task_done(token: contextvars.Token) -> None:
    _current_task.reset(token)


# --- This process ---------------------------------------------------------------------


@cache
def host_name() -> str:
    return socket.gethostname()[:255]


def _process_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks since boot) of a process, from /proc (Linux);
    None when the process does not exist."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and brackets: split after its last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def process_start() -> int | None:
    if not Path("/proc/self/stat").exists():
        return None
    stat = _process_stat(os.getpid())
    return stat[1] if stat else None


def process_alive(*, pid: int, start: int) -> bool:
    stat = _process_stat(pid)
    # A zombie (killed, not yet reaped by its parent) runs nothing any more.
    return stat is not None and stat[0] != "Z" and stat[1] == start


def db_now() -> datetime:
    """The database's clock on PostgreSQL: workers on several machines compare beats
    written by each other, and their clocks may disagree by more than a lease. (SQLite
    serves one machine: its clock is the database's.)"""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement_timestamp()")
            return cursor.fetchone()[0]
    return timezone.now()


# --- Liveness -------------------------------------------------------------------------


def worker_alive(worker: WorkerProcess, *, now: datetime, lease: float) -> bool:
    """Whether this worker still holds its tasks."""
    if worker.stopped_at is not None or worker.lost_at is not None:
        return False
    beat_age = (now - worker.beat_at).total_seconds()
    if (
        worker.host == host_name()
        and worker.process_start is not None
        and Path("/proc/self/stat").exists()
    ):
        # On this host the process table answers better than the clock: a killed worker
        # is dead at once, and a live one whose beats wait on a busy SQLite write lock is
        # not declared dead for it.
        return (
            process_alive(pid=worker.pid, start=worker.process_start)
            and beat_age < lease * PROCESS_ALIVE_AT_MOST_LEASES
        )
    return beat_age < lease


# --- A worker's own row ---------------------------------------------------------------


def worker_register(*, worker_id: str, now: datetime | None = None) -> WorkerProcess:
    now = now or db_now()
    worker, _ = WorkerProcess.objects.update_or_create(
        pk=worker_id,
        defaults={
            "host": host_name(),
            "pid": os.getpid(),
            "process_start": process_start(),
            "started_at": now,
            "beat_at": now,
            "stopped_at": None,
            "lost_at": None,
        },
    )
    return worker


def worker_beat(*, worker_id: str, now: datetime | None = None) -> bool:
    """Record that this worker is alive; False if it had been declared lost (its tasks
    are someone else's now)."""
    now = now or db_now()
    return bool(
        WorkerProcess.objects.filter(
            pk=worker_id, lost_at__isnull=True, stopped_at__isnull=True
        ).update(beat_at=now)
    )


def worker_stop(*, worker_id: str) -> None:
    WorkerProcess.objects.filter(pk=worker_id, stopped_at__isnull=True).update(stopped_at=db_now())


# --- Reaping --------------------------------------------------------------------------


@dataclass(frozen=True)
class Takeover:
    task_id: str
    task_path: str
    lost_worker_id: str
    attempt: int
    outcome: str


def _workers_mark_lost(*, now: datetime, lease: float) -> None:
    """Mark lost every worker that is not alive. Conditional on the beat that was read:
    a worker that beats meanwhile keeps its tasks."""
    candidates = WorkerProcess.objects.filter(stopped_at__isnull=True, lost_at__isnull=True)
    for worker in candidates:
        if not worker_alive(worker, now=now, lease=lease):
            WorkerProcess.objects.filter(
                pk=worker.pk, lost_at__isnull=True, stopped_at__isnull=True, beat_at=worker.beat_at
            ).update(lost_at=now)


def leases_reclaim(*, by: str = "", now: datetime | None = None) -> list[Takeover]:
    """Take over every RUNNING task whose worker is dead: back to READY, or FAILED after
    too many takeovers. Safe to run in any number of workers at once."""
    now = now or db_now()
    lease = lease_seconds()
    _workers_mark_lost(now=now, lease=lease)
    running = list(
        DBTaskResult.objects.filter(status=RUNNING).values_list(
            "pk", "worker_ids", "started_at", "task_path"
        )
    )
    if not running:
        return []
    owners = {ids[-1] for _, ids, _, _ in running if ids}
    live = {
        worker.pk
        for worker in WorkerProcess.objects.filter(pk__in=owners)
        if worker_alive(worker, now=now, lease=lease)
    }
    known = set(WorkerProcess.objects.filter(pk__in=owners).values_list("pk", flat=True))
    taken = []
    for pk, worker_ids, started_at, task_path in running:
        owner = worker_ids[-1] if worker_ids else ""
        if owner in live:
            continue
        if (
            owner not in known
            and started_at is not None
            and now - started_at < timedelta(seconds=lease)
        ):
            # A worker that never registered (started without a heartbeat) is judged
            # by the claim's age alone.
            continue
        takeover = _task_take_over(
            pk=pk, started_at=started_at, task_path=task_path, owner=owner, by=by, now=now
        )
        if takeover is not None:
            taken.append(takeover)
    return taken


def _task_take_over(
    *, pk, started_at, task_path: str, owner: str, by: str, now: datetime
) -> Takeover | None:
    with exclusive_transaction(DBTaskResult.objects.db):
        attempt = TaskTakeover.objects.filter(task_id=pk).count() + 1
        # The claim that was read, and no other: if the task finished, or another worker
        # already took it over (and perhaps claimed it again), nothing changes.
        same_claim = DBTaskResult.objects.filter(pk=pk, status=RUNNING, started_at=started_at)
        if attempt > max_takeovers():
            outcome = TaskTakeover.Outcome.FAILED
            message = (
                f"{WorkerLost.__module__}.{WorkerLost.__qualname__}: the worker running this "
                f"task stopped ({attempt} times, last {owner or 'unknown'}); it is not run "
                f"again (RAPPORT_TASK_MAX_TAKEOVERS={max_takeovers()})\n"
            )
            changed = same_claim.update(
                status=FAILED,
                finished_at=now,
                return_value=None,
                exception_class_path=f"{WorkerLost.__module__}.{WorkerLost.__qualname__}",
                traceback=message,
            )
        else:
            outcome = TaskTakeover.Outcome.REQUEUED
            changed = same_claim.update(status=READY)
        if not changed:
            return None
        TaskTakeover.objects.create(
            task_id=pk,
            task_path=task_path,
            lost_worker_id=owner[:64],
            taken_by=by[:64],
            taken_at=now,
            attempt=attempt,
            outcome=outcome,
        )
        if outcome == TaskTakeover.Outcome.FAILED:
            _task_lost_handle(pk=pk, task_path=task_path, message=message.strip())
    logger.warning(
        "task %s (%s) of lost worker %s: %s (attempt %d)",
        pk,
        task_path,
        owner or "?",
        outcome,
        attempt,
    )
    return Takeover(str(pk), task_path, owner, attempt, outcome)


# What a task's own records say when it is failed for losing its workers (an import
# marked failed rather than left "running"): task path -> handler(**kwargs, message=).
_LOST_HANDLERS: dict[str, Callable[..., None]] = {}


def task_lost_register(task: Any, handler: Callable[..., None]) -> None:
    """`handler(**the task's kwargs, message=...)` runs, in the transaction that fails
    the task, when `task` is failed because its workers kept dying."""
    _LOST_HANDLERS[task.module_path] = handler


def _task_lost_handle(*, pk, task_path: str, message: str) -> None:
    try:
        # Importing the task's module registers its handler.
        import_string(task_path)
    except ImportError:
        return
    handler = _LOST_HANDLERS.get(task_path)
    if handler is None:
        return
    kwargs = DBTaskResult.objects.filter(pk=pk).values_list("args_kwargs", flat=True).first()
    try:
        with transaction.atomic():
            handler(**(kwargs or {}).get("kwargs", {}), message=message)
    except Exception:
        # The task is failed all the same: its own records are left as they were.
        logger.exception("recording that task %s (%s) was lost failed", pk, task_path)


def workers_prune(*, now: datetime | None = None) -> int:
    now = now or db_now()
    cutoff = now - WORKER_ROWS_KEPT
    deleted, _ = WorkerProcess.objects.filter(
        Q(stopped_at__lt=cutoff) | Q(lost_at__lt=cutoff)
    ).delete()
    return deleted


# --- Fenced results -------------------------------------------------------------------


def task_finish(*, db_task_result: DBTaskResult, fields: dict[str, Any]) -> bool:
    """Record a task's outcome only if its claim is still this worker's: a worker that
    was taken over must not overwrite the result of the worker that took over."""
    changed = DBTaskResult.objects.filter(
        pk=db_task_result.pk, status=RUNNING, started_at=db_task_result.started_at
    ).update(**fields)
    for name, value in fields.items():
        setattr(db_task_result, name, value)
    if not changed:
        logger.warning(
            "task %s finished here, but it had been taken over: its result is not recorded",
            db_task_result.pk,
        )
    return bool(changed)


# --- The heartbeat thread -------------------------------------------------------------


def can_beat_in_background() -> bool:
    """A thread has a database connection of its own: not inside a transaction that it
    could not see (a test's), nor on an in-memory SQLite database (shared cache locks
    fail at once instead of waiting)."""
    if connection.in_atomic_block:
        return False
    return not (connection.vendor == "sqlite" and connection.is_in_memory_db())


class Heartbeat:
    """Beats for a worker and reaps dead ones, in a daemon thread."""

    def __init__(self, *, worker_id: str) -> None:
        self.worker_id = worker_id
        self.busy = threading.Event()  # set while the worker runs a task
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_ok = time.monotonic()

    def start(self, *, background: bool) -> None:
        worker_register(worker_id=self.worker_id)
        self.reap()
        if background:
            self._thread = threading.Thread(
                target=self._loop, name="rapport-heartbeat", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=beat_seconds() * 2 + 5)
        try:
            worker_stop(worker_id=self.worker_id)
        except Exception:
            logger.exception("could not record that worker %s stopped", self.worker_id)

    def beat(self) -> None:
        if worker_beat(worker_id=self.worker_id):
            return
        if self.busy.is_set():
            logger.critical(
                "worker %s was declared lost while running a task, which another worker "
                "now runs: exiting at once",
                self.worker_id,
            )
            logging.shutdown()
            os._exit(EXIT_LEASE_LOST)
        # Idle: nothing of ours was taken over that is still running here; carry on.
        worker_register(worker_id=self.worker_id)

    def reap(self) -> list[Takeover]:
        taken = leases_reclaim(by=self.worker_id)
        workers_prune()
        return taken

    def _loop(self) -> None:
        interval = beat_seconds()
        next_reap = 0.0
        while not self._stop.wait(interval):
            try:
                close_old_connections()
                before = self._last_ok
                self.beat()
                self._last_ok = time.monotonic()
                # Reap only when this worker's own beats went through on time: after an
                # outage every worker is late, and the first one back must not declare
                # the others dead before they had a chance to beat.
                if time.monotonic() >= next_reap and self._last_ok - before < lease_seconds() / 2:
                    self.reap()
                    next_reap = time.monotonic() + max(interval, lease_seconds() / 2)
            except Exception:
                logger.exception("worker heartbeat failed; trying again")
        # This thread's own connection, which nothing else would close.
        connection.close()
