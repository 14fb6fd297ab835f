"""SMS (Twilio and Vonage) and webhook messages through the send path, against a local
HTTP receiver acting as the provider or the receiver; the providers' callbacks (delivery
reports, STOP) with their signatures; the webhooks' dead-letter list and retry."""

import base64
import hashlib
import json
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import time_machine
from django.test import Client
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from rapport.channels import services
from rapport.channels.models import EmailSettings, Message
from rapport.channels.transports import twilio
from rapport.profiles.selectors import consent_current
from tests.channels.conftest import ACTOR
from tests.channels.test_api import _run_tasks

SID = "AC" + "a" * 32
TOKEN = "twilio-auth-token"
PHONE = "+79161234567"
VONAGE_SECRET = "vonage-signature-secret"


def _sms_customer(tenant, user_id="u1", *, marketing=True, **traits):
    traits.setdefault("phone", PHONE)
    traits["consent"] = {"sms": {"marketing": "granted" if marketing else "denied"}}
    tenant.send({"type": "identify", "userId": user_id, "traits": traits})
    from rapport.profiles.models import Profile

    return Profile.objects.get(workspace=tenant.workspace, identifiers__value=user_id)


def _sms(
    tenant, profile, *, purpose="marketing", text="Hi {{ customer.first_name|default:'you' }}"
):
    message, _ = services.message_create(
        workspace=tenant.workspace,
        profile=profile,
        channel="sms",
        purpose=purpose,
        content={"text": text},
        actor=ACTOR,
    )
    return message


def _twilio(tenant, receiver, settings):
    settings.RAPPORT_PUBLIC_URL = "https://crm.example.com"
    answer = tenant.api().patch(
        "/api/v1/channels/settings",
        {
            "sms": {
                "provider": "twilio",
                "credentials": {
                    "account_sid": SID,
                    "auth_token": TOKEN,
                    "base_url": receiver.url,
                },
                "sender": "+15005550006",
                "default_region": "GB",
            }
        },
    )
    assert answer.status_code == 200, answer.content
    return answer.json()["sms"]


def _twilio_created(sid="SM" + "b" * 32):
    return json.dumps({"sid": sid, "status": "queued", "to": PHONE, "body": "x"})


def _consent(profile, channel="sms", purpose="marketing"):
    rows = consent_current(workspace=profile.workspace, profile_id=profile.pk)
    return next(r["status"] for r in rows if r["channel"] == channel and r["purpose"] == purpose)


def test_sms_through_twilio_end_to_end(shop, receiver, settings):
    shown = _twilio(shop, receiver, settings)
    assert shown["provider"] == "twilio" and shown["credentials_set"]
    assert TOKEN not in json.dumps(shop.api().get("/api/v1/channels/settings").json())
    found = EmailSettings.objects.get(workspace=shop.workspace)
    assert TOKEN not in found.sms_credentials_encrypted
    jane = _sms_customer(shop, first_name="Jane")
    message = _sms(shop, jane)
    receiver.reply(201, _twilio_created(), Content_Type="application/json")
    assert services.message_send(message_id=message.pk) == "sent"
    request = receiver.last
    assert request.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert (
        request.headers["authorization"]
        == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    )
    form = parse_qs(request.body.decode())
    assert form["To"] == [PHONE] and form["From"] == ["+15005550006"]
    assert form["Body"] == ["Hi Jane"]
    callback = urlsplit(form["StatusCallback"][0])
    assert f"https://crm.example.com{callback.path}" == shown["callback_url"]
    assert parse_qs(callback.query)["message_id"] == [str(message.pk)]
    message.refresh_from_db()
    assert message.provider_id == "SM" + "b" * 32

    # Twilio's delivery report, signed over the public URL it called (as behind a
    # proxy): the message is delivered.
    params = {"MessageSid": "SM" + "b" * 32, "MessageStatus": "delivered", "To": PHONE}
    url = form["StatusCallback"][0]
    response = Client().post(
        f"{callback.path}?{callback.query}",
        params,
        HTTP_X_TWILIO_SIGNATURE=twilio.signature(url, params, TOKEN),
    )
    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == "delivered"


