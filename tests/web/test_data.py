"""The data pages beyond sources: the quarantine of refused events, and file imports
uploaded through the UI with their progress."""

from django.core.files.uploadedfile import SimpleUploadedFile
from django_tasks_db.models import DBTaskResult

from rapport.ingest.models import ImportJob, QuarantinedEvent
from rapport.ingest.tasks import import_run
from rapport.profiles.models import Profile
from rapport.tenancy.models import Source
from rapport.tenancy.permissions import Role
from tests.web.clients import signed_in


def test_the_quarantine_shows_what_was_refused_and_why(tenant):
    tenant.send(
        {
            "type": "track",
            "userId": "u9",
            "messageId": "no-event-name",
            "properties": {"email": "leak@example.com"},
        }
    )
    client = signed_in(tenant, Role.ANALYST)
    response = client.get("/data/quarantine/")
    assert response.status_code == 200
    reasons = {row["item"].message_id: row for row in response.context["rows"]}
    assert {"refused-1", "no-event-name"} <= set(reasons)
    assert reasons["no-event-name"]["item"].field == "event"
    # Analysts do not see personal data, even in refused payloads.
    assert "leak@example.com" not in response.content.decode()
    filtered = client.get("/data/quarantine/", {"field": "event"}).context["rows"]
    assert filtered and all(row["item"].field == "event" for row in filtered)


def test_the_quarantine_refuses_bad_filters_and_other_roles(tenant, other_tenant):
    client = signed_in(tenant)
    theirs = Source.objects.filter(workspace=other_tenant.workspace).first()
    assert client.get("/data/quarantine/", {"source": str(theirs.pk)}).status_code == 404
    response = client.get("/data/quarantine/", {"source": "'; DROP TABLE x; --"})
    assert response.status_code == 422 and "source:" in response.content.decode()
    response = client.get("/data/quarantine/", {"field": "f" * 101})
    assert response.status_code == 422 and "field:" in response.content.decode()
    assert signed_in(tenant, Role.AGENT).get("/data/quarantine/").status_code == 403
    mine = {row["item"].pk for row in client.get("/data/quarantine/").context["rows"]}
    assert mine == set(
        QuarantinedEvent.objects.filter(workspace=tenant.workspace).values_list("pk", flat=True)
    )


def _upload(client, content: bytes, name="people.csv", **fields):
    return client.post(
        "/data/imports/",
        {"file": SimpleUploadedFile(name, content, content_type="text/csv"), **fields},
    )


def test_an_uploaded_csv_is_queued_then_shows_its_progress(tenant):
    client = signed_in(tenant, Role.MARKETER)
    body = b"id,name,email\nimp-1,Ida,ida@example.com\nimp-2,Ivo,ivo@example.com\n,Nobody,\n"
    response = _upload(client, body, kind="customers", id_column="id")
    assert response.status_code == 302
    job = ImportJob.objects.get(workspace=tenant.workspace, filename="people.csv")
    assert response["Location"] == f"/data/imports/{job.pk}/"
    assert job.status == "pending" and job.rows_total == 3
    task = DBTaskResult.objects.get(task_path="rapport.ingest.tasks.import_run")
    assert task.args_kwargs["kwargs"]["import_job_id"] == str(job.pk)

    page = client.get(f"/data/imports/{job.pk}/")
    html = page.content.decode()
    assert 'hx-trigger="every 2s"' in html and "Waiting for a worker" in html

    import_run.call(import_job_id=str(job.pk))  # what the worker does
    partial = client.get(f"/data/imports/{job.pk}/", HTTP_HX_REQUEST="true")
    html = partial.content.decode()
    assert "<html" not in html and "every 2s" not in html  # done: polling stops
    assert partial.context["percent"] == 100
    job.refresh_from_db()
    assert (job.accepted, job.rejected) == (2, 1)
    assert "id is empty" in html
    listing = client.get("/data/imports/").content.decode()
    assert f"/data/imports/{job.pk}/" in listing


def test_a_bad_upload_is_refused_naming_the_field_and_stores_nothing(tenant):
    client = signed_in(tenant)
    before = ImportJob.objects.count()
    response = client.post("/data/imports/", {"kind": "customers", "id_column": "id"})
    assert response.status_code == 422 and "file:" in response.content.decode()
    response = _upload(client, b"id,name\n1,A\n", kind="customers", id_column="user_id")
    assert response.status_code == 422 and "id_column:" in response.content.decode()
    response = _upload(client, b"id,name\n1,A\n", kind="spreadsheet", id_column="id")
    assert response.status_code == 422 and "kind:" in response.content.decode()
    response = _upload(client, b"\xff\xfe\x00junk", kind="customers", id_column="id")
    assert response.status_code == 422 and "file:" in response.content.decode()
    assert ImportJob.objects.count() == before
    assert not DBTaskResult.objects.filter(task_path="rapport.ingest.tasks.import_run").exists()


def test_imports_belong_to_their_workspace_and_role(tenant, other_tenant):
    theirs = ImportJob.objects.get(workspace=other_tenant.workspace)
    assert signed_in(tenant).get(f"/data/imports/{theirs.pk}/").status_code == 404
    analyst = signed_in(tenant, Role.ANALYST)
    assert analyst.get("/data/imports/").status_code == 403
    response = _upload(analyst, b"id\nx\n", kind="customers", id_column="id")
    assert response.status_code == 403
    assert not Profile.objects.filter(identifiers__value="x").exists()


def test_quarantine_pages_keep_the_filter(tenant, monkeypatch):
    import rapport.web.data as data

    tenant.send(
        *({"type": "track", "userId": f"u{n}", "messageId": f"nameless-{n}"} for n in range(3))
    )
    monkeypatch.setattr(data, "QUARANTINE_PAGE", 1)
    client = signed_in(tenant)
    html = client.get("/data/quarantine/", {"field": "event", "page": "2"}).content.decode()
    assert 'href="?field=event&amp;page=3"' in html and 'href="?field=event&amp;page=1"' in html
