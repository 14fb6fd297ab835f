"""The demo company at its default size (issue 6): `rapport demo` into a fresh
workspace, from the first call stored to the last score written (ingestion, identity
resolution by the worker's batch run, the duplicate scan, RFM, lifecycle and segments,
lifetime value and churn trained and scored). Target: under 2 minutes.

SQLite (the embedded default `make run` uses) unless BENCH_DATABASE_URL is set;
BENCH_DEMO_CUSTOMERS changes the size (default 3,000)."""

import json
import os
import subprocess
import sys
import tempfile
import time

CUSTOMERS = int(os.environ.get("BENCH_DEMO_CUSTOMERS", "3000"))
TARGET_SECONDS = 120


def run() -> dict:
    from tests.live_server import _database

    rapport = os.path.join(os.path.dirname(sys.executable), "rapport")
    with (
        tempfile.TemporaryDirectory(prefix="rapport-bench-") as data_dir,
        _database(data_dir, os.environ.get("BENCH_DATABASE_URL", "")) as url,
    ):
        env = {**os.environ, "DATABASE_URL": url, "RAPPORT_DATA_DIR": data_dir}

        def call(*args: str) -> str:
            return subprocess.run(
                [rapport, *args], env=env, capture_output=True, text=True, check=True
            ).stdout

        call("migrate", "--verbosity", "0")
        call("workspace", "create", "Bench demo", "--json")
        started = time.perf_counter()
        summary = json.loads(
            call("demo", "--customers", str(CUSTOMERS), "--workspace", "Bench demo", "--json")
        )
        total = time.perf_counter() - started
    predictions = summary["predictions"]
    return {
        "database": "postgresql" if url.startswith("postgres") else "sqlite",
        "customers": CUSTOMERS,
        "calls": summary["accepted"],
        "seconds_total": round(total, 1),
        "seconds_by_step": summary["seconds"],
        "target_seconds": TARGET_SECONDS,
        "ratio_to_target": round(total / TARGET_SECONDS, 3),
        "churn_roc_auc": predictions.get("churn_roc_auc"),
        "churn_top_driver": predictions.get("churn_top_driver"),
        "clv_scored": predictions.get("clv_scored"),
        "churn_scored": predictions.get("churn_scored"),
    }
