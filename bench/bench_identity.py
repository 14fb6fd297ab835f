"""Identity resolution throughput: N identify/track/page calls from N*0.3 people, each
browsing anonymously on one or two devices, most of them signing up at some point,
stored through the ingestion service and resolved in batches as a worker does.

Target (issue 4): 1,000,000 calls with 300,000 people in under 2 minutes.
BENCH_IDENTITY_EVENTS sets N (default 1,000,000); BENCH_DATABASE_URL picks PostgreSQL:
a server's URL, or `server` for a throwaway server of this machine's PostgreSQL with the
settings `deploy/postgresql.conf` recommends for production (`bench/postgres_server.py`).

BENCH_IDENTITY_WORKERS (default 1): with 1, one worker hands each batch to every
consumer of the dispatch and each consumer's share is timed. With W > 1 (PostgreSQL),
W worker processes take the batches in order from one queue, as `rapport worker`s on
one queue do, running identity resolution (reading the batch and `events_resolve`)
only; the figure is the wall-clock time until every batch is resolved, with the
statistics refreshes running beside them: the server's autovacuum where it runs, else
the bench's `ANALYZE` every tenth of the rows, as autovacuum would.
"""

import contextlib
import os
import random
import subprocess
import sys
import time
import uuid

EVENTS = int(os.environ.get("BENCH_IDENTITY_EVENTS", "1000000"))
WORKERS = int(os.environ.get("BENCH_IDENTITY_WORKERS", "1"))
BATCH = 5000
# Batches between the statistics refreshes autovacuum would make (a tenth of 1M rows).
ANALYZE_EVERY = 20


def _calls(n: int, seed: int = 7):
    """Realistic stitching: anonymous first, a sign-up joining devices, then known."""
    rng = random.Random(seed)
    people = max(1, int(n * 0.3))
    devices = {
        p: [f"anon-{p}-{d}" for d in range(1 + (rng.random() < 0.35))] for p in range(people)
    }
    known: set[int] = set()
    for i in range(n):
        p = rng.randrange(people)
        anon = rng.choice(devices[p])
        if p not in known and rng.random() < 0.25:
            known.add(p)
            yield {
                "type": "identify",
                "anonymousId": anon,
                "userId": f"user-{p}",
                "traits": {"email": f"person{p}@example.com", "plan": rng.choice(["free", "pro"])},
                "messageId": f"b{i}",
            }
        elif p in known and rng.random() < 0.6:
            yield {
                "type": "track",
                "userId": f"user-{p}",
                "anonymousId": anon,
                "event": "Order Completed",
                "properties": {"revenue": 10},
                "messageId": f"b{i}",
            }
        else:
            yield {"type": "page", "anonymousId": anon, "name": "Home", "messageId": f"b{i}"}


def _child() -> dict:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    from rapport.ingest.models import Event
    from rapport.ingest.services import (
        Destination,
        events_dispatch,
        events_ingest,
        events_parse,
    )
    from rapport.profiles.models import Profile
    from rapport.tenancy.services import Actor, workspace_create

    created = workspace_create(name=f"Bench {uuid.uuid4().hex[:6]}", actor=Actor.system("bench"))
    destination = Destination(workspace_id=created.workspace.pk, source_id=created.source.pk)
    started = time.perf_counter()
    batch, message_batches = [], []
    for call in _calls(EVENTS):
        batch.append(call)
        if len(batch) == BATCH:
            now = timezone.now()
            rows, _ = events_parse(batch, received_at=now)
            message_batches.append(
                events_ingest(
                    destination=destination, rows=rows, refused=[], received_at=now
                ).message_ids
            )
            batch = []
    if batch:
        now = timezone.now()
        rows, _ = events_parse(batch, received_at=now)
        message_batches.append(
            events_ingest(
                destination=destination, rows=rows, refused=[], received_at=now
            ).message_ids
        )
    stored_s = time.perf_counter() - started
    if connection.vendor == "postgresql":
        # What autovacuum does after a bulk load; it is off on this machine's server, and
        # without statistics the planner takes a million rows for a few hundred.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE ingest_event")

    server = _server_settings(connection)
    # Where the server runs autovacuum, it refreshes the statistics as resolution
    # rewrites the tables; where it is off, the bench does what it would.
    analyze_every = 0 if server.get("autovacuum") == "on" else ANALYZE_EVERY

    if WORKERS > 1 and connection.vendor == "postgresql":
        figures = _workers_run(created.workspace.pk, message_batches, stored_s, analyze_every)
        return {**figures, **server}

    # Each consumer's share of the worker's time, and reading the batch's events.
    from rapport.ingest import services as ingest

    spent: dict[str, float] = {}

    def timed(name, function):
        def wrapper(*args, **kwargs):
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - began

        return wrapper

    import contextlib
    import dataclasses

    from rapport.ingest.pipeline import pipeline_consumers, pipeline_override

    timed_pipeline = [
        dataclasses.replace(c, run=timed(c.function().__name__, c.function()))
        for c in pipeline_consumers()
    ]
    contextlib.ExitStack().enter_context(pipeline_override(timed_pipeline))
    ingest.events_dispatched = timed("events_read", ingest.events_dispatched)

    started = time.perf_counter()
    analyzed = 0.0
    for n, message_ids in enumerate(message_batches, start=1):
        # What a worker runs for each stored batch: every consumer, identity first.
        events_dispatch(workspace_id=created.workspace.pk, message_ids=message_ids)
        if connection.vendor == "postgresql" and analyze_every and n % analyze_every == 0:
            # What autovacuum would do as resolution changes a tenth of the rows (it is
            # off on this machine's server): without it the planner goes on believing
            # every event has no profile, and plans the consumers' queries on that.
            began = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE ingest_event, profiles_profile, identity_identifier")
            analyzed += time.perf_counter() - began
    resolve_s = time.perf_counter() - started - analyzed
    profiles = Profile.objects.filter(workspace=created.workspace, merged_into__isnull=True).count()
    unresolved = Event.objects.filter(workspace=created.workspace, profile__isnull=True).count()
    return {
        "events": EVENTS,
        "people_in_data": int(EVENTS * 0.3),
        "live_profiles": profiles,
        "unresolved_events": unresolved,
        "store_seconds": round(stored_s, 1),
        "resolve_seconds": round(resolve_s, 1),
        # Not in resolve_seconds: autovacuum's work, which runs beside the workers.
        "analyze_seconds": round(analyzed, 1),
        # Identity resolution proper: reading the batch and the identity consumer.
        "identity_seconds": round(spent["events_read"] + spent["events_resolve"], 1),
        "seconds_by_step": {name: round(value, 1) for name, value in spent.items()},
        "resolved_events_per_s": round(EVENTS / resolve_s, 1),
        "target_seconds": 120,
        **server,
    }


