"""The pipeline's cost per event: CPU seconds of the workers and of PostgreSQL, and
statements, to take a fixed load of stored events through every consumer.

Wall-clock throughput on a shared machine says little; CPU time spent per event does
not depend on what else runs. The bench stores BENCH_COST_EVENTS events (100-event
`/v1/batch` requests, as in `bench_pipeline`) while the workers are stopped (SIGSTOP),
then lets them go and waits until every pipeline step and every queued task is done.
It counts the CPU time of the worker processes and of every process of a PostgreSQL
server of its own (its backends, reaped or not, and its background processes), and
the statements run (`pg_stat_statements`), over that drain only.

BENCH_COST_EVENTS (default 50000), BENCH_PIPELINE_WORKERS (default 1),
RAPPORT_PIPELINE_MERGE_EVENTS (passed on to the workers: how many waiting events one
run takes along; default the setting's), BENCH_COST_PORT (the server's port; default
free), BENCH_COST_PROFILE=<file> (the first worker under cProfile, stats written there),
BENCH_COST_SETTINGS=deploy (deploy/postgresql.conf; default PostgreSQL's packaged
settings with autovacuum off, as this machine's server).
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg

from bench.bench_pipeline import QUIET, RAPPORT, Pending, _bodies, _warm_up
from bench.postgres_server import SETTINGS, postgres_server
from tests.live_server import live_server

EVENTS = int(os.environ.get("BENCH_COST_EVENTS", "50000"))
WORKERS = int(os.environ.get("BENCH_PIPELINE_WORKERS", "1"))
MERGE = os.environ.get("RAPPORT_PIPELINE_MERGE_EVENTS", "")
PORT = int(os.environ.get("BENCH_COST_PORT", "0")) or None
PROFILE = os.environ.get("BENCH_COST_PROFILE", "")
TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def _cpu(pid: int, *, children: bool = False) -> float:
    """utime + stime (and those of reaped children) of a process, in seconds."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    # Fields 14-17 of /proc/<pid>/stat (counted from 1): utime stime cutime cstime.
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICK


def _cluster_cpu(postmaster: int) -> float:
    """Every process of the server: the postmaster with its reaped children, and the
    children still running."""
    total = _cpu(postmaster, children=True)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and int(fields[1]) == postmaster:
                total += _cpu(int(entry.name), children=True)
    return total


def _postmaster(conn) -> int:
    data = conn.execute("SHOW data_directory").fetchone()[0]
    return int(Path(data, "postmaster.pid").read_text().split()[0])


def _post(server, bodies) -> None:
    clients = [httpx.Client(auth=(server.write_key, ""), timeout=120) for _ in range(8)]

    def send(n: int) -> None:
        response = clients[n % len(clients)].post(
            f"{server.url}/v1/batch",
            content=bodies[n][1],
            headers={"Content-Type": "application/json"},
        )
        response.raise_for_status()

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        list(pool.map(send, range(len(bodies))))
    for client in clients:
        client.close()


def run() -> dict:
    settings = SETTINGS if os.environ.get("BENCH_COST_SETTINGS") == "deploy" else None
    extra = "shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.max = 2000\n"
    if settings is None:
        extra += "autovacuum = off\n"
    env = dict(QUIET)
    if MERGE:
        env["RAPPORT_PIPELINE_MERGE_EVENTS"] = MERGE
    bodies = _bodies(EVENTS // 100, os.urandom(4).hex())
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(postgres_server(settings=settings, extra=extra, port=PORT))
        server = stack.enter_context(
            live_server(workers=2, database_url=base, env=env, port=PORT + 1 if PORT else None)
        )
        url = server.env["DATABASE_URL"]
        db = psycopg.connect(url, autocommit=True)
        db.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        postmaster = _postmaster(db)
        folder = Path(server.env["RAPPORT_DATA_DIR"])
        workers = []
        for n in range(WORKERS):
            command = [RAPPORT, "worker", "--interval", "0.05"]
            if PROFILE and n == 0:
                command = [sys.executable, "-m", "cProfile", "-o", PROFILE, *command]
            workers.append(
                subprocess.Popen(
                    command,
                    env=server.env,
                    stdout=(folder / f"worker-{n}.log").open("wb"),
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        stack.callback(lambda: [w.kill() for w in workers if w.poll() is None])
        pending = Pending(url)
        _warm_up(server, pending)
        for worker in workers:
            worker.send_signal(signal.SIGSTOP)
        _post(server, bodies)
        stored = db.execute("SELECT COUNT(*) FROM ingest_event").fetchone()[0]
        db.execute("SELECT pg_stat_statements_reset()")
        db.execute("CHECKPOINT")
        worker_before = sum(_cpu(w.pid) for w in workers)
        db_before = _cluster_cpu(postmaster)
        started = time.monotonic()
        for worker in workers:
            worker.send_signal(signal.SIGCONT)
        while True:
            time.sleep(0.5)
            steps, ready = db.execute(
                "SELECT (SELECT COUNT(*) FROM ingest_pipelinestep),"
                " (SELECT COUNT(*) FROM django_tasks_database_dbtaskresult"
                "  WHERE status IN ('READY', 'RUNNING'))"
            ).fetchone()
            if not steps and not ready:
                break
            if any(w.poll() is not None for w in workers):
                raise RuntimeError("a worker exited")
        wall = time.monotonic() - started
        worker_cpu = sum(_cpu(w.pid) for w in workers) - worker_before
        db_cpu = _cluster_cpu(postmaster) - db_before
        statements = db.execute(
            "SELECT calls, total_exec_time, rows, query FROM pg_stat_statements"
            " WHERE query NOT ILIKE '%pg_stat_statements%'"
            " ORDER BY total_exec_time DESC"
        ).fetchall()
        profiles = db.execute("SELECT COUNT(*) FROM profiles_profile").fetchone()[0]
        unresolved = db.execute(
            "SELECT COUNT(*) FROM ingest_event WHERE profile_id IS NULL"
        ).fetchone()[0]
        tasks = db.execute("SELECT COUNT(*) FROM django_tasks_database_dbtaskresult").fetchone()[0]
        if PROFILE:
            workers[0].send_signal(signal.SIGCONT)
            workers[0].terminate()
            workers[0].wait(60)
        db.close()
        pending.db.close()
    events = stored - 10
    calls = sum(s[0] for s in statements)
    top = [
        {
            "ms": round(s[1], 1),
            "calls": s[0],
            "rows": s[2],
            "query": " ".join(s[3].split())[:300],
        }
        for s in statements[:25]
    ]
    return {
        "database": "postgresql",
        "settings": "deploy" if settings else "packaged, autovacuum off",
        "events": events,
        "workers": WORKERS,
        "merge_events": int(MERGE) if MERGE else None,
        "drain_s": round(wall, 2),
        "worker_cpu_ms_per_1000_events": round(worker_cpu / events * 1e6, 1),
        "postgres_cpu_ms_per_1000_events": round(db_cpu / events * 1e6, 1),
        "total_cpu_ms_per_1000_events": round((worker_cpu + db_cpu) / events * 1e6, 1),
        "statements_per_1000_events": round(calls / events * 1000, 1),
        "statement_ms_per_1000_events": round(sum(s[1] for s in statements) / events * 1000, 1),
        "profiles": profiles,
        "events_unresolved": unresolved,
        "tasks": tasks,
        "top_statements": top,
    }
