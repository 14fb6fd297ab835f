"""The event pipeline (rapport/ingest/pipeline.py): per-consumer progress, retries with
backoff, parking and retry after a fix, replay, the sweeper, and its API."""

from collections import Counter
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from rapport.core.schedule import schedule_run_due
from rapport.ingest import pipeline
from rapport.ingest.models import Event, PipelineBatch, PipelineStep
from rapport.ingest.pipeline import Consumer, pipeline_override
from rapport.ingest.services import Destination, events_ingest, events_parse
from rapport.tenancy.models import AuditLogEntry
from rapport.tenancy.services import Actor, audit_log_record

DISPATCH = "rapport.ingest.tasks.events_dispatch"


@pytest.fixture(autouse=True)
def _quick(settings):
    settings.RAPPORT_PIPELINE_RETRY_SECONDS = 0
    settings.RAPPORT_PIPELINE_ATTEMPTS = 3


def ingest(tenant, items: list[dict]) -> list[str]:
    """Events stored as the Tracking API stores them: a batch and its task, not run."""
    now = timezone.now()
    rows, refused = events_parse(items, received_at=now)
    destination = Destination(workspace_id=tenant.workspace.pk, source_id=tenant.created.source.pk)
    return events_ingest(
        destination=destination, rows=rows, refused=refused, received_at=now
    ).message_ids


def calls(n: int, *, prefix: str = "m", start: datetime | None = None) -> list[dict]:
    start = start or datetime(2026, 3, 1, tzinfo=UTC)
    return [
        {
            "type": "track",
            "userId": f"u{i % 7}",
            "event": "Viewed",
            "messageId": f"{prefix}{i}",
            "timestamp": (start + timedelta(minutes=i)).isoformat(),
        }
        for i in range(n)
    ]


def work(now: datetime | None = None) -> int:
    """What a worker does with the queue: run every due dispatch task until none is due
    (tasks due later stay). Returns how many ran."""
    ran = 0
    while True:
        at = now or timezone.now()
        due = [
            task
            for task in DBTaskResult.objects.filter(task_path=DISPATCH, status="READY")
            if task.run_after.year == 9999 or task.run_after <= at  # 9999: no run_after
        ]
        if not due:
            return ran
        for task in due:
            task.delete()
            kwargs = task.args_kwargs["kwargs"]
            with mock.patch("django.utils.timezone.now", return_value=at) if now else _null():
                pipeline.pipeline_batch_run(batch_id=kwargs["batch_id"])
            ran += 1


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class Recorder:
    """A consumer whose work is a row per event (an audit entry), written before it
    fails while any of its events has been tried no more than `failures` times: rolled
    back with the failure."""

    def __init__(self, name: str, *, failures: int = 0, always: bool = False) -> None:
        self.name = name
        self.failures = failures
        self.always = always
        self.tries: Counter = Counter()  # by messageId
        self.calls = 0

    def __call__(self, workspace_id, events) -> None:
        from rapport.tenancy.models import Workspace

        workspace = Workspace.objects.get(pk=workspace_id)
        for event in events:
            audit_log_record(
                workspace=workspace,
                actor=Actor.system("test"),
                action=f"test.{self.name}",
                details={"message_id": event.message_id},
            )
        self.calls += 1
        for event in events:
            self.tries[event.message_id] += 1
        if self.always or any(self.tries[e.message_id] <= self.failures for e in events):
            raise RuntimeError(f"{self.name} failed on jane@example.com")

    def processed(self) -> Counter:
        return Counter(
            entry.details["message_id"]
            for entry in AuditLogEntry.objects.filter(action=f"test.{self.name}")
        )


def test_a_consumer_that_fails_twice_ends_with_every_event_processed_once(tenant):
    flaky, steady = Recorder("flaky", failures=2), Recorder("steady")
    consumers = [
        Consumer("identity", "rapport.identity.services.events_resolve", atomic=False),
        Consumer("flaky", flaky, after=("identity",)),
        Consumer("steady", steady, after=("identity",)),
    ]
    with pipeline_override(consumers):
        sent = []
        for n in range(3):
            sent += ingest(tenant, calls(20, prefix=f"b{n}-"))
        work()

    assert flaky.processed() == Counter({m: 1 for m in sent})
    assert steady.processed() == Counter({m: 1 for m in sent})
    # Each event: two failed tries, then the one that committed.
    assert set(flaky.tries.values()) == {3}
    # The three batches went through together first (merged), then alone once they failed.
    assert steady.calls == 1 and flaky.calls == 7
    assert not Event.objects.filter(workspace=tenant.workspace, profile__isnull=True).exists()
    assert not PipelineStep.objects.exists() and not PipelineBatch.objects.exists()