def _server_settings(connection) -> dict:
    """The PostgreSQL settings that decide most of the figure, to print beside it."""
    if connection.vendor != "postgresql":
        return {}
    with connection.cursor() as cursor:
        settings = {}
        for name in ("shared_buffers", "max_wal_size", "autovacuum"):
            cursor.execute(f"SHOW {name}")
            settings[name] = cursor.fetchone()[0]
    return settings


def _worker(workspace_id, message_batches, taken, done) -> None:
    """One worker process: the next batch from the queue until none is left."""
    from django.db import connections

    from rapport.identity.services import events_resolve
    from rapport.ingest.services import events_dispatched

    connections.close_all()
    while True:
        with taken.get_lock():
            n = taken.value
            taken.value += 1
        if n >= len(message_batches):
            return
        events_resolve(
            workspace_id,
            events_dispatched(workspace_id=workspace_id, message_ids=message_batches[n]),
        )
        with done.get_lock():
            done.value += 1


def _workers_run(workspace_id, message_batches, stored_s: float, analyze_every: int) -> dict:
    import multiprocessing

    from django.db import connection, connections

    from rapport.ingest.models import Event
    from rapport.profiles.models import Profile

    connections.close_all()
    context = multiprocessing.get_context("fork")
    taken, done = context.Value("i", 0), context.Value("i", 0)
    workers = [
        context.Process(target=_worker, args=(workspace_id, message_batches, taken, done))
        for _ in range(WORKERS)
    ]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    # What autovacuum does beside the workers (it is off on this machine's server).
    analyzed, refreshed = 0.0, 0
    while any(worker.is_alive() for worker in workers):
        if analyze_every and done.value >= (refreshed + 1) * analyze_every:
            refreshed = done.value // analyze_every
            began = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE ingest_event, profiles_profile, identity_identifier")
            analyzed += time.perf_counter() - began
        time.sleep(0.05)
    resolve_s = time.perf_counter() - started
    if any(worker.exitcode for worker in workers):
        raise RuntimeError("a worker failed")
    profiles = Profile.objects.filter(workspace_id=workspace_id, merged_into__isnull=True).count()
    unresolved = Event.objects.filter(workspace_id=workspace_id, profile__isnull=True).count()
    return {
        "events": EVENTS,
        "people_in_data": int(EVENTS * 0.3),
        "workers": WORKERS,
        "live_profiles": profiles,
        "unresolved_events": unresolved,
        "store_seconds": round(stored_s, 1),
        # Wall-clock, every batch read and resolved by the workers together.
        "identity_seconds": round(resolve_s, 1),
        "analyze_seconds_beside": round(analyzed, 1),
        "resolved_events_per_s": round(EVENTS / resolve_s, 1),
        "target_seconds": 120,
    }


def run() -> dict:
    import json
    import tempfile

    from bench.postgres_server import postgres_server
    from tests.live_server import _database

    with contextlib.ExitStack() as stack:
        base = os.environ.get("BENCH_DATABASE_URL", "")
        if base == "server":
            base = stack.enter_context(postgres_server())
        data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="rapport-bench-"))
        url = stack.enter_context(_database(data_dir, base))
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "RAPPORT_DATA_DIR": data_dir,
            "DJANGO_SETTINGS_MODULE": "rapport.settings",
            "LOG_LEVEL": "WARNING",
        }
        out = subprocess.run(
            [sys.executable, "-m", "bench.bench_identity", "--child"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        figures["database"] = "postgresql" if url.startswith("postgres") else "sqlite"
        return figures


if __name__ == "__main__" and "--child" in sys.argv:
    import json

    print(json.dumps(_child()))
