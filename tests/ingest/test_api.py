"""GET /api/v1/events and /events/quarantine (filters, personal data masked for roles
without pii.read) and file imports through the API."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from rapport.cli import _run, cli
from rapport.ingest.models import Event, ImportJob
from tests.ingest.conftest import Tracker


@pytest.fixture
def events(tenant):
    tracker = Tracker(tenant.created.write_key)
    batch = [
        {
            "type": "track",
            "userId": "ann",
            "event": "Signed Up",
            "timestamp": "2026-01-01T10:00:00Z",
        },
        {
            "type": "track",
            "userId": "ann",
            "event": "Order Completed",
            "timestamp": "2026-01-02T10:00:00Z",
        },
        {
            "type": "page",
            "anonymousId": "anon-7",
            "name": "Pricing",
            "timestamp": "2026-01-03T10:00:00Z",
        },
        {
            "type": "identify",
            "userId": "bob",
            "traits": {
                "email": "bob.smith@example.com",
                "Phone": "+1 415 555 0100",
                "note": "cc bob@corp.io",
            },
            "timestamp": "2026-01-04T10:00:00Z",
        },
    ]
    assert tracker.send("/v1/batch", {"batch": batch}).status_code == 200
    return tracker


def _messages(response) -> list[str]:
    return [item["event"] or item["type"] for item in response.json()["items"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("user_id=ann", ["Order Completed", "Signed Up"]),
        ("anonymous_id=anon-7", ["Pricing"]),
        ("type=page", ["Pricing"]),
        ("event=Signed%20Up", ["Signed Up"]),
        ("since=2026-01-02T00:00:00Z&until=2026-01-04T00:00:00Z", ["Pricing", "Order Completed"]),
        ("user_id=nobody", []),
        ("user_id=' OR 1=1 --", []),
    ],
)
def test_event_filters_newest_first_with_count(query, expected, events, tenant):
    response = tenant.api("admin").get(f"/api/v1/events?{query}")
    assert response.status_code == 200
    assert _messages(response) == expected
    assert response.json()["count"] == len(expected)


@pytest.mark.parametrize(
    ("role", "masked"), [("admin", False), ("marketer", False), ("analyst", True), ("agent", True)]
)
def test_personal_data_is_masked_for_roles_without_pii_read(role, masked, events, tenant):
    listed = tenant.api(role).get("/api/v1/events?user_id=bob").json()["items"][0]
    one = tenant.api(role).get(f"/api/v1/events/{listed['id']}").json()
    for event in (listed, one):
        traits = event["traits"]
        if masked:
            assert traits["email"] == "b•••@e••••••.com"
            assert traits["Phone"].endswith("00") and "415" not in traits["Phone"]
            assert "bob@corp.io" not in traits["note"]
        else:
            assert traits["email"] == "bob.smith@example.com"
            assert traits["Phone"] == "+1 415 555 0100"
    # Masking is for display: what is stored is untouched.
    assert Event.objects.get(user_id="bob").traits["email"] == "bob.smith@example.com"


def test_quarantine_lists_reasons_and_masks_payloads(tenant):
    Tracker(tenant.created.write_key).send(
        "/v1/batch",
        {"batch": [{"type": "track", "userId": "u", "traits": {"email": "x@example.org"}}]},
    )
    admin = tenant.api("admin").get("/api/v1/events/quarantine?field=event").json()
    analyst = tenant.api("analyst").get("/api/v1/events/quarantine?field=event").json()
    assert admin["count"] == analyst["count"] >= 1
    assert "required for track" in admin["items"][0]["reason"]
    assert "x@example.org" in str(admin["items"]) and "x@example.org" not in str(analyst["items"])


def _upload(tenant, content: bytes, **form):
    client = Client()
    return client.post(
        "/api/v1/imports",
        data={"file": SimpleUploadedFile("people.csv", content), **form},
        HTTP_AUTHORIZATION=f"Bearer {tenant.tokens['marketer']}",
    )


@pytest.mark.django_db(transaction=True)
def test_uploaded_import_is_run_by_a_worker(tenant, settings):
    content = (
        b"customer_id,email,orders\n"
        b"k1,k1@example.com,3\n"
        b"k2,k2@example.com,5\n"
        b",nobody@example.com,1\n"
    )
    response = _upload(tenant, content, kind="customers", id_column="customer_id")
    assert response.status_code == 202, response.content
    job = response.json()
    assert job["status"] == "pending"

    assert _run(cli.main, ["worker", "--batch"]) == 0

    done = tenant.api("marketer").get(f"/api/v1/imports/{job['id']}").json()
    assert (done["status"], done["rows_done"], done["accepted"], done["rejected"]) == (
        "done",
        3,
        2,
        1,
    )
    assert done["errors"] == [
        {"row": 3, "line": 4, "field": "customer_id", "reason": "customer_id is empty"}
    ]
    assert Event.objects.get(user_id="k2").traits == {"email": "k2@example.com", "orders": 5}
    assert not list((settings.DATA_DIR / "imports").iterdir())

    again = _upload(tenant, content, kind="customers", id_column="customer_id")
    assert again.json()["id"] == job["id"]
    assert Event.objects.filter(user_id__in=["k1", "k2"]).count() == 2


@pytest.mark.parametrize(
    ("content", "form", "field"),
    [
        (b"id,email\n1,a@b.co\n", {"kind": "spreadsheet", "id_column": "id"}, "kind"),
        (b"id,email\n1,a@b.co\n", {"kind": "customers", "id_column": "user"}, "id_column"),
        (b"id,email\n1,a@b.co\n", {"kind": "customers"}, "id_column"),
        (b"\xff\xfe\x00\x00binary", {"kind": "customers", "id_column": "id"}, "file"),
        (b"id,na\x00me\n1,x\n", {"kind": "customers", "id_column": "id"}, "file"),
        (b"i\x00d,name\n1,x\n", {"kind": "customers", "id_column": "i\x00d"}, "file"),
        (b"id,name\n1,x\n", {"kind": "customers", "id_column": "i\x00d"}, "id_column"),
    ],
)
def test_bad_uploads_are_422_naming_the_field(content, form, field, tenant):
    jobs = ImportJob.objects.count()
    response = _upload(tenant, content, **form)
    assert response.status_code == 422, response.content
    assert field in response.json()["error"]["message"]
    assert ImportJob.objects.count() == jobs


def test_upload_without_a_file_is_422(tenant):
    response = Client().post(
        "/api/v1/imports",
        data={"kind": "customers", "id_column": "id"},
        HTTP_AUTHORIZATION=f"Bearer {tenant.tokens['admin']}",
    )
    assert response.status_code == 422
    assert "file" in response.json()["error"]["message"]


def test_events_filter_by_profile(events, tenant):
    from rapport.identity.services import events_resolve

    events_resolve(tenant.workspace.pk, list(Event.objects.filter(workspace=tenant.workspace)))
    ann = Event.objects.get(event="Signed Up").profile_id
    response = tenant.api("admin").get(f"/api/v1/events?profile_id={ann}")
    assert [item["event"] for item in response.json()["items"]] == ["Order Completed", "Signed Up"]
    assert all(item["profile_id"] == str(ann) for item in response.json()["items"])
