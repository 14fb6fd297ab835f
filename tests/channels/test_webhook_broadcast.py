"""A broadcast on the webhook channel: every member's message is a Standard Webhooks
signed POST of the customer's data to the broadcast's url (a local receiver here),
verified with the `standardwebhooks` library; the url is required and checked."""

from datetime import timedelta

import pytest
import time_machine
from standardwebhooks.webhooks import Webhook

from rapport.channels import services
from rapport.channels.models import Message
from rapport.segments import services as segments
from tests.channels.conftest import ACTOR, customer
from tests.channels.test_api import _run_tasks


@pytest.fixture
def secret(shop, settings):
    settings.RAPPORT_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True  # the receiver is on 127.0.0.1
    answer = shop.api().patch("/api/v1/channels/settings", {"webhook_secret_create": True})
    return answer.json()["webhook_secret"]


def _segment(shop, user_ids):
    listed = segments.segment_create(
        workspace=shop.workspace, name="Hooked", kind="static", actor=ACTOR
    )
    segments.segment_members_add(segment=listed, values=user_ids, actor=ACTOR)
    return listed


def test_webhook_broadcast_is_a_signed_call_per_member(shop, receiver, secret):
    people = {
        name: customer(shop, name, marketing=None, first_name=name.title(), plan="pro")
        for name in ("ann", "ben", "cid")
    }
    listed = _segment(shop, list(people))
    api = shop.api()
    created = api.post(
        "/api/v1/broadcasts",
        {
            "name": "To the CRM of a partner",
            "channel": "webhook",
            "purpose": "transactional",
            "segment_id": str(listed.pk),
            "text": "Hello {{ customer.first_name }}",
            "url": f"{receiver.url}/hooks/rapport",
        },
    )
    assert created.status_code == 201, created.content
    assert created.json()["url"] == f"{receiver.url}/hooks/rapport"
    broadcast_id = created.json()["id"]
    receiver.reply(503)  # the first call fails and is retried later
    assert api.post(f"/api/v1/broadcasts/{broadcast_id}/send", {}).status_code == 200
    _run_tasks()

    verifier = Webhook(secret)
    by_profile = {}
    for request in receiver.requests:
        assert request.path == "/hooks/rapport"
        payload = verifier.verify(request.body, request.headers)
        assert payload["type"] == "message.sent"
        by_profile.setdefault(payload["data"]["profile_id"], []).append(
            (request.headers["webhook-id"], payload)
        )
    # One call each; the first was answered 503 and waits for its retry.
    assert len(receiver.requests) == 3 and len(by_profile) == 3
    for profile_id, calls in by_profile.items():
        [(webhook_id, payload)] = calls
        person = next(p for p in people.values() if str(p.pk) == profile_id)
        assert payload["data"]["message_id"] == webhook_id
        assert payload["data"]["text"] == f"Hello {person.traits['first_name']}"
        assert payload["data"]["customer"]["plan"] == "pro"
    first = Message.objects.get(pk=receiver.requests[0].headers["webhook-id"])
    assert first.status == "queued" and first.attempts == 1 and first.next_attempt_at
    assert Message.objects.filter(broadcast_id=broadcast_id, status="sent").count() == 2
    stats = api.get(f"/api/v1/broadcasts/{broadcast_id}").json()["stats"]
    assert stats["sent"] == 2 and stats["queued"] == 1
    # The retry, with exponential backoff: the same message id, signed again.
    with time_machine.travel(first.next_attempt_at + timedelta(seconds=1)):
        assert services.message_send(message_id=first.pk) == "sent"
    retry = receiver.requests[-1]
    assert retry.headers["webhook-id"] == str(first.pk)
    assert verifier.verify(retry.body, retry.headers)["data"]["message_id"] == str(first.pk)


def test_webhook_broadcast_needs_a_public_url(shop, settings):
    customer(shop, "ann", marketing=None)
    listed = _segment(shop, ["ann"])
    api = shop.api()
    body = {"name": "x", "channel": "webhook", "segment_id": str(listed.pk), "text": "x"}
    missing = api.post("/api/v1/broadcasts", body)
    assert missing.status_code == 422
    assert missing.json()["error"]["details"][0]["field"] == "url"
    for url in ("ftp://example.com/x", "http://127.0.0.1:8000/x", "http://localhost/x"):
        refused = api.post("/api/v1/broadcasts", {**body, "url": url})
        assert refused.status_code == 422, url
        assert refused.json()["error"]["details"][0]["field"] == "url"
    ok = api.post("/api/v1/broadcasts", {**body, "url": "https://hooks.example.com/x"})
    assert ok.status_code == 201, ok.content
    email = api.post(
        "/api/v1/broadcasts",
        {**body, "channel": "email", "subject": "s", "url": "https://a.example"},
    )
    assert email.status_code == 422
    assert email.json()["error"]["details"][0]["field"] == "url"
    # An install whose receivers are on its own network allows them.
    settings.RAPPORT_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    allowed = api.post("/api/v1/broadcasts", {**body, "url": "http://127.0.0.1:8000/x"})
    assert allowed.status_code == 201
