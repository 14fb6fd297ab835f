"""SMS through the Vonage Messages API, built from Vonage's documented wire format.

Sending (https://developer.vonage.com/en/api/messages, "Send a message", and
https://developer.vonage.com/en/messaging/sms/technical-details): ``POST
{base_url}/v1/messages`` with JSON ``{"message_type": "text", "channel": "sms", "to",
"from", "text", "client_ref"}``; numbers in E.164 without the leading "+". Auth is a JWT
(``Authorization: Bearer``, RS256, signed with the Vonage application's private key,
claims ``application_id``, ``iat``, ``exp``, ``jti``;
https://developer.vonage.com/en/getting-started/concepts/authentication) or HTTP Basic
with the account's API key and secret. The answer is 202 ``{"message_uuid"}``; an error
is an RFC 7807 problem (``type``, ``title``, ``detail``).

Idempotency: the Messages API takes no idempotency key; Rapport's message id goes in
``client_ref``, which Vonage echoes on every status webhook.

Callbacks (https://developer.vonage.com/en/messages/concepts/messages-status-callbacks,
https://developer.vonage.com/en/messages/concepts/sms-status-callbacks): JSON POSTs. A
status webhook has ``message_uuid``, ``status`` (submitted, delivered, rejected,
undeliverable, read), ``client_ref``, ``to``, ``from`` and, when it failed, ``error``
(``type``, ``title``, ``detail``). An inbound SMS has ``message_uuid``, ``channel``:
"sms", ``message_type``: "text", ``from``, ``to``, ``text``.

Signed webhooks (https://developer.vonage.com/en/messages/concepts/signed-webhooks):
both carry ``Authorization: Bearer <JWT>``, HS256 with the account's signature secret;
its ``payload_hash`` claim is the SHA-256 (hex) of the request body."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

import jwt

from rapport.channels.transports import (
    DeliveryReport,
    DeliveryStatus,
    InboundMessage,
    TransportError,
    TransportResult,
    _http,
    http_status_error,
)
from rapport.channels.transports.sms import e164_or_raw, inbound_kind, require, text_of, to_e164

PROVIDER = "vonage"
DEFAULT_BASE_URL = "https://api.nexmo.com"

_STATUSES = {
    "submitted": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "rejected": DeliveryStatus.FAILED,
    "undeliverable": DeliveryStatus.UNDELIVERED,
}

# How long a webhook's JWT is believed after it was issued (replay protection).
WEBHOOK_TOKEN_MAX_AGE = 5 * 60


def application_jwt(application_id: str, private_key: str, *, ttl: int = 300) -> str:
    """A Vonage application JWT (RS256) for one API call."""
    now = int(time.time())
    claims = {
        "application_id": application_id,
        "iat": now,
        "exp": now + ttl,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(claims, private_key, algorithm="RS256")


class VonageTransport:
    """config: ``from`` (a number or alphanumeric sender) and either
    ``application_id`` + ``private_key`` (PEM; JWT auth) or ``api_key`` + ``api_secret``
    (Basic auth); optional ``default_region``, ``webhook_url`` (status webhook for this
    message), ``base_url``, ``timeout``. content: ``text``."""

    name = PROVIDER

    def send(
        self, *, message_id: str, to: str, content: Mapping[str, Any], config: Mapping[str, Any]
    ) -> TransportResult:
        require(config, "from", provider="Vonage")
        headers = {"Accept": "application/json"}
        auth: tuple[str, str] | None = None
        if config.get("application_id"):
            require(config, "private_key", provider="Vonage")
            try:
                token = application_jwt(str(config["application_id"]), str(config["private_key"]))
            except (ValueError, TypeError, jwt.PyJWTError) as exc:
                raise TransportError(
                    f"Vonage private_key is not a usable RSA key: {exc}", retryable=False
                ) from exc
            headers["Authorization"] = f"Bearer {token}"
        else:
            require(config, "api_key", "api_secret", provider="Vonage")
            auth = (str(config["api_key"]), str(config["api_secret"]))

        sender = str(config["from"])
        payload: dict[str, Any] = {
            "message_type": "text",
            "channel": "sms",
            "to": to_e164(to, config.get("default_region")).lstrip("+"),
            "from": sender.lstrip("+") if sender.lstrip("+").isdigit() else sender,
            "text": text_of(content),
            "client_ref": message_id,
        }
        if config.get("webhook_url"):
            payload["webhook_url"] = str(config["webhook_url"])

        base_url = str(config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        response = _http.post(
            f"{base_url}/v1/messages",
            json_body=payload,
            headers=headers,
            auth=auth,
            timeout=float(config.get("timeout") or _http.DEFAULT_TIMEOUT),
        )
        body = response.json()
        if not 200 <= response.status < 300:
            detail = ""
            code = None
            if isinstance(body, dict):
                detail = str(body.get("detail") or body.get("title") or "")
                code = str(body.get("type") or "") or None
            raise http_status_error(
                response.status,
                f"Vonage answered {response.status}: {detail or response.body[:200]!r}",
                retry_after=response.retry_after(),
                provider_code=code,
            )
        uuid_ = body.get("message_uuid") if isinstance(body, dict) else None
        if not uuid_:
            raise TransportError(
                "Vonage accepted the message but gave no message_uuid",
                retryable=False,
                http_status=response.status,
            )
        return TransportResult(provider_message_id=str(uuid_), status=DeliveryStatus.QUEUED)


def webhook_claims(
    authorization: str, body: bytes, signature_secret: str, *, now: float | None = None
) -> dict[str, Any] | None:
    """The claims of a signed Vonage webhook, or None when it is not signed by
    ``signature_secret``, is older than WEBHOOK_TOKEN_MAX_AGE, or its ``payload_hash``
    does not match ``body``. ``authorization`` is the Authorization header."""
    if not authorization or not signature_secret:
        return None
    token = authorization.split(" ", 1)[1] if " " in authorization else authorization
    try:
        claims = jwt.decode(
            token.strip(),
            signature_secret,
            algorithms=["HS256"],
            options={"require": ["iat"], "verify_iat": False},
        )
    except jwt.PyJWTError:
        return None
    current = time.time() if now is None else now
    issued = claims.get("iat")
    if not isinstance(issued, int | float) or abs(current - issued) > WEBHOOK_TOKEN_MAX_AGE:
        return None
    expected = claims.get("payload_hash")
    if not isinstance(expected, str):
        return None
    actual = hashlib.sha256(body).hexdigest()
    if not hmac.compare_digest(actual, expected.lower()):
        return None
    return claims


def webhook_valid(
    authorization: str, body: bytes, signature_secret: str, *, now: float | None = None
) -> bool:
    """Whether a Messages API webhook is Vonage's (signature, age and payload hash)."""
    return webhook_claims(authorization, body, signature_secret, now=now) is not None