def test_sms_provider_errors_map_to_send_errors(shop, receiver, settings):
    _twilio(shop, receiver, settings)
    jane = _sms_customer(shop)
    message = _sms(shop, jane, purpose="transactional")
    receiver.reply(503, "{}", Content_Type="application/json")
    assert services.message_send(message_id=message.pk) == "queued"
    invalid = _sms(shop, jane, purpose="transactional")
    receiver.reply(
        400,
        json.dumps({"code": 21211, "message": "The 'To' number is not valid.", "status": 400}),
        Content_Type="application/json",
    )
    assert services.message_send(message_id=invalid.pk) == "failed"


def test_sms_through_vonage(shop, receiver, settings):
    settings.RAPPORT_PUBLIC_URL = "https://crm.example.com"
    answer = shop.api().patch(
        "/api/v1/channels/settings",
        {
            "sms": {
                "provider": "vonage",
                "credentials": {
                    "api_key": "key1",
                    "api_secret": "secret1",
                    "signature_secret": VONAGE_SECRET,
                    "base_url": receiver.url,
                },
                "sender": "Rapport",
            }
        },
    )
    assert answer.status_code == 200, answer.content
    jane = _sms_customer(shop, first_name="Jane")
    message = _sms(shop, jane)
    receiver.reply(
        202,
        json.dumps({"message_uuid": "aaaaaaaa-bbbb-cccc-dddd-000000000001"}),
        Content_Type="application/json",
    )
    assert services.message_send(message_id=message.pk) == "sent"
    request = receiver.last
    assert request.path == "/v1/messages"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"key1:secret1").decode()
    body = json.loads(request.body)
    assert body["to"] == PHONE.lstrip("+") and body["from"] == "Rapport"
    assert body["text"] == "Hi Jane" and body["client_ref"] == str(message.pk)
    assert body["webhook_url"] == answer.json()["sms"]["callback_url"]

    # A signed STOP from Vonage withdraws SMS marketing.
    inbound = json.dumps(
        {
            "channel": "sms",
            "message_uuid": "aaaaaaaa-bbbb-cccc-dddd-000000000002",
            "to": "447700900000",
            "from": PHONE.lstrip("+"),
            "timestamp": "2026-12-04T14:00:00Z",
            "text": "STOP",
            "message_type": "text",
        }
    ).encode()
    claims = {
        "iat": int(time.time()),
        "jti": "x",
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(inbound).hexdigest(),
    }
    path = urlsplit(answer.json()["sms"]["callback_url"]).path
    response = Client().post(
        path,
        inbound,
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer " + jwt.encode(claims, VONAGE_SECRET, algorithm="HS256"),
    )
    assert response.status_code == 204
    assert _consent(jane) == "denied"


def test_consent_and_caps_apply_to_sms(shop, receiver, settings):
    _twilio(shop, receiver, settings)
    services.contact_policy_set(
        workspace=shop.workspace, actor=ACTOR, caps={"sms": {"max": 1, "days": 7}}
    )
    jane = _sms_customer(shop)
    refused = _sms_customer(shop, "u2", marketing=False, phone="+79161234568")
    receiver.reply(201, _twilio_created(), Content_Type="application/json")
    first, second = _sms(shop, jane), _sms(shop, jane)
    assert services.message_send(message_id=first.pk) == "sent"
    assert services.message_send(message_id=second.pk) == "skipped"
    second.refresh_from_db()
    assert second.skip_reason == "contact_policy"
    other = _sms(shop, refused)
    assert services.message_send(message_id=other.pk) == "skipped"
    other.refresh_from_db()
    assert other.skip_reason == "no_consent"
    assert len(receiver.requests) == 1


def test_stop_withdraws_consent_and_a_forged_one_changes_nothing(shop, receiver, settings):
    shown = _twilio(shop, receiver, settings)
    jane = _sms_customer(shop)
    path = urlsplit(shown["callback_url"]).path
    params = {
        "MessageSid": "SM" + "c" * 32,
        "From": PHONE,
        "To": "+15005550006",
        "Body": "STOP",
        "OptOutType": "STOP",
    }
    forged = Client().post(path, params, HTTP_X_TWILIO_SIGNATURE="bm90IGEgc2lnbmF0dXJl")
    assert forged.status_code == 403
    unsigned = Client().post(path, params)
    assert unsigned.status_code == 403
    other_token = Client().post(
        "/m/sms/twilio/not-the-token/",
        params,
        HTTP_X_TWILIO_SIGNATURE=twilio.signature(
            "http://testserver/m/sms/twilio/not-the-token/", params, TOKEN
        ),
    )
    assert other_token.status_code == 404
    assert _consent(jane) == "granted"

    signed = Client(enforce_csrf_checks=True).post(
        path,
        params,
        HTTP_X_TWILIO_SIGNATURE=twilio.signature(f"http://testserver{path}", params, TOKEN),
    )
    assert signed.status_code == 200 and b"<Response" in signed.content
    assert _consent(jane) == "denied"
    after = _sms(shop, jane)
    assert services.message_send(message_id=after.pk) == "skipped"
    after.refresh_from_db()
    assert after.skip_reason == "no_consent"
    assert receiver.requests == []


