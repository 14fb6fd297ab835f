"""A journey's trigger under incoming traffic (issue 25): events sent to `/v1/batch` at a
fixed rate while `rapport worker`s run the pipeline and the journeys; some of them are
a journey's trigger event, each from a new customer. For each trigger event, the time
from when it was due to be sent to when the journey's first step has run for its
customer (its step log row).

Target (issue 25): within 1 s at 1,000 events/s of incoming traffic.

The load is open-loop as in bench_pipeline (request i is due at i/rate seconds, 100
events each, latency counted from then). In each request BENCH_JOURNEY_TRIGGERS of the
100 events (default 5) are the trigger, "Bench Trigger", from customers seen for the
first time; the rest are bench_identity's mix of page views, tracks and identifies. The
journey: trigger "Bench Trigger", first step an `update_trait`, then exit. The bench
polls the step log every POLL seconds, so each figure is late by up to that much.

BENCH_DATABASE_URL as bench_pipeline's (a PostgreSQL server's URL, `server`, or unset for
SQLite). BENCH_JOURNEY_RATE (events/s, default 1000), BENCH_JOURNEY_SECONDS (default
30), BENCH_JOURNEY_WORKERS (default 2), BENCH_JOURNEY_INTERVAL (the workers' idle poll,
default 0.1 s, `rapport worker`'s own),
BENCH_JOURNEY_PORT (default 18170).
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
from bench.bench_pipeline import QUIET, Pending, _percentile, _warm_up
from bench.load import open_loop
from tests.live_server import RAPPORT, live_server

RATE = float(os.environ.get("BENCH_JOURNEY_RATE", "1000"))
SECONDS = float(os.environ.get("BENCH_JOURNEY_SECONDS", "30"))
WORKERS = int(os.environ.get("BENCH_JOURNEY_WORKERS", "2"))
TRIGGERS = int(os.environ.get("BENCH_JOURNEY_TRIGGERS", "5"))
PORT = int(os.environ.get("BENCH_JOURNEY_PORT", "18170"))
# The workers' poll for new tasks when idle (`rapport worker --interval`, whose default it is).
INTERVAL = os.environ.get("BENCH_JOURNEY_INTERVAL", "0.1")
BATCH = 100
POLL = 0.05
DRAIN_LIMIT = 120.0
EVENT = "Bench Trigger"

GRAPH = {
    "name": "Bench trigger",
    "trigger": {"type": "event", "event": EVENT},
    "start": "hello",
    "steps": {"hello": {"type": "update_trait", "trait": "bench_journey", "value": True}},
}


def _bodies(count: int, run: str) -> list[tuple[list[str], bytes]]:
    """(the trigger customers' user ids, the request body) for each request."""
    calls = _calls(count * BATCH, seed=25)
    bodies = []
    serial = 0
    for _ in range(count):
        items = [next(calls) for _ in range(BATCH - TRIGGERS)]
        for item in items:
            item["messageId"] = f"{run}-{item['messageId']}"
        users = []
        for _ in range(TRIGGERS):
            serial += 1
            user = f"trig-{run}-{serial}"
            users.append(user)
            items.append(
                {"type": "track", "userId": user, "event": EVENT, "messageId": f"{user}-t"}
            )
        bodies.append((users, orjson.dumps({"batch": items})))
    return bodies


def _reached(db, run: str) -> set[str]:
    """The trigger customers (user ids) whose first step has run."""
    import sqlite3

    mark = "?" if isinstance(db, sqlite3.Connection) else "%s"
    rows = db.execute(
        "SELECT i.value FROM journeys_steprun r"
        " JOIN journeys_enrolment e ON e.id = r.enrolment_id"
        " JOIN identity_identifier i ON i.profile_id = e.profile_id"
        f" WHERE r.step = 'hello' AND i.kind = 'user_id' AND i.value LIKE {mark}",
        [f"trig-{run}-%"],
    ).fetchall()
    return {value for (value,) in rows}


def _journey_start(server) -> str:
    headers = {"Authorization": f"Bearer {server.token}"}
    made = httpx.post(f"{server.url}/api/v1/journeys", json=GRAPH, headers=headers, timeout=60)
    made.raise_for_status()
    journey_id = made.json()["id"]
    started = httpx.post(
        f"{server.url}/api/v1/journeys/{journey_id}/start", headers=headers, timeout=60
    )
    started.raise_for_status()
    return journey_id


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
        server = stack.enter_context(
            live_server(
                workers=3 if database == "postgresql" else 1,
                database_url=base,
                env=QUIET,
                port=PORT,
            )
        )
        folder = Path(server.env["RAPPORT_DATA_DIR"])
        workers = [
            subprocess.Popen(
                [RAPPORT, "worker", "--interval", INTERVAL],
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
        journey_id = _journey_start(server)
        figures = _measure(server, bodies, pending, run_id)
        for worker in workers:
            if worker.poll() is not None:
                raise RuntimeError(f"a worker exited ({worker.returncode})")
    return {
        "database": database,
        "workers": WORKERS,
        "worker_interval_s": float(INTERVAL),
        "target_events_per_s": RATE,
        "trigger_events_per_request": TRIGGERS,
        "seconds": SECONDS,
        "journey": journey_id,
        **figures,
        "target_s": 1.0,
    }


def _measure(server, bodies, pending: Pending, run_id: str) -> dict:
    lock = threading.Lock()
    due_of: dict[str, float] = {}
    failures = 0

    def answered(n: int, due: float, status: int) -> None:
        nonlocal failures
        with lock:
            if status == 200:
                due_of.update(dict.fromkeys(bodies[n][0], due))
            else:
                failures += 1

    latencies: dict[str, float] = {}
    stop = threading.Event()

    def poll() -> None:
        # A connection of this thread's own (SQLite's may not cross threads).
        db = Pending(server.env["DATABASE_URL"]).db
        while not stop.is_set():
            now = time.monotonic()
            reached = _reached(db, run_id)
            with lock:
                for user in reached - latencies.keys():
                    if user in due_of:
                        latencies[user] = now - due_of[user]
            time.sleep(POLL)

    poller = threading.Thread(target=poll)
    poller.start()
    _, sent_s = open_loop(
        server.url,
        server.write_key,
        [body for _, body in bodies],
        per_second=RATE / BATCH,
        on_answer=answered,
        clients=8,
    )
    drain_until = time.monotonic() + DRAIN_LIMIT
    while time.monotonic() < drain_until:
        with lock:
            if len(latencies) >= len(due_of):
                break
        time.sleep(0.2)
    stop.set()
    poller.join()
    values = list(latencies.values())
    return {
        "events_sent": len(bodies) * BATCH,
        "offered_events_per_s": round(len(bodies) * BATCH / sent_s, 1),
        "triggers_sent": len(due_of),
        "triggers_reached_first_step": len(values),
        "failed_requests": failures,
        "latency_p50_s": round(statistics.median(values), 3) if values else None,
        "latency_p90_s": round(_percentile(values, 0.90), 3) if values else None,
        "latency_p99_s": round(_percentile(values, 0.99), 3) if values else None,
        "latency_max_s": round(max(values), 3) if values else None,
        "poll_s": POLL,
    }


if __name__ == "__main__":
    import json

    figures = run()
    out = Path(__file__).parent / "results" / f"bench_journey_trigger-{figures['database']}.json"
    out.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
