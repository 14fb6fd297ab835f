"""The HTTP Tracking API: endpoints, authentication, limits, batches with invalid
items, idempotency, and a 503 (never a 2xx) when events cannot be stored."""

import base64
from unittest import mock

import orjson
import pytest
from django.db import OperationalError

from rapport.ingest.models import Event, QuarantinedEvent
from rapport.ingest.spec import MAX_REQUEST_BYTES
from rapport.tenancy.models import WriteKey
from rapport.tenancy.services import Actor, source_disable, write_key_revoke
from tests.ingest.conftest import Tracker

CALLS = {
    "/v1/identify": {"userId": "u1", "traits": {"email": "ann@example.com"}},
    "/v1/track": {"userId": "u1", "event": "Order Completed", "properties": {"total": 12.5}},
    "/v1/page": {"anonymousId": "a1", "name": "Pricing", "properties": {"path": "/pricing"}},
    "/v1/screen": {"userId": "u1", "name": "Home"},
    "/v1/group": {"userId": "u1", "groupId": "acme", "traits": {"name": "Acme"}},
    "/v1/alias": {"previousId": "a1", "userId": "u1"},
}


@pytest.mark.parametrize(("path", "body"), CALLS.items())
def test_each_call_is_stored_in_the_keys_workspace_and_source(path, body, tracker, tenant):
    response = tracker.send(path, body)

    assert response.status_code == 200, response.content
    assert response.json()["success"] is True
    event = Event.objects.get()
    assert event.type == path.rsplit("/", 1)[-1]
    assert event.workspace_id == tenant.workspace.pk
    assert event.source_id == tenant.created.source.pk


