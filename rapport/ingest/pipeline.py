"""The event pipeline: every stored event goes through these consumers, in this order.

    identity ──> accounts ──┐                               ┌─> journeys
             └─> consents ──┴─> segments (and lifecycle) ──┴─> analytics

The events a request (or an import chunk) stores form a *batch*, written in the same
transaction as the events, with one *step* per consumer (`PipelineBatch`,
`PipelineStep`). A worker runs the batch (the `events_dispatch` task): each consumer
whose step is due and whose dependencies are done with the batch runs, and its step is
deleted in the transaction that commits its work, so progress is durable per consumer
and a re-run does only what is left. A consumer that raises keeps its step with the
error and a time to try again (exponential backoff); the others go on, except those
that depend on it, which wait. After `RAPPORT_PIPELINE_ATTEMPTS` tries the step is
*parked*: shown with its error (`GET /api/v1/pipeline`, Data → Pipeline) until someone
retries it after a fix.

A worker holds a batch by a lease (`claimed_until`); if it dies, nothing more happens
to that batch's task, and the *sweeper* (a periodic job) hands every batch overdue by
`RAPPORT_PIPELINE_DEADLINE_SECONDS` and not held to a worker again. Consumers must
therefore be safe to run twice on the same events: those that commit in one transaction
with their step (`atomic=True`) run exactly once; those that manage their own
transactions (identity resolution's two phases, which let several workers resolve one
workspace at once; the segment refreshes) may run again after a crash.

Per batch the pipeline costs a batch row and a step row per consumer, written with the
events, and two or three commits of its own as it goes (`_Progress`): no row per event.
"""

import logging
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from rapport.core.bulk import rows_insert, tables_analyze_stale
from rapport.core.errors import InvalidInputError
from rapport.core.memory import gc_paused
from rapport.ingest.models import Event, PipelineBatch, PipelineStep
from rapport.tenancy.models import Workspace
from rapport.tenancy.services import Actor, audit_log_record

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Consumer:
    """A consumer gets `(workspace_id, events)`: a batch's events as `DispatchedEvent`
    tuples, oldest first."""

    name: str
    # A dotted path (imported when first run: the apps import ingest, not the other way
    # round) or the function itself.
    run: str | Callable[[Any, list], Any]
    after: tuple[str, ...] = ()
    # True: run in one transaction with the deletion of its step (exactly once).
    # False: it commits its own transactions and must be safe to run again.
    atomic: bool = True
    label: Any = ""

    def function(self) -> Callable[[Any, list], Any]:
        return import_string(self.run) if isinstance(self.run, str) else self.run


PIPELINE: tuple[Consumer, ...] = (
    Consumer(
        "identity",
        "rapport.identity.services.events_resolve",
        atomic=False,
        label=_("Identity resolution"),
    ),
    # Both read each event's profile as resolution left it.
    Consumer(
        "accounts",
        "rapport.profiles.services.accounts_from_events",
        after=("identity",),
        label=_("Accounts"),
    ),
    Consumer(
        "consents",
        "rapport.profiles.services.consents_from_events",
        after=("identity",),
        label=_("Consent"),
    ),
    # Rules read profiles, accounts and consent; several transactions of its own.
    Consumer(
        "segments",
        "rapport.segments.services.segments_from_events",
        after=("identity", "accounts", "consents"),
        atomic=False,
        label=_("Segments and lifecycle"),
    ),
    # Journeys: event triggers, event waits and goals; after segments, whose lists and
    # stages a goal's rule and a branch read.
    Consumer(
        "journeys",
        "rapport.journeys.services.journeys_from_events",
        after=("segments",),
        label=_("Journeys"),
    ),
    # Every figure may have moved once the segments have.
    Consumer(
        "analytics",
        "rapport.analytics.services.analytics_data_changed",
        after=("segments",),
        label=_("Analytics"),
    ),
)


