"""Event-to-profile latency under sustained load: events sent to `/v1/batch` at a fixed
rate while `rapport worker`s run the whole pipeline; for each event, the time from when
it was due to be sent to when identity resolution has given it a profile.

Target (issue 22): p99 under 1 s at 5,000 events/s with two workers on PostgreSQL.

The load is open-loop: request i is due at i/rate seconds (100 events each) and its
latency counts from then, so a server that falls behind is not excused by a client
that waits for it. An event has its profile once the identity step of its pipeline
batch is gone (deleted in the transaction after the one that set the profile): the
bench polls the steps every POLL seconds, so each figure is late by up to that much.

BENCH_DATABASE_URL: a PostgreSQL server's URL (a fresh database on it, dropped
afterwards), `server` for a throwaway server with `deploy/postgresql.conf`'s settings,
unset for a SQLite file. BENCH_PIPELINE_RATE (events/s, default 5000),
BENCH_PIPELINE_SECONDS (default 60), BENCH_PIPELINE_WORKERS (default 2),
BENCH_PIPELINE_SERVERS (web processes; default as `rapport serve` chooses),
BENCH_PIPELINE_PORT (the web server's port, default 18160).
"""

import contextlib
import os
import statistics
import subprocess
import threading
import time
import uuid
from pathlib import Path

import httpx
import orjson

from bench.bench_identity import _calls
from bench.load import open_loop
from tests.live_server import RAPPORT, live_server

RATE = float(os.environ.get("BENCH_PIPELINE_RATE", "5000"))
SECONDS = float(os.environ.get("BENCH_PIPELINE_SECONDS", "60"))
WORKERS = int(os.environ.get("BENCH_PIPELINE_WORKERS", "2"))
SERVERS = int(os.environ.get("BENCH_PIPELINE_SERVERS", "0")) or None
PORT = int(os.environ.get("BENCH_PIPELINE_PORT", "18160"))
BATCH = 100
POLL = 0.05
DRAIN_LIMIT = 300.0
# Periodic work a fresh workspace would start with (training, RFM), not measured here.
QUIET = {
    "RAPPORT_MODELS_TRAIN_SECONDS": "86400000",
    "RAPPORT_MODELS_SCORE_SECONDS": "86400000",
    "RAPPORT_RFM_REFRESH_SECONDS": "86400000",
    "RAPPORT_KPI_SNAPSHOT_SECONDS": "86400000",
    "RAPPORT_SEGMENTS_REFRESH_SECONDS": "86400000",
}


