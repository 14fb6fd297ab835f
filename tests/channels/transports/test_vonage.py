"""The Vonage Messages API against a local receiver standing in for api.nexmo.com,
checked against Vonage's documented request, answer and webhook formats."""

import base64
import hashlib
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from rapport.channels.transports import (
    DeliveryStatus,
    InboundKind,
    TransportError,
    get_transport,
    vonage,
)

APP_ID = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
SIGNATURE_SECRET = "a-signature-secret-of-32-chars!!"


@pytest.fixture(scope="module")
def rsa_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return pem, key.public_key()


def _accepted(uuid="aaaaaaaa-bbbb-cccc-dddd-000000000001"):
    return json.dumps({"message_uuid": uuid})


def test_send_with_an_application_jwt(receiver, rsa_key):
    pem, public_key = rsa_key
    receiver.reply(202, _accepted(), Content_Type="application/json")
    result = get_transport("vonage").send(
        message_id="msg-7",
        to="+7 916 123 45 67",
        content={"text": "Ваш заказ готов"},
        config={
            "application_id": APP_ID,
            "private_key": pem,
            "from": "Rapport",
            "base_url": receiver.url,
        },
    )
    assert result.provider_message_id == "aaaaaaaa-bbbb-cccc-dddd-000000000001"
    assert result.status == DeliveryStatus.QUEUED

    request = receiver.last
    assert request.method == "POST"
    assert request.path == "/v1/messages"
    assert request.headers["content-type"] == "application/json"
    scheme, token = request.headers["authorization"].split(" ")
    assert scheme == "Bearer"
    claims = jwt.decode(token, public_key, algorithms=["RS256"])
    assert claims["application_id"] == APP_ID
    assert claims["jti"] and claims["exp"] > claims["iat"] >= int(time.time()) - 5
    assert json.loads(request.body) == {
        "message_type": "text",
        "channel": "sms",
        "to": "79161234567",
        "from": "Rapport",
        "text": "Ваш заказ готов",
        "client_ref": "msg-7",
    }


def test_send_with_basic_auth_and_a_numeric_sender(receiver):
    receiver.reply(202, _accepted())
    get_transport("vonage").send(
        message_id="m",
        to="8 916 123-45-67",
        content={"text": "x"},
        config={
            "api_key": "abcd1234",
            "api_secret": "s3cr3t",
            "from": "+447700900001",
            "default_region": "RU",
            "base_url": receiver.url,
            "webhook_url": "https://rapport.example/hooks/vonage/status",
        },
    )
    request = receiver.last
    assert (
        request.headers["authorization"] == "Basic " + base64.b64encode(b"abcd1234:s3cr3t").decode()
    )
    body = json.loads(request.body)
    assert body["from"] == "447700900001"
    assert body["to"] == "79161234567"
    assert body["webhook_url"] == "https://rapport.example/hooks/vonage/status"


@pytest.mark.parametrize(
    ("status", "retryable"), [(401, False), (422, False), (429, True), (500, True)]
)
def test_problem_answers_are_classified(receiver, status, retryable):
    problem = {
        "type": "https://developer.vonage.com/api-errors/messages#1150",
        "title": "Invalid params",
        "detail": "The value of one or more parameters is invalid.",
        "instance": "bf0ca0bf927b3b52e3cb03217e1a1ddf",
    }
    receiver.reply(status, json.dumps(problem), Content_Type="application/problem+json")
    with pytest.raises(TransportError) as caught:
        get_transport("vonage").send(
            message_id="m",
            to="+79161234567",
            content={"text": "x"},
            config={"api_key": "k", "api_secret": "s", "from": "R", "base_url": receiver.url},
        )
    assert caught.value.retryable is retryable
    assert caught.value.http_status == status
    assert "one or more parameters" in caught.value.message


def test_configuration_errors_are_final(receiver):
    with pytest.raises(TransportError, match="api_key, api_secret") as caught:
        get_transport("vonage").send(
            message_id="m",
            to="+79161234567",
            content={"text": "x"},
            config={"from": "R", "base_url": receiver.url},
        )
    assert not caught.value.retryable
    with pytest.raises(TransportError, match="private_key") as caught:
        get_transport("vonage").send(
            message_id="m",
            to="+79161234567",
            content={"text": "x"},
            config={
                "from": "R",
                "application_id": APP_ID,
                "private_key": "not a key",
                "base_url": receiver.url,
            },
        )
    assert not caught.value.retryable
    assert receiver.requests == []


