"""Web push against a local receiver standing in for the push service: the VAPID
Authorization, the aes128gcm body (decrypted here as the browser would) and TTL."""

import base64
import json
import os
from pathlib import Path

import http_ece
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid

import rapport
from rapport.channels.transports import DeliveryStatus, TransportError, get_transport, webpush


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def browser():
    """What a browser keeps for one subscription: its ECDH key and auth secret."""
    key = ec.generate_private_key(ec.SECP256R1())
    auth = os.urandom(16)
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return key, auth, {"p256dh": _b64url(public), "auth": _b64url(auth)}


@pytest.fixture(scope="module")
def vapid():
    return webpush.vapid_keys_generate()


def _subscription(receiver, keys, path="/push/v2/gAAAAABn"):
    return json.dumps({"endpoint": receiver.url + path, "expirationTime": None, "keys": keys})


def _config(vapid, **extra):
    return {
        "vapid_private_key": vapid.private_key,
        "vapid_subject": "mailto:ops@rapport.example",
        "report_url": "https://rapport.example/api/v1/push/events",
        "allow_private_addresses": True,  # the receiver stands in on 127.0.0.1
        **extra,
    }


def test_vapid_keys():
    keys = webpush.vapid_keys_generate()
    public = base64.urlsafe_b64decode(keys.public_key + "==")
    assert len(public) == 65 and public[0] == 4  # an uncompressed P-256 point
    assert len(base64.urlsafe_b64decode(keys.private_key + "=")) == 32
    assert webpush.vapid_public_key(keys.private_key) == keys.public_key
    assert webpush.vapid_keys_generate() != keys


def test_send_encrypts_and_signs_as_the_push_protocol_says(receiver, browser, vapid):
    key, auth, keys = browser
    receiver.reply(201, b"", Location=receiver.url + "/push/m/abc123")
    result = get_transport("webpush").send(
        message_id="msg-42",
        to=_subscription(receiver, keys),
        content={
            "title": "Скидка 20 %",
            "body": "Только сегодня",
            "url": "https://shop.example/sale",
            "icon": "https://shop.example/icon.png",
            "topic": "sale",
        },
        config=_config(vapid, ttl=3600, urgency="high"),
    )
    assert result.status == DeliveryStatus.SENT
    assert result.provider_message_id == receiver.url + "/push/m/abc123"

    request = receiver.last
    assert request.method == "POST"
    assert request.path == "/push/v2/gAAAAABn"
    headers = request.headers
    assert headers["content-encoding"] == "aes128gcm"
    assert headers["ttl"] == "3600"
    assert headers["urgency"] == "high"
    assert headers["topic"] == "sale"
    # RFC 8292: "vapid t=<JWT signed with the VAPID key>, k=<its public key>".
    assert headers["authorization"].startswith("vapid t=")
    assert Vapid.verify(headers["authorization"])
    parts = dict(p.split("=", 1) for p in headers["authorization"][len("vapid ") :].split(","))
    assert parts["k"] == vapid.public_key
    claims = jwt.decode(parts["t"], options={"verify_signature": False})
    assert claims["aud"] == receiver.url
    assert claims["sub"] == "mailto:ops@rapport.example"
    # The browser's side: decrypt with its private key and auth secret (RFC 8291).
    plain = http_ece.decrypt(request.body, private_key=key, auth_secret=auth, version="aes128gcm")
    assert json.loads(plain) == {
        "message_id": "msg-42",
        "title": "Скидка 20 %",
        "body": "Только сегодня",
        "url": "https://shop.example/sale",
        "icon": "https://shop.example/icon.png",
        "report_url": "https://rapport.example/api/v1/push/events",
    }


@pytest.mark.parametrize("status", [404, 410])
def test_a_gone_subscription_is_expired(receiver, browser, vapid, status):
    receiver.reply(status, b"push subscription has unsubscribed or expired.")
    with pytest.raises(TransportError) as caught:
        get_transport("webpush").send(
            message_id="m",
            to=_subscription(receiver, browser[2]),
            content={"title": "x"},
            config=_config(vapid),
        )
    assert caught.value.retryable is False
    assert caught.value.status == DeliveryStatus.EXPIRED
    assert caught.value.http_status == status


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(400, False), (403, False), (413, False), (429, True), (500, True), (503, True)],
)
def test_other_answers_are_classified(receiver, browser, vapid, status, retryable):
    receiver.reply(status, b"", Retry_After="60")
    with pytest.raises(TransportError) as caught:
        get_transport("webpush").send(
            message_id="m",
            to=_subscription(receiver, browser[2]),
            content={"title": "x"},
            config=_config(vapid),
        )
    assert caught.value.retryable is retryable
    assert caught.value.status == DeliveryStatus.FAILED
    assert caught.value.retry_after == 60