def test_one_failing_consumer_does_not_stop_an_independent_one_and_parks(tenant):
    broken, independent, dependent = (
        Recorder("broken", always=True),
        Recorder("ind"),
        Recorder("dep"),
    )
    consumers = [
        Consumer("broken", broken),
        Consumer("ind", independent),
        Consumer("dep", dependent, after=("broken",)),
    ]
    with pipeline_override(consumers):
        first = ingest(tenant, calls(5, prefix="a"))
        second = ingest(tenant, calls(3, prefix="b"))
        work()

        assert independent.processed() == Counter({m: 1 for m in first + second})
        assert dependent.processed() == Counter()  # waits for what it depends on
        assert broken.processed() == Counter()  # each try rolled back
        assert set(broken.tries.values()) == {3}  # parked after three tries
        parked = PipelineStep.objects.filter(consumer="broken")
        assert parked.count() == 2 and all(s.parked_at for s in parked)
        assert "RuntimeError: broken failed" in parked[0].last_error
        assert DBTaskResult.objects.filter(task_path=DISPATCH, status="READY").count() == 0

        body = tenant.api("admin").get("/api/v1/pipeline").json()
        assert body == {
            "consumers": [
                {
                    "name": "broken",
                    "lag": 8,
                    "failed": 8,
                    "oldest_waiting_at": body["consumers"][0]["oldest_waiting_at"],
                    "last_error": "RuntimeError: broken failed on jane@example.com",
                },
                {
                    "name": "ind",
                    "lag": 0,
                    "failed": 0,
                    "oldest_waiting_at": None,
                    "last_error": "",
                },
                {
                    "name": "dep",
                    "lag": 8,
                    "failed": 0,
                    "oldest_waiting_at": body["consumers"][0]["oldest_waiting_at"],
                    "last_error": "",
                },
            ]
        }
        oldest = datetime.fromisoformat(body["consumers"][0]["oldest_waiting_at"])
        assert timezone.now() - oldest < timedelta(minutes=1)
        # The error may quote personal data: masked for roles without pii.read.
        analyst = tenant.api("analyst").get("/api/v1/pipeline").json()
        assert "jane@example.com" not in analyst["consumers"][0]["last_error"]
        assert analyst["consumers"][0]["last_error"].startswith("RuntimeError: broken failed on")

        # Fixed: retried, the consumer and what waited for it run once each.
        broken.always = False
        response = tenant.api("admin").post("/api/v1/pipeline/retry", {"consumer": "broken"})
        assert response.status_code == 202 and response.json() == {"batches": 2}
        work()

        assert broken.processed() == Counter({m: 1 for m in first + second})
        assert dependent.processed() == Counter({m: 1 for m in first + second})
        assert independent.processed() == Counter({m: 1 for m in first + second})
        assert not PipelineBatch.objects.exists()
        states = tenant.api("admin").get("/api/v1/pipeline").json()["consumers"]
        assert [(s["lag"], s["failed"]) for s in states] == [(0, 0)] * 3
        assert AuditLogEntry.objects.filter(action="pipeline.retry").count() == 1


def test_a_failure_is_tried_again_after_a_growing_delay(tenant, settings):
    settings.RAPPORT_PIPELINE_RETRY_SECONDS = 10
    settings.RAPPORT_PIPELINE_ATTEMPTS = 5
    flaky = Recorder("flaky", failures=2)
    with pipeline_override([Consumer("flaky", flaky)]):
        sent = ingest(tenant, calls(4))
        start = timezone.now()
        work(start)
        step = PipelineStep.objects.get()
        assert step.attempts == 1
        retry_at = DBTaskResult.objects.get(task_path=DISPATCH, status="READY").run_after
        assert timedelta(seconds=9) < retry_at - start < timedelta(seconds=12)
        assert work(start + timedelta(seconds=5)) == 0  # not before its time

        work(start + timedelta(seconds=11))
        step.refresh_from_db()
        assert step.attempts == 2
        retry_at = DBTaskResult.objects.get(task_path=DISPATCH, status="READY").run_after
        assert timedelta(seconds=29) < retry_at - start < timedelta(seconds=33)

        work(start + timedelta(seconds=40))
    assert flaky.processed() == Counter({m: 1 for m in sent})
    assert not PipelineStep.objects.exists()


