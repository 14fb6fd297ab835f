"""SMS through Twilio Programmable Messaging, built from Twilio's documented wire format.

Sending (https://www.twilio.com/docs/messaging/api/message-resource, "Create a Message
resource"): ``POST {base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json``,
form-encoded ``To`` (E.164), ``From`` or ``MessagingServiceSid``, ``Body`` and an optional
``StatusCallback``; HTTP Basic auth with the Account SID and Auth Token (or an API key
SID and secret). The answer is the Message resource as JSON, ``sid`` ("SM…") and
``status`` ("queued", or "accepted" through a Messaging Service); an error is JSON
``{"code", "message", "more_info", "status"}``.

Idempotency: the Messages API takes no idempotency key, so Rapport's message id rides
in the StatusCallback URL (``?message_id=…``) and comes back on every status callback,
which is how a callback finds its send record even when the answer to the POST was lost.

Callbacks (https://www.twilio.com/docs/usage/webhooks/messaging-webhooks and
https://www.twilio.com/docs/messaging/guides/outbound-message-status-in-status-callbacks):
form-encoded POSTs. A status callback carries ``MessageSid``, ``MessageStatus`` (queued,
sending, sent, delivered, undelivered, failed, read, canceled…) and ``ErrorCode``; an
incoming message (https://www.twilio.com/docs/messaging/guides/webhook-request) carries
``MessageSid``, ``From``, ``To``, ``Body`` and, with Advanced Opt-Out, ``OptOutType``
(STOP, START, HELP).

Signatures (https://www.twilio.com/docs/usage/webhooks/webhooks-security): the
``X-Twilio-Signature`` header is base64(HMAC-SHA1(auth token, full URL + each POST
parameter's name and value, sorted by name))."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from rapport.channels.transports import (
    DeliveryReport,
    DeliveryStatus,
    InboundKind,
    InboundMessage,
    TransportError,
    TransportResult,
    _http,
    http_status_error,
)
from rapport.channels.transports.sms import e164_or_raw, inbound_kind, require, text_of, to_e164

PROVIDER = "twilio"
DEFAULT_BASE_URL = "https://api.twilio.com"
# The longest Body the Messages resource takes (it splits it into segments itself).
MAX_BODY_CHARS = 1600
# What the incoming-message webhook answers when Rapport has nothing to reply (an empty
# TwiML document, Content-Type text/xml); Twilio also accepts an empty 204.
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

# Twilio's MessageStatus values -> Rapport's.
_STATUSES = {
    "accepted": DeliveryStatus.QUEUED,
    "scheduled": DeliveryStatus.QUEUED,
    "queued": DeliveryStatus.QUEUED,
    "sending": DeliveryStatus.QUEUED,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
    "partially_delivered": DeliveryStatus.DELIVERED,
}

# Twilio error codes that name a recipient who cannot get messages from this sender:
# 21610 (the recipient replied STOP), 21211 (invalid To), 21614 (not a mobile number).
_RECIPIENT_ERRORS = {"21610", "21211", "21614"}


class TwilioTransport:
    """config: ``account_sid``, ``auth_token`` (or ``api_key_sid`` + ``api_key_secret``),
    ``from`` (a number or alphanumeric sender) or ``messaging_service_sid``; optional
    ``status_callback`` (URL; ``message_id`` is added to its query), ``default_region``
    (for national numbers, e.g. "RU"), ``base_url``, ``timeout`` (seconds).
    content: ``text``."""

    name = PROVIDER

    def send(
        self, *, message_id: str, to: str, content: Mapping[str, Any], config: Mapping[str, Any]
    ) -> TransportResult:
        require(config, "account_sid", provider="Twilio")
        if not (config.get("from") or config.get("messaging_service_sid")):
            raise TransportError(
                "Twilio is not configured: missing from or messaging_service_sid",
                retryable=False,
            )
        if config.get("api_key_sid"):
            auth = (str(config["api_key_sid"]), str(config.get("api_key_secret") or ""))
        else:
            require(config, "auth_token", provider="Twilio")
            auth = (str(config["account_sid"]), str(config["auth_token"]))

        text = text_of(content)
        if len(text) > MAX_BODY_CHARS:
            raise TransportError(
                f"The message is {len(text)} characters; Twilio takes {MAX_BODY_CHARS}",
                retryable=False,
                provider_code="text",
            )
        fields: dict[str, str] = {
            "To": to_e164(to, config.get("default_region")),
            "Body": text,
        }
        if config.get("messaging_service_sid"):
            fields["MessagingServiceSid"] = str(config["messaging_service_sid"])
        else:
            fields["From"] = str(config["from"])
        if config.get("status_callback"):
            fields["StatusCallback"] = _with_query(
                str(config["status_callback"]), message_id=message_id
            )

        base_url = str(config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        url = f"{base_url}/2010-04-01/Accounts/{config['account_sid']}/Messages.json"
        response = _http.post(
            url,
            data=fields,
            auth=auth,
            headers={"Accept": "application/json"},
            timeout=float(config.get("timeout") or _http.DEFAULT_TIMEOUT),
        )
        body = response.json() or {}
        if not 200 <= response.status < 300:
            code = str(body.get("code") or "") if isinstance(body, dict) else ""
            detail = body.get("message") if isinstance(body, dict) else None
            error = http_status_error(
                response.status,
                f"Twilio answered {response.status}: {detail or response.body[:200]!r}",
                retry_after=response.retry_after(),
                provider_code=code or None,
            )
            if code in _RECIPIENT_ERRORS:
                error.retryable = False
            raise error
        sid = body.get("sid") if isinstance(body, dict) else None
        if not sid:
            raise TransportError(
                "Twilio accepted the message but gave no sid", retryable=False, http_status=200
            )
        status = _STATUSES.get(str(body.get("status") or "queued"), DeliveryStatus.QUEUED)
        return TransportResult(
            provider_message_id=str(sid),
            status=status,
            detail={"provider_status": body.get("status"), "segments": body.get("num_segments")},
        )


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query.extend(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _single(params: Mapping[str, Any], key: str) -> str:
    value = params.get(key, "")
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    return str(value or "")


def _values(value: Any) -> Iterable[str]:
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def signature(url: str, params: Mapping[str, Any], auth_token: str) -> str:
    """Twilio's X-Twilio-Signature for a request to ``url`` with POST ``params`` (a dict,
    or Django's QueryDict: a parameter given twice counts with each value, sorted)."""
    items = params.lists() if hasattr(params, "lists") else params.items()
    payload = url
    for key, value in sorted(items, key=lambda item: item[0]):
        for single in sorted(_values(value)):
            payload += key + single
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _port_variants(url: str) -> list[str]:
    # Twilio's own validators accept the URL with and without the default port, since a
    # proxy in front of the application may add or drop it.
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname or ""
    variants = [url]
    if parts.port is not None:
        variants.append(urlunsplit(parts._replace(netloc=host)))
    elif default is not None:
        variants.append(urlunsplit(parts._replace(netloc=f"{host}:{default}")))
    return variants