def pipeline_check(consumers: Sequence[Consumer]) -> None:
    """Names are unique and each consumer comes after those it depends on."""
    seen: set[str] = set()
    for consumer in consumers:
        if consumer.name in seen:
            raise ValueError(f"consumer {consumer.name!r} declared twice")
        missing = set(consumer.after) - seen
        if missing:
            raise ValueError(f"{consumer.name!r} must come after {', '.join(sorted(missing))}")
        seen.add(consumer.name)


pipeline_check(PIPELINE)
_active: tuple[Consumer, ...] = PIPELINE


def pipeline_consumers() -> tuple[Consumer, ...]:
    return _active


@contextmanager
def pipeline_override(consumers: Sequence[Consumer]) -> Iterator[None]:
    """Another pipeline for a while (tests, benchmarks)."""
    global _active
    pipeline_check(consumers)
    previous, _active = _active, tuple(consumers)
    try:
        yield
    finally:
        _active = previous


def _consumer(name: str) -> Consumer:
    for consumer in _active:
        if consumer.name == name:
            return consumer
    raise InvalidInputError(
        gettext("consumer must be one of %(choices)s")
        % {"choices": ", ".join(c.name for c in _active)},
        field="consumer",
    )


# --- Batches --------------------------------------------------------------------------


def pipeline_batch_create(
    *,
    workspace_id: Any,
    message_ids: Sequence[str],
    consumers: Sequence[str] | None = None,
    now: datetime | None = None,
) -> Any:
    """A batch of stored events with a step for each consumer (default: all), and the
    task that runs it, in the caller's transaction. Returns the batch's id."""
    from rapport.ingest.tasks import events_dispatch

    now = now or timezone.now()
    names = [c.name for c in _active] if consumers is None else list(consumers)
    batch = {
        "workspace_id": workspace_id,
        "created_at": now,
        "message_ids": list(message_ids),
        "size": len(message_ids),
        "claimed_until": None,
        "swept_at": None,
    }
    steps = [
        {
            "workspace_id": workspace_id,
            "consumer": name,
            "next_at": now,
            "attempts": 0,
            "last_error": "",
            "failed_at": None,
            "parked_at": None,
        }
        for name in names
    ]
    # No savepoint inside the caller's transaction: it fails or commits as a whole.
    with transaction.atomic(savepoint=False):
        rows_insert(PipelineBatch, [batch], conflict=["id"])
        for step in steps:
            step["batch_id"] = batch["id"]
        rows_insert(PipelineStep, steps, conflict=["id"])
        events_dispatch.enqueue(batch_id=str(batch["id"]))
    return batch["id"]


def _enqueue(batch_id: Any, *, at: datetime | None = None) -> None:
    from rapport.ingest.tasks import events_dispatch

    task = events_dispatch if at is None else events_dispatch.using(run_after=at)
    task.enqueue(batch_id=str(batch_id))


def _lease() -> timedelta:
    return timedelta(seconds=settings.RAPPORT_PIPELINE_LEASE_SECONDS)


def _backoff(attempts: int) -> timedelta:
    base = settings.RAPPORT_PIPELINE_RETRY_SECONDS
    return timedelta(
        seconds=min(base * 2 ** max(attempts - 1, 0), settings.RAPPORT_PIPELINE_RETRY_MAX_SECONDS)
    )


@dataclass
class BatchRun:
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)


def pipeline_batch_run(*, batch_id: Any) -> BatchRun:
    """Run what is due of one batch: each consumer in order whose step is due, not
    parked, and whose dependencies are done with the batch. Safe to call any number of
    times, from any number of workers (one holds the batch at a time).

    Batches of the same workspace waiting behind it, untried, are taken along (up to
    `RAPPORT_PIPELINE_MERGE_EVENTS` events in all) and go through each consumer as one:
    under load a consumer's cost per call is shared by more events, so the pipeline
    keeps up; when it keeps up, a batch runs alone, as soon as it is stored. Their own
    tasks later find nothing to do."""
    from rapport.ingest.services import events_dispatched

    result = BatchRun()
    now = timezone.now()
    batch_id = uuid.UUID(str(batch_id))
    batch_ids = _batches_claim(batch_id, now)
    if not batch_ids:
        # Done, or another worker has it (merged into its run, say). Should that worker
        # die, the sweeper hands the batch on once its lease has run out.
        return result
    with _planned_for_batches():
        _batches_run(batch_id, batch_ids, now, result, events_dispatched)
    _statistics_keep()
    return result


