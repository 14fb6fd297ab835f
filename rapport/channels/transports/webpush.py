"""Web push: VAPID keys (py-vapid) and notifications (pywebpush), per RFC 8030 (the push
protocol), RFC 8291 (message encryption, ``Content-Encoding: aes128gcm``) and RFC 8292
(VAPID: ``Authorization: vapid t=<JWT>, k=<public key>``).

A site adds ``rapport/channels/static/channels/rapport-sw.js`` (the service worker that
shows the notification and reports clicks) and ``rapport-push.js`` (subscribes the
browser with the workspace's public key and posts the subscription to Rapport).

The push service answers 201 Created (with a ``Location`` for the message); 404 or 410
means the subscription is gone for good (TransportError with status "expired": the
caller deletes it); 429 and 5xx are retried; 413 (payload too large) and other 4xx not.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid
from pywebpush import WebPusher, WebPushException

from rapport.channels.transports import (
    DeliveryStatus,
    TransportError,
    TransportResult,
    _http,
    http_status_error,
)

PROVIDER = "webpush"
DEFAULT_TTL = 24 * 3600
# Push services accept 4096 bytes of encrypted payload; aes128gcm adds 86 bytes of
# header, padding and tag (RFC 8291), which leaves this much for the JSON.
MAX_PAYLOAD_BYTES = 3993
URGENCIES = ("very-low", "low", "normal", "high")


def _topic(value: str) -> str:
    """A Topic header value: at most 32 characters of the URL-safe base64 alphabet
    (RFC 8030, 5.4); a UUID's hyphens are dropped, which leaves exactly 32."""
    return "".join(c for c in value if c.isascii() and (c.isalnum() or c in "-_")).replace("-", "")[
        -32:
    ]


class _GuardedSession(requests.Session):
    """The session pywebpush posts with: no redirects (an endpoint must not bounce Rapport
    to another address) and at most MAX_RESPONSE_BYTES of the answer read (the endpoint
    is whatever a browser posted)."""

    MAX_RESPONSE_BYTES = 64 * 1024

    def post(self, url, data=None, json=None, **kwargs):  # type: ignore[override]
        kwargs["allow_redirects"] = False
        kwargs["stream"] = True
        response = super().post(url, data=data, json=json, **kwargs)
        try:
            body = response.raw.read(self.MAX_RESPONSE_BYTES, decode_content=True)
        finally:
            response.close()
        response._content = body or b""
        response._content_consumed = True
        return response


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class VapidKeys:
    """A VAPID key pair. ``private_key``: the raw P-256 private key, base64url (what
    config["vapid_private_key"] takes; keep it secret). ``public_key``: the uncompressed
    public point, base64url (the ``applicationServerKey`` the browser subscribes with)."""

    private_key: str
    public_key: str


def vapid_keys_generate() -> VapidKeys:
    """A new VAPID key pair for a workspace."""
    vapid = Vapid()
    vapid.generate_keys()
    private_number = vapid.private_key.private_numbers().private_value.to_bytes(32, "big")
    public_point = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return VapidKeys(private_key=_b64url(private_number), public_key=_b64url(public_point))


def vapid_public_key(private_key: str) -> str:
    """The public key (base64url) that goes with a stored private key."""
    vapid = Vapid.from_string(private_key)
    return _b64url(
        vapid.public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )


def subscription_of(to: str | Mapping[str, Any]) -> dict[str, Any]:
    """A PushSubscription (``{"endpoint", "keys": {"p256dh", "auth"}}``, as the browser's
    ``subscription.toJSON()`` gives it) from ``to``: that object, or its JSON text."""
    if isinstance(to, Mapping):
        data: Any = dict(to)
    else:
        try:
            data = json.loads(to)
        except ValueError as exc:
            raise TransportError(
                "The push subscription is not JSON", retryable=False, status=DeliveryStatus.EXPIRED
            ) from exc
    keys = data.get("keys") if isinstance(data, dict) else None
    endpoint = data.get("endpoint") if isinstance(data, dict) else None
    if (
        not isinstance(endpoint, str)
        or urlsplit(endpoint).scheme not in ("https", "http")
        or not isinstance(keys, dict)
        or not keys.get("p256dh")
        or not keys.get("auth")
    ):
        raise TransportError(
            "The push subscription needs an endpoint URL and keys p256dh and auth",
            retryable=False,
            status=DeliveryStatus.EXPIRED,
        )
    return {"endpoint": endpoint, "keys": {"p256dh": keys["p256dh"], "auth": keys["auth"]}}


def payload_of(message_id: str, content: Mapping[str, Any], config: Mapping[str, Any]) -> bytes:
    """The JSON the service worker reads: title, body, url, icon, badge, tag, and what it
    needs to report back (message_id, report_url)."""
    payload: dict[str, Any] = {
        "message_id": message_id,
        "title": str(content.get("title") or ""),
        "body": str(content.get("body") or content.get("text") or ""),
    }
    for key in ("url", "icon", "badge", "image", "tag", "data"):
        if content.get(key):
            payload[key] = content[key]
    if config.get("report_url"):
        payload["report_url"] = str(config["report_url"])
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    if len(data) > MAX_PAYLOAD_BYTES:
        raise TransportError(
            f"The push message is {len(data)} bytes; push services take {MAX_PAYLOAD_BYTES}",
            retryable=False,
        )
    return data


