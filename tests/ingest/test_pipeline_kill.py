"""A real worker killed with SIGKILL while it runs the pipeline, and another started:
every event is resolved, once, into the right number of customers. On the suite's
database kind (a SQLite file, or PostgreSQL when DATABASE_URL names one)."""

import os
import random
import signal
import sqlite3
import subprocess
import tempfile
import time
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from tests.live_server import RAPPORT, live_server

pytestmark = pytest.mark.slow

PEOPLE = 600
EVENTS_EACH = 5
PER_REQUEST = 100
PORT = 18150
# Short enough for the test: a batch held by a dead worker is free after LEASE seconds,
# and the sweeper (every SWEEP seconds) hands batches late by DEADLINE to a worker.
ENV = {
    "RAPPORT_PIPELINE_LEASE_SECONDS": "3",
    "RAPPORT_PIPELINE_DEADLINE_SECONDS": "2",
    "RAPPORT_PIPELINE_SWEEP_SECONDS": "1",
    "RAPPORT_SCHEDULE_CHECK_SECONDS": "0.5",
    # Three batches a run at most: the kill lands with some events resolved, not all.
    "RAPPORT_PIPELINE_MERGE_EVENTS": "300",
    # Periodic work a fresh workspace would otherwise start with, beside the pipeline.
    "RAPPORT_MODELS_TRAIN_SECONDS": "86400000",
    "RAPPORT_MODELS_SCORE_SECONDS": "86400000",
}


def _calls() -> list[dict]:
    """Per person: a page view while anonymous, the sign-up that ties the anonymous id
    to the user id (a merge when the user's events were resolved first), three orders.
    Shuffled, so a person's events land in different batches."""
    calls = []
    for i in range(PEOPLE):
        at = f"2026-05-01T10:{i % 60:02d}:{i // 60:02d}Z"
        calls.append({"type": "page", "anonymousId": f"a{i}", "name": "Home", "timestamp": at})
        calls.append(
            {
                "type": "identify",
                "anonymousId": f"a{i}",
                "userId": f"u{i}",
                "traits": {"email": f"person{i}@example.com"},
                "timestamp": at,
            }
        )
        for n in range(EVENTS_EACH - 2):
            calls.append(
                {
                    "type": "track",
                    "userId": f"u{i}",
                    "event": "Order Completed",
                    "properties": {"revenue": n + 1},
                    "timestamp": at,
                }
            )
    random.Random(22).shuffle(calls)
    for n, call in enumerate(calls):
        call["messageId"] = f"kill-{n}"
    return calls


class Database:
    def __init__(self, url: str) -> None:
        self.url = url

    def one(self, sql: str) -> int:
        if self.url.startswith("sqlite:///"):
            with closing(sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=30)) as db:
                return db.execute(sql).fetchone()[0]
        import psycopg

        with psycopg.connect(self.url) as db:
            return db.execute(sql).fetchone()[0]


def _worker(env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [RAPPORT, "worker", "--interval", "0.1"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _kill(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def test_a_worker_killed_mid_pipeline_loses_no_event():
    calls = _calls()
    with (
        live_server(workers=1, env=ENV, port=PORT) as server,
        tempfile.TemporaryDirectory() as folder,
    ):
        db = Database(server.env["DATABASE_URL"])
        log = Path(folder) / "worker.log"
        with httpx.Client(auth=(server.write_key, "")) as http:
            for start in range(0, len(calls), PER_REQUEST):
                batch = calls[start : start + PER_REQUEST]
                response = http.post(f"{server.url}/v1/batch", json={"batch": batch}, timeout=30)
                assert response.status_code == 200
        assert db.one("SELECT COUNT(*) FROM ingest_event") == PEOPLE * EVENTS_EACH
        batches = db.one("SELECT COUNT(*) FROM ingest_pipelinebatch")
        assert batches >= len(calls) // PER_REQUEST // 2

        # Kill the worker while it holds a batch (its lease taken, its work begun).
        held_at_kill = resolved_at_kill = 0
        for _ in range(3):
            worker = _worker(server.env, log)
            deadline = time.monotonic() + 120
            try:
                while time.monotonic() < deadline:
                    held = db.one(
                        "SELECT COUNT(*) FROM ingest_pipelinebatch WHERE claimed_until IS NOT NULL"
                    )
                    if held and db.one(
                        "SELECT COUNT(*) FROM ingest_event WHERE profile_id IS NOT NULL"
                    ):
                        time.sleep(random.uniform(0, 0.05))
                        break
                    time.sleep(0.01)
            finally:
                _kill(worker)
            held_at_kill = db.one(
                "SELECT COUNT(*) FROM ingest_pipelinebatch WHERE claimed_until IS NOT NULL"
            )
            resolved_at_kill = db.one(
                "SELECT COUNT(*) FROM ingest_event WHERE profile_id IS NOT NULL"
            )
            if held_at_kill:
                break
        assert held_at_kill, "the worker was never killed while it held a batch"
        assert 0 < resolved_at_kill < PEOPLE * EVENTS_EACH
        running = db.one(
            "SELECT COUNT(*) FROM django_tasks_database_dbtaskresult WHERE status = 'RUNNING'"
        )
        assert running >= 1  # the dead worker's task: no one will finish it

        # Another worker: the queue, and the held batch once the sweeper finds it.
        worker = _worker(server.env, log)
        try:
            deadline = time.monotonic() + 180
            while (
                db.one("SELECT COUNT(*) FROM ingest_pipelinestep") and time.monotonic() < deadline
            ):
                time.sleep(0.25)
            left = db.one("SELECT COUNT(*) FROM ingest_pipelinestep")
            assert left == 0, log.read_text()[-3000:]
        finally:
            _kill(worker)

        assert db.one("SELECT COUNT(*) FROM ingest_pipelinebatch") == 0
        assert db.one("SELECT COUNT(*) FROM ingest_event") == PEOPLE * EVENTS_EACH
        assert db.one("SELECT COUNT(*) FROM ingest_event WHERE profile_id IS NULL") == 0
        assert (
            db.one("SELECT COUNT(*) FROM profiles_profile WHERE merged_into_id IS NULL") == PEOPLE
        )
        # Each event's profile is a live customer holding its person's user id.
        assert (
            db.one(
                "SELECT COUNT(*) FROM ingest_event e JOIN profiles_profile p ON p.id = e.profile_id"
                " WHERE p.merged_into_id IS NULL"
            )
            == PEOPLE * EVENTS_EACH
        )
        assert (
            db.one("SELECT COUNT(DISTINCT e.profile_id) FROM ingest_event e WHERE e.user_id <> ''")
            == PEOPLE
        )
        # Each person's user id, anonymous id and email, each held once.
        assert db.one("SELECT COUNT(*) FROM identity_identifier") == 3 * PEOPLE
