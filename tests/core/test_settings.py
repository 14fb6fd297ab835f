"""Configuration from the environment: the embedded default, and production settings
that pass Django's deployment checks."""

import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest

RAPPORT = str(Path(sys.executable).parent / "rapport")


def run_rapport(*args: str, env: dict[str, str], cwd: Path | None = None, **kwargs):
    base = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "SECRET_KEY"}}
    return subprocess.run(
        [RAPPORT, *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
        **kwargs,
    )


def test_production_settings_pass_the_deploy_check(tmp_path):
    result = run_rapport(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env={
            "RAPPORT_DATA_DIR": str(tmp_path),
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(64),
            "ALLOWED_HOSTS": "crm.example.com",
            "RAPPORT_HTTPS": "true",
            "DATABASE_URL": "postgres://rapport@db.example.com:5432/rapport",
        },
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout + result.stderr


@pytest.mark.embedded_sqlite
def test_embedded_default_is_sqlite_in_wal_mode_with_a_kept_secret(tmp_path):
    code = (
        "import django; django.setup();"
        "from django.conf import settings; from django.db import connection;"
        "c = connection.cursor(); c.execute('PRAGMA journal_mode'); print(c.fetchone()[0]);"
        "print(settings.DATABASES['default']['NAME']); print(settings.SECRET_KEY)"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "SECRET_KEY"}}
    env.update(RAPPORT_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="rapport.settings")
    first = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    second = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    mode, name, key = first.stdout.split()
    assert mode == "wal"
    assert name == str(tmp_path / "rapport.sqlite3")
    assert len(key) >= 50
    assert second.stdout.split()[2] == key
    key_file = tmp_path / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_a_bad_boolean_is_a_clear_error(tmp_path):
    result = run_rapport("check", env={"RAPPORT_DATA_DIR": str(tmp_path), "DEBUG": "maybe"})
    assert result.returncode != 0
    assert "DEBUG must be true or false" in result.stderr
