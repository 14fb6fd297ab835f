"""Leases: a RUNNING task whose worker stopped beating is taken over, once, and a live
worker's task is left alone (rapport/core/leases.py)."""

import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from rapport.core import leases
from rapport.core.models import TaskTakeover, WorkerProcess
from rapport.core.selectors import leases_state
from rapport.tenancy.tasks import audit_log_prune

LEASE = 2.0


@pytest.fixture(autouse=True)
def _short_lease(settings):
    settings.RAPPORT_WORKER_LEASE_SECONDS = LEASE
    settings.RAPPORT_TASK_MAX_TAKEOVERS = 2


def _worker(worker_id: str, *, beat_age: float, host: str = "elsewhere", **fields):
    now = timezone.now()
    return WorkerProcess.objects.create(
        id=worker_id,
        host=host,
        pid=fields.pop("pid", 4242),
        process_start=fields.pop("process_start", None),
        started_at=now - timedelta(seconds=beat_age + 60),
        beat_at=now - timedelta(seconds=beat_age),
        **fields,
    )


def _claimed(tenant, worker_id: str, *, age: float = 10) -> DBTaskResult:
    """A task as the queue leaves it once `worker_id` claimed it."""
    result = audit_log_prune.enqueue(workspace_id=str(tenant.workspace.pk), older_than_days=365)
    DBTaskResult.objects.filter(pk=result.id).update(
        status="RUNNING",
        started_at=timezone.now() - timedelta(seconds=age),
        worker_ids=[worker_id],
    )
    return DBTaskResult.objects.get(pk=result.id)


def _status(task: DBTaskResult) -> str:
    return DBTaskResult.objects.get(pk=task.pk).status


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("beat_age", "taken"),
    [(LEASE * 3, True), (LEASE + 0.5, True), (LEASE / 4, False), (0, False)],
)
def test_a_task_is_taken_over_once_its_worker_missed_the_lease(tenant, beat_age, taken):
    _worker("w1", beat_age=beat_age)
    task = _claimed(tenant, "w1")

    takeovers = leases.leases_reclaim(by="w2")

    assert _status(task) == ("READY" if taken else "RUNNING")
    assert [(t.task_id, t.attempt, t.outcome) for t in takeovers] == (
        [(str(task.pk), 1, "requeued")] if taken else []
    )
    assert WorkerProcess.objects.get(pk="w1").lost_at is not None if taken else True
    if taken:
        row = TaskTakeover.objects.get(task_id=task.pk)
        assert (row.lost_worker_id, row.taken_by, row.attempt) == ("w1", "w2", 1)
        # It is ready to be claimed by any worker again.
        assert DBTaskResult.objects.ready().filter(pk=task.pk).exists()


@pytest.mark.django_db
def test_a_live_workers_tasks_and_finished_tasks_are_left_alone(tenant):
    _worker("live", beat_age=0.1)
    _worker("dead", beat_age=LEASE * 5)
    running = _claimed(tenant, "live")
    finished = _claimed(tenant, "dead")
    DBTaskResult.objects.filter(pk=finished.pk).update(status="SUCCESSFUL")

    assert leases.leases_reclaim(by="x") == []
    assert _status(running) == "RUNNING"
    assert _status(finished) == "SUCCESSFUL"


@pytest.mark.django_db
def test_a_stopped_worker_and_an_unknown_worker_lose_their_tasks(tenant):
    _worker("stopped", beat_age=0, stopped_at=timezone.now())
    of_stopped = _claimed(tenant, "stopped")
    # A worker that never registered is judged by the claim's age alone.
    of_unknown_old = _claimed(tenant, "never-registered", age=LEASE * 2)
    of_unknown_new = _claimed(tenant, "never-registered-either", age=0)

    leases.leases_reclaim()

    assert _status(of_stopped) == "READY"
    assert _status(of_unknown_old) == "READY"
    assert _status(of_unknown_new) == "RUNNING"