def test_replay_runs_one_consumer_again_over_a_time_range(tenant):
    first, second = Recorder("first"), Recorder("second")
    with pipeline_override([Consumer("first", first), Consumer("second", second)]):
        sent = ingest(tenant, calls(10))  # a minute apart from 2026-03-01 00:00
        work()
        api = tenant.api("admin")
        body = {
            "consumer": "second",
            "since": "2026-03-01T00:03:00Z",
            "until": "2026-03-01T00:06:00+00:00",
        }
        response = api.post("/api/v1/pipeline/replay", body)
        assert response.status_code == 202 and response.json() == {"events": 3, "batches": 1}
        assert api.get("/api/v1/pipeline").json()["consumers"][1]["lag"] == 3
        work()

        assert first.processed() == Counter({m: 1 for m in sent})
        assert second.processed() == Counter({m: 2 if m in sent[3:6] else 1 for m in sent})
        entry = AuditLogEntry.objects.get(action="pipeline.replay")
        assert entry.details["consumer"] == "second" and entry.details["events"] == 3

        for wrong, field in [
            ({**body, "consumer": "nobody"}, "consumer"),
            ({**body, "until": body["since"]}, "until"),
            ({**body, "since": "2026-03-01T00:03:00"}, "since"),  # no offset
        ]:
            response = api.post("/api/v1/pipeline/replay", wrong)
            assert response.status_code == 422, wrong
            assert response.json()["error"]["details"][0]["field"] == field
    assert AuditLogEntry.objects.filter(action="pipeline.replay").count() == 1


def test_the_sweeper_hands_lost_batches_to_a_worker_again(tenant, settings):
    settings.RAPPORT_PIPELINE_DEADLINE_SECONDS = 60
    settings.RAPPORT_PIPELINE_LEASE_SECONDS = 120
    recorder = Recorder("r")
    with pipeline_override([Consumer("r", recorder)]):
        lost = ingest(tenant, calls(3, prefix="lost"))
        held = ingest(tenant, calls(2, prefix="held"))
        # Both tasks gone with a dead worker; one batch still held by its lease.
        DBTaskResult.objects.filter(task_path=DISPATCH).delete()
        now = timezone.now()
        PipelineBatch.objects.filter(size=len(held)).update(
            claimed_until=now + timedelta(seconds=90)
        )
        workspace_id = tenant.workspace.pk

        assert pipeline.pipeline_sweep(workspace_id=workspace_id, now=now) == 0  # not late yet
        later = now + timedelta(seconds=61)
        assert pipeline.pipeline_sweep(workspace_id=workspace_id, now=later) == 1
        assert pipeline.pipeline_sweep(workspace_id=workspace_id, now=later) == 0  # just swept
        work(later)
        assert recorder.processed() == Counter({m: 1 for m in lost})

        # The held batch's lease runs out: swept and done.
        much_later = later + timedelta(seconds=61)
        assert pipeline.pipeline_sweep(workspace_id=workspace_id, now=much_later) == 1
        work(much_later)
    assert recorder.processed() == Counter({m: 1 for m in lost + held})
    assert not PipelineBatch.objects.exists()


def test_the_sweeper_runs_on_the_schedule(tenant):
    enqueued = schedule_run_due()
    assert ("ingest.pipeline_sweep", str(tenant.workspace.pk)) in enqueued
    assert DBTaskResult.objects.filter(
        task_path="rapport.ingest.tasks.pipeline_sweep",
        args_kwargs__kwargs__workspace_id=str(tenant.workspace.pk),
    ).exists()


def test_a_batch_another_worker_holds_is_left_to_it(tenant):
    recorder = Recorder("r")
    with pipeline_override([Consumer("r", recorder)]):
        ingest(tenant, calls(2))
        PipelineBatch.objects.update(claimed_until=timezone.now() + timedelta(seconds=90))
        batch_id = PipelineBatch.objects.get().pk
        DBTaskResult.objects.filter(task_path=DISPATCH).delete()

        assert pipeline.pipeline_batch_run(batch_id=batch_id).done == []
        assert recorder.calls == 0
        assert not DBTaskResult.objects.filter(task_path=DISPATCH).exists()
        assert PipelineStep.objects.get().attempts == 0
        # Done meanwhile by the holder: a later run finds nothing to do.
        PipelineBatch.objects.all().delete()
        assert pipeline.pipeline_batch_run(batch_id=batch_id).done == []


