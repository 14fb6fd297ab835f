"""File imports: types inferred, rejected rows reported with reasons, resumable after
an interruption, and a re-run stores nothing twice."""

import json
from datetime import UTC, datetime
from unittest import mock

import pytest

from rapport.cli import _run, cli
from rapport.ingest import services
from rapport.ingest.files import value_infer
from rapport.ingest.models import Event, ImportJob, QuarantinedEvent
from rapport.tenancy.services import Actor


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("42", 42),
        ("-7", -7),
        ("4.50", 4.5),
        ("1e3", 1000.0),
        ("true", True),
        ("FALSE", False),
        ("", None),
        ("   ", None),
        ("02134", "02134"),
        ("007.5", "007.5"),
        ("0.25", 0.25),
        ("Yes", "Yes"),
        ("nan", "nan"),
        ("inf", "inf"),
        ("2026-01-01", "2026-01-01"),
        ("  padded ", "padded"),
    ],
)
def test_value_inference(raw, value):
    assert value_infer(raw) == value and type(value_infer(raw)) is type(value)


def _customers(tmp_path, rows: int):
    path = tmp_path / "customers.csv"
    lines = ["\ufeffid,email,orders,vip"] + [
        f"c{i},c{i}@example.com,{i},{'true' if i % 2 else 'false'}" for i in range(rows)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _create(tenant, path, kind="customers", id_column="id"):
    return services.import_job_create(
        workspace=tenant.workspace,
        kind=kind,
        path=path,
        filename=path.name,
        id_column=id_column,
        actor=Actor.system("tests"),
    )


@pytest.mark.django_db(transaction=True)
def test_an_interrupted_import_resumes_without_duplicates(tenant, tmp_path, monkeypatch):
    monkeypatch.setattr(services, "IMPORT_CHUNK_ROWS", 10)
    path = _customers(tmp_path, 55)
    job = _create(tenant, path)
    real_ingest = services.events_ingest
    calls = {"n": 0}

    def failing_third_chunk(**kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real_ingest(**kwargs)

    with (
        mock.patch.object(services, "events_ingest", side_effect=failing_third_chunk),
        pytest.raises(OSError),
    ):
        services.import_run(import_job_id=job.pk, path=path)
    job.refresh_from_db()
    assert (job.status, job.rows_done, job.accepted) == ("failed", 20, 20)
    assert Event.objects.filter(user_id__startswith="c").count() == 20

    again = _create(tenant, path)
    assert again.pk == job.pk
    done = services.import_run(import_job_id=job.pk, path=path)

    assert (done.status, done.rows_done, done.accepted, done.rejected) == ("done", 55, 55, 0)
    assert Event.objects.filter(user_id__startswith="c").count() == 55
    assert Event.objects.get(user_id="c3").traits == {
        "email": "c3@example.com",
        "orders": 3,
        "vip": True,
    }


@pytest.mark.django_db
def test_events_file_keeps_explicit_times_and_reports_bad_lines(tenant, tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps(
                    {
                        "type": "track",
                        "userId": "u1",
                        "event": "Order Completed",
                        "timestamp": "1997-01-01T00:00:00Z",
                        "properties": {"revenue": 20},
                    }
                ),
                "",
                "{broken",
                json.dumps({"type": "track", "userId": "u1"}),
                json.dumps({"type": "identify", "userId": "u1", "messageId": "given-id"}),
            ]
        )
    )
    job = services.import_run(import_job_id=_create(tenant, path, kind="events").pk, path=path)

    assert (job.rows_done, job.accepted, job.rejected) == (4, 2, 2)
    assert [e["row"] for e in job.errors] == [2, 3]
    assert job.errors[0]["field"] == "line"
    track = Event.objects.get(event="Order Completed")
    assert track.timestamp == datetime(1997, 1, 1, tzinfo=UTC)
    assert Event.objects.filter(message_id="given-id").exists()
    assert QuarantinedEvent.objects.filter(workspace=tenant.workspace, field="event").exists()
    assert track.source.name == "File import" and track.source.kind == "import"


# The CLI runs the queued resolution as a worker does, outside any test transaction.
@pytest.mark.django_db(transaction=True)
def test_cli_import_summary_and_rerun(tenant, tmp_path, capsys):
    path = _customers(tmp_path, 5)
    args = ["import", "customers", str(path), "--id-column", "id", "--workspace", "Alpha", "--json"]
    assert _run(cli.main, args) == 0
    first = json.loads(capsys.readouterr().out)
    assert _run(cli.main, args) == 0
    second = json.loads(capsys.readouterr().out)

    assert first["accepted"] == second["accepted"] == 5
    assert first["import_id"] == second["import_id"]
    assert Event.objects.filter(user_id__startswith="c").count() == 5
    assert ImportJob.objects.filter(workspace=tenant.workspace, kind="customers").count() == 1
    # Resolved before the command returned: each row is a customer profile.
    assert not Event.objects.filter(user_id__startswith="c", profile__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_cli_import_text_output_lists_reasons(tenant, tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("id,name\n,nameless\nok,Fine\nx,too,many\n")
    assert (
        _run(
            cli.main,
            ["import", "customers", str(path), "--id-column", "id", "--workspace", "Alpha"],
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "3 rows: 1 accepted, 2 rejected." in out
    assert "row 1: id: id is empty" in out
    assert "row 3: row: row has more values" in out


@pytest.mark.django_db
def test_cli_import_of_a_missing_column_is_one_line(tenant, tmp_path, capsys):
    path = _customers(tmp_path, 1)
    code = _run(
        cli.main, ["import", "customers", str(path), "--id-column", "user", "--workspace", "Alpha"]
    )
    assert code == 1
    assert capsys.readouterr().err.strip().startswith("rapport: error: column 'user' is not in")
