"""The service worker a site adds (rapport-sw.js), in Chromium: a message Rapport sends
through the push service stand-in is decrypted as the browser would, delivered to the
worker (DevTools' ServiceWorker.deliverPushMessage, since there is no real push service
here), shown as a notification, and reported back as "shown".

Skipped without /usr/bin/chromium, except in CI (CI=true), where that is a failure."""

import base64
import json
import os
import time
from pathlib import Path

import http_ece
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import rapport
from rapport.channels.transports import get_transport, webpush
from tests.channels.transports.conftest import Reply
from tests.chromium import CHROMIUM, chromium_launched

# No database at all: the service worker in Chromium and a local receiver.
pytestmark = [pytest.mark.slow, pytest.mark.one_database]

if not Path(CHROMIUM).exists():
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"{CHROMIUM} missing: CI installs it")
    pytest.skip(f"{CHROMIUM} not installed", allow_module_level=True)

WORKER = (Path(rapport.__file__).parent / "channels/static/channels/rapport-sw.js").read_bytes()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _wait(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def test_a_pushed_message_is_shown_and_reported(receiver):
    receiver.routes["/"] = Reply(
        200,
        b'<!doctype html><meta charset="utf-8"><title>shop</title>',
        {"Content-Type": "text/html; charset=utf-8"},
    )
    receiver.routes["/rapport-sw.js"] = Reply(
        200, WORKER, {"Content-Type": "text/javascript; charset=utf-8"}
    )

    # Rapport sends through the push service (the receiver), encrypted for this browser.
    browser_key = ec.generate_private_key(ec.SECP256R1())
    auth = os.urandom(16)
    p256dh = browser_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    subscription = {
        "endpoint": receiver.url + "/push/abc",
        "keys": {"p256dh": _b64url(p256dh), "auth": _b64url(auth)},
    }
    receiver.reply(201)
    vapid = webpush.vapid_keys_generate()
    get_transport("webpush").send(
        message_id="msg-sw-1",
        to=json.dumps(subscription),
        content={
            "title": "Ваш заказ в пути",
            "body": "Курьер будет к 18:00",
            "url": receiver.url + "/orders/1",
            "tag": "order-1",
        },
        config={
            "vapid_private_key": vapid.private_key,
            "vapid_subject": "mailto:o@example.com",
            "report_url": receiver.url + "/report",
            "allow_private_addresses": True,
        },
    )
    pushed = receiver.requests.pop()
    plain = http_ece.decrypt(
        pushed.body, private_key=browser_key, auth_secret=auth, version="aes128gcm"
    )

    with chromium_launched() as browser:
        context = browser.new_context()
        context.grant_permissions(["notifications"], origin=receiver.url)
        page = context.new_page()
        page.goto(receiver.url + "/")
        cdp = context.new_cdp_session(page)
        registrations: list[str] = []
        cdp.on(
            "ServiceWorker.workerRegistrationUpdated",
            lambda event: registrations.extend(
                r["registrationId"] for r in event["registrations"] if not r["isDeleted"]
            ),
        )
        cdp.send("ServiceWorker.enable")
        scope = page.evaluate(
            "navigator.serviceWorker.register('/rapport-sw.js')"
            ".then(() => navigator.serviceWorker.ready).then(r => r.scope)"
        )
        assert scope == receiver.url + "/"
        for _ in range(100):
            if registrations:
                break
            page.wait_for_timeout(50)
        assert registrations, "no service worker registration reported"
        cdp.send(
            "ServiceWorker.deliverPushMessage",
            {"origin": receiver.url, "registrationId": registrations[-1], "data": plain.decode()},
        )
        for _ in range(200):
            if any(r.path == "/report" for r in receiver.requests):
                break
            page.wait_for_timeout(50)
        notifications = page.evaluate(
            "navigator.serviceWorker.ready.then(r => r.getNotifications())"
            ".then(list => list.map(n => ({title: n.title, body: n.body, tag: n.tag,"
            " url: n.data.url})))"
        )
        context.close()

    report = _wait(lambda: [r for r in receiver.requests if r.path == "/report"])[0]
    assert report.method == "POST"
    assert json.loads(report.body) == {"message_id": "msg-sw-1", "event": "shown"}
    assert "cookie" not in report.headers
    assert notifications == [
        {
            "title": "Ваш заказ в пути",
            "body": "Курьер будет к 18:00",
            "tag": "order-1",
            "url": receiver.url + "/orders/1",
        }
    ]