def test_a_task_queued_before_batches_existed_still_gets_its_events_processed(tenant):
    from rapport.ingest.tasks import events_dispatch

    recorder = Recorder("r")
    with pipeline_override([Consumer("r", recorder)]):
        sent = ingest(tenant, calls(3))
        PipelineBatch.objects.all().delete()
        DBTaskResult.objects.all().delete()
        events_dispatch.call(workspace_id=str(tenant.workspace.pk), message_ids=sent)
        work()
    assert recorder.processed() == Counter({m: 1 for m in sent})


def test_the_declared_pipeline_puts_dependencies_first():
    names = [c.name for c in pipeline.PIPELINE]
    assert names[0] == "identity"
    for consumer in pipeline.PIPELINE:
        assert all(names.index(d) < names.index(consumer.name) for d in consumer.after)
    assert "identity" in dict((c.name, c.after) for c in pipeline.PIPELINE)["segments"]
    with pytest.raises(ValueError, match="must come after"):
        pipeline.pipeline_check([Consumer("b", print, after=("a",)), Consumer("a", print)])
    with pytest.raises(ValueError, match="twice"):
        pipeline.pipeline_check([Consumer("a", print), Consumer("a", print)])


def test_lag_counts_events_stored_and_not_yet_processed(tenant):
    ingest(tenant, calls(4, prefix="x"))
    ingest(tenant, calls(3, prefix="y"))
    states = tenant.api("marketer").get("/api/v1/pipeline").json()["consumers"]
    assert [s["name"] for s in states] == [c.name for c in pipeline.PIPELINE]
    assert {s["lag"] for s in states} == {7}
    assert {s["failed"] for s in states} == {0}
    work()
    states = tenant.api("marketer").get("/api/v1/pipeline").json()["consumers"]
    assert {(s["lag"], s["oldest_waiting_at"]) for s in states} == {(0, None)}
    assert Event.objects.filter(workspace=tenant.workspace, profile__isnull=False).count() == 7


@pytest.mark.parametrize(("merge", "calls"), [(5000, 1), (250, 2), (0, 3)])
def test_batches_waiting_behind_go_through_together_up_to_the_limit(tenant, settings, merge, calls):
    settings.RAPPORT_PIPELINE_MERGE_EVENTS = merge
    recorder = Recorder("r")
    with pipeline_override([Consumer("r", recorder)]):
        sent = [m for n in range(3) for m in ingest(tenant, calls_of(100, n))]
        work()
    assert recorder.calls == calls
    assert recorder.processed() == Counter({m: 1 for m in sent})
    assert not PipelineBatch.objects.exists()


def test_a_batch_that_failed_is_not_merged_with_others(tenant):
    recorder = Recorder("r", failures=1)
    with pipeline_override([Consumer("r", recorder)]):
        first = ingest(tenant, calls_of(3, 0))
        pipeline.pipeline_batch_run(batch_id=PipelineBatch.objects.get().pk)  # fails
        second = ingest(tenant, calls_of(3, 1))
        work()
    # The failed batch alone; the new one alone too (its first try: fails, then done).
    assert recorder.processed() == Counter({m: 1 for m in first + second})
    assert recorder.tries == Counter({m: 2 for m in first + second})
    assert recorder.calls == 4


def calls_of(n: int, batch: int) -> list[dict]:
    return calls(n, prefix=f"b{batch}-", start=datetime(2026, 3, 1 + batch, tzinfo=UTC))


def test_the_tasks_of_batches_taken_along_are_finished_with_the_run(tenant):
    """No worker claims a merged batch's task only to find its batch taken."""
    recorder = Recorder("r")
    with pipeline_override([Consumer("r", recorder)]):
        for n in range(3):
            ingest(tenant, calls_of(100, n))
        lead = PipelineBatch.objects.order_by("created_at").first()
        pipeline.pipeline_batch_run(batch_id=lead.pk)
        assert recorder.calls == 1
        assert not PipelineBatch.objects.exists()
        tasks = DBTaskResult.objects.filter(task_path=DISPATCH)
        lead_task = [t for t in tasks if t.args_kwargs["kwargs"]["batch_id"] == str(lead.pk)]
        # The lead's own task is the worker's to finish; the two taken along are done.
        assert [t.status for t in lead_task] == ["READY"]
        absorbed = [t for t in tasks if t not in lead_task]
        assert sorted(t.status for t in absorbed) == ["SUCCESSFUL", "SUCCESSFUL"]
        assert all(t.return_value == [] and t.finished_at for t in absorbed)
        assert work() == 1
    assert recorder.calls == 1