def signature_valid(
    url: str, params: Mapping[str, Any], header_signature: str, auth_token: str
) -> bool:
    """Whether ``header_signature`` (X-Twilio-Signature) is Twilio's for this request.
    ``url`` is the full URL Twilio called (scheme, host, path and query)."""
    if not header_signature or not auth_token:
        return False
    return any(
        hmac.compare_digest(signature(candidate, params, auth_token), header_signature)
        for candidate in _port_variants(url)
    )


def is_status_callback(params: Mapping[str, Any]) -> bool:
    """Twilio posts status callbacks and incoming messages with the same form encoding:
    a status callback has MessageStatus and no inbound ``received`` status."""
    status = _single(params, "MessageStatus") or _single(params, "SmsStatus")
    return bool(status) and status != "received"


def parse_status_callback(
    params: Mapping[str, Any], *, url_query: Mapping[str, Any] | None = None
) -> DeliveryReport:
    """A status callback's form fields as a DeliveryReport. ``url_query`` is the callback
    URL's query (where ``message_id`` was put when sending)."""
    sid = _single(params, "MessageSid") or _single(params, "SmsSid")
    provider_status = _single(params, "MessageStatus") or _single(params, "SmsStatus")
    if not sid or not provider_status:
        raise ValueError("Not a Twilio status callback: MessageSid and MessageStatus needed")
    return DeliveryReport(
        provider=PROVIDER,
        provider_message_id=sid,
        status=_STATUSES.get(provider_status, DeliveryStatus.QUEUED),
        provider_status=provider_status,
        message_id=_single(url_query or {}, "message_id"),
        error_code=_single(params, "ErrorCode"),
        error_message=_single(params, "ErrorMessage"),
        to=e164_or_raw(_single(params, "To")),
    )


def parse_inbound(params: Mapping[str, Any]) -> InboundMessage:
    """An incoming message's form fields as an InboundMessage; STOP and its synonyms (or
    Twilio's own OptOutType=STOP) give kind "opt_out"."""
    sid = _single(params, "MessageSid") or _single(params, "SmsMessageSid")
    sender = _single(params, "From")
    if not sid or not sender:
        raise ValueError("Not a Twilio incoming message: MessageSid and From needed")
    text = _single(params, "Body")
    kind = inbound_kind(text)
    opt_out_type = _single(params, "OptOutType").upper()
    if opt_out_type == "STOP":
        kind = InboundKind.OPT_OUT
    elif opt_out_type == "START":
        kind = InboundKind.OPT_IN
    return InboundMessage(
        provider=PROVIDER,
        provider_message_id=sid,
        from_number=e164_or_raw(sender),
        to_number=e164_or_raw(_single(params, "To")),
        text=text,
        kind=kind,
    )


def parse_callback(
    params: Mapping[str, Any], *, url_query: Mapping[str, Any] | None = None
) -> DeliveryReport | InboundMessage:
    """Either kind of Twilio messaging webhook, told apart by its fields."""
    if is_status_callback(params):
        return parse_status_callback(params, url_query=url_query)
    return parse_inbound(params)
