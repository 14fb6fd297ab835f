"""Sending by channel: one transport per channel, registered here.

A transport is `send(*, outgoing: Outgoing, session: Session) -> SendResult`:
- `outgoing` is the rendered message with its address and `message_id`, which the
  transport passes to the provider as its idempotency key (or Message-ID), so that a
  send resumed after a worker died is recognised as the same message;
- it returns the provider's id for the message (`SendResult.provider_id`), later
  matched by delivery, bounce and reply callbacks;
- it raises `SendError(message, retryable=...)`: retryable errors (a timeout, a 5xx,
  a 429) are tried again with backoff, the others fail the message at once.
`session` keeps what a batch of sends shares (an open SMTP connection): a transport
stores its own state under its channel's name and closes it in `close()`.

`address` gives the customer's address on the channel (traits, identifiers), or None.
Email is registered by this app (rapport/channels/email.py); SMS, web push and
webhooks register theirs from rapport/channels/transports/.
"""

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class SendError(Exception):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Outgoing:
    message_id: str
    workspace_id: Any
    channel: str
    purpose: str
    to: str
    subject: str = ""
    html: str = ""
    text: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    # The customer's profile id and the whole rendered context, for transports that
    # send structured data (webhooks).
    profile_id: Any = None
    data: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    provider_id: str = ""


class Session:
    """State shared by the sends of one batch, closed at its end."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}
        self._closers: list[Callable[[], None]] = []

    def on_close(self, closer: Callable[[], None]) -> None:
        self._closers.append(closer)

    def close(self) -> None:
        for closer in reversed(self._closers):
            # A connection that will not close is gone anyway.
            with contextlib.suppress(Exception):
                closer()
        self._closers.clear()
        self.state.clear()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


Send = Callable[..., SendResult]
Address = Callable[[Any], str | None]


@dataclass(frozen=True)
class Transport:
    channel: str
    send: Send
    address: Address


_TRANSPORTS: dict[str, Transport] = {}


def transport_register(*, channel: str, send: Send, address: Address) -> None:
    _TRANSPORTS[channel] = Transport(channel=channel, send=send, address=address)


def transport_for(channel: str) -> Transport | None:
    return _TRANSPORTS.get(channel)