# A run reads and writes its batch's rows by key: a few thousand index probes into
# tables a server keeps in memory. At PostgreSQL's default `random_page_cost` (4: a
# spinning disk) the planner rather reads a whole table of up to ~100,000 rows once,
# so that a batch costs in proportion to the workspace's size (measured at 50,000
# events: 34 ms to read a 1,000-event batch, 39 ms to set its profiles; 5 ms and a few
# ms by index). 1.1 is the usual figure for memory and SSDs; it holds for the run only.
RANDOM_PAGE_COST = 1.1


@contextmanager
def _planned_for_batches() -> Iterator[None]:
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute(f"SET random_page_cost = {float(RANDOM_PAGE_COST)}")
    try:
        yield
    finally:
        # In a transaction that failed (a caller's), the setting goes with its rollback.
        with suppress(DatabaseError), connection.cursor() as cursor:
            cursor.execute("RESET random_page_cost")


def _batches_run(batch_id, batch_ids, now, result: BatchRun, events_dispatched) -> None:
    batches = {
        b["id"]: b
        for b in PipelineBatch.objects.filter(pk__in=batch_ids).values(
            "id", "workspace_id", "message_ids"
        )
    }
    workspace_id = batches[batch_id]["workspace_id"]
    # Each consumer's steps: one per batch (a merged batch has the lead's consumers).
    steps: dict[str, list[PipelineStep]] = {}
    for step in PipelineStep.objects.filter(batch_id__in=batch_ids).order_by("batch_id"):
        steps.setdefault(step.consumer, []).append(step)
    consumers = pipeline_consumers()
    known = {c.name for c in consumers}
    # Work left, by consumer (a consumer no longer declared has none).
    left = {name for name in steps if name in known}
    lease_renew_at = now + _lease() / 2
    events = None
    progress = _Progress()
    try:
        with gc_paused():
            for consumer in consumers:
                mine = steps.get(consumer.name)
                if not mine or mine[0].parked_at is not None or mine[0].next_at > now:
                    continue
                if left.intersection(consumer.after):
                    result.waiting.append(consumer.name)
                    continue
                if events is None:
                    message_ids = [m for b in batch_ids for m in batches[b]["message_ids"]]
                    events = events_dispatched(workspace_id=workspace_id, message_ids=message_ids)
                if _consumer_run(consumer, mine, workspace_id, events, progress):
                    left.discard(consumer.name)
                    result.done.append(consumer.name)
                else:
                    result.failed.append(consumer.name)
                if timezone.now() > lease_renew_at:
                    lease_renew_at = timezone.now() + _lease() / 2
                    progress.open()
                    PipelineBatch.objects.filter(pk__in=batch_ids).update(
                        claimed_until=timezone.now() + _lease()
                    )
        progress.open()
        if not left:
            if sum(map(len, steps.values())) > len(result.done) * len(batch_ids):
                # Steps of consumers the pipeline no longer declares.
                PipelineStep.objects.filter(batch_id__in=batch_ids).delete()
            # No steps left to cascade to: one statement.
            PipelineBatch.objects.filter(pk__in=batch_ids)._raw_delete(PipelineBatch.objects.db)
        else:
            PipelineBatch.objects.filter(pk__in=batch_ids).update(claimed_until=None)
            # The next try of a step that can run (its dependencies done): a waiting
            # dependent runs in the same pass as what it waits for. Each batch on its
            # own from now on, so that one bad batch holds up no other.
            runnable = [
                steps[c.name][0].next_at
                for c in consumers
                if c.name in left
                and steps[c.name][0].parked_at is None
                and not left.intersection(c.after)
            ]
            if runnable:
                for each in batch_ids:
                    _enqueue(each, at=max(min(runnable), timezone.now()))
    except BaseException:
        progress.close(*sys.exc_info())
        raise
    progress.close()


