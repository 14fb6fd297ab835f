"""A broadcast (issue 24), on PostgreSQL: planned, checked and handed to a local SMTP sink.

BENCH_BROADCAST_PROFILES customers (default 20,000; the issue's target is stated for
1,000,000), all with email marketing granted and in one static segment, written
straight into the tables (INSERT ... SELECT generate_series). The database: a new one on
the PostgreSQL server BENCH_DATABASE_URL names, dropped afterwards; without it,
DATABASE_URL's (migrated, and given a workspace of its own). Measured:
- planning: `broadcast_plan`, a Message row per member and the sending tasks (per second);
- rendering and the rule checks alone: the batch path's reads and verdicts
  (`_batch_read`) and each message rendered (`_outgoing`), nothing written or sent, on
  BENCH_BROADCAST_CHECK messages (default 20,000) in the planned batches (per second;
  target 5,000/s);
- sending: the planned `messages_send` tasks, each called with the task's id as its run
  key, as a `rapport worker` runs it, over one SMTP connection per batch, to a sink in a
  process of its own that counts what it receives (per second; target 1,000/s);
  BENCH_BROADCAST_SEND caps how many messages (default: all). The sink
  (BENCH_BROADCAST_SINK): "pipelining" (default), a minimal asyncio SMTP server that
  offers PIPELINING as Postfix does and as Postfix's own benchmark sink, smtp-sink, does;
  or "aiosmtpd" (no PIPELINING: four round trips a message);
- the checks and the sends run in BENCH_BROADCAST_WORKERS worker processes (default 2:
  one a core, as that many `rapport worker`s would), the batches dealt among them; the
  per-CPU-second rates are over the workers' CPU time (PostgreSQL's and the sink's are
  not in it);
- the peak memory (RSS) of this process after planning and at the end, to compare
  between sizes: flat (pages and batches, no list of every recipient).
"""

import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

PROFILES = int(os.environ.get("BENCH_BROADCAST_PROFILES", "20000"))
CHECK = int(os.environ.get("BENCH_BROADCAST_CHECK", "20000"))
SEND = int(os.environ.get("BENCH_BROADCAST_SEND", "0")) or None
# Worker processes for the checks and the sends (as `rapport worker`s would run them).
WORKERS = int(os.environ.get("BENCH_BROADCAST_WORKERS", "2"))
# The SMTP sink: "pipelining" (a minimal asyncio server offering PIPELINING, as Postfix
# does and as Postfix's own benchmark sink, smtp-sink, does) or "aiosmtpd" (no PIPELINING:
# four round trips a message, and the sink's own Python costs a share of the cores).
SINK_KIND = os.environ.get("BENCH_BROADCAST_SINK", "pipelining")

SUBJECT = "News for {{ customer.first_name|default:'you' }}"
HTML = (
    "<style>p{color:#333}</style><p>Hello {{ customer.first_name }}</p>"
    '<p><a href="https://shop.example.com/">Shop</a></p>'
)

AIOSMTPD_SINK = """
import sys, time, pathlib
from aiosmtpd.controller import Controller
out = pathlib.Path(sys.argv[2])
class Sink:
    count = 0
    async def handle_DATA(self, server, session, envelope):
        Sink.count += 1
        return "250 OK"
controller = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
out.write_text("0")
try:
    while True:
        time.sleep(0.2)
        out.write_text(str(Sink.count))
finally:
    controller.stop()
"""


