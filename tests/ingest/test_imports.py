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
        ("+447700900101", "+447700900101"),
        ("+5", "+5"),
        ("-0123", "-0123"),
        ("00", "00"),
        ("0", 0),
        ("-0.5", -0.5),
        ("4111111111111111111", "4111111111111111111"),
        ("12345678901234567890123", "12345678901234567890123"),
    ],
)
def test_value_inference(raw, value):
    assert value_infer(raw) == value and type(value_infer(raw)) is type(value)


@pytest.mark.parametrize(
    "column",
    ["phone", "Mobile Phone", "customerId", "external_id", "zip", "ZipCode", "post_code", "SKU"],
)
def test_identifier_columns_keep_their_text(column):
    assert value_infer("4477009001", column) == "4477009001"
    assert value_infer("02134", column) == "02134"


@pytest.mark.parametrize("column", ["orders", "age", "lifetime_value", "ideal", "zipped"])
def test_other_columns_have_numbers(column):
    assert value_infer("42", column) == 42


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
    assert "line 2: id: id is empty" in out
    assert "line 4: row: row has more values" in out


@pytest.mark.django_db
def test_cli_import_of_a_missing_column_is_one_line(tenant, tmp_path, capsys):
    path = _customers(tmp_path, 1)
    code = _run(
        cli.main, ["import", "customers", str(path), "--id-column", "user", "--workspace", "Alpha"]
    )
    assert code == 1
    assert capsys.readouterr().err.strip().startswith("rapport: error: column 'user' is not in")


def _import(tenant, tmp_path, content: bytes, *, kind="customers", name="customers.csv"):
    path = tmp_path / name
    path.write_bytes(content)
    job = _create(tenant, path, kind=kind, id_column="id" if kind == "customers" else "")
    return services.import_run(import_job_id=job.pk, path=path)


def _stored_ids(tenant) -> set[str]:
    return set(Event.objects.filter(workspace=tenant.workspace).values_list("user_id", flat=True))


BAD_CSV_ROWS = {
    "an unterminated quote": (b'c2,"Bob,bob@example.com', "quoted value"),
    "an unterminated quote before a quoted cell": (b'c2,"Bob,bob@example.com', "quoted"),
    "invalid UTF-8": (b"c2,B\xf6b,bob@example.com", "UTF-8"),
    "a 200 KB cell": (b"c2,Bob," + b"x" * 200_000, "32 KB"),
    "a 20 MB cell": (b"c2,Bob," + b"x" * 20_000_000, "field larger"),
    "a NUL character": (b"c2,B\x00b,bob@example.com", "NUL"),
    "too many values": (b"c2,Bob,bob@example.com,extra", "more values"),
    "no id": (b",Bob,bob@example.com", "id is empty"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("bad", BAD_CSV_ROWS, ids=str)
def test_a_bad_csv_row_is_rejected_alone_with_its_line_and_reason(bad, tenant, tmp_path):
    line, reason = BAD_CSV_ROWS[bad]
    later = b'c3,"Cy, Jr.",cy@example.com' if "before a quoted" in bad else b"c3,Cy,cy@example.com"
    content = b"\n".join(
        [b"id,name,email", b"c1,Ann,ann@example.com", line, later, b"c4,Dee,dee@example.com", b""]
    )
    job = _import(tenant, tmp_path, content)

    assert (job.status, job.accepted, job.rejected) == ("done", 3, 1), job.errors
    assert [(e["row"], e["line"]) for e in job.errors] == [(2, 3)]
    assert reason in job.errors[0]["reason"]
    assert _stored_ids(tenant) == {"c1", "c3", "c4"}
    assert "\x00" not in str(job.errors)


@pytest.mark.django_db
def test_a_quoted_value_may_hold_line_breaks(tenant, tmp_path):
    content = b'id,note,email\nc1,"two\nlines",ann@example.com\nc2,plain,bob@example.com\n'
    job = _import(tenant, tmp_path, content)
    assert (job.accepted, job.rejected) == (2, 0)
    assert Event.objects.get(user_id="c1").traits["note"] == "two\nlines"


@pytest.mark.django_db
def test_invalid_utf8_deep_in_a_file_rejects_that_row_only(tenant, tmp_path, monkeypatch):
    monkeypatch.setattr(services, "IMPORT_CHUNK_ROWS", 500)
    rows = [f"c{i},Name {i}".encode() for i in range(3000)]
    rows[2500] = b"c2500,Jos\xe9"
    job = _import(tenant, tmp_path, b"id,name\n" + b"\n".join(rows) + b"\n")
    assert (job.status, job.accepted, job.rejected) == ("done", 2999, 1)
    assert (
        job.errors[0]["line"] == 2502 and "line 2502 is not valid UTF-8" in job.errors[0]["reason"]
    )


@pytest.mark.django_db
def test_phones_ids_and_zip_codes_stay_text_and_a_phone_is_an_identifier(tenant, tmp_path):
    from rapport.identity.models import Identifier
    from rapport.ingest.services import events_dispatch

    content = b"id,phone,zip,orders,mobile\n0042,+447700900101,02134,7,07700900102\n"
    job = _import(tenant, tmp_path, content)
    event = Event.objects.get(workspace=tenant.workspace)
    assert event.user_id == "0042"
    assert event.traits == {
        "phone": "+447700900101",
        "zip": "02134",
        "orders": 7,
        "mobile": "07700900102",
    }
    assert job.accepted == 1
    events_dispatch(workspace_id=tenant.workspace.pk, message_ids=[event.message_id])
    assert Identifier.objects.filter(
        workspace=tenant.workspace, kind="phone", value__contains="447700900101"
    ).exists()


@pytest.mark.django_db
def test_bad_jsonl_lines_are_rejected_alone_with_their_line(tenant, tmp_path):
    good = b'{"type": "identify", "userId": "u%d"}'
    lines = [
        good % 1,
        b"",
        b'{"type": "identify", "userId": "u\\u0000"}',
        b'{"type": "identify", "userId": "B\xf6b"}',
        b'{"type": "identify", "userId": "u2", "traits": {"x": "' + b"y" * 200_000 + b'"}}',
        b'{"type": "identify", "userId": "u3", "traits": {"x": "a',
        good % 4,
    ]
    job = _import(tenant, tmp_path, b"\n".join(lines), kind="events", name="events.jsonl")
    assert (job.status, job.accepted, job.rejected) == ("done", 2, 4), job.errors
    assert [e["line"] for e in job.errors] == [3, 4, 5, 6]
    assert "NUL" in job.errors[0]["reason"] and "32 KB" in job.errors[2]["reason"]
    assert _stored_ids(tenant) == {"u1", "u4"}


@pytest.mark.django_db(transaction=True)
def test_a_database_failure_is_reported_without_its_sql(tenant, tmp_path):
    from django.db import DataError

    path = _customers(tmp_path, 3)
    job = _create(tenant, path)
    refusal = DataError('invalid input syntax: INSERT INTO "ingest_event" ("secret") VALUES')
    with (
        mock.patch.object(services, "events_ingest", side_effect=refusal),
        pytest.raises(DataError),
    ):
        services.import_run(import_job_id=job.pk, path=path)
    job.refresh_from_db()
    assert job.status == "failed"
    assert "INSERT" not in job.failure and "ingest_event" not in job.failure
    assert "again" in job.failure