# Tables that a new workspace's load grows from nothing: their planner statistics are
# refreshed as autovacuum would (`tables_analyze_stale`), checked at most every
# STATISTICS_CHECK_SECONDS by each worker process.
STATISTICS_KEPT = (
    "ingest.Event",
    "ingest.PipelineBatch",
    "ingest.PipelineStep",
    "profiles.Profile",
    "identity.Identifier",
    "segments.LifecycleState",
    "segments.SegmentMembership",
)
STATISTICS_CHECK_SECONDS = 5.0
_statistics_checked_at = float("-inf")


def _statistics_keep() -> None:
    global _statistics_checked_at
    if connection.in_atomic_block or connection.vendor != "postgresql":
        return
    now = time.monotonic()
    if now - _statistics_checked_at < STATISTICS_CHECK_SECONDS:
        return
    _statistics_checked_at = now
    tables_analyze_stale(*(apps.get_model(label) for label in STATISTICS_KEPT))


def _batches_claim(batch_id: Any, now: datetime) -> list[Any]:
    """Hold the batch, and the untried batches of its workspace waiting behind it with
    the same consumers to go, up to the merge limit; [] if another worker holds it."""
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    until = now + _lease()
    with transaction.atomic():
        _commit_without_flush()
        if not PipelineBatch.objects.filter(free, pk=batch_id).update(claimed_until=until):
            return []
        limit = settings.RAPPORT_PIPELINE_MERGE_EVENTS
        lead = PipelineBatch.objects.values("workspace_id", "size").get(pk=batch_id)
        if (
            limit <= lead["size"]
            or PipelineStep.objects.filter(batch_id=batch_id, attempts__gt=0).exists()
        ):
            return [batch_id]
        queue = (
            PipelineBatch.objects.filter(free, workspace_id=lead["workspace_id"])
            .exclude(pk=batch_id)
            .exclude(steps__attempts__gt=0)
            .order_by("created_at")
        )
        if connection.features.has_select_for_update_skip_locked:
            queue = queue.select_for_update(skip_locked=True, of=("self",))
        room, taken = limit - lead["size"], []
        for other, size in queue.values_list("pk", "size")[:MERGE_BATCHES]:
            if size > room:
                break
            taken.append(other)
            room -= size
        if not taken:
            return [batch_id]
        wanted = sorted(
            PipelineStep.objects.filter(batch_id=batch_id).values_list("consumer", flat=True)
        )
        theirs: dict[Any, list[str]] = {}
        for other, consumer in PipelineStep.objects.filter(batch_id__in=taken).values_list(
            "batch_id", "consumer"
        ):
            theirs.setdefault(other, []).append(consumer)
        taken = [other for other in taken if sorted(theirs.get(other, [])) == wanted]
        PipelineBatch.objects.filter(pk__in=taken).update(claimed_until=until)
        _tasks_absorbed(taken, now)
    return [batch_id, *taken]


def _tasks_absorbed(batch_ids: list[Any], now: datetime) -> None:
    """The queued tasks of batches taken along are done by this run: recorded as such,
    so that no worker claims them only to find their batch taken (measured: nine runs
    in ten did nothing else under load, each a claim, a look and a result written). A
    task another worker already runs finds that, as before. Should this worker die, the
    sweeper hands the batches on once their lease has run out, as it did when their
    own tasks had found them held."""
    from django_tasks_db.models import DBTaskResult

    from rapport.ingest.tasks import events_dispatch

    if not batch_ids:
        return
    DBTaskResult.objects.filter(
        status="READY",
        task_path=events_dispatch.module_path,
        args_kwargs__kwargs__batch_id__in=[str(b) for b in batch_ids],
    ).update(status="SUCCESSFUL", started_at=now, finished_at=now, return_value=[])


