"""Provider transports: how one message leaves Rapport, and how providers call back.

Plain Python, no Django models: the send path (rapport.channels.services) claims and
records a message, then hands it to a transport; the transport makes one HTTP call and
either returns a :class:`TransportResult` or raises :class:`TransportError`.

The contract every transport keeps::

    transport = get_transport("twilio")            # or "vonage", "webhook", "webpush"
    result = transport.send(
        message_id="0193…",          # the send record's id: the provider's idempotency key
        to="+79161234567",           # a phone number, a URL, or a push subscription (JSON)
        content={"text": "Hi"},      # what the channel needs (see each module)
        config={...},                # credentials and options (see each module)
    )
    result.provider_message_id       # the provider's id for this message (match callbacks)
    result.status                    # a DeliveryStatus value, usually "sent" or "queued"

A failure raises ``TransportError(message, retryable=...)``: ``retryable`` is true for a
network error, a timeout, HTTP 429 or 5xx (call again later, with :func:`backoff_delay`);
false for everything a retry will not fix (a bad number, bad credentials, HTTP 4xx, a
push subscription that is gone). ``status`` tells the caller which final state to record
("failed", or "expired" for a push subscription to delete).

Providers' callbacks are parsed by functions of each module into :class:`DeliveryReport`
(a status change of a message sent) and :class:`InboundMessage` (a reply, with
``kind == "opt_out"`` for STOP and its synonyms).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


class DeliveryStatus:
    """The normalised states of a message at a provider (strings, stored as they are)."""

    QUEUED = "queued"  # accepted by the provider, not yet handed on
    SENT = "sent"  # handed to the carrier / push service / receiver
    DELIVERED = "delivered"  # the device or receiver confirmed it
    READ = "read"  # the recipient opened it (channels that report this)
    UNDELIVERED = "undelivered"  # the carrier could not deliver it
    FAILED = "failed"  # the provider refused it or gave up
    EXPIRED = "expired"  # the address is gone for good (a push subscription: delete it)

    FINAL = frozenset({DELIVERED, READ, UNDELIVERED, FAILED, EXPIRED})


class InboundKind:
    """What a reply asks for."""

    MESSAGE = "message"  # an ordinary reply
    OPT_OUT = "opt_out"  # STOP and its synonyms: withdraw consent for this channel
    OPT_IN = "opt_in"  # START / UNSTOP: the carrier lifts its block


@dataclass(frozen=True)
class TransportResult:
    """A message the provider accepted."""

    provider_message_id: str
    status: str = DeliveryStatus.SENT
    # The provider's answer, trimmed to what is worth keeping on the send record.
    detail: Mapping[str, Any] = field(default_factory=dict)


class TransportError(Exception):
    """A send that did not happen.

    ``retryable``: whether the same call may succeed later. ``status``: the state to record
    when the caller gives up (or at once when not retryable). ``retry_after``: seconds the
    provider asked to wait (HTTP Retry-After), when it said. ``http_status`` and
    ``provider_code``: what the provider answered, for the record and the logs.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: str = DeliveryStatus.FAILED,
        retry_after: float | None = None,
        http_status: int | None = None,
        provider_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        self.http_status = http_status
        self.provider_code = provider_code

    def __repr__(self) -> str:
        return (
            f"TransportError({self.message!r}, retryable={self.retryable}, "
            f"status={self.status!r}, http_status={self.http_status})"
        )


@dataclass(frozen=True)
class DeliveryReport:
    """A provider's callback about a message sent: its new status."""

    provider: str
    provider_message_id: str
    status: str  # a DeliveryStatus value
    provider_status: str  # the provider's own word, kept for the record
    # Rapport's message id when the provider echoes it (Vonage client_ref, or the
    # ``message_id`` query parameter of a Twilio status-callback URL); else "".
    message_id: str = ""
    error_code: str = ""
    error_message: str = ""
    to: str = ""


@dataclass(frozen=True)
class InboundMessage:
    """A message a customer sent to one of the workspace's numbers."""

    provider: str
    provider_message_id: str
    from_number: str  # E.164
    to_number: str  # E.164 (the workspace's number)
    text: str
    kind: str  # an InboundKind value


@runtime_checkable
class Transport(Protocol):
    """What the send path calls. Implementations hold no state between calls."""

    name: str

    def send(
        self, *, message_id: str, to: str, content: Mapping[str, Any], config: Mapping[str, Any]
    ) -> TransportResult: ...


def http_status_error(
    status: int,
    message: str,
    *,
    retry_after: float | None = None,
    provider_code: str | None = None,
) -> TransportError:
    """The error for a provider's non-2xx answer: 408, 425, 429 and 5xx are worth retrying,
    every other 4xx (and a 3xx: Rapport does not follow redirects) is not."""
    retryable = status in (408, 425, 429) or status >= 500
    return TransportError(
        message,
        retryable=retryable,
        retry_after=retry_after,
        http_status=status,
        provider_code=provider_code,
    )


def backoff_delay(
    attempt: int,
    *,
    key: str,
    base: float = 30.0,
    factor: float = 2.0,
    cap: float = 6 * 3600.0,
    jitter: float = 0.25,
    max_attempts: int = 8,
    retry_after: float | None = None,
) -> float | None:
    """Seconds to wait before retry number ``attempt`` (1 = the first retry), or None when
    ``max_attempts`` retries have been spent (record the message as failed).

    Exponential: ``base * factor ** (attempt - 1)``, at most ``cap``, then spread by up to
    ``± jitter`` of itself. The spread is derived from ``key`` (the message id) and the
    attempt, so the function is pure (the same call gives the same answer, on every
    worker) while messages that failed together do not come back together. A provider's
    Retry-After is honoured as a floor.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    if attempt > max_attempts:
        return None
    delay = min(cap, base * factor ** (attempt - 1))
    digest = hashlib.sha256(f"{key}:{attempt}".encode()).digest()
    unit = int.from_bytes(digest[:8], "big") / 2**64  # [0, 1)
    delay *= 1 + jitter * (2 * unit - 1)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return round(delay, 3)


def _registry() -> dict[str, Callable[[], Transport]]:
    from rapport.channels.transports import twilio, vonage, webhooks, webpush

    return {
        twilio.TwilioTransport.name: twilio.TwilioTransport,
        vonage.VonageTransport.name: vonage.VonageTransport,
        webhooks.WebhookTransport.name: webhooks.WebhookTransport,
        webpush.WebPushTransport.name: webpush.WebPushTransport,
    }


def transport_names() -> list[str]:
    """The transports there are: "twilio", "vonage", "webhook", "webpush"."""
    return sorted(_registry())


def get_transport(name: str) -> Transport:
    """The transport called ``name``; KeyError naming it when there is none."""
    try:
        factory = _registry()[name]
    except KeyError:
        raise KeyError(f"No transport called {name!r}") from None
    return factory()


__all__ = [
    "DeliveryReport",
    "DeliveryStatus",
    "InboundKind",
    "InboundMessage",
    "Transport",
    "TransportError",
    "TransportResult",
    "backoff_delay",
    "get_transport",
    "http_status_error",
    "transport_names",
]
