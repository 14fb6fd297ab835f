"""The journey runner (issue 25), on PostgreSQL: due steps per second beside a million
waiting enrolments, and what the waiting ones cost while not due.

BENCH_JOURNEYS_WAITING enrolments (default 1,000,000) wait 30 days at a `wait` step;
BENCH_JOURNEYS_DUE more (default 20,000) are at the same kind of step with their timer
run out. Customers and enrolments are written straight into the tables (INSERT ...
SELECT generate_series). The database: a new one on the PostgreSQL server
BENCH_DATABASE_URL names, dropped afterwards; without it, DATABASE_URL's. Measured:

- not due: an empty run of the runner (`enrolments_advance` finding nothing due) with
  the waiting rows in the table, in milliseconds (median of 50), its query plan (the
  partial index on (workspace, due_at), never a scan of the enrolments), and the size of
  that index against the table's;
- due: the runner in this process, batch after batch (BENCH_JOURNEYS_BATCH, default
  2,000), until nothing is due. Each due customer runs four steps: the end of its wait
  (logged), a split, a branch on a trait (one query for the batch) and a new 30-day
  wait. Steps per second, and per CPU second of this process and of its PostgreSQL
  backend together (read from /proc: the server runs on this machine), since the
  machine is shared;
- sends: BENCH_JOURNEYS_SENDS customers (default 2,000) through a send step (a message
  planned through the channels' exactly-once path and its sending task queued, not
  sent): sends per second and per CPU second.
"""

import contextlib
import json
import os
import resource
import statistics
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

WAITING = int(os.environ.get("BENCH_JOURNEYS_WAITING", "1000000"))
DUE = int(os.environ.get("BENCH_JOURNEYS_DUE", "20000"))
SENDS = int(os.environ.get("BENCH_JOURNEYS_SENDS", "2000"))
BATCH = int(os.environ.get("BENCH_JOURNEYS_BATCH", "2000"))

GRAPH = {
    "name": "Bench",
    "start": "wait",
    "steps": {
        "wait": {"type": "wait", "seconds": 30 * 86400, "next": "ab"},
        "ab": {
            "type": "split",
            "paths": [{"share": 50, "next": "pro", "label": "A"}, {"share": 50, "next": "pro"}],
        },
        "pro": {
            "type": "branch",
            "rule": {"trait": "plan", "op": "eq", "value": "pro"},
            "yes": "later",
            "no": "later",
        },
        "later": {"type": "wait", "seconds": 30 * 86400, "next": None},
    },
}
SEND_GRAPH = {
    "name": "Bench sends",
    "start": "hi",
    "steps": {
        "hi": {
            "type": "send",
            "channel": "email",
            "purpose": "marketing",
            "content": {"subject": "Hello {{ customer.first_name }}", "html": "<p>Hi</p>"},
            "next": None,
        }
    },
}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _backend_cpu(pid: int) -> float | None:
    """CPU seconds of this connection's PostgreSQL backend (same machine), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _fill_profiles(workspace, count: int, tag: str) -> None:
    from django.db import connection
    from django.utils import timezone

    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO profiles_profile
              (id, workspace_id, traits, trait_sources, first_seen_at, last_seen_at,
               created_at, updated_at)
            SELECT md5(%s || n)::uuid, %s,
                   jsonb_build_object('email', 'j' || n || '@example.com',
                                      'first_name', 'J' || n,
                                      'plan', CASE WHEN n %% 3 = 0 THEN 'pro' ELSE 'free' END),
                   '{}'::jsonb, %s, %s, %s, %s
              FROM generate_series(1, %s) AS n
            """,
            [tag, workspace.pk, now, now, now, now, count],
        )