# At most this many batches go through the consumers together.
MERGE_BATCHES = 200


class _Progress:
    """The transaction that records a batch's progress. Consumers that run in a
    transaction (`atomic`) share one, each in a savepoint with the deletion of its step;
    the steps of those that commit their own are deleted in the next one. So a batch
    costs two or three commits of the pipeline's own, not one per consumer.

    These commits do not wait for the disk (PostgreSQL's `synchronous_commit` off for
    them alone): if the server crashed, what it lost would be steps coming back with the
    work done with them, to be done again; the events themselves were committed durably
    when they were stored."""

    def __init__(self) -> None:
        self._stack: ExitStack | None = None
        self.done_outside: list[Any] = []

    def open(self) -> None:
        if self._stack is None:
            stack = ExitStack()
            stack.enter_context(transaction.atomic())
            self._stack = stack
            _commit_without_flush()
        if self.done_outside:
            PipelineStep.objects.filter(pk__in=self.done_outside)._raw_delete(
                PipelineStep.objects.db
            )
            self.done_outside = []

    def close(self, *exc_info) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.__exit__(*(exc_info or (None, None, None)))


def _commit_without_flush() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def _consumer_run(
    consumer: Consumer, steps: list[PipelineStep], workspace_id, events, progress: _Progress
) -> bool:
    """Run one consumer on the batches' events; False if it failed (recorded on each of
    its steps)."""
    pks = [step.pk for step in steps]
    try:
        if consumer.atomic:
            progress.open()
            with transaction.atomic():
                consumer.function()(workspace_id, events)
                taken = PipelineStep.objects.filter(pk__in=pks)._raw_delete(PipelineStep.objects.db)
                if taken != len(pks):
                    # Another run did it meanwhile: undo ours, it counts once.
                    raise _AlreadyDone
        else:
            progress.close()
            # A savepoint only if a caller's transaction is open (tests): a failed
            # statement must not abort it.
            with transaction.atomic() if connection.in_atomic_block else nullcontext():
                consumer.function()(workspace_id, events)
            progress.done_outside.extend(pks)
    except _AlreadyDone:
        pass
    except Exception as error:
        progress.open()
        for step in steps:
            _step_failed(step, error)
        return False
    return True


class _AlreadyDone(Exception):
    pass


def _step_failed(step: PipelineStep, error: Exception) -> None:
    now = timezone.now()
    step.attempts += 1
    step.last_error = f"{type(error).__name__}: {error}"[:4000]
    step.failed_at = now
    step.next_at = now + _backoff(step.attempts)
    if step.attempts >= settings.RAPPORT_PIPELINE_ATTEMPTS:
        step.parked_at = now
        logger.error(
            "pipeline: %s parked a batch of workspace %s after %d tries",
            step.consumer,
            step.workspace_id,
            step.attempts,
            exc_info=error,
        )
    else:
        logger.warning(
            "pipeline: %s failed on a batch (try %d), again at %s",
            step.consumer,
            step.attempts,
            step.next_at,
            exc_info=error,
        )
    PipelineStep.objects.filter(pk=step.pk).update(
        attempts=step.attempts,
        last_error=step.last_error,
        failed_at=step.failed_at,
        next_at=step.next_at,
        parked_at=step.parked_at,
    )


def events_process(*, workspace_id: Any, message_ids: Sequence[str]) -> int:
    """Every consumer on these stored events now, in order, raising the first failure:
    for tests, benchmarks and scripts that drive the consumers themselves. Workers run
    batches (`pipeline_batch_run`), which keep progress and retry."""
    from rapport.ingest.services import events_dispatched

    with gc_paused():
        events = events_dispatched(workspace_id=workspace_id, message_ids=list(message_ids))
        for consumer in pipeline_consumers():
            if consumer.atomic:
                with transaction.atomic():
                    consumer.function()(workspace_id, events)
            else:
                consumer.function()(workspace_id, events)
    return len(events)


