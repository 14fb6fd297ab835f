"""Providers' tracking webhooks (Postmark's documented format, through django-anymail):
a bounce suppresses the address for good, a complaint also withdraws consent,
deliveries and opens are counted."""

import base64

import pytest
from django.test import Client

from rapport.channels import services
from rapport.channels.models import Message, Suppression
from tests.channels.conftest import customer, single

SECRET = "hooks:s3cret"


@pytest.fixture
def hooks(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    from rapport.channels.views import _tracking_views

    _tracking_views.cache_clear()
    auth = base64.b64encode(SECRET.encode()).decode()
    client = Client()

    def post(body: dict, *, authorization: str | None = f"Basic {auth}"):
        extra = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
        return client.post(
            "/m/esp/postmark/tracking/", data=body, content_type="application/json", **extra
        )

    yield post
    _tracking_views.cache_clear()


def _sent(shop, smtp, **traits):
    jane = customer(shop, "u1", email="jane@example.com", **traits)
    message = single(shop, jane)
    services.message_send(message_id=message.pk)
    message.refresh_from_db()
    return jane, message


def test_a_hard_bounce_suppresses_the_address(shop, smtp, hooks):
    jane, message = _sent(shop, smtp)
    response = hooks(
        {
            "RecordType": "Bounce",
            "ID": 4323372036854775807,
            "Type": "HardBounce",
            "TypeCode": 1,
            "Name": "Hard bounce",
            "MessageID": message.provider_id.strip("<>"),
            "Description": "The server was unable to deliver your message",
            "Details": "smtp;550 5.1.1 The email account does not exist",
            "Email": "jane@example.com",
            "From": "rapport@localhost",
            "BouncedAt": "2026-03-02T16:33:54.9070259Z",
            "Inactive": True,
            "CanActivate": True,
            "Subject": "Hello",
            "Metadata": {},
        }
    )
    assert response.status_code == 200, response.content
    message.refresh_from_db()
    assert message.status == "bounced" and message.bounced_at
    assert Suppression.objects.get(workspace=shop.workspace).reason == "bounce"
    # Never written to again, even for a receipt.
    receipt = single(shop, jane, purpose="transactional")
    assert services.message_send(message_id=receipt.pk) == "skipped"
    receipt.refresh_from_db()
    assert receipt.skip_reason == "suppressed"


def test_deliveries_opens_and_complaints_by_metadata(shop, smtp, hooks):
    _, message = _sent(shop, smtp)
    metadata = {"rapport_message_id": str(message.pk)}
    hooks(
        {
            "RecordType": "Delivery",
            "MessageID": "postmark-id",
            "Recipient": "jane@example.com",
            "DeliveredAt": "2026-03-02T16:34:00Z",
            "Metadata": metadata,
        }
    )
    hooks(
        {
            "RecordType": "Open",
            "MessageID": "postmark-id",
            "Recipient": "jane@example.com",
            "ReceivedAt": "2026-03-02T16:40:00Z",
            "Metadata": metadata,
        }
    )
    message.refresh_from_db()
    assert message.status == "delivered" and message.opened_at
    hooks(
        {
            "RecordType": "SpamComplaint",
            "Type": "SpamComplaint",
            "MessageID": "postmark-id",
            "Email": "jane@example.com",
            "BouncedAt": "2026-03-02T17:00:00Z",
            "Metadata": metadata,
        }
    )
    assert Suppression.objects.get(workspace=shop.workspace).reason == "complaint"
    message.refresh_from_db()
    assert message.unsubscribed_at is not None


def test_webhooks_need_the_secret(shop, smtp, hooks, settings):
    _, message = _sent(shop, smtp)
    body = {
        "RecordType": "Bounce",
        "Type": "HardBounce",
        "Email": "jane@example.com",
        "MessageID": message.provider_id.strip("<>"),
        "BouncedAt": "2026-03-02T16:33:54Z",
    }
    assert hooks(body, authorization="Basic " + base64.b64encode(b"x:y").decode()).status_code in (
        400,
        401,
        403,
    )
    settings.ANYMAIL = {"WEBHOOK_SECRET": ""}
    assert hooks(body).status_code == 404
    assert not Suppression.objects.exists()
    assert Message.objects.get(pk=message.pk).status == "sent"
