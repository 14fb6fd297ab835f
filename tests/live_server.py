"""A real Rapport server in its own processes, for tests that need one (the official
SDKs, concurrent replays, a killed server) and for the benchmarks.

It gets a database of its own: a fresh SQLite file, or, when the suite runs on
PostgreSQL (DATABASE_URL), a fresh database on the same server, dropped afterwards.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

RAPPORT = str(Path(sys.executable).parent / "rapport")


@dataclass
class LiveServer:
    url: str
    token: str
    write_key: str
    env: dict[str, str]
    port: int
    workers: int
    process: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [RAPPORT, "serve", "--port", str(self.port), "--workers", str(self.workers)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/healthz", timeout=2)  # noqa: S310 - local
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("the live Rapport server did not start") from None
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL to the whole server (master and workers): no chance to clean up."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def api(self, path: str) -> dict:
        request = urllib.request.Request(  # noqa: S310 - local
            f"{self.url}{path}", headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local
            return json.loads(response.read())

    def all_events(self, query: str = "") -> list[dict]:
        items, offset = [], 0
        while True:
            page = self.api(f"/api/v1/events?limit=500&offset={offset}&{query}")
            items += page["items"]
            offset += 500
            if offset >= page["count"]:
                return items


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _database(data_dir: str, base_url: str | None) -> Iterator[str]:
    if not base_url or not base_url.startswith(("postgres://", "postgresql://")):
        yield f"sqlite:///{data_dir}/live.sqlite3"
        return
    import psycopg

    parts = urlsplit(base_url)
    # Named after a rapport_* database the URL names, so that runs sharing a server
    # can tell theirs apart.
    named = parts.path.strip("/")
    name = f"{named if named.startswith('rapport') else 'rapport'}_live_{uuid.uuid4().hex[:12]}"
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def live_server(
    *,
    workers: int = 2,
    database_url: str | None = None,
    env: dict[str, str] | None = None,
    port: int | None = None,
) -> Iterator[LiveServer]:
    base_url = database_url if database_url is not None else os.environ.get("DATABASE_URL")
    with (
        tempfile.TemporaryDirectory(prefix="rapport-live-") as data_dir,
        _database(data_dir, base_url) as url,
    ):
        extra = env or {}
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env.update(RAPPORT_DATA_DIR=data_dir, DATABASE_URL=url, LOG_LEVEL="WARNING", **extra)
        subprocess.run([RAPPORT, "migrate"], env=env, check=True, capture_output=True)
        created = subprocess.run(
            [RAPPORT, "workspace", "create", "Live", "--json"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        credentials = json.loads(created.stdout)
        port = port or _free_port()
        server = LiveServer(
            url=f"http://127.0.0.1:{port}",
            token=credentials["token"],
            write_key=credentials["write_key"],
            env=env,
            port=port,
            workers=workers,
        )
        server.start()
        try:
            yield server
        finally:
            server.stop()