def _fill_enrolments(journey, version, tag: str, first: int, count: int, due_at) -> None:
    """Enrolments of the customers `first`..`first + count - 1` (by `_fill_profiles`'s
    numbering), waiting at the first step until `due_at`."""
    from django.db import connection
    from django.utils import timezone

    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO journeys_enrolment
              (id, workspace_id, journey_id, version_id, profile_id, state, step, visit,
               visits, resume, due_at, waiting_for, holdout, path, entered_at,
               exit_reason, created_at, updated_at)
            SELECT gen_random_uuid(), %s, %s, %s, md5(%s || n)::uuid, 'active', 'wait', 1,
                   '{"wait": 1}'::jsonb, 'ab', %s, '', false, '', %s, '', %s, %s
              FROM generate_series(%s, %s) AS n
            """,
            [
                journey.workspace_id,
                journey.pk,
                version.pk,
                tag,
                due_at,
                now,
                now,
                now,
                first,
                first + count - 1,
            ],
        )


@contextlib.contextmanager
def _database():
    """BENCH_DATABASE_URL: a database of its own on that server, created, migrated and
    dropped afterwards (BENCH_JOURNEYS_KEEP=1 keeps it); else DATABASE_URL as it is."""
    base = os.environ.get("BENCH_DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        yield
        return
    import psycopg

    parts = urlsplit(base)
    name = f"rapport_bench_journeys_{uuid.uuid4().hex[:8]}"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))
    try:
        yield
    finally:
        from django.db import connections

        connections.close_all()
        if not os.environ.get("BENCH_JOURNEYS_KEEP"):
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run() -> dict:
    with _database():
        return _run()


def _advance_all(workspace_id) -> dict:
    from rapport.journeys import services

    total = {"claimed": 0, "steps": 0, "batches": 0}
    while True:
        counts = services.enrolments_advance(workspace_id=workspace_id, limit=BATCH)
        total["claimed"] += counts["claimed"]
        total["steps"] += counts.get("steps", 0) + counts.get("waits", 0)
        total["batches"] += 1
        if counts["claimed"] < BATCH:
            return total


def _run() -> dict:
    from bench.filled import postgresql_ready

    if not postgresql_ready():
        return {
            "skipped": "needs BENCH_DATABASE_URL (or DATABASE_URL) naming a PostgreSQL database"
        }
    from datetime import timedelta

    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from rapport.journeys import services
    from rapport.journeys.models import JourneyVersion, StepRun
    from rapport.tenancy.services import Actor, workspace_create

    call_command("migrate", verbosity=0)
    settings.RAPPORT_JOURNEYS_ENQUEUE = False
    actor = Actor.system("bench")
    workspace = workspace_create(name=f"bench-journeys-{int(time.time())}", actor=actor).workspace
    tag = str(workspace.pk)
    journey = services.journey_create(workspace=workspace, graph=GRAPH, actor=actor)
    journey = services.journey_start(journey=journey, actor=actor)
    version = JourneyVersion.objects.get(journey=journey)

    started = time.perf_counter()
    _fill_profiles(workspace, WAITING + DUE + SENDS, tag)
    now = timezone.now()
    _fill_enrolments(journey, version, tag, 1, WAITING, now + timedelta(days=30))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE profiles_profile, journeys_enrolment")
    fill_s = time.perf_counter() - started

    # Not due: the runner's read with a million timers set, none run out.
    empty = []
    for _ in range(50):
        t = time.perf_counter()
        assert services.enrolments_advance(workspace_id=workspace.pk)["claimed"] == 0
        empty.append((time.perf_counter() - t) * 1000)
    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN SELECT id FROM journeys_enrolment WHERE workspace_id = %s"
            " AND state IN ('active', 'held_out') AND due_at IS NOT NULL AND due_at <= %s"
            " AND (claimed_until IS NULL OR claimed_until < %s) ORDER BY due_at LIMIT 2000"
            " FOR UPDATE SKIP LOCKED",
            [workspace.pk, now, now],
        )
        plan = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            "SELECT pg_relation_size('journeys_enrolment_due'),"
            " pg_relation_size('journeys_enrolment')"
        )
        index_bytes, table_bytes = cursor.fetchone()
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]

    # Due: DUE more customers whose wait has run out.
    _fill_enrolments(journey, version, tag, WAITING + 1, DUE, now - timedelta(seconds=1))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE journeys_enrolment")
    cpu, server = _cpu(), _backend_cpu(backend)
    started = time.perf_counter()
    due = _advance_all(workspace.pk)
    due_s = time.perf_counter() - started
    due_cpu = _cpu() - cpu
    server_cpu = (_backend_cpu(backend) or 0) - (server or 0) if server is not None else None
    runs = StepRun.objects.filter(journey=journey).count()

    # Sends: customers at a send step, each a message through the exactly-once path.
    sender = services.journey_create(workspace=workspace, graph=SEND_GRAPH, actor=actor)
    sender = services.journey_start(journey=sender, actor=actor)
    from rapport.profiles.models import Profile

    ids = list(
        Profile.objects.filter(workspace=workspace)
        .order_by("pk")
        .values_list("pk", flat=True)[:SENDS]
    )
    services.enrolments_create_many(journey=sender, profile_ids=ids)
    cpu, server = _cpu(), _backend_cpu(backend)
    started = time.perf_counter()
    sends = _advance_all(workspace.pk)
    send_s = time.perf_counter() - started
    send_cpu = _cpu() - cpu
    send_server = (_backend_cpu(backend) or 0) - (server or 0) if server is not None else None

    return {
        "database": "postgresql",
        "waiting": WAITING,
        "due": DUE,
        "batch": BATCH,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "fill_seconds": round(fill_s, 1),
        "not_due": {
            "empty_run_ms_median": round(statistics.median(empty), 2),
            "empty_run_ms_max": round(max(empty), 2),
            "claim_plan": plan,
            "due_index_bytes": index_bytes,
            "enrolment_table_bytes": table_bytes,
        },
        "due_steps": {
            "enrolments": due["claimed"],
            "steps": due["steps"],
            "step_runs_logged": runs,
            "batches": due["batches"],
            "seconds": round(due_s, 2),
            "steps_per_second": round(due["steps"] / due_s),
            "client_cpu_seconds": round(due_cpu, 2),
            "server_cpu_seconds": round(server_cpu, 2) if server_cpu is not None else None,
            "steps_per_cpu_second": round(due["steps"] / (due_cpu + (server_cpu or 0))),
            "steps_per_client_cpu_second": round(due["steps"] / due_cpu),
        },
        "sends": {
            "sent": sends["claimed"],
            "seconds": round(send_s, 2),
            "per_second": round(sends["claimed"] / send_s) if send_s else 0,
            "per_cpu_second": round(sends["claimed"] / (send_cpu + (send_server or 0)))
            if send_cpu
            else 0,
        },
    }


if __name__ == "__main__":
    figures = run()
    out = Path(__file__).parent / "results" / f"bench_journeys-{WAITING}.json"
    out.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