class Pending:
    """The message ids whose identity step is not done, read from the database."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///"):
            import sqlite3

            # Read from the polling thread too (one reader at a time).
            self.db = sqlite3.connect(
                url.removeprefix("sqlite:///"), timeout=30, check_same_thread=False
            )
        else:
            import psycopg

            self.db = psycopg.connect(url, autocommit=True)

    def read(self) -> set[str]:
        rows = self.db.execute(
            "SELECT b.message_ids FROM ingest_pipelinestep s"
            " JOIN ingest_pipelinebatch b ON b.id = s.batch_id WHERE s.consumer = 'identity'"
        ).fetchall()
        pending: set[str] = set()
        for (ids,) in rows:
            pending.update(orjson.loads(ids) if isinstance(ids, str | bytes) else ids)
        return pending


def _bodies(count: int, run: str) -> list[tuple[list[str], bytes]]:
    calls = _calls(count * BATCH, seed=22)
    bodies = []
    for _ in range(count):
        items = [next(calls) for _ in range(BATCH)]
        for item in items:
            item["messageId"] = f"{run}-{item['messageId']}"
        bodies.append(([i["messageId"] for i in items], orjson.dumps({"batch": items})))
    return bodies


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run() -> dict:
    from bench.postgres_server import postgres_server

    base = os.environ.get("BENCH_DATABASE_URL", "")
    requests = int(RATE * SECONDS / BATCH)
    run_id = uuid.uuid4().hex[:8]
    bodies = _bodies(requests, run_id)
    with contextlib.ExitStack() as stack:
        if base == "server":
            base = stack.enter_context(postgres_server())
        database = "postgresql" if base.startswith("postgres") else "sqlite"
        servers = SERVERS or (3 if database == "postgresql" else 1)
        server = stack.enter_context(
            live_server(workers=servers, database_url=base, env=QUIET, port=PORT)
        )
        folder = Path(server.env["RAPPORT_DATA_DIR"])
        workers = [
            subprocess.Popen(
                [RAPPORT, "worker", "--interval", "0.05"],
                env=server.env,
                stdout=(folder / f"worker-{n}.log").open("wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            for n in range(WORKERS)
        ]
        stack.callback(lambda: [w.kill() for w in workers])
        pending = Pending(server.env["DATABASE_URL"])
        _warm_up(server, pending)
        figures = _measure(server, bodies, pending)
        for worker in workers:
            if worker.poll() is not None:
                raise RuntimeError(f"a worker exited ({worker.returncode})")
    return {
        "database": database,
        "web_processes": servers,
        "workers": WORKERS,
        "target_events_per_s": RATE,
        "seconds": SECONDS,
        **figures,
        "target_p99_s": 1.0,
    }


def _warm_up(server, pending: Pending) -> None:
    """Workers started and past their first batch before the clock starts."""
    warm = [{"type": "page", "anonymousId": f"warm-{i}", "name": "Home"} for i in range(10)]
    response = httpx.post(
        f"{server.url}/v1/batch", json={"batch": warm}, auth=(server.write_key, ""), timeout=60
    )
    response.raise_for_status()
    deadline = time.monotonic() + 120
    while pending.read() or _steps(pending):
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not start")
        time.sleep(0.1)


def _steps(pending: Pending) -> int:
    return pending.db.execute("SELECT COUNT(*) FROM ingest_pipelinestep").fetchone()[0]


def _measure(server, bodies, pending: Pending) -> dict:
    lock = threading.Lock()
    acked: list[tuple[float, list[str]]] = []  # (due, message ids), in order of answer
    failures = 0

    def answered(n: int, due: float, status: int) -> None:
        nonlocal failures
        with lock:
            if status == 200:
                acked.append((due, bodies[n][0]))
            else:
                failures += 1

    latencies: list[float] = []
    backlog: list[int] = []
    waiting: list[tuple[float, list[str]]] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            with lock:
                waiting.extend(acked)
                acked.clear()
            now = time.monotonic()
            left = pending.read()
            backlog.append(len(left))
            still = []
            for due, ids in waiting:
                if left.isdisjoint(ids):
                    latencies.extend([now - due] * len(ids))
                else:
                    still.append((due, ids))
            waiting[:] = still
            time.sleep(POLL)

    poller = threading.Thread(target=poll)
    poller.start()
    started, sent_s = open_loop(
        server.url,
        server.write_key,
        [body for _, body in bodies],
        per_second=RATE / BATCH,
        on_answer=answered,
    )
    drain_until = time.monotonic() + DRAIN_LIMIT
    while time.monotonic() < drain_until:
        with lock:
            if not acked and not waiting:
                break
        time.sleep(0.2)
    drained_s = time.monotonic() - started
    stop.set()
    poller.join()
    events = len(latencies)
    return {
        "events_sent": len(bodies) * BATCH,
        "events_resolved": events,
        "events_never_resolved": sum(len(ids) for _, ids in waiting),
        "failed_requests": failures,
        "offered_events_per_s": round(len(bodies) * BATCH / sent_s, 1),
        "resolved_in_s": round(drained_s, 1),
        "latency_p50_s": round(statistics.median(latencies), 3) if events else None,
        "latency_p90_s": round(_percentile(latencies, 0.90), 3) if events else None,
        "latency_p99_s": round(_percentile(latencies, 0.99), 3) if events else None,
        "latency_max_s": round(max(latencies), 3) if events else None,
        "backlog_max_events": max(backlog, default=0),
        "poll_s": POLL,
    }