def test_write_key_in_the_body_works_too(tenant):
    response = Tracker(None).send(
        "/v1/track", {"writeKey": tenant.created.write_key, "userId": "u", "event": "E"}
    )
    assert response.status_code == 200
    assert Event.objects.count() == 1


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Basic " + base64.b64encode(b"unknown-key-0000000000000000000000000000:").decode(),
        "Basic !!!not-base64",
        "Bearer something",
        "Basic " + base64.b64encode(b"' OR 1=1 --:").decode(),
    ],
)
def test_missing_or_unknown_write_key_is_401_and_stores_nothing(header, tenant):
    client = Tracker(None).client
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.post(
        "/v1/track",
        orjson.dumps({"userId": "u", "event": "E"}),
        content_type="application/json",
        **extra,
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert Event.objects.count() == QuarantinedEvent.objects.count() == 0


def test_revoked_key_is_refused_at_once(tracker, tenant, django_capture_on_commit_callbacks):
    assert tracker.send("/v1/track", CALLS["/v1/track"]).status_code == 200
    key = WriteKey.objects.get(workspace=tenant.workspace)
    with django_capture_on_commit_callbacks(execute=True):
        write_key_revoke(write_key=key, actor=Actor.system())
    assert tracker.send("/v1/track", CALLS["/v1/track"]).status_code == 401


def test_disabled_source_is_refused(tracker, tenant, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        source_disable(source=tenant.created.source, actor=Actor.system())
    assert tracker.send("/v1/track", CALLS["/v1/track"]).status_code == 401


def test_key_of_one_workspace_writes_only_there(tenant, other_tenant):
    Tracker(other_tenant.created.write_key).send("/v1/track", CALLS["/v1/track"])
    assert Event.objects.filter(workspace=tenant.workspace).count() == 0
    assert Event.objects.filter(workspace=other_tenant.workspace).count() == 1


def test_batch_with_invalid_items_stores_the_valid_ones(tracker):
    batch = [
        {"type": "track", "userId": "u1", "event": "A", "messageId": "ok-1"},
        {"type": "track", "userId": "u1", "messageId": "no-event"},
        {"type": "identify", "messageId": "no-id"},
        {"type": "teleport", "userId": "u1"},
        "not an object",
        {"type": "track", "userId": "u1", "event": "B", "timestamp": "someday"},
        {"type": "page", "anonymousId": "a1", "messageId": "ok-2"},
    ]
    response = tracker.send("/v1/batch", {"batch": batch})

    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert (body["accepted"], body["rejected"]) == (2, 5)
    assert [e["index"] for e in body["errors"]] == [1, 2, 3, 4, 5]
    assert set(Event.objects.values_list("message_id", flat=True)) == {"ok-1", "ok-2"}
    reasons = dict(QuarantinedEvent.objects.values_list("message_id", "field"))
    assert reasons["no-event"] == "event" and reasons["no-id"] == "userId"
    assert QuarantinedEvent.objects.count() == 5


def test_invalid_single_call_is_400_naming_the_field_and_quarantined(tracker):
    response = tracker.send("/v1/track", {"userId": "u1", "properties": {}})
    assert response.status_code == 400
    error = response.json()["error"]
    assert "event" in error["message"]
    assert Event.objects.count() == 0
    assert QuarantinedEvent.objects.get().field == "event"


def test_batch_context_and_sent_at_apply_to_items(tracker):
    tracker.send(
        "/v1/batch",
        {
            "batch": [
                {
                    "type": "track",
                    "userId": "u",
                    "event": "E",
                    "originalTimestamp": "2020-01-01T00:00:00Z",
                    "context": {"ip": "10.0.0.1"},
                }
            ],
            "context": {"library": {"name": "analytics-python"}},
            "sentAt": "2020-01-01T00:00:30Z",
        },
    )
    event = Event.objects.get()
    assert event.context == {"ip": "10.0.0.1", "library": {"name": "analytics-python"}}
    assert abs((event.received_at - event.timestamp).total_seconds() - 30) < 0.001


def test_replayed_batch_is_stored_once(tracker):
    batch = {
        "batch": [
            {"type": "track", "userId": "u", "event": "E", "messageId": f"m{i}"} for i in range(50)
        ]
    }
    for _ in range(3):
        assert tracker.send("/v1/batch", batch).status_code == 200
    assert Event.objects.count() == 50


def test_repeated_message_id_inside_one_batch_is_stored_once(tracker):
    item = {"type": "track", "userId": "u", "event": "E", "messageId": "same"}
    assert tracker.send("/v1/batch", {"batch": [item, item, item]}).json()["accepted"] == 1
    assert Event.objects.count() == 1


def test_the_same_message_id_in_two_workspaces_is_two_events(tenant, other_tenant):
    item = {"userId": "u", "event": "E", "messageId": "shared"}
    Tracker(tenant.created.write_key).send("/v1/track", item)
    Tracker(other_tenant.created.write_key).send("/v1/track", item)
    assert Event.objects.count() == 2


def test_gzip_bodies_are_accepted(tracker):
    response = tracker.send(
        "/v1/batch", {"batch": [{"type": "identify", "userId": "u"}]}, gzip=True
    )
    assert response.status_code == 200
    assert Event.objects.count() == 1


@pytest.mark.parametrize(
    ("raw", "headers", "status"),
    [
        (b"{not json", {}, 400),
        (b"[1, 2]", {}, 400),
        (b"\x1f\x8b\x08\x00garbage", {}, 400),
        (b"definitely not gzip", {"HTTP_CONTENT_ENCODING": "gzip"}, 400),
        (b"{}", {"HTTP_CONTENT_ENCODING": "br"}, 415),
    ],
)
def test_malformed_bodies_are_refused(raw, headers, status, tracker):
    response = tracker.send("/v1/batch", raw=raw, headers=headers)
    assert response.status_code == status
    assert "error" in response.json()
    assert Event.objects.count() == 0


def test_event_over_32kb_refuses_the_whole_request(tracker):
    big = {"type": "track", "userId": "u", "event": "Big", "properties": {"blob": "x" * 33_000}}
    small = {"type": "track", "userId": "u", "event": "Small"}
    response = tracker.send("/v1/batch", {"batch": [small, big]})
    assert response.status_code == 413
    assert "32 KB" in response.json()["error"]["message"]
    assert Event.objects.count() == QuarantinedEvent.objects.count() == 0


@pytest.mark.parametrize("gzip", [False, True])
def test_request_over_500kb_is_refused_whole(gzip, tracker):
    items = [
        {"type": "track", "userId": "u", "event": "E", "properties": {"blob": "x" * 20_000}}
        for _ in range(30)
    ]
    response = tracker.send("/v1/batch", {"batch": items}, gzip=gzip)
    assert response.status_code == 413
    assert "500 KB" in response.json()["error"]["message"]
    assert Event.objects.count() == 0


def test_gzip_bomb_is_refused(tracker):
    bomb = b'{"batch": [], "pad": "' + b"0" * (MAX_REQUEST_BYTES * 20) + b'"}'
    response = tracker.send("/v1/batch", raw=bomb, gzip=True)
    assert response.status_code == 413


def test_get_is_not_allowed(tracker):
    response = tracker.client.get("/v1/track")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_a_failed_write_is_503_never_2xx(tracker):
    with mock.patch(
        "rapport.ingest.services.events_write",
        side_effect=OperationalError("could not write"),
    ):
        response = tracker.send("/v1/track", CALLS["/v1/track"])
    assert response.status_code == 503
    assert response["Retry-After"]
    assert Event.objects.count() == 0


def test_stored_events_are_handed_downstream_by_a_task(tracker, tenant):
    from django_tasks_db.models import DBTaskResult

    tracker.send(
        "/v1/batch", {"batch": [{"type": "identify", "userId": f"u{i}"} for i in range(3)]}
    )
    from rapport.ingest.models import PipelineBatch

    task = DBTaskResult.objects.get()
    assert task.task_path == "rapport.ingest.tasks.events_dispatch"
    batch = PipelineBatch.objects.get(pk=task.args_kwargs["kwargs"]["batch_id"])
    assert batch.workspace_id == tenant.workspace.pk
    assert len(batch.message_ids) == batch.size == 3
    assert set(batch.steps.values_list("consumer", flat=True)) == {
        "identity",
        "accounts",
        "consents",
        "segments",
        "journeys",
        "analytics",
    }


def test_an_event_with_nul_is_refused_alone_and_the_rest_of_its_batch_stored(tracker):
    batch = [
        {"type": "track", "userId": "u1", "event": "A", "messageId": "ok-1"},
        {
            "type": "track",
            "userId": "u1",
            "event": "B",
            "messageId": "nul\x00-1",
            "properties": {"q\x00": "a\x00b"},
        },
        {"type": "identify", "userId": "u2", "messageId": "ok-2"},
    ]
    response = tracker.send("/v1/batch", {"batch": batch})

    assert response.status_code == 200
    assert (response.json()["accepted"], response.json()["rejected"]) == (2, 1)
    assert set(Event.objects.values_list("message_id", flat=True)) == {"ok-1", "ok-2"}
    kept = QuarantinedEvent.objects.get()
    assert (kept.field, kept.message_id) == ("messageId", "nul\\u0000-1")
    assert "NUL" in kept.reason
    assert kept.payload["properties"] == {"q\\u0000": "a\\u0000b"}


@pytest.mark.parametrize("path", ["/v1/track", "/v1/identify"])
def test_a_single_call_with_nul_is_400(path, tracker):
    body = {"userId": "u\x00", "event": "E"}
    response = tracker.send(path, body)
    assert response.status_code == 400
    assert "userId" in response.json()["error"]["message"]
    assert Event.objects.count() == 0
    assert QuarantinedEvent.objects.get().payload["userId"] == "u\\u0000"


def test_a_nul_in_the_batch_context_refuses_its_events_without_an_error(tracker):
    response = tracker.send(
        "/v1/batch",
        {
            "batch": [{"type": "identify", "userId": "u1"}, {"type": "identify", "userId": "u2"}],
            "context": {"library": {"name": "sdk\x00"}},
        },
    )
    assert response.status_code == 200
    assert (response.json()["accepted"], response.json()["rejected"]) == (0, 2)
    assert {e["field"] for e in response.json()["errors"]} == {"context"}
    assert QuarantinedEvent.objects.count() == 2


def test_a_batch_context_is_limited_as_copied_into_each_event(tracker):
    context = {"pad": "x" * 30_000}
    items = [{"type": "identify", "userId": f"u{i}", "traits": {"x": "y" * 3000}} for i in range(3)]
    response = tracker.send("/v1/batch", {"batch": items, "context": context})
    assert response.status_code == 413
    assert Event.objects.count() == 0