PIPELINING_SINK = """
import asyncio, sys, pathlib
out = pathlib.Path(sys.argv[2])
count = 0

async def session(reader, writer):
    global count
    writer.write(b"220 sink ESMTP\\r\\n")
    in_data = False
    while True:
        line = await reader.readline()
        if not line:
            break
        if in_data:
            if line == b".\\r\\n":
                in_data = False
                count += 1
                writer.write(b"250 2.0.0 Ok: queued\\r\\n")
            continue
        verb = line[:4].upper()
        if verb == b"EHLO":
            writer.write(b"250-sink\\r\\n250-PIPELINING\\r\\n250 8BITMIME\\r\\n")
        elif verb == b"DATA":
            in_data = True
            writer.write(b"354 End data with <CR><LF>.<CR><LF>\\r\\n")
        elif verb == b"QUIT":
            writer.write(b"221 Bye\\r\\n")
            await writer.drain()
            break
        else:
            writer.write(b"250 Ok\\r\\n")
        if not reader._buffer:
            await writer.drain()
    writer.close()

async def report():
    while True:
        await asyncio.sleep(0.2)
        out.write_text(str(count))

async def main():
    server = await asyncio.start_server(session, "127.0.0.1", int(sys.argv[1]))
    out.write_text("0")
    asyncio.ensure_future(report())
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""
SINKS = {"aiosmtpd": AIOSMTPD_SINK, "pipelining": PIPELINING_SINK}


def _rss_mb() -> dict:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open("/proc/self/statm") as statm:
        now = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    return {"now": round(now), "peak": round(peak)}


def _cpu() -> float:
    """CPU seconds this process has used: on a machine shared with other work, the rate
    per CPU second says what the code costs whatever its share of the cores."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _fill(workspace, count: int):
    """`count` customers, their consent and their membership, in three statements."""
    from django.db import connection
    from django.utils import timezone

    from rapport.segments.services import segment_create
    from rapport.tenancy.services import Actor

    now = timezone.now()
    segment = segment_create(
        workspace=workspace, name="Everyone", kind="static", actor=Actor.system("bench")
    )
    tag = str(workspace.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO profiles_profile
              (id, workspace_id, traits, trait_sources, first_seen_at, last_seen_at,
               created_at, updated_at)
            SELECT md5(%s || n)::uuid, %s,
                   jsonb_build_object('email', 'b' || n || '@example.com',
                                      'first_name', 'B' || n),
                   '{}'::jsonb, %s, %s, %s, %s
              FROM generate_series(1, %s) AS n
            """,
            [tag, workspace.pk, now, now, now, now, count],
        )
        cursor.execute(
            """
            INSERT INTO profiles_consentchange
              (id, workspace_id, profile_id, origin_profile_id, channel, purpose, status,
               at, source, created_at)
            SELECT gen_random_uuid(), %s, id, id, 'email', 'marketing', 'granted', %s,
                   'bench', %s
              FROM profiles_profile WHERE workspace_id = %s
            """,
            [workspace.pk, now, now, workspace.pk],
        )
        cursor.execute(
            """
            INSERT INTO segments_segmentmembership
              (workspace_id, segment_id, profile_id, entered_at)
            SELECT %s, %s, id, %s FROM profiles_profile WHERE workspace_id = %s
            """,
            [workspace.pk, segment.pk, now, workspace.pk],
        )
        cursor.execute(
            "ANALYZE profiles_profile, profiles_consentchange, segments_segmentmembership"
        )
    return segment


def _batches(broadcast_id: str, limit: int | None):
    """(task id, message ids) of the broadcast's planned sending tasks, read a page at a
    time, until `limit` messages."""
    from django_tasks_db.models import DBTaskResult

    rows = (
        DBTaskResult.objects.filter(task_path__endswith=".messages_send", status="READY")
        .order_by("enqueued_at", "id")
        .values_list("id", "args_kwargs")
    )
    taken = 0
    for task_id, args in rows.iterator(chunk_size=100):
        ids = args["kwargs"]["message_ids"]
        yield str(task_id), ids
        taken += len(ids)
        if limit is not None and taken >= limit:
            return


def _checks_and_render(batches: list) -> int:
    from django.utils import timezone

    from rapport.channels import services
    from rapport.channels.render import profile_contexts

    done = 0
    for task_id, ids in batches:
        batch = services._batch_read(ids, run_key=task_id, now=timezone.now())
        contexts = profile_contexts({p.pk: p for _, p, _, _ in batch.sends}.values())
        for message, profile, address, _ in batch.sends:
            services._outgoing(message, profile, address, context=contexts[profile.pk])
            done += 1
    return done


def _send(batches: list) -> int:
    from rapport.channels import services
    from rapport.core.leases import task_done, task_running

    sent = 0
    for task_id, ids in batches:
        token = task_running(task_id)
        try:
            counts = services.messages_send(message_ids=ids)
        finally:
            task_done(token)
        sent += counts.get("sent", 0)
    return sent


def _in_workers(work, batches: list, workers: int) -> tuple[int, float, float]:
    """`work(batches)` in `workers` processes (forked, as many `rapport worker`s would
    each take tasks), the batches dealt among them: (its total, wall seconds, CPU
    seconds of the workers)."""
    from django.db import connections

    if workers <= 1:
        started, cpu = time.perf_counter(), _cpu()
        total = work(batches)
        return total, time.perf_counter() - started, _cpu() - cpu
    connections.close_all()
    children_cpu = _children_cpu()
    started = time.perf_counter()
    pipes = []
    for index in range(workers):
        read, write = os.pipe()
        if os.fork() == 0:
            os.close(read)
            try:
                total = work(batches[index::workers])
                os.write(write, str(total).encode())
            finally:
                connections.close_all()
                os._exit(0)
        os.close(write)
        pipes.append(read)
    total = 0
    for read in pipes:
        with os.fdopen(read) as got:
            total += int(got.read() or 0)
    for _ in range(workers):
        os.wait()
    return total, time.perf_counter() - started, _children_cpu() - children_cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def _database():
    """BENCH_DATABASE_URL: a database of its own on that server, created, migrated and
    dropped afterwards (BENCH_BROADCAST_KEEP=1 keeps it); else DATABASE_URL as it is."""
    base = os.environ.get("BENCH_DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        yield
        return
    import psycopg

    parts = urlsplit(base)
    name = f"rapport_bench_broadcast_{uuid.uuid4().hex[:8]}"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))
    try:
        yield
    finally:
        from django.db import connections

        connections.close_all()
        if not os.environ.get("BENCH_BROADCAST_KEEP"):
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run() -> dict:
    with _database():
        return _run()


def _run() -> dict:
    from bench.filled import postgresql_ready

    if not postgresql_ready():
        return {
            "skipped": "needs BENCH_DATABASE_URL (or DATABASE_URL) naming a PostgreSQL database"
        }
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Count

    from rapport.channels import services
    from rapport.channels.models import Message
    from rapport.tenancy.services import Actor, workspace_create

    call_command("migrate", verbosity=0)
    settings.RAPPORT_PUBLIC_URL = "https://crm.example.com"
    actor = Actor.system("bench")
    workspace = workspace_create(name=f"bench-broadcast-{int(time.time())}", actor=actor).workspace
    started = time.perf_counter()
    segment = _fill(workspace, PROFILES)
    fill_s = time.perf_counter() - started

    broadcast = services.broadcast_create(
        workspace=workspace,
        name="Bench",
        channel="email",
        purpose="marketing",
        segment=segment,
        subject=SUBJECT,
        html=HTML,
        actor=actor,
    )
    # Earlier runs' tasks out of the way: this run's alone are READY.
    from django_tasks_db.models import DBTaskResult

    DBTaskResult.objects.filter(task_path__startswith="rapport.channels.tasks.").delete()
    services.broadcast_send(broadcast=broadcast, actor=actor)
    DBTaskResult.objects.filter(task_path__endswith="broadcast_plan").delete()
    rss_before = _rss_mb()

    started, cpu = time.perf_counter(), _cpu()
    planned = services.broadcast_plan(broadcast_id=broadcast.pk)
    plan_s, plan_cpu = time.perf_counter() - started, _cpu() - cpu
    rss_planned = _rss_mb()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE channels_message")

    checked, checks_s, checks_cpu = _in_workers(
        _checks_and_render, list(_batches(str(broadcast.pk), min(CHECK, PROFILES))), WORKERS
    )
    rss_checked = _rss_mb()

    port = _free_port()
    count_file = Path(tempfile.gettempdir()) / f"bench-broadcast-sink-{os.getpid()}"
    sink = subprocess.Popen([sys.executable, "-c", SINKS[SINK_KIND], str(port), str(count_file)])
    try:
        while not count_file.exists():
            time.sleep(0.05)
        settings.RAPPORT_EMAIL_URL = f"smtp://127.0.0.1:{port}"
        sent, send_s, send_cpu = _in_workers(
            _send, list(_batches(str(broadcast.pk), SEND)), WORKERS
        )
        time.sleep(0.5)
        received = int(count_file.read_text() or 0)
    finally:
        sink.terminate()
        sink.wait()
        count_file.unlink(missing_ok=True)
    statuses = dict(
        Message.objects.filter(broadcast=broadcast).values_list("status").annotate(n=Count("id"))
    )
    finished = (
        type(broadcast).objects.filter(pk=broadcast.pk).values_list("status", flat=True).first()
    )
    return {
        "database": "postgresql",
        "profiles": PROFILES,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "fill_seconds": round(fill_s, 1),
        "planned": planned["planned"],
        "plan_seconds": round(plan_s, 2),
        "plan_per_second": round(planned["planned"] / plan_s),
        "plan_per_cpu_second": round(planned["planned"] / plan_cpu),
        "send_batches": planned["batches"],
        "checked_and_rendered": checked,
        "checks_and_render_per_second": round(checked / checks_s),
        "checks_and_render_per_cpu_second": round(checked / checks_cpu),
        "sent": sent,
        "received_by_sink": received,
        "send_seconds": round(send_s, 1),
        "send_per_second": round(sent / send_s) if send_s else 0,
        "send_per_cpu_second": round(sent / send_cpu) if send_cpu else 0,
        "messages_by_status": statuses,
        "broadcast_status": finished,
        "record_every": services.record_every(),
        "rss_mb": {
            "before_planning": rss_before,
            "after_planning": rss_planned,
            "after_checks": rss_checked,
            "at_end": _rss_mb(),
        },
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "workers": WORKERS,
        "sink": SINK_KIND,
        "checks_and_render_cpu_seconds_of_workers": round(checks_cpu, 1),
        "send_cpu_seconds_of_workers": round(send_cpu, 1),
    }


if __name__ == "__main__":
    figures = run()
    out = Path(__file__).parent / "results" / f"bench_broadcast-{PROFILES}.json"
    out.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
