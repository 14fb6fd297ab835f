"""In-app messages: shown inside the customer's own app or site, which polls for them.

Sending one makes it pending for the customer: the transport keeps the rendered
message on its row (`content["rendered"]`) and the send path records it `sent`. The
app asks `GET /v1/in-app/messages?user_id=…` (or `anonymous_id`) with its source's
write key (rapport/channels/public.py): the customer's messages not dismissed and not
older than `RAPPORT_IN_APP_MAX_AGE_DAYS` (30), newest first, each then `delivered`.
What the customer does comes back as `POST /v1/in-app/messages/{id}/events`
{"type": "shown" | "clicked" | "dismissed"}: the message records it (opened_at,
clicked_at, dismissed_at) and the customer gets an event through the ingest pipeline,
"In-App Message Shown", "In-App Message Clicked" or "In-App Message Dismissed", with
properties `message_id` and `broadcast_id`, for segments and journeys to use.

The address is the customer's id: every customer can be written to. Consent: none of
its own (rules.CONSENT_CHANNEL), as Braze and Pega treat in-app messages: they are
seen only inside a session the customer opened, and a dismissed message never returns.
Suppression, erasure and the contact policy's caps and quiet hours still apply.
"""

import re
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from rapport.channels.dispatch import Outgoing, SendResult, Session, transport_register
from rapport.channels.models import Channel, Message
from rapport.identity.models import Identifier
from rapport.profiles.models import Profile
from rapport.profiles.selectors import profile_family_ids

EVENT_NAMES = {
    "shown": "In-App Message Shown",
    "clicked": "In-App Message Clicked",
    "dismissed": "In-App Message Dismissed",
}
MAX_PENDING = 20


def max_age() -> timedelta:
    return timedelta(days=float(getattr(settings, "RAPPORT_IN_APP_MAX_AGE_DAYS", 30)))


_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.IGNORECASE | re.DOTALL)


def html_fragment(html: str) -> str:
    """The body of a rendered document (the renderer makes a whole one, styles inlined):
    an in-app message is put inside the app's own page."""
    found = _BODY.search(html or "")
    return found.group(1).strip() if found else (html or "")


def inapp_send(*, outgoing: Outgoing, session: Session) -> SendResult:
    message = Message.objects.filter(pk=outgoing.message_id).only("content").first()
    content = dict((message.content if message else None) or {})
    content["rendered"] = {
        "subject": outgoing.subject,
        "html": html_fragment(outgoing.html),
        "text": outgoing.text,
    }
    Message.objects.filter(pk=outgoing.message_id).update(content=content)
    return SendResult(provider_id=outgoing.message_id)


def inapp_address(profile) -> str | None:
    return str(profile.pk) if profile is not None else None


transport_register(channel=Channel.IN_APP, send=inapp_send, address=inapp_address)


# --- The customer's app --------------------------------------------------------------


def customer_find(
    *, workspace_id: Any, user_id: str = "", anonymous_id: str = ""
) -> Profile | None:
    """The live customer holding this user_id (else anonymous_id), as the ingest's
    identity resolution recorded them; None when unknown."""
    for kind, value in (("user_id", user_id), ("anonymous_id", anonymous_id)):
        if not value:
            continue
        holder = (
            Identifier.objects.filter(workspace_id=workspace_id, kind=kind, value=value)
            .values_list("profile_id", flat=True)
            .first()
        )
        if holder is None:
            continue
        profile = Profile.objects.filter(pk=holder, workspace_id=workspace_id).first()
        seen = set()
        while profile is not None and profile.merged_into_id is not None and profile.pk not in seen:
            seen.add(profile.pk)
            profile = Profile.objects.filter(
                pk=profile.merged_into_id, workspace_id=workspace_id
            ).first()
        if profile is not None:
            return profile
    return None


def _customer_messages(*, workspace_id: Any, profile: Profile):
    return Message.objects.filter(
        workspace_id=workspace_id,
        channel=Channel.IN_APP,
        profile_id__in=profile_family_ids(profile_id=profile.pk),
    )


def pending_messages(*, workspace_id: Any, profile: Profile) -> list[Message]:
    """The customer's in-app messages to show, newest first; those not yet fetched
    are `delivered` from now on."""
    now = timezone.now()
    messages = list(
        _customer_messages(workspace_id=workspace_id, profile=profile)
        .filter(
            status__in=[Message.Status.SENT, Message.Status.DELIVERED],
            dismissed_at__isnull=True,
            sent_at__gt=now - max_age(),
        )
        .order_by("-sent_at", "-id")[:MAX_PENDING]
    )
    fresh = [m.pk for m in messages if m.status == Message.Status.SENT]
    if fresh:
        Message.objects.filter(pk__in=fresh, status=Message.Status.SENT).update(
            status=Message.Status.DELIVERED, delivered_at=now, updated_at=now
        )
    return messages


def rendered_of(message: Message) -> dict[str, str]:
    rendered = (message.content or {}).get("rendered") or {}
    return {
        "subject": str(rendered.get("subject") or message.subject or ""),
        "html": str(rendered.get("html") or ""),
        "text": str(rendered.get("text") or ""),
    }


def customer_message(*, workspace_id: Any, profile: Profile, message_id: Any) -> Message | None:
    """One of the customer's in-app messages that was sent (None: not theirs)."""
    return (
        _customer_messages(workspace_id=workspace_id, profile=profile)
        .filter(pk=message_id)
        .filter(~Q(sent_at=None))
        .first()
    )


def message_event_record(
    *,
    message: Message,
    kind: str,
    source_id: Any,
    user_id: str = "",
    anonymous_id: str = "",
) -> None:
    """The customer saw, clicked or dismissed the message: recorded on it, and as an
    event of the customer through the ingest pipeline (the same event once)."""
    from rapport.ingest.services import Destination, events_ingest, events_parse

    now = timezone.now()
    updates: dict[str, Any] = {}
    if message.status == Message.Status.SENT:
        updates.update(status=Message.Status.DELIVERED, delivered_at=now)
    if kind in ("shown", "clicked") and message.opened_at is None:
        updates["opened_at"] = now
    if kind == "clicked" and message.clicked_at is None:
        updates["clicked_at"] = now
    if kind == "dismissed" and message.dismissed_at is None:
        updates["dismissed_at"] = now
    if updates:
        updates["updated_at"] = now
        Message.objects.filter(pk=message.pk).update(**updates)
    if kind in ("shown", "clicked"):
        from rapport.channels import hooks

        hooks.message_answered(message, "opened" if kind == "shown" else "clicked", now)
    event: dict[str, Any] = {
        "type": "track",
        "event": EVENT_NAMES[kind],
        # One event per message and kind: a repeated report is acknowledged, not stored.
        "messageId": f"in-app-{message.pk}-{kind}",
        "timestamp": now.isoformat(),
        "properties": {
            "message_id": str(message.pk),
            "broadcast_id": str(message.broadcast_id) if message.broadcast_id else None,
        },
        "context": {"library": {"name": "rapport-in-app"}},
    }
    if user_id:
        event["userId"] = user_id
    if anonymous_id:
        event["anonymousId"] = anonymous_id
    rows, refused = events_parse([event], received_at=now)
    events_ingest(
        destination=Destination(workspace_id=message.workspace_id, source_id=source_id),
        rows=rows,
        refused=refused,
        received_at=now,
    )
