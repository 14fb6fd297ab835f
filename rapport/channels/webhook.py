"""Webhook messages: a Standard Webhooks signed POST of the rendered message as JSON
to the URL the message names, signed with the workspace's secret (`whsec_...`).

A retryable answer (timeout, 429, 5xx) goes through the send path's backoff; 410 and
every other 4xx fail the message at once. Failed webhook messages are the dead-letter
list (`GET /api/v1/messages?channel=webhook&status=failed`), retried one by one
(`POST /api/v1/messages/{id}/retry`).
"""

import contextlib
import ipaddress
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext

from rapport.channels.dispatch import Outgoing, SendError, SendResult, Session, transport_register
from rapport.channels.models import EmailSettings
from rapport.channels.secrets import WEBHOOK_SECRET, secret_get
from rapport.channels.transports import TransportError, get_transport
from rapport.core.errors import InvalidInputError


def webhook_url_of(message) -> str:
    """Where a webhook message goes: the url of the single message, else its broadcast's."""
    url = str((message.content or {}).get("url") or "")
    if not url and message.broadcast_id is not None:
        url = message.broadcast.url
    return url


def webhook_url_check(url: str, *, field: str) -> None:
    """A receiver's URL as it is written: http(s) with a host, and not an address of
    Rapport's own network (a loopback or private IP, localhost) unless the install allows
    it. A name is resolved, and checked again, at each send (transports/_http.py)."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - a port out of range raises
    except ValueError:
        parts = parts._replace(netloc="")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError(gettext("a webhook message needs an http(s) url"), field=field)
    if getattr(settings, "RAPPORT_WEBHOOK_ALLOW_PRIVATE_ADDRESSES", False):
        return
    host = parts.hostname.lower().rstrip(".")
    private = host == "localhost" or host.endswith(".localhost")
    with contextlib.suppress(ValueError):
        private = private or not ipaddress.ip_address(host).is_global
    if private:
        raise InvalidInputError(
            gettext("the url must be a public address, not one of Rapport's own network"),
            field=field,
        )


def webhook_secret_of(workspace_id) -> str:
    found = EmailSettings.objects.filter(workspace_id=workspace_id).first()
    secret = secret_get(found, WEBHOOK_SECRET)
    if not secret:
        raise SendError(
            "The workspace has no webhook signing secret (or it cannot be read): "
            "make one in Settings",
            retryable=False,
        )
    return secret


def webhook_payload(outgoing: Outgoing) -> dict:
    context = outgoing.data or {}
    return {
        "type": "message.sent",
        "timestamp": timezone.now().isoformat().replace("+00:00", "Z"),
        "data": {
            "message_id": outgoing.message_id,
            "profile_id": outgoing.profile_id,
            "purpose": outgoing.purpose,
            "text": outgoing.text,
            "customer": context.get("customer", {}),
            "account": context.get("account", {}),
            "stage": context.get("stage"),
            "segments": list(context.get("segments") or []),
        },
    }


def webhook_send(*, outgoing: Outgoing, session: Session) -> SendResult:
    if not outgoing.to:
        raise SendError("the message names no url", retryable=False)
    config = {
        "secret": webhook_secret_of(outgoing.workspace_id),
        "allow_private_addresses": bool(
            getattr(settings, "RAPPORT_WEBHOOK_ALLOW_PRIVATE_ADDRESSES", False)
        ),
    }
    try:
        result = get_transport("webhook").send(
            message_id=outgoing.message_id,
            to=outgoing.to,
            content=webhook_payload(outgoing),
            config=config,
        )
    except TransportError as exc:
        raise SendError(str(exc), retryable=exc.retryable) from exc
    return SendResult(provider_id=result.provider_message_id or outgoing.message_id)


def _no_address(profile) -> str | None:
    # The address is the message's url (services._outgoing puts it in `to`); the
    # customer only has to exist.
    return "webhook" if profile is not None else None


transport_register(channel="webhook", send=webhook_send, address=_no_address)
