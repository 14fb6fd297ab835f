"""A throwaway PostgreSQL server configured as `deploy/postgresql.conf` recommends for
production, for benchmarks that measure Rapport on such a server rather than on
whatever server `BENCH_DATABASE_URL` names (`BENCH_DATABASE_URL=server`).

It is made with this machine's PostgreSQL programs (`pg_config --bindir`) in a temporary
directory, listens on 127.0.0.1 at a free port, keeps every durability setting at its
default (fsync, synchronous commit, full-page writes), and is removed afterwards. As
root, it runs as the `postgres` user: PostgreSQL refuses to run as root."""

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

SETTINGS = Path(__file__).resolve().parent.parent / "deploy" / "postgresql.conf"


def _bindir() -> Path:
    out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_owner(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextlib.contextmanager
def postgres_server(
    *, settings: Path | None = SETTINGS, extra: str = "", port: int | None = None
) -> Iterator[str]:
    """Start the server; yields the URL of its `postgres` database. `settings`: the
    file of settings to include (None: the packaged defaults); `extra`: more lines."""
    bindir = _bindir()
    root = Path(tempfile.mkdtemp(prefix="rapport-pg-"))
    data, port = root / "data", port or _free_port()
    if os.geteuid() == 0:
        shutil.chown(root, user="postgres", group="postgres")
    try:
        subprocess.run(
            _as_owner(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
        )
        # The recommended settings, read by the server from a copy it may read.
        (data / "rapport.conf").write_text(
            (settings.read_text() if settings else "") + "\n" + extra + "\n"
        )
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\ninclude 'rapport.conf'\nlisten_addresses = '127.0.0.1'\nport = {port}\n"
                f"unix_socket_directories = '{root}'\n"
            )
        if os.geteuid() == 0:
            shutil.chown(data / "rapport.conf", user="postgres", group="postgres")
        subprocess.run(
            _as_owner(
                [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "start"]
            ),
            check=True,
            capture_output=True,
        )
        try:
            yield f"postgres://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run(
                _as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                check=False,
                capture_output=True,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