# --- Webhooks ----------------------------------------------------------------------------


@pytest.fixture
def hooks(shop, settings):
    settings.RAPPORT_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    answer = shop.api().patch("/api/v1/channels/settings", {"webhook_secret_create": True})
    assert answer.status_code == 200
    secret = answer.json()["webhook_secret"]
    assert secret.startswith("whsec_")
    shown = shop.api().get("/api/v1/channels/settings").json()
    assert shown["webhook_secret"] is None and shown["webhook_secret_set"]
    return secret


def _hook(tenant, profile, url):
    answer = tenant.api().post(
        "/api/v1/messages",
        {
            "profile_id": str(profile.pk),
            "channel": "webhook",
            "purpose": "transactional",
            "content": {"url": url, "text": "Hello {{ customer.first_name }}"},
        },
    )
    assert answer.status_code == 201, answer.content
    return answer.json()["id"]


def test_webhook_message_is_a_signed_post(shop, receiver, hooks):
    jane = _sms_customer(shop, first_name="Jane")
    message_id = _hook(shop, jane, f"{receiver.url}/hook")
    _run_tasks()
    request = receiver.last
    assert request.path == "/hook"
    payload = Webhook(hooks).verify(request.body, request.headers)
    assert request.headers["webhook-id"] == message_id
    assert payload["data"]["message_id"] == message_id
    assert payload["data"]["text"] == "Hello Jane"
    assert payload["data"]["customer"]["first_name"] == "Jane"
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"x" * 32).decode()).verify(
            request.body, request.headers
        )
    assert Message.objects.get(pk=message_id).status == "sent"


def test_webhook_500_then_200_is_retried_and_sent_once(shop, receiver, hooks):
    jane = _sms_customer(shop)
    message_id = _hook(shop, jane, f"{receiver.url}/hook")
    receiver.reply(500)
    receiver.reply(200)
    assert services.message_send(message_id=message_id) == "queued"
    message = Message.objects.get(pk=message_id)
    with time_machine.travel(message.next_attempt_at + timedelta(seconds=1)):
        assert services.message_send(message_id=message_id) == "sent"
        assert services.message_send(message_id=message_id) == "sent"
    assert len(receiver.requests) == 2
    assert {r.headers["webhook-id"] for r in receiver.requests} == {message_id}
    message.refresh_from_db()
    assert message.status == "sent" and message.attempts == 2


def test_webhook_410_fails_at_once_and_is_dead_lettered_then_retried(shop, receiver, hooks):
    jane = _sms_customer(shop)
    message_id = _hook(shop, jane, f"{receiver.url}/gone")
    ok_id = _hook(shop, jane, f"{receiver.url}/ok")
    receiver.reply(410)
    assert services.message_send(message_id=message_id) == "failed"
    assert services.message_send(message_id=ok_id) == "sent"
    api = shop.api()
    dead = api.get("/api/v1/messages?channel=webhook&status=failed").json()
    assert [m["id"] for m in dead["items"]] == [message_id]
    assert "410" in dead["items"][0]["error"]
    assert api.post(f"/api/v1/messages/{ok_id}/retry").status_code == 409
    retried = api.post(f"/api/v1/messages/{message_id}/retry")
    assert retried.status_code == 200 and retried.json()["status"] == "queued"
    _run_tasks()
    assert Message.objects.get(pk=message_id).status == "sent"
    assert api.get("/api/v1/messages?channel=webhook&status=failed").json()["items"] == []
    assert api.get("/api/v1/messages?status=nonsense").status_code == 422


def test_webhook_content_needs_a_url(shop, hooks):
    jane = _sms_customer(shop)
    answer = shop.api().post(
        "/api/v1/messages",
        {"profile_id": str(jane.pk), "channel": "webhook", "content": {"text": "x"}},
    )
    assert answer.status_code == 422
    assert answer.json()["error"]["details"][0]["field"] == "content.url"