@pytest.mark.django_db
def test_on_this_host_the_process_table_decides(tenant):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    # Beating a moment ago, but its process has exited: taken over at once.
    _worker("exited", beat_age=0, host=leases.host_name(), pid=gone.pid, process_start=1)
    # Late on beats (a busy SQLite write lock), but its process runs: kept.
    _worker(
        "busy",
        beat_age=LEASE * 3,
        host=leases.host_name(),
        pid=leases.os.getpid(),
        process_start=leases.process_start(),
    )
    of_exited = _claimed(tenant, "exited")
    of_busy = _claimed(tenant, "busy")

    leases.leases_reclaim()

    assert _status(of_exited) == "READY"
    assert _status(of_busy) == "RUNNING"


@pytest.mark.django_db
def test_a_task_that_keeps_losing_its_worker_is_failed_with_a_clear_error(tenant):
    task = _claimed(tenant, "w0")
    for n in range(1, 4):
        _worker(f"w{n - 1}-row", beat_age=LEASE * 2)
        DBTaskResult.objects.filter(pk=task.pk).update(
            status="RUNNING",
            started_at=timezone.now() - timedelta(seconds=n),
            worker_ids=[f"w{i}-row" for i in range(n)],
        )
        leases.leases_reclaim()

    task.refresh_from_db()
    assert task.status == "FAILED"
    assert task.exception_class_path == "rapport.core.leases.WorkerLost"
    assert "stopped (3 times" in task.traceback
    assert "RAPPORT_TASK_MAX_TAKEOVERS=2" in task.traceback
    assert task.finished_at is not None
    assert list(
        TaskTakeover.objects.filter(task_id=task.pk)
        .order_by("attempt")
        .values_list("attempt", "outcome")
    ) == [(1, "requeued"), (2, "requeued"), (3, "failed")]
    # The result reads as a failure through the tasks API too.
    result = audit_log_prune.get_result(str(task.pk))
    assert result.status == "FAILED"
    assert result.errors[0].exception_class_path == "rapport.core.leases.WorkerLost"


