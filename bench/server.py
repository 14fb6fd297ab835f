"""A real Rapport server for benchmarks: `rapport serve` on a free local port, with
its own data directory, and a workspace created through the CLI."""

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

RAPPORT = str(Path(sys.executable).parent / "rapport")


@dataclass
class Server:
    url: str
    token: str
    write_key: str
    database: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_server(*, workers: int = 2) -> Iterator[Server]:
    """BENCH_DATABASE_URL selects the database (default: a fresh SQLite file)."""
    with tempfile.TemporaryDirectory(prefix="rapport-bench-") as data_dir:
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env["RAPPORT_DATA_DIR"] = data_dir
        env["LOG_LEVEL"] = "WARNING"
        if os.environ.get("BENCH_DATABASE_URL"):
            env["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]
        subprocess.run([RAPPORT, "migrate"], env=env, check=True, capture_output=True)
        name = f"Bench {time.time_ns()}"
        created = subprocess.run(
            [RAPPORT, "workspace", "create", name, "--json"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        credentials = json.loads(created.stdout)
        port = _free_port()
        process = subprocess.Popen(
            [RAPPORT, "serve", "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"{url}/healthz", timeout=1)  # noqa: S310 - local
                    break
                except OSError:
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise RuntimeError("the benchmark server did not start") from None
                    time.sleep(0.2)
            yield Server(
                url=url,
                token=credentials["token"],
                write_key=credentials["write_key"],
                database=env.get("DATABASE_URL", "sqlite"),
            )
        finally:
            process.terminate()
            process.wait(timeout=30)