def _load(payload: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(payload, Mapping):
        return payload
    try:
        data = json.loads(payload)
    except ValueError as exc:
        raise ValueError("Not a Vonage webhook: the body is not JSON") from exc
    if not isinstance(data, dict):
        raise ValueError("Not a Vonage webhook: the body is not a JSON object")
    return data


def is_status_callback(payload: bytes | str | Mapping[str, Any]) -> bool:
    """A status webhook has ``status``; an inbound message has ``text`` and no status."""
    return "status" in _load(payload)


def parse_status_callback(payload: bytes | str | Mapping[str, Any]) -> DeliveryReport:
    """A message-status webhook (JSON) as a DeliveryReport."""
    data = _load(payload)
    uuid_ = str(data.get("message_uuid") or "")
    provider_status = str(data.get("status") or "")
    if not uuid_ or not provider_status:
        raise ValueError("Not a Vonage status webhook: message_uuid and status needed")
    error = data.get("error") if isinstance(data.get("error"), dict) else {}
    code = error.get("title") or error.get("type") or ""
    return DeliveryReport(
        provider=PROVIDER,
        provider_message_id=uuid_,
        status=_STATUSES.get(provider_status, DeliveryStatus.QUEUED),
        provider_status=provider_status,
        message_id=str(data.get("client_ref") or ""),
        error_code=str(code),
        error_message=str(error.get("detail") or ""),
        to=e164_or_raw(str(data.get("to") or "")),
    )


def parse_inbound(payload: bytes | str | Mapping[str, Any]) -> InboundMessage:
    """An inbound-message webhook (JSON, channel "sms") as an InboundMessage."""
    data = _load(payload)
    uuid_ = str(data.get("message_uuid") or "")
    sender = data.get("from")
    if isinstance(sender, dict):  # some channels send {"type": ..., "number": ...}
        sender = sender.get("number") or sender.get("id")
    if not uuid_ or not sender:
        raise ValueError("Not a Vonage inbound message: message_uuid and from needed")
    recipient = data.get("to")
    if isinstance(recipient, dict):
        recipient = recipient.get("number") or recipient.get("id")
    text = str(data.get("text") or "")
    return InboundMessage(
        provider=PROVIDER,
        provider_message_id=uuid_,
        from_number=e164_or_raw(str(sender)),
        to_number=e164_or_raw(str(recipient or "")),
        text=text,
        kind=inbound_kind(text),
    )


def parse_callback(payload: bytes | str | Mapping[str, Any]) -> DeliveryReport | InboundMessage:
    """Either kind of Messages API webhook (status or inbound), told apart by its fields."""
    data = _load(payload)
    if is_status_callback(data):
        return parse_status_callback(data)
    return parse_inbound(data)
