"""A message as a signed HTTP call, per the Standard Webhooks specification
(https://www.standardwebhooks.com/, https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md).

Every call is a POST of a JSON body with three headers:

- ``webhook-id``: Rapport's message id, the same on every retry (the receiver's
  idempotency key);
- ``webhook-timestamp``: seconds since the epoch, as an integer;
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256>`` of ``"{id}.{timestamp}.{body}"``
  keyed with the secret, which is given as ``whsec_<base64 key>``; several signatures
  (separated by spaces) while a secret is being rotated.

The receiver's answer decides what happens next: 2xx delivered; 410 Gone means the
endpoint is retired (not retryable: disable it); 408, 429, 5xx, a timeout or a
connection error are retried with :func:`retry_delay`; any other status is not.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any

from rapport.channels.transports import (
    DeliveryStatus,
    TransportError,
    TransportResult,
    _http,
    backoff_delay,
    http_status_error,
)

PROVIDER = "webhook"
SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)

# The schedule's shape (after the immediate first try): about 5 s, 15 s, 45 s, ... 9 h,
# then a day apart, with jitter; 12 retries, about three and a half days in all.
RETRY_BASE = 5.0
RETRY_FACTOR = 3.0
RETRY_CAP = 24 * 3600.0
RETRY_MAX_ATTEMPTS = 12


def secret_generate() -> str:
    """A new signing secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _secret_key(secret: str) -> bytes:
    raw = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (ValueError, TypeError) as exc:
        raise TransportError("The webhook secret is not whsec_<base64>", retryable=False) from exc
    if not key:
        raise TransportError("The webhook secret is empty", retryable=False)
    return key


def sign(*, msg_id: str, timestamp: int, body: bytes, secret: str) -> str:
    """The ``v1,<base64>`` signature of one call."""
    to_sign = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_secret_key(secret), to_sign, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(
    *, msg_id: str, body: bytes, secrets_: Sequence[str], timestamp: int | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers, signed with every secret in ``secrets_``."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    signatures = " ".join(
        sign(msg_id=msg_id, timestamp=ts, body=body, secret=secret) for secret in secrets_
    )
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": signatures,
    }


def body_of(content: Mapping[str, Any]) -> bytes:
    """The JSON body: ``content["payload"]`` when given, else the content itself (the
    spec's shape is ``{"type", "timestamp", "data"}``, which the caller builds)."""
    payload = content.get("payload", content)
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def retry_delay(attempt: int, *, message_id: str, retry_after: float | None = None) -> float | None:
    """Seconds before retry ``attempt`` (1, 2, ...) of webhook ``message_id``, or None when
    the retries are spent: exponential (5 s x 3^n, at most a day) with ±25 % jitter that
    depends only on the message id and attempt (a pure function)."""
    return backoff_delay(
        attempt,
        key=message_id,
        base=RETRY_BASE,
        factor=RETRY_FACTOR,
        cap=RETRY_CAP,
        max_attempts=RETRY_MAX_ATTEMPTS,
        retry_after=retry_after,
    )


def retry_schedule(message_id: str) -> list[float]:
    """Every delay :func:`retry_delay` would give this message, in order."""
    delays = []
    attempt = 1
    while (delay := retry_delay(attempt, message_id=message_id)) is not None:
        delays.append(delay)
        attempt += 1
    return delays


class WebhookTransport:
    """``to``: the receiver's URL. config: ``secret`` (``whsec_…``; or ``secrets``, a list,
    while rotating); optional ``timeout`` (seconds, default 10), ``max_response_bytes``
    (default 64 KiB), ``headers`` (extra, e.g. an API key the receiver wants),
    ``allow_private_addresses`` (default False: a URL that resolves to a loopback or
    private address is refused; tests and on-premises receivers turn it on).
    content: the JSON payload (or ``{"payload": ...}``)."""

    name = PROVIDER

    def send(
        self, *, message_id: str, to: str, content: Mapping[str, Any], config: Mapping[str, Any]
    ) -> TransportResult:
        secrets_ = list(
            config.get("secrets") or ([config["secret"]] if config.get("secret") else [])
        )
        if not secrets_:
            raise TransportError("The webhook has no signing secret", retryable=False)
        if not config.get("allow_private_addresses"):
            _http.check_public_destination(to)
        elif not to.startswith(("http://", "https://")):
            raise TransportError(f"Not an http(s) URL: {to!r}", retryable=False)
        body = body_of(content)
        headers = {"Content-Type": "application/json"}
        headers.update({str(k): str(v) for k, v in (config.get("headers") or {}).items()})
        headers.update(signed_headers(msg_id=message_id, body=body, secrets_=secrets_))
        response = _http.post(
            to,
            content=body,
            headers=headers,
            timeout=float(config.get("timeout") or _http.DEFAULT_TIMEOUT),
            max_response_bytes=int(
                config.get("max_response_bytes") or _http.DEFAULT_MAX_RESPONSE_BYTES
            ),
        )
        if 200 <= response.status < 300:
            return TransportResult(
                provider_message_id=message_id,
                status=DeliveryStatus.DELIVERED,
                detail={"http_status": response.status},
            )
        if response.status == 410:
            raise TransportError(
                f"The webhook receiver is gone (410): {to}",
                retryable=False,
                status=DeliveryStatus.EXPIRED,
                http_status=410,
            )
        raise http_status_error(
            response.status,
            f"The webhook receiver answered {response.status}",
            retry_after=response.retry_after(),
        )