# --- Sweeper, retry, replay -----------------------------------------------------------


def pipeline_sweep(*, workspace_id: Any, now: datetime | None = None, limit: int = 1000) -> int:
    """Hand to a worker again every batch of the workspace with a step overdue by the
    deadline and no worker holding it (its task was lost with a dead worker, or never
    ran): returns how many. A batch swept is not swept again before the deadline
    passes once more."""
    now = now or timezone.now()
    overdue = now - timedelta(seconds=settings.RAPPORT_PIPELINE_DEADLINE_SECONDS)
    batch_ids = list(
        PipelineBatch.objects.filter(
            Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
            Q(swept_at__isnull=True) | Q(swept_at__lt=overdue),
            workspace_id=workspace_id,
            steps__parked_at__isnull=True,
            steps__next_at__lte=overdue,
        )
        .order_by("created_at")
        .values_list("pk", flat=True)
        .distinct()[:limit]
    )
    if not batch_ids:
        return 0
    with transaction.atomic():
        PipelineBatch.objects.filter(pk__in=batch_ids).update(swept_at=now)
        for batch_id in batch_ids:
            _enqueue(batch_id)
    logger.warning(
        "pipeline: %d batches of workspace %s overdue, handed to a worker again",
        len(batch_ids),
        workspace_id,
    )
    return len(batch_ids)


def pipeline_retry(*, workspace: Workspace, actor: Actor, consumer: str | None = None) -> int:
    """Parked steps (of one consumer, or all) tried again at once, with a fresh count of
    tries; returns how many batches were handed to a worker."""
    steps = PipelineStep.objects.filter(workspace=workspace, parked_at__isnull=False)
    if consumer:
        steps = steps.filter(consumer=_consumer(consumer).name)
    with transaction.atomic():
        batch_ids = sorted(set(steps.values_list("batch_id", flat=True)))
        steps.update(parked_at=None, attempts=0, next_at=timezone.now())
        for batch_id in batch_ids:
            _enqueue(batch_id)
        audit_log_record(
            workspace=workspace,
            actor=actor,
            action="pipeline.retry",
            details={"consumer": consumer or "", "batches": len(batch_ids)},
        )
    return len(batch_ids)


REPLAY_BATCH_EVENTS = 1000


def pipeline_replay(
    *, workspace: Workspace, actor: Actor, consumer: str, since: datetime, until: datetime
) -> tuple[int, int]:
    """The events of a time range (by their timestamp, since <= t < until) through one
    consumer again, for instance after its rules changed; returns (events, batches)."""
    name = _consumer(consumer).name
    workspace_id = workspace.pk
    if until <= since:
        raise InvalidInputError(gettext("until must be after since"), field="until")
    message_ids = (
        Event.objects.filter(workspace_id=workspace_id, timestamp__gte=since, timestamp__lt=until)
        .order_by("timestamp", "id")
        .values_list("message_id", flat=True)
    )
    events = batches = 0
    chunk: list[str] = []
    with transaction.atomic():
        for message_id in message_ids.iterator(chunk_size=REPLAY_BATCH_EVENTS):
            chunk.append(message_id)
            if len(chunk) == REPLAY_BATCH_EVENTS:
                pipeline_batch_create(
                    workspace_id=workspace_id, message_ids=chunk, consumers=[name]
                )
                events, batches, chunk = events + len(chunk), batches + 1, []
        if chunk:
            pipeline_batch_create(workspace_id=workspace_id, message_ids=chunk, consumers=[name])
            events, batches = events + len(chunk), batches + 1
        audit_log_record(
            workspace=workspace,
            actor=actor,
            action="pipeline.replay",
            details={
                "consumer": name,
                "since": since.isoformat(),
                "until": until.isoformat(),
                "events": events,
            },
        )
    return events, batches
