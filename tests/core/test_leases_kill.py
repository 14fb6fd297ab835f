"""Real workers killed with SIGKILL in the middle of a task: the task is taken over by
the workers started after, finishes SUCCESSFUL, and its effect is there exactly once.

The workers are real `rapport worker` processes on a database of their own: a SQLite
file, or, when the suite runs on PostgreSQL (DATABASE_URL), a fresh PostgreSQL database
dropped afterwards. The lease is short (1.5 s) to keep the tests fast."""

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.live_server import _database

RAPPORT = str(Path(sys.executable).parent / "rapport")
LEASE_SECONDS = "1.5"
CUSTOMERS = 6_000
PRO_EVERY = 3  # every third customer is on the pro plan


class Deployment:
    """A database, the environment that points `rapport` at it, and its workers."""

    def __init__(self, *, data_dir: str, url: str) -> None:
        self.data_dir = Path(data_dir)
        self.url = url
        self.env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        self.env.update(
            RAPPORT_DATA_DIR=data_dir,
            DATABASE_URL=url,
            RAPPORT_WORKER_LEASE_SECONDS=LEASE_SECONDS,
            LOG_LEVEL="WARNING",
            # The workers and the scripts run this checkout's code.
            PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[2]), *sys.path]),
        )
        self.workers: list[subprocess.Popen] = []

    def rapport(self, *args: str) -> str:
        done = subprocess.run(
            [RAPPORT, *args], env=self.env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def script(self, code: str) -> dict:
        """Run Python in a `rapport shell`; it prints one JSON document."""
        return json.loads(self.rapport("shell", "-c", code).strip().splitlines()[-1])

    def rows(self, sql: str, *params) -> list[tuple]:
        """Rows of a query on the deployment's database (`%s` placeholders)."""
        if self.url.startswith("sqlite"):
            path = self.url.removeprefix("sqlite:///")
            with contextlib.closing(sqlite3.connect(path)) as conn:
                return conn.execute(sql.replace("%s", "?"), params).fetchall()
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()

    def value(self, sql: str, *params):
        return self.rows(sql, *params)[0][0]

    def key(self, value: str) -> str:
        """A UUID as the database stores it (SQLite: 32 hex digits)."""
        return uuid.UUID(value).hex if self.url.startswith("sqlite") else value

    def worker_start(self) -> subprocess.Popen:
        log = (self.data_dir / f"worker-{len(self.workers)}.log").open("w")
        process = subprocess.Popen(
            [RAPPORT, "worker", "--interval", "0.1"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers.append(process)
        return process

    def worker_kill(self, process: subprocess.Popen) -> None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def workers_stop(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.worker_kill(process)

    def wait_for(self, sql: str, *params, what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not self.value(sql, *params):
            if time.monotonic() > deadline:
                logs = "\n".join(p.read_text()[-2000:] for p in self.data_dir.glob("worker-*.log"))
                raise AssertionError(f"timed out waiting for {what}\n{logs}")
            time.sleep(0.02)

    def task_status(self, task_id: str) -> str:
        return self.value(
            "SELECT status FROM django_tasks_database_dbtaskresult WHERE id = %s",
            self.key(task_id),
        )

    def takeovers(self, task_id: str) -> list[tuple[int, str]]:
        return [
            tuple(row)
            for row in self.rows(
                "SELECT attempt, outcome FROM core_tasktakeover WHERE task_id = %s "
                "ORDER BY attempt",
                self.key(task_id),
            )
        ]

    def task_finished(self, task_id: str) -> None:
        self.wait_for(
            "SELECT COUNT(*) FROM django_tasks_database_dbtaskresult "
            "WHERE id = %s AND status IN ('SUCCESSFUL', 'FAILED')",
            self.key(task_id),
            what=f"task {task_id} to finish",
        )

    def queue_drained(self) -> None:
        self.wait_for(
            "SELECT COUNT(*) = 0 FROM django_tasks_database_dbtaskresult "
            "WHERE status IN ('READY', 'RUNNING')",
            what="the queue to drain",
            timeout=240,
        )


@pytest.fixture(scope="module")
def _migrated() -> Iterator[Deployment]:
    with (
        tempfile.TemporaryDirectory(prefix="rapport-leases-") as data_dir,
        _database(data_dir, os.environ.get("DATABASE_URL")) as url,
    ):
        deployment = Deployment(data_dir=data_dir, url=url)
        deployment.rapport("migrate")
        yield deployment


@pytest.fixture
def deployment(_migrated, request) -> Iterator[Deployment]:
    """The module's database (migrated once), a workspace of the test's own, and its
    workers stopped afterwards."""
    name = request.node.name[:100]
    created = json.loads(_migrated.rapport("workspace", "create", name, "--json"))
    _migrated.workspace = name
    _migrated.workspace_id = _migrated.key(created["workspace_id"])
    try:
        yield _migrated
    finally:
        _migrated.workers_stop()
        _migrated.workers = []


def _customers_csv(path: Path) -> None:
    lines = ["customer_id,email,plan"]
    for i in range(CUSTOMERS):
        plan = "pro" if i % PRO_EVERY == 0 else "free"
        lines.append(f"c{i:06d},c{i:06d}@example.com,{plan}")
    path.write_text("\n".join(lines) + "\n")


ENQUEUE_IMPORT = """
import json
from pathlib import Path
from django_tasks_db.models import DBTaskResult
from rapport.ingest.services import import_job_upload
from rapport.tenancy.models import Workspace
from rapport.tenancy.services import Actor
path = Path({path!r})
job = import_job_upload(
    workspace=Workspace.objects.get(name={workspace!r}), chunks=[path.read_bytes()],
    filename=path.name, kind="customers", id_column="customer_id", actor=Actor.system("test"),
)
task = DBTaskResult.objects.get(task_path__endswith="import_run")
print(json.dumps({{"job": str(job.pk), "task": str(task.pk)}}))
"""

ENQUEUE_SEGMENT = """
import json
from rapport.segments.services import segment_create
from rapport.tenancy.models import Workspace
from rapport.tenancy.services import Actor
from django_tasks_db.models import DBTaskResult
segment = segment_create(
    workspace=Workspace.objects.get(name={workspace!r}), name="Pro", actor=Actor.system("test"),
    rule={{"trait": "plan", "op": "eq", "value": "pro"}},
)
task = DBTaskResult.objects.filter(
    task_path__endswith="segment_refresh", args_kwargs__kwargs__segment_id=str(segment.pk)
).get()
print(json.dumps({{"segment": str(segment.pk), "task": str(task.pk)}}))
"""


REFRESH_AGAIN = """
import json
from rapport.segments.tasks import segment_refresh
result = segment_refresh.enqueue(segment_id={segment!r})
print(json.dumps({{"segment": {segment!r}, "task": str(result.id)}}))
"""


def test_an_import_and_a_segment_refresh_killed_midway_finish_once(deployment):
    csv_path = deployment.data_dir / "customers.csv"
    _customers_csv(csv_path)

    # 1. An import, killed with some chunks committed and others not.
    enqueued = deployment.script(
        ENQUEUE_IMPORT.format(path=str(csv_path), workspace=deployment.workspace)
    )
    job = deployment.key(enqueued["job"])
    first = deployment.worker_start()
    deployment.wait_for(
        "SELECT rows_done > 0 AND rows_done < %s FROM ingest_importjob WHERE id = %s",
        CUSTOMERS,
        job,
        what="the import to be half-way",
    )
    deployment.worker_kill(first)
    assert deployment.task_status(enqueued["task"]) == "RUNNING"
    assert deployment.value("SELECT rows_done FROM ingest_importjob WHERE id = %s", job) < (
        CUSTOMERS
    )

    # Two workers at once: both reap, the task is taken over once.
    deployment.worker_start()
    deployment.worker_start()
    deployment.queue_drained()
    assert deployment.task_status(enqueued["task"]) == "SUCCESSFUL"
    assert deployment.takeovers(enqueued["task"]) == [(1, "requeued")]
    assert deployment.rows(
        "SELECT status, accepted, rejected FROM ingest_importjob WHERE id = %s", job
    ) == [("done", CUSTOMERS, 0)]
    ws = deployment.workspace_id
    assert deployment.value("SELECT COUNT(*) FROM ingest_event WHERE workspace_id = %s", ws) == (
        CUSTOMERS
    )
    assert (
        deployment.value(
            "SELECT COUNT(*) FROM profiles_profile WHERE workspace_id = %s "
            "AND merged_into_id IS NULL",
            ws,
        )
        == CUSTOMERS
    )
    deployment.workers_stop()

    # 2. A segment refresh, killed while it runs.
    enqueued = deployment.script(ENQUEUE_SEGMENT.format(workspace=deployment.workspace))
    segment = deployment.key(enqueued["segment"])
    # A refresh can finish between two looks at the queue (a quiet machine, a fast
    # one): then it is asked again, until one is caught running and killed.
    for _attempt in range(5):
        second = deployment.worker_start()
        deployment.wait_for(
            "SELECT COUNT(*) FROM django_tasks_database_dbtaskresult "
            "WHERE id = %s AND status <> 'READY'",
            deployment.key(enqueued["task"]),
            what="the segment refresh to be taken",
        )
        if deployment.task_status(enqueued["task"]) == "RUNNING":
            deployment.worker_kill(second)
            if deployment.task_status(enqueued["task"]) == "RUNNING":
                break
        deployment.workers_stop()
        enqueued = deployment.script(
            REFRESH_AGAIN.format(segment=enqueued["segment"], workspace=deployment.workspace)
        )
    else:
        raise AssertionError("no segment refresh was caught running in five tries")
    assert deployment.task_status(enqueued["task"]) == "RUNNING"

    deployment.worker_start()
    deployment.task_finished(enqueued["task"])
    assert deployment.task_status(enqueued["task"]) == "SUCCESSFUL"
    assert deployment.takeovers(enqueued["task"]) == [(1, "requeued")]
    pros = len(range(0, CUSTOMERS, PRO_EVERY))
    assert deployment.value("SELECT size FROM segments_segment WHERE id = %s", segment) == pros
    # Every member is in once, and nobody entered twice (one stay each).
    assert deployment.rows(
        "SELECT COUNT(*), COUNT(DISTINCT profile_id), SUM(CASE WHEN left_at IS NULL THEN 1 "
        "ELSE 0 END) FROM segments_segmentmembership WHERE segment_id = %s",
        segment,
    ) == [(pros, pros, pros)]


BUYERS = 2_000

ENQUEUE_TRAINING = """
import json
from django_tasks_db.models import DBTaskResult
from rapport.predictions import tasks
from rapport.tenancy.models import Workspace
result = tasks.model_train.enqueue(
    workspace_id=str(Workspace.objects.get(name={workspace!r}).pk), kind="clv", options={{}},
    actor_label="test",
)
print(json.dumps({{"task": str(result.id)}}))
"""


def _purchases_jsonl(path: Path) -> None:
    rng = random.Random(5)
    lines = []
    for i in range(BUYERS):
        first = rng.randint(60, 700)
        for j in range(rng.randint(1, 5)):
            day = datetime.now(UTC) - timedelta(days=rng.randint(1, first))
            lines.append(
                json.dumps(
                    {
                        "type": "track",
                        "event": "Order Completed",
                        "userId": f"buyer-{i}",
                        "messageId": f"buyer-{i}-{j}",
                        "timestamp": day.isoformat(),
                        "properties": {"revenue": rng.randint(5, 300)},
                    }
                )
            )
    path.write_text("\n".join(lines) + "\n")


def test_a_training_killed_after_saving_its_model_keeps_one_version(deployment):
    events = deployment.data_dir / "purchases.jsonl"
    _purchases_jsonl(events)
    deployment.rapport(
        "import", "events", str(events), "--workspace", deployment.workspace, "--json"
    )
    enqueued = deployment.script(ENQUEUE_TRAINING.format(workspace=deployment.workspace))
    task = deployment.key(enqueued["task"])

    first = deployment.worker_start()
    # Killed once the model is saved, while its customers are being scored: the run
    # after must not save a second version.
    run_key = f"%{enqueued['task']}%"
    deployment.wait_for(
        "SELECT COUNT(*) FROM predictions_predictionmodel WHERE CAST(config AS TEXT) LIKE %s "
        "AND EXISTS (SELECT 1 FROM django_tasks_database_dbtaskresult "
        "WHERE id = %s AND status = 'RUNNING')",
        run_key,
        task,
        what="the model to be saved while the task runs",
    )
    deployment.worker_kill(first)
    assert deployment.task_status(enqueued["task"]) == "RUNNING"

    deployment.worker_start()
    deployment.task_finished(enqueued["task"])
    assert deployment.task_status(enqueued["task"]) == "SUCCESSFUL"
    assert deployment.takeovers(enqueued["task"]) == [(1, "requeued")]
    # (The workers' schedule trains models of its own: only this task's are counted.)
    models = "SELECT kind FROM predictions_predictionmodel WHERE CAST(config AS TEXT) LIKE %s"
    assert deployment.rows(models, run_key) == [("clv",)]
    assert (
        deployment.value(
            "SELECT COUNT(*) FROM predictions_clvscore WHERE workspace_id = %s",
            deployment.workspace_id,
        )
        == BUYERS
    )
