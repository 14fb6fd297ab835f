"""Ingestion throughput: /v1/batch (100-event batches) against a raw bulk insert of the
same rows into the same table, single-event /v1/track rate and p99, memory over a run.

BENCH_DATABASE_URL=postgres://... benches PostgreSQL (a fresh database on that server);
unset, a fresh SQLite file. BENCH_SOAK_SECONDS sets the memory run (default 600).
"""

import base64
import json
import os
import shutil
import sqlite3
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson

from bench.load import hammer
from tests.live_server import live_server

BATCH_SIZE = 100
BATCH_REQUESTS = int(os.environ.get("BENCH_BATCH_REQUESTS", "1000"))
TRACK_REQUESTS = int(os.environ.get("BENCH_TRACK_REQUESTS", "12000"))
SOAK_SECONDS = float(os.environ.get("BENCH_SOAK_SECONDS", "600"))
# As `rapport serve` chooses: one process on SQLite, one per core + 1 on PostgreSQL.
WORKERS = int(os.environ.get("BENCH_WORKERS", "0")) or None
WRK_SECONDS = int(os.environ.get("BENCH_WRK_SECONDS", "15"))
WRK_DIR = Path(__file__).parent / "wrk"
TRACK_CONNECTIONS = int(os.environ.get("BENCH_TRACK_CONNECTIONS", "32"))
RUN = uuid.uuid4().hex[:8]


def _event(i: int) -> dict:
    return {
        "type": "track",
        "userId": f"user-{i % 50_000}",
        "anonymousId": f"anon-{i % 80_000}",
        "event": "Product Viewed" if i % 5 else "Order Completed",
        "messageId": f"{RUN}-{i}",
        "originalTimestamp": "2026-11-01T10:00:00.000Z",
        "properties": {"product_id": f"sku-{i % 997}", "price": 19.99, "currency": "EUR"},
        "context": {"ip": "10.0.0.1", "userAgent": "Mozilla/5.0", "page": {"path": "/p/1"}},
    }


def _batch_body(i: int, prefix: str) -> bytes:
    base = i * BATCH_SIZE
    items = [_event(base + j) for j in range(BATCH_SIZE)]
    for item in items:
        item["messageId"] = f"{prefix}-{item['messageId']}"
    return orjson.dumps(
        {
            "batch": items,
            "sentAt": "2026-11-01T10:00:01.000Z",
            "context": {"library": {"name": "bench"}},
        }
    )


def _raw_rows(count: int, workspace_id: str) -> list[tuple]:
    now = datetime.now(UTC)
    rows = []
    for i in range(count):
        event = _event(i)
        rows.append(
            (
                str(uuid.uuid4()),
                workspace_id,
                f"raw-{RUN}-{i}",
                "track",
                event["event"],
                event["userId"],
                event["anonymousId"],
                "",
                "",
                now,
                now,
                False,
                json.dumps(event["properties"]),
                "{}",
                json.dumps(event["context"]),
                "{}",
            )
        )
    return rows


COLUMNS = (
    "id, workspace_id, message_id, type, event, user_id, anonymous_id, group_id, previous_id, "
    "timestamp, received_at, in_future, properties, traits, context, integrations"
)


def _raw_insert(database_url: str, workspace_id: str, count: int) -> float:
    """Events per second of the fastest plain insert of the same rows into the same table:
    COPY on PostgreSQL, executemany in one transaction on SQLite."""
    rows = _raw_rows(count, workspace_id)
    started = time.perf_counter()
    if database_url.startswith("sqlite"):
        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"))
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        sqlite_rows = [(*r[:9], r[9].isoformat(), r[10].isoformat(), *r[11:]) for r in rows]
        with conn:
            conn.executemany(
                f"INSERT INTO ingest_event ({COLUMNS}) VALUES ({', '.join('?' * 16)})", sqlite_rows
            )
        conn.close()
    else:
        import psycopg

        with psycopg.connect(database_url) as conn, conn.cursor() as cur:
            with cur.copy(f"COPY ingest_event ({COLUMNS}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            conn.commit()
    return count / (time.perf_counter() - started)


def _rss_mb(master_pid: int) -> float:
    """Resident memory of the server: master plus workers."""
    pids = [master_pid]
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return round(total / 1024, 1)


def _wrk(url: str, script: str, *, auth: str, connections: int, seconds: int, run: str) -> dict:
    """Load from wrk (C, a few percent of one core), so that the server has the machine."""
    result = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(WRK_DIR / script),
            url,
        ],
        env={**os.environ, "RAPPORT_AUTH": auth, "RAPPORT_RUN": f"{RUN}-{run}"},
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    )
    line = next(x for x in result.stdout.splitlines() if x.startswith("JSON "))
    figures = json.loads(line[5:])
    figures["requests_per_s"] = round(figures["requests"] / figures["seconds"], 1)
    figures["load_generator"] = "wrk"
    return figures


