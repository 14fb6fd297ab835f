"""Web push end to end: a browser's subscription posted with the source's write key, a
push message sent through the send path to a local receiver standing in for the push
service (checked on the wire: VAPID per RFC 8292, an aes128gcm body per RFC 8291 that
the browser's key decrypts), 404/410 retiring a subscription, the service worker's
report, and unsubscribing."""

import base64
import json
import os
from urllib.parse import urlsplit

import http_ece
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import Client
from py_vapid import Vapid

from rapport.channels.models import Message, PushSubscription
from tests.channels.conftest import customer
from tests.channels.test_api import _run_tasks


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Browser:
    """What a browser keeps for one subscription: its ECDH key and auth secret."""

    def __init__(self, endpoint: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        public = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.subscription = {
            "endpoint": endpoint,
            "expirationTime": None,
            "keys": {"p256dh": _b64url(public), "auth": _b64url(self.auth)},
        }

    def decrypt(self, body: bytes) -> dict:
        plain = http_ece.decrypt(
            body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"
        )
        return json.loads(plain)


def _basic(write_key: str) -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()}


def _subscribe(tenant, browser: Browser, *, key: str | None = None, **who):
    return Client().post(
        "/v1/push/subscriptions",
        data={"subscription": browser.subscription, **who},
        content_type="application/json",
        HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0",
        **_basic(tenant.created.write_key if key is None else key),
    )


@pytest.fixture
def pushes(settings):
    settings.RAPPORT_PUSH_ALLOW_PRIVATE_ADDRESSES = True  # the receiver is on 127.0.0.1
    settings.RAPPORT_PUBLIC_URL = "https://crm.example.com"


def _push_customer(tenant, user_id: str, *, marketing=True, **traits):
    traits["consent"] = {"push": {"marketing": "granted" if marketing else "denied"}}
    return customer(tenant, user_id, marketing=None, **traits)


def _push(tenant, user_id: str, **content):
    content.setdefault("subject", "Hi {{ customer.first_name }}")
    content.setdefault("text", "Your basket misses you")
    answer = tenant.api().post(
        "/api/v1/messages",
        {"user_id": user_id, "channel": "push", "purpose": "marketing", "content": content},
    )
    assert answer.status_code == 201, answer.content
    return answer.json()["id"]


def test_subscribe_then_push_on_the_wire(shop, receiver, pushes):
    jane = _push_customer(shop, "jane", first_name="Jane")
    key = Client().get("/v1/push/public-key", **_basic(shop.created.write_key))
    assert key.status_code == 200
    public_key = key.json()["public_key"]
    assert len(base64.urlsafe_b64decode(public_key + "==")) == 65
    # The same key every time (made once, kept).
    again = Client().get(f"/v1/push/public-key?writeKey={shop.created.write_key}")
    assert again.json()["public_key"] == public_key

    browser = Browser(receiver.url + "/push/v2/jane-firefox")
    answer = _subscribe(shop, browser, user_id="jane")
    assert answer.status_code == 201, answer.content
    assert answer.json()["profile_id"] == str(jane.pk)
    # Posted again (every page load may do it): the same subscription.
    assert _subscribe(shop, browser, user_id="jane").status_code == 200
    [subscription] = PushSubscription.objects.filter(workspace=shop.workspace)
    assert subscription.profile_id == jane.pk
    assert subscription.user_agent.startswith("Mozilla/5.0")

    receiver.reply(201, b"", Location=receiver.url + "/push/m/1")
    message_id = _push(shop, "jane", url="https://shop.example/basket")
    _run_tasks()
    message = Message.objects.get(pk=message_id)
    assert message.status == "sent", message.error
    assert message.provider_id == receiver.url + "/push/m/1"

    request = receiver.last
    assert request.method == "POST" and request.path == "/push/v2/jane-firefox"
    assert request.headers["content-encoding"] == "aes128gcm"
    assert int(request.headers["ttl"]) > 0
    # RFC 8292: Authorization: vapid t=<JWT>, k=<the workspace's public key>.
    authorization = request.headers["authorization"]
    assert authorization.startswith("vapid t=")
    assert Vapid.verify(authorization)
    parts = dict(p.strip().split("=", 1) for p in authorization[len("vapid ") :].split(","))
    assert parts["k"] == public_key
    claims = jwt.decode(parts["t"], options={"verify_signature": False})
    assert claims["aud"] == receiver.url
    assert claims["sub"] == "https://crm.example.com"
    # RFC 8291: the header's salt, record size and the server's key, then the record.
    body = request.body
    assert int.from_bytes(body[16:20], "big") >= 18 and body[20] == 65
    payload = browser.decrypt(body)
    assert payload["message_id"] == message_id
    assert payload["title"] == "Hi Jane"
    assert payload["body"] == "Your basket misses you"
    assert payload["url"] == "https://shop.example/basket"
    report = urlsplit(payload["report_url"])
    assert report.netloc == "crm.example.com"
    subscription.refresh_from_db()
    assert subscription.last_success_at is not None and subscription.gone_at is None

    # The service worker's report: the token is the proof, any origin.
    clicked = Client().post(
        report.path,
        data={"message_id": message_id, "event": "clicked"},
        content_type="application/json",
        HTTP_ORIGIN="https://shop.example",
    )
    assert clicked.status_code == 204
    assert clicked["Access-Control-Allow-Origin"] == "https://shop.example"
    message.refresh_from_db()
    assert message.clicked_at is not None and message.opened_at is not None
    forged = Client().post(
        "/m/push/" + message_id + ":forged",
        data={"event": "clicked"},
        content_type="application/json",
    )
    assert forged.status_code == 404