@pytest.mark.django_db
def test_a_reaper_that_read_an_old_claim_changes_nothing(tenant):
    """Two reapers read the same RUNNING task; the second to write finds it taken over
    (and claimed again by a new worker) and leaves it alone."""
    _worker("dead", beat_age=LEASE * 5)
    task = _claimed(tenant, "dead")
    seen = {"pk": task.pk, "started_at": task.started_at, "task_path": task.task_path}

    first = leases._task_take_over(**seen, owner="dead", by="a", now=timezone.now())
    # A new worker claims it.
    DBTaskResult.objects.filter(pk=task.pk).update(
        status="RUNNING", started_at=timezone.now(), worker_ids=["dead", "new"]
    )
    second = leases._task_take_over(**seen, owner="dead", by="b", now=timezone.now())

    assert first is not None and second is None
    assert _status(task) == "RUNNING"
    assert TaskTakeover.objects.filter(task_id=task.pk).count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    "sqlite" in connection.vendor, reason="threads share no in-memory SQLite database"
)
def test_reapers_in_parallel_take_each_task_over_once(tenant):
    _worker("dead", beat_age=LEASE * 5)
    tasks = [_claimed(tenant, "dead") for _ in range(20)]
    barrier = threading.Barrier(4)
    taken: list = []

    def reap(name: str) -> None:
        barrier.wait()
        try:
            taken.extend(leases.leases_reclaim(by=name))
        finally:
            connection.close()

    threads = [threading.Thread(target=reap, args=(f"r{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(t.task_id for t in taken) == sorted(str(t.pk) for t in tasks)
    assert TaskTakeover.objects.count() == len(tasks)
    assert set(DBTaskResult.objects.values_list("status", flat=True)) == {"READY"}


@pytest.mark.django_db
def test_a_worker_declared_lost_learns_it_on_its_next_beat(tenant):
    leases.worker_register(worker_id="me")
    assert leases.worker_beat(worker_id="me")
    WorkerProcess.objects.filter(pk="me").update(lost_at=timezone.now())
    assert not leases.worker_beat(worker_id="me")


@pytest.mark.django_db
def test_a_taken_over_worker_does_not_overwrite_the_result(tenant):
    _worker("old", beat_age=LEASE * 5)
    task = _claimed(tenant, "old")
    leases.leases_reclaim(by="new")
    DBTaskResult.objects.filter(pk=task.pk).update(
        status="SUCCESSFUL", return_value=7, worker_ids=["old", "new"]
    )

    # The old worker finishes late, with the claim it read.
    assert not leases.task_finish(
        db_task_result=task, fields={"status": "FAILED", "return_value": None}
    )
    task.refresh_from_db()
    assert (task.status, task.return_value) == ("SUCCESSFUL", 7)


@pytest.mark.django_db
def test_the_state_lists_workers_their_tasks_and_takeovers(tenant):
    _worker("alive", beat_age=0.1)
    _worker("gone", beat_age=LEASE * 5)
    _worker("done", beat_age=100, stopped_at=timezone.now())
    mine = _claimed(tenant, "alive")
    lost = _claimed(tenant, "gone")
    leases.leases_reclaim(by="alive")

    state = leases_state()

    by_id = {w.id: w for w in state.workers}
    assert {k: w.state for k, w in by_id.items()} == {
        "alive": "alive",
        "gone": "lost",
        "done": "stopped",
    }
    assert [t["task_id"] for t in by_id["alive"].running] == [str(mine.pk)]
    assert [(t.task_id, t.lost_worker_id, t.taken_by, t.outcome) for t in state.takeovers] == [
        (str(lost.pk), "gone", "alive", "requeued")
    ]
    assert state.lease_seconds == LEASE
    assert state.orphaned == 0


@pytest.mark.django_db(transaction=True)
def test_the_batch_worker_registers_runs_and_stops(tenant):
    from rapport.cli import _run, cli

    result = audit_log_prune.enqueue(workspace_id=str(tenant.workspace.pk), older_than_days=365)

    assert _run(cli.main, ["worker", "--batch"]) == 0

    task = DBTaskResult.objects.get(pk=result.id)
    assert task.status == "SUCCESSFUL"
    worker = WorkerProcess.objects.get(pk=task.worker_ids[-1])
    assert worker.stopped_at is not None and worker.pid == leases.os.getpid()


@pytest.mark.django_db
def test_rapport_workers_lists_them_and_the_takeovers(tenant, capsys):
    import json

    from rapport.cli import _run, cli

    _worker("gone", beat_age=LEASE * 5)
    lost = _claimed(tenant, "gone")
    leases.leases_reclaim(by="reaper")

    assert _run(cli.main, ["workers"]) == 0
    out = capsys.readouterr().out
    assert "gone" in out and "lost" in out and f"({lost.pk}) from gone: requeued" in out

    assert _run(cli.main, ["workers", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [w["state"] for w in document["workers"]] == ["lost"]
    assert document["takeovers"][0]["task_id"] == str(lost.pk)


def _lose_repeatedly(task_id, times: int) -> None:
    for n in range(1, times + 1):
        _worker(f"gone-{task_id}-{n}", beat_age=LEASE * 2)
        DBTaskResult.objects.filter(pk=task_id).update(
            status="RUNNING",
            started_at=timezone.now() - timedelta(seconds=n),
            worker_ids=[f"gone-{task_id}-{n}"],
        )
        leases.leases_reclaim()


@pytest.mark.django_db
def test_an_import_failed_for_losing_its_workers_shows_as_failed(tenant, tmp_path):
    from rapport.ingest.models import ImportJob
    from rapport.ingest.services import import_job_upload
    from rapport.tenancy.services import Actor

    job = import_job_upload(
        workspace=tenant.workspace,
        chunks=[b"id,email\n1,a@example.com\n"],
        filename="people.csv",
        kind="customers",
        id_column="id",
        actor=Actor.system("test"),
    )
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.RUNNING)
    task = DBTaskResult.objects.get(task_path__endswith="import_run")

    _lose_repeatedly(task.pk, 3)

    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED
    assert "rapport.core.leases.WorkerLost" in job.failure and "3 times" in job.failure


@pytest.mark.django_db
def test_a_training_failed_for_losing_its_workers_says_so_on_the_models_page(tenant):
    from rapport.predictions import tasks
    from rapport.predictions.selectors import prediction_settings

    result = tasks.model_train.enqueue(
        workspace_id=str(tenant.workspace.pk), kind="churn", options={}, actor_label="api"
    )

    _lose_repeatedly(result.id, 3)

    error = prediction_settings(workspace=tenant.workspace).last_error
    assert error.startswith("churn: rapport.core.leases.WorkerLost")