def test_a_timeout_or_refused_connection_is_retryable(receiver, browser, vapid):
    from tests.channels.transports.conftest import Reply

    receiver.replies.append(Reply(201, delay=1.0))
    with pytest.raises(TransportError) as caught:
        get_transport("webpush").send(
            message_id="m",
            to=_subscription(receiver, browser[2]),
            content={"title": "x"},
            config=_config(vapid, timeout=0.2),
        )
    assert caught.value.retryable
    dead = json.dumps({"endpoint": "http://127.0.0.1:9/push", "keys": browser[2]})
    with pytest.raises(TransportError) as caught:
        get_transport("webpush").send(
            message_id="m", to=dead, content={"title": "x"}, config=_config(vapid, timeout=1)
        )
    assert caught.value.retryable


def test_bad_subscriptions_and_settings_are_final(receiver, browser, vapid):
    transport = get_transport("webpush")
    for to in [
        "not json",
        json.dumps({"endpoint": "x"}),
        json.dumps({"endpoint": receiver.url, "keys": {"p256dh": "abc"}}),
    ]:
        with pytest.raises(TransportError) as caught:
            transport.send(message_id="m", to=to, content={"title": "x"}, config=_config(vapid))
        assert not caught.value.retryable
        assert caught.value.status == DeliveryStatus.EXPIRED
    good = _subscription(receiver, browser[2])
    for config in [{}, _config(vapid, vapid_subject="ops"), _config(vapid, urgency="now")]:
        with pytest.raises(TransportError) as caught:
            transport.send(message_id="m", to=good, content={"title": "x"}, config=config)
        assert not caught.value.retryable
    with pytest.raises(TransportError, match="bytes") as caught:
        transport.send(
            message_id="m",
            to=good,
            content={"title": "x", "body": "я" * 3000},
            config=_config(vapid),
        )
    assert receiver.requests == []


def test_the_service_worker_is_shipped():
    static = Path(rapport.__file__).parent / "channels" / "static" / "channels"
    worker = (static / "rapport-sw.js").read_text()
    for needle in [
        'addEventListener("push"',
        "showNotification",
        '"notificationclick"',
        '"notificationclose"',
        '"clicked"',
        '"shown"',
        '"dismissed"',
        "report_url",
        "openWindow",
    ]:
        assert needle in worker
    page = (static / "rapport-push.js").read_text()
    assert "pushManager.subscribe" in page and "applicationServerKey" in page


def test_an_endpoint_inside_the_network_is_refused(receiver, browser, vapid):
    """Subscriptions come from browsers: one must not point Rapport at its own network."""
    transport = get_transport("webpush")
    for endpoint in [
        receiver.url + "/push",
        "https://127.0.0.1/push",
        "https://10.1.2.3/push",
        "https://localhost/push",
        "https://[::1]/push",
    ]:
        to = json.dumps({"endpoint": endpoint, "keys": browser[2]})
        config = _config(vapid, allow_private_addresses=False)
        with pytest.raises(TransportError) as caught:
            transport.send(message_id="m", to=to, content={"title": "x"}, config=config)
        assert not caught.value.retryable
        assert caught.value.status == DeliveryStatus.EXPIRED
    assert receiver.requests == []


def test_a_redirect_is_not_followed_and_a_huge_answer_is_capped(receiver, browser, vapid):
    receiver.reply(307, b"", Location="http://169.254.169.254/latest/meta-data")
    with pytest.raises(TransportError) as caught:
        get_transport("webpush").send(
            message_id="m",
            to=_subscription(receiver, browser[2]),
            content={"title": "x"},
            config=_config(vapid),
        )
    assert not caught.value.retryable
    assert len(receiver.requests) == 1
    receiver.reply(500, b"x" * 3_000_000)
    with pytest.raises(TransportError) as caught:
        get_transport("webpush").send(
            message_id="m",
            to=_subscription(receiver, browser[2]),
            content={"title": "x"},
            config=_config(vapid),
        )
    assert caught.value.retryable
    assert len(caught.value.message) < 400


def test_the_topic_is_the_message_id_so_a_retry_replaces_an_undelivered_copy(
    receiver, browser, vapid
):
    receiver.reply(201)
    receiver.reply(201)
    for _ in range(2):
        get_transport("webpush").send(
            message_id="0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
            to=_subscription(receiver, browser[2]),
            content={"title": "x"},
            config=_config(vapid),
        )
    first, second = receiver.requests
    assert first.headers["topic"] == "0193a1b2c3d47e5f8a9b0c1d2e3f4a5b"
    assert second.headers["topic"] == first.headers["topic"]
    assert webpush._topic("order #1 / Заказ") == "order1"
