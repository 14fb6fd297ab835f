"""The `rapport` command: workspace, user and token commands, the pass-through to
Django, and errors as one line with a non-zero exit."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rapport.cli import _run, cli
from rapport.tenancy import selectors
from rapport.tenancy.models import Membership, Workspace

RAPPORT = str(Path(sys.executable).parent / "rapport")


def rapport(*args: str) -> int:
    return _run(cli.main, list(args))


@pytest.mark.django_db
def test_workspace_create_json_prints_a_working_key_and_token(capsys):
    assert rapport("workspace", "create", "Acme", "--json") == 0
    out = json.loads(capsys.readouterr().out)

    assert out["workspace"] == "Acme"
    assert selectors.api_token_get_by_secret(raw=out["token"]).workspace.name == "Acme"
    assert selectors.write_key_get_by_secret(raw=out["write_key"]).workspace.name == "Acme"


@pytest.mark.django_db
def test_workspace_create_text_output(capsys):
    assert rapport("workspace", "create", "Acme") == 0
    out = capsys.readouterr().out
    assert "Write key for source 'Default':" in out
    assert "Admin API token: rpt_" in out


@pytest.mark.django_db
def test_duplicate_workspace_is_one_line_and_exit_1(capsys):
    rapport("workspace", "create", "Acme")
    capsys.readouterr()
    assert rapport("workspace", "create", "ACME") == 1
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0
    assert err.startswith("rapport: error:") and "already exists" in err
    assert Workspace.objects.count() == 1


@pytest.mark.django_db
def test_user_create_defaults_to_the_only_workspace(capsys):
    rapport("workspace", "create", "Acme")
    capsys.readouterr()
    assert rapport("user", "create", "--email", "ann@example.com", "--role", "sales", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["workspace"] == "Acme" and out["role"] == "sales" and out["password"]
    assert Membership.objects.get(user__email="ann@example.com").role == "sales"


@pytest.mark.django_db
def test_workspace_must_be_named_when_there_are_several(capsys):
    rapport("workspace", "create", "Acme")
    rapport("workspace", "create", "Globex")
    capsys.readouterr()
    assert rapport("user", "create", "--email", "ann@example.com") == 1
    err = capsys.readouterr().err
    assert "pass --workspace NAME" in err and "Acme" in err and "Globex" in err

    assert rapport("user", "create", "--email", "ann@example.com", "--workspace", "globex") == 0
    assert rapport("user", "create", "--email", "bob@example.com", "--workspace", "Nope") == 1
    assert "No workspace named 'Nope'" in capsys.readouterr().err


@pytest.mark.django_db
def test_user_create_reads_the_password_from_stdin(monkeypatch, capsys):
    import io

    rapport("workspace", "create", "Acme")
    monkeypatch.setattr("sys.stdin", io.StringIO("a-very-long-passphrase\n"))
    assert rapport("user", "create", "--email", "ann@example.com", "--password-stdin") == 0
    member = Membership.objects.get(user__email="ann@example.com")
    assert member.user.check_password("a-very-long-passphrase")


@pytest.mark.django_db
def test_bad_email_is_one_line(capsys):
    rapport("workspace", "create", "Acme")
    capsys.readouterr()
    assert rapport("user", "create", "--email", "nope") == 1
    assert capsys.readouterr().err.strip() == "rapport: error: 'nope' is not a valid email address"


@pytest.mark.django_db
def test_token_create_and_revoke(capsys):
    rapport("workspace", "create", "Acme")
    capsys.readouterr()
    assert rapport("token", "create", "--name", "BI", "--role", "analyst") == 0
    raw = capsys.readouterr().out.strip()
    token = selectors.api_token_get_by_secret(raw=raw)
    assert token.role == "analyst"
    assert rapport("token", "revoke", token.prefix) == 0
    assert selectors.api_token_get_by_secret(raw=raw) is None


def test_usage_errors_exit_2(capsys):
    assert rapport("user", "create", "--role", "king", "--email", "a@b.co") == 2
    assert "Invalid value for '--role'" in capsys.readouterr().err


@pytest.mark.embedded_sqlite
def test_installed_command_runs_and_passes_through_to_django(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["RAPPORT_DATA_DIR"] = str(tmp_path)

    def run(*args):
        return subprocess.run(
            [RAPPORT, *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )

    assert run("--help").returncode == 0
    assert run("migrate").returncode == 0
    created = run("workspace", "create", "Acme", "--json")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["token"].startswith("rpt_")
    # Pass-through: a Django command by its own name.
    shown = run("showmigrations", "tenancy")
    assert shown.returncode == 0 and "[X] 0001_initial" in shown.stdout
    failed = run("workspace", "create", "acme")
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines() == [
        "rapport: error: A workspace named 'acme' already exists"
    ]
    unknown = run("no-such-command")
    assert unknown.returncode == 1 and "Traceback" not in unknown.stderr


@pytest.mark.embedded_sqlite
def test_quickstart_is_idempotent_and_keeps_its_credentials_private(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["RAPPORT_DATA_DIR"] = str(tmp_path)
    first = subprocess.run(
        [RAPPORT, "quickstart", "--demo-customers", "40", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    second = subprocess.run(
        [RAPPORT, "quickstart", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert first.returncode == 0, first.stderr
    one, two = json.loads(first.stdout), json.loads(second.stdout)
    assert one == two
    assert one["email"] == "demo@example.com" and one["token"].startswith("rpt_")
    # The first run loaded the demo company into the new workspace; the second left it.
    assert one["demo"]["customers"] == 40 and one["demo"]["purchases"] > 40
    assert oct((tmp_path / "quickstart.json").stat().st_mode & 0o777) == "0o600"