class WebPushTransport:
    """``to``: the subscription (its JSON). config: ``vapid_private_key`` (base64url, from
    :func:`vapid_keys_generate`), ``vapid_subject`` ("mailto:…" or an https URL: who the
    push service may contact); optional ``ttl`` (seconds the push service keeps the
    message for an offline browser, default a day), ``urgency`` (very-low, low, normal,
    high), ``report_url`` (where the service worker reports shown/clicked/dismissed),
    ``timeout``, ``allow_private_addresses`` (default False: an endpoint that is not
    https or resolves to a loopback or private address is refused as expired).
    content: ``title``, ``body``; optional ``url`` (opened on click), ``icon``,
    ``badge``, ``image``, ``tag``, ``data``; ``topic`` (replaces an undelivered message
    with the same topic); ``ttl`` and ``urgency`` (override the config's).

    Idempotency: push services take no idempotency key, but a message waiting for an
    offline browser is replaced by a later one with the same ``Topic`` (RFC 8030, 5.4);
    the topic is the message id unless the content names one, so a retry of a message
    still undelivered replaces it instead of doubling it."""

    name = PROVIDER

    def send(
        self, *, message_id: str, to: str, content: Mapping[str, Any], config: Mapping[str, Any]
    ) -> TransportResult:
        subscription = subscription_of(to)
        # The endpoint comes from a browser (anyone can post a subscription): never let it
        # point Rapport at its own network. Push services are public https URLs.
        if not config.get("allow_private_addresses"):
            if not subscription["endpoint"].startswith("https://"):
                raise TransportError(
                    "The push endpoint is not an https URL",
                    retryable=False,
                    status=DeliveryStatus.EXPIRED,
                )
            try:
                _http.check_public_destination(subscription["endpoint"])
            except TransportError as exc:
                if exc.retryable:
                    raise
                exc.status = DeliveryStatus.EXPIRED
                raise
        if not config.get("vapid_private_key") or not config.get("vapid_subject"):
            raise TransportError(
                "Web push is not configured: vapid_private_key and vapid_subject needed",
                retryable=False,
            )
        try:
            vapid = Vapid.from_string(str(config["vapid_private_key"]))
        except Exception as exc:  # py-vapid raises several kinds for a bad key
            raise TransportError(
                f"vapid_private_key is not a usable key: {exc}", retryable=False
            ) from exc
        endpoint = urlsplit(subscription["endpoint"])
        claims = {
            "sub": str(config["vapid_subject"]),
            "aud": f"{endpoint.scheme}://{endpoint.netloc}",
        }
        try:
            headers: dict[str, str] = dict(vapid.sign(claims))
        except Exception as exc:  # VapidException: a bad subject
            raise TransportError(f"Cannot sign the VAPID claims: {exc}", retryable=False) from exc
        urgency = content.get("urgency") or config.get("urgency")
        if urgency:
            if urgency not in URGENCIES:
                raise TransportError(f"Unknown urgency {urgency!r}", retryable=False)
            headers["Urgency"] = str(urgency)
        topic = _topic(str(content.get("topic") or message_id))
        if topic:
            headers["Topic"] = topic

        data = payload_of(message_id, content, config)
        ttl = int(content.get("ttl") or config.get("ttl") or DEFAULT_TTL)
        timeout = float(config.get("timeout") or _http.DEFAULT_TIMEOUT)
        try:
            with _GuardedSession() as session:
                response = WebPusher(subscription, requests_session=session).send(
                    data, headers, ttl=ttl, content_encoding="aes128gcm", timeout=timeout
                )
        except WebPushException as exc:
            raise TransportError(
                f"Cannot encrypt the push message: {exc}", retryable=False
            ) from exc
        except requests.Timeout as exc:
            raise TransportError(
                f"Push service timed out after {timeout:g}s", retryable=True
            ) from exc
        except requests.RequestException as exc:
            raise TransportError(f"Push service unreachable: {exc}", retryable=True) from exc
        except ValueError as exc:  # a p256dh that is not a P-256 point
            raise TransportError(
                f"The push subscription's keys are not usable: {exc}",
                retryable=False,
                status=DeliveryStatus.EXPIRED,
            ) from exc

        status = response.status_code
        if 200 <= status < 300:
            location = response.headers.get("Location") or ""
            return TransportResult(
                provider_message_id=location or message_id,
                status=DeliveryStatus.SENT,
                detail={"http_status": status},
            )
        if status in (404, 410):
            raise TransportError(
                f"The push subscription is gone ({status})",
                retryable=False,
                status=DeliveryStatus.EXPIRED,
                http_status=status,
            )
        retry_after = None
        value = response.headers.get("Retry-After")
        if value and value.strip().isdigit():
            retry_after = float(value)
        raise http_status_error(
            status,
            f"The push service answered {status}: {response.text[:200]!r}",
            retry_after=retry_after,
        )