def _track_body(i: int) -> bytes:
    event = _event(i)
    event["messageId"] = f"track-{event['messageId']}"
    return orjson.dumps(event)


def _load(server, headers: dict, auth: str, *, single: bool) -> dict:
    script, connections = ("track.lua", TRACK_CONNECTIONS) if single else ("batch.lua", 8)
    if shutil.which("wrk"):
        _wrk(server.url, script, auth=auth, connections=connections, seconds=3, run=f"warm{single}")
        return _wrk(
            server.url,
            script,
            auth=auth,
            connections=connections,
            seconds=WRK_SECONDS,
            run=f"load{single}",
        )
    # Without wrk (apt-get install wrk) the Python generator shares the two cores.
    path = "/v1/track" if single else "/v1/batch"
    body = _track_body if single else (lambda i: _batch_body(i, "load"))
    requests = TRACK_REQUESTS if single else BATCH_REQUESTS
    hammer(
        server.url,
        path,
        requests=200,
        method="POST",
        headers=headers,
        body_for=lambda i: _track_body(10_000_000 + i) if single else _batch_body(i, "warm"),
    )
    figures = hammer(
        server.url,
        path,
        requests=requests,
        threads=16 if single else 8,
        method="POST",
        headers=headers,
        body_for=body,
    )
    figures["load_generator"] = "python threads"
    return figures


def run() -> dict:
    database = os.environ.get("BENCH_DATABASE_URL", "")
    results: dict = {"database": "postgresql" if database.startswith("postgres") else "sqlite"}
    workers = WORKERS or (3 if results["database"] == "postgresql" else 1)
    with live_server(workers=workers, database_url=database) as server:
        auth = "Basic " + base64.b64encode(f"{server.write_key}:".encode()).decode()
        headers = {"Authorization": auth, "Content-Type": "application/json"}
        workspace_id = server.api("/api/v1/me")["workspace"]["id"]
        results["workers"] = workers

        batch = _load(server, headers, auth, single=False)
        batch["events_per_s"] = round(batch["requests_per_s"] * BATCH_SIZE, 1)
        results["batch_100"] = batch
        raw_count = min(int(batch["requests"] * BATCH_SIZE), 200_000)
        raw = _raw_insert(server.env["DATABASE_URL"], workspace_id, raw_count)
        results["raw_bulk_insert_events_per_s"] = round(raw, 1)
        results["batch_vs_raw_insert"] = round(batch["events_per_s"] / raw, 3)

        results["track_single"] = _load(server, headers, auth, single=True)
        results["events_stored"] = server.api("/api/v1/events?limit=1")["count"]

        rss = [(0, _rss_mb(server.process.pid))]
        started = time.monotonic()
        round_no = 0
        soak_events = 0
        while time.monotonic() - started < SOAK_SECONDS:
            round_no += 1
            done = hammer(
                server.url,
                "/v1/batch",
                requests=80,
                threads=4,
                method="POST",
                headers=headers,
                body_for=lambda i, r=round_no: _batch_body(i, f"soak{r}"),
            )
            soak_events += done["requests"] * BATCH_SIZE
            rss.append((round(time.monotonic() - started), _rss_mb(server.process.pid)))
        results["soak"] = {
            "seconds": round(time.monotonic() - started),
            "events": soak_events,
            "rss_mb_start": rss[0][1],
            "rss_mb_after_first_10pct": next(
                (m for t, m in rss if t >= SOAK_SECONDS * 0.1), rss[-1][1]
            ),
            "rss_mb_end": rss[-1][1],
            "rss_mb_max": max(m for _, m in rss),
        }
    return results