def test_gone_subscription_is_marked_and_not_written_to_again(shop, receiver, pushes):
    _push_customer(shop, "jane", first_name="Jane")
    old = Browser(receiver.url + "/push/old")
    new = Browser(receiver.url + "/push/new")
    assert _subscribe(shop, old, user_id="jane").status_code == 201
    assert _subscribe(shop, new, user_id="jane").status_code == 201

    receiver.reply(410, b"push subscription has unsubscribed or expired.")
    receiver.reply(201)
    first = _push(shop, "jane")
    _run_tasks()
    assert [r.path for r in receiver.requests] == ["/push/old", "/push/new"]
    assert Message.objects.get(pk=first).status == "sent"
    assert PushSubscription.objects.get(endpoint=old.subscription["endpoint"]).gone_at
    assert PushSubscription.objects.get(endpoint=new.subscription["endpoint"]).gone_at is None

    receiver.reply(404)
    second = _push(shop, "jane")
    _run_tasks()
    assert [r.path for r in receiver.requests][2:] == ["/push/new"]
    second_message = Message.objects.get(pk=second)
    assert second_message.status == "failed" and "gone" in second_message.error
    # Every browser gone: the customer has no push address, the next one is skipped.
    third = _push(shop, "jane")
    _run_tasks()
    assert len(receiver.requests) == 3
    third_message = Message.objects.get(pk=third)
    assert third_message.status == "skipped" and third_message.skip_reason == "no_address"
    # Subscribing again brings the browser back.
    assert _subscribe(shop, new, user_id="jane").status_code == 200
    assert PushSubscription.objects.get(endpoint=new.subscription["endpoint"]).gone_at is None


def test_push_consent_and_unsubscribe(shop, receiver, pushes):
    _push_customer(shop, "bob", marketing=False)
    browser = Browser(receiver.url + "/push/bob")
    assert _subscribe(shop, browser, user_id="bob").status_code == 201
    message_id = _push(shop, "bob")
    _run_tasks()
    message = Message.objects.get(pk=message_id)
    assert message.status == "skipped" and message.skip_reason == "no_consent"
    assert receiver.requests == []

    gone = Client().delete(
        "/v1/push/subscriptions",
        data={"endpoint": browser.subscription["endpoint"]},
        content_type="application/json",
        **_basic(shop.created.write_key),
    )
    assert gone.status_code == 204
    assert not PushSubscription.objects.filter(workspace=shop.workspace).exists()


def test_subscription_input_is_checked(shop, receiver, pushes):
    _push_customer(shop, "jane")
    browser = Browser(receiver.url + "/push/x")
    assert _subscribe(shop, browser, key="wrong", user_id="jane").status_code == 401
    unknown = _subscribe(shop, browser, user_id="nobody")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "unknown_customer"
    nobody = _subscribe(shop, browser)
    assert nobody.status_code == 422
    assert nobody.json()["error"]["details"][0]["field"] == "user_id"
    browser.subscription["keys"]["p256dh"] = "not-a-key"
    bad = _subscribe(shop, browser, user_id="jane")
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["field"] == "subscription.keys.p256dh"
    browser.subscription["endpoint"] = "ftp://push.example/x"
    bad = _subscribe(shop, browser, user_id="jane")
    assert bad.json()["error"]["details"][0]["field"] == "subscription.endpoint"
    assert not PushSubscription.objects.exists()
