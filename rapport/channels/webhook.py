"""Webhook messages: a Standard Webhooks signed POST of the rendered message as JSON
to the URL the message names, signed with the workspace's secret (`whsec_...`).

A retryable answer (timeout, 429, 5xx) goes through the send path's backoff; 410 and
every other 4xx fail the message at once. Failed webhook messages are the dead-letter
list (`GET /api/v1/messages?channel=webhook&status=failed`), retried one by one
(`POST /api/v1/messages/{id}/retry`).
"""

from django.conf import settings
from django.utils import timezone

from rapport.channels.dispatch import Outgoing, SendError, SendResult, Session, transport_register
from rapport.channels.models import EmailSettings
from rapport.channels.secrets import secret_decrypt
from rapport.channels.transports import TransportError, get_transport


def webhook_secret_of(workspace_id) -> str:
    found = EmailSettings.objects.filter(workspace_id=workspace_id).first()
    secret = secret_decrypt(found.webhook_secret_encrypted) if found else ""
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