def _signed(body: bytes, *, secret=SIGNATURE_SECRET, iat=None, payload_hash=None):
    claims = {
        "iat": int(time.time()) if iat is None else iat,
        "jti": "c5ba8f24-1a14-4c10-bfdf-3fbe8ce511b5",
        "iss": "Vonage",
        "payload_hash": payload_hash or hashlib.sha256(body).hexdigest(),
        "api_key": "abcd1234",
        "application_id": APP_ID,
    }
    return "Bearer " + jwt.encode(claims, secret, algorithm="HS256")


STATUS_BODY = json.dumps(
    {
        "message_uuid": "aaaaaaaa-bbbb-cccc-dddd-000000000001",
        "to": "79161234567",
        "from": "Rapport",
        "timestamp": "2026-12-04T14:00:00.000Z",
        "status": "rejected",
        "error": {
            "type": "https://developer.vonage.com/api-errors/messages#1320",
            "title": 1320,
            "detail": "Message failed because the number is barred",
            "instance": "bf0ca0bf927b3b52e3cb03217e1a1ddf",
        },
        "channel": "sms",
        "client_ref": "msg-7",
    }
).encode()


def test_signed_webhooks_are_verified():
    header = _signed(STATUS_BODY)
    assert vonage.webhook_valid(header, STATUS_BODY, SIGNATURE_SECRET)
    claims = vonage.webhook_claims(header, STATUS_BODY, SIGNATURE_SECRET)
    assert claims["api_key"] == "abcd1234"
    # Another secret, a changed body, an old token, no token: refused.
    assert not vonage.webhook_valid(header, STATUS_BODY, "another-secret-of-32-characters!")
    assert not vonage.webhook_valid(
        header, STATUS_BODY.replace(b"rejected", b"delivered"), SIGNATURE_SECRET
    )
    assert not vonage.webhook_valid(
        _signed(STATUS_BODY, iat=int(time.time()) - 3600), STATUS_BODY, SIGNATURE_SECRET
    )
    assert not vonage.webhook_valid("", STATUS_BODY, SIGNATURE_SECRET)
    assert not vonage.webhook_valid("Bearer not.a.jwt", STATUS_BODY, SIGNATURE_SECRET)


def test_status_webhooks_are_normalised():
    assert vonage.is_status_callback(STATUS_BODY)
    report = vonage.parse_status_callback(STATUS_BODY)
    assert report.provider_message_id == "aaaaaaaa-bbbb-cccc-dddd-000000000001"
    assert report.message_id == "msg-7"
    assert report.status == DeliveryStatus.FAILED
    assert report.provider_status == "rejected"
    assert report.error_code == "1320"
    assert "barred" in report.error_message
    assert report.to == "+79161234567"
    data = json.loads(STATUS_BODY)
    del data["error"]
    for theirs, ours in [
        ("submitted", "sent"),
        ("delivered", "delivered"),
        ("undeliverable", "undelivered"),
        ("read", "read"),
    ]:
        data["status"] = theirs
        assert vonage.parse_status_callback(data).status == ours
    with pytest.raises(ValueError):
        vonage.parse_status_callback(b"[]")


def test_inbound_stop_is_an_opt_out():
    body = json.dumps(
        {
            "channel": "sms",
            "message_uuid": "aaaaaaaa-bbbb-cccc-dddd-0123456789ac",
            "to": "447700900001",
            "from": "79161234567",
            "timestamp": "2026-12-04T14:00:00Z",
            "text": "STOP",
            "sms": {"num_messages": "1", "keyword": "STOP"},
            "message_type": "text",
        }
    ).encode()
    assert not vonage.is_status_callback(body)
    message = vonage.parse_inbound(body)
    assert message.kind == InboundKind.OPT_OUT
    assert message.from_number == "+79161234567"
    assert message.to_number == "+447700900001"
    assert message.text == "STOP"
    data = json.loads(body)
    data["text"] = "Когда доставка?"
    assert vonage.parse_inbound(data).kind == InboundKind.MESSAGE
    with pytest.raises(ValueError):
        vonage.parse_inbound({"text": "STOP"})


def test_parse_callback_tells_the_kinds_apart():
    assert vonage.parse_callback(STATUS_BODY).status == DeliveryStatus.FAILED
    inbound = {
        "channel": "sms",
        "message_uuid": "u1",
        "from": "79161234567",
        "to": "447700900001",
        "text": "Отписаться",
        "message_type": "text",
    }
    assert vonage.parse_callback(inbound).kind == InboundKind.OPT_OUT
