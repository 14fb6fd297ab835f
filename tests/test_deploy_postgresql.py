"""deploy/postgresql.conf: the settings README recommends for a production PostgreSQL
are ones this machine's PostgreSQL accepts and applies (started through the
benchmarks' throwaway server, which is also checked to leave nothing behind)."""

import re
import shutil
from pathlib import Path

import psycopg
import pytest

from bench.postgres_server import SETTINGS, postgres_server

pytestmark = pytest.mark.skipif(
    shutil.which("pg_config") is None, reason="PostgreSQL's programs are not installed"
)


def _settings_in_file() -> dict[str, str]:
    pairs = {}
    for line in SETTINGS.read_text().splitlines():
        match = re.match(r"^\s*(\w+)\s*=\s*(\S+)", line)
        if match:
            pairs[match.group(1)] = match.group(2)
    return pairs


def test_the_recommended_settings_are_applied_by_a_server_started_with_them():
    wanted = _settings_in_file()
    assert {"shared_buffers", "max_wal_size", "autovacuum"} <= wanted.keys()
    with postgres_server() as url, psycopg.connect(url) as conn:
        for name, value in wanted.items():
            assert conn.execute(f"SHOW {name}").fetchone()[0] == value, name
        # Durability is left as PostgreSQL ships it.
        for name in ("fsync", "synchronous_commit", "full_page_writes"):
            assert conn.execute(f"SHOW {name}").fetchone()[0] == "on", name
        directory = Path(conn.execute("SHOW data_directory").fetchone()[0]).parent
    assert not directory.exists()
