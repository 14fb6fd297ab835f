"""Messages as events of the customer: each send, delivery, open, click, bounce,
complaint, unsubscription and reply is stored in the event store (rapport/ingest) as a
track event of the message's customer, so that segment rules ("did Email Opened in the
last 30 days"), the KPIs (engagement counts opens and clicks) and the timeline read
them like any other event.

The names are Segment's Email spec, and their SMS counterparts:

    action        email                   sms
    sent          Email Sent              SMS Sent
    delivered     Email Delivered         SMS Delivered
    opened        Email Opened            -
    clicked       Email Link Clicked      -
    bounced       Email Bounced           -
    complained    Email Marked as Spam    -
    unsubscribed  Unsubscribed            Unsubscribed
    replied       -                       SMS Replied

Other channels (push, webhook) record none here. Properties: message_id, broadcast_id,
channel, purpose, subject (email), and what the action adds (the link's url for a click,
the provider's description for a bounce, the text of a reply).

Idempotent: each event's messageId is made from the message's id and the action (and
the link for a click, the reply's own id for a reply), and the store keeps one event per
messageId: an open recorded twice is one event. The events carry no identifier: they are
written with their profile already set (the message's customer, or the customer they
were merged into), so identity resolution leaves them where they are and adds nothing to
the customer's identifiers. They go through the pipeline like any stored event (segments
and lifecycle re-checked, the analytics' cache ended).
"""

import hashlib
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import DatabaseError
from django.utils import timezone

from rapport.channels.models import Channel, Message

logger = logging.getLogger(__name__)

NAMES: dict[str, dict[str, str]] = {
    Channel.EMAIL: {
        "sent": "Email Sent",
        "delivered": "Email Delivered",
        "opened": "Email Opened",
        "clicked": "Email Link Clicked",
        "bounced": "Email Bounced",
        "complained": "Email Marked as Spam",
        "unsubscribed": "Unsubscribed",
    },
    Channel.SMS: {
        "sent": "SMS Sent",
        "delivered": "SMS Delivered",
        "unsubscribed": "Unsubscribed",
        "replied": "SMS Replied",
    },
}
# Every name above that one of these events may carry (the timeline's sentences).
EVENT_NAMES = sorted({name for names in NAMES.values() for name in names.values()})


def event_name(channel: str, action: str) -> str | None:
    """The event's name for an action on a message of this channel (None: not recorded)."""
    return NAMES.get(channel, {}).get(action)


def _event_key(message_id: Any, action: str, key: str = "") -> str:
    base = f"rapport-message:{message_id}:{action}"
    if key:
        base += ":" + hashlib.sha256(key.encode()).hexdigest()[:24]
    return base


def _subject(message: Message) -> str:
    if message.subject:
        return message.subject
    for source in (message.template, message.broadcast):
        if source is not None and getattr(source, "subject", ""):
            return source.subject
    return str((message.content or {}).get("subject") or "")


def _row(message: Message, profile_id: Any, name: str, action: str, properties, at, key, now):
    props = {
        "message_id": str(message.pk),
        "broadcast_id": str(message.broadcast_id) if message.broadcast_id else None,
        "channel": message.channel,
        "purpose": message.purpose,
    }
    if message.channel == Channel.EMAIL:
        props["subject"] = _subject(message)
    props.update(properties or {})
    return {
        "workspace_id": message.workspace_id,
        "source_id": None,
        "message_id": _event_key(message.pk, action, key),
        "profile_id": profile_id,
        "type": "track",
        "event": name,
        "user_id": "",
        "anonymous_id": "",
        "group_id": "",
        "previous_id": "",
        "timestamp": at,
        "received_at": now,
        "sent_at": None,
        "original_timestamp": at,
        "in_future": False,
        "properties": props,
        "traits": {},
        "context": {"library": {"name": "rapport.channels"}},
        "integrations": {},
    }


def _live_profiles(profile_ids: set) -> dict[Any, Any]:
    """Each profile's live profile (itself, or the one it was merged into)."""
    from rapport.profiles.models import Profile

    into = dict(
        Profile.objects.filter(pk__any=list(profile_ids)).values_list("pk", "merged_into_id")
    )
    live = {}
    for start in profile_ids:
        at, hops = start, 0
        while into.get(at) is not None and hops < 10:
            nxt = into[at]
            if nxt not in into:
                into.update(Profile.objects.filter(pk=nxt).values_list("pk", "merged_into_id"))
            at, hops = nxt, hops + 1
        if at in into:
            live[start] = at
    return live


def _store(rows: list[dict]) -> int:
    from rapport.ingest.services import Destination, events_ingest

    by_workspace: dict[Any, list[dict]] = {}
    for row in rows:
        by_workspace.setdefault(row["workspace_id"], []).append(row)
    now = timezone.now()
    for workspace_id, own in by_workspace.items():
        events_ingest(
            destination=Destination(workspace_id=workspace_id, source_id=None),
            rows=[
                {k: v for k, v in row.items() if k not in ("workspace_id", "source_id")}
                for row in own
            ],
            refused=[],
            received_at=now,
        )
    return len(rows)


def message_event_record(
    message: Message,
    name: str,
    properties: dict | None = None,
    at: datetime | None = None,
    *,
    key: str = "",
) -> str | None:
    """Record `name` (an action: "sent", "opened", "clicked", ...; see the table
    above) about `message` as an event of its customer, at `at` (default now). `key`
    tells apart several events of one action (a click: the link). The event's
    messageId, or None when nothing is recorded (a channel or action without an event,
    a message whose customer was erased). Never raises for a database error: the
    message's own record matters more than its event."""
    event = event_name(message.channel, name)
    if event is None or message.profile_id is None:
        return None
    if name == "clicked" and not key:
        key = str((properties or {}).get("url") or "")
    try:
        live = _live_profiles({message.profile_id})
        if message.profile_id not in live:
            return None
        now = timezone.now()
        row = _row(message, live[message.profile_id], event, name, properties, at or now, key, now)
        _store([row])
    except DatabaseError:
        logger.exception("the %s event of message %s was not recorded", name, message.pk)
        return None
    return row["message_id"]


_PENDING = "channels.events.pending"


def message_events_record(messages: Iterable[Any], name: str, *, session: Any = None) -> int:
    """The same action ("sent", typically) for many messages at once: their ids, read
    again in one query (their subject and time as stored: a send's time is its
    `sent_at`), or Message rows as the send path holds them (subject and `sent_at` as it
    recorded them), written in one insert per workspace. How many events were
    written or already there. For the send path's batches: with a batch's open
    `dispatch.Session`, the messages are kept and written together when it closes."""
    messages = list(messages)
    ids = [getattr(m, "pk", m) for m in messages]
    if not ids:
        return 0
    if session is not None:
        pending = session.state.get(_PENDING)
        if pending is None:
            pending = session.state[_PENDING] = {}
            session.on_close(lambda: _flush(pending))
        pending.setdefault(name, []).extend(messages)
        return 0
    try:
        if all(isinstance(m, Message) and m.sent_at is not None for m in messages):
            # The send path's own rows, as it recorded them: nothing to read again.
            found = [m for m in messages if m.profile_id is not None and m.channel in NAMES]
        else:
            found = list(
                Message.objects.filter(pk__any=ids, profile__isnull=False, channel__in=list(NAMES))
                .select_related("template", "broadcast")
                .defer("template__html", "template__text", "broadcast__html", "broadcast__text")
            )
        if name == "sent":
            found = [m for m in found if m.sent_at is not None]
        live = _live_profiles({m.profile_id for m in found})
        now = timezone.now()
        rows = []
        for message in found:
            event = event_name(message.channel, name)
            if event is None or message.profile_id not in live:
                continue
            at = (message.sent_at if name == "sent" else None) or now
            rows.append(_row(message, live[message.profile_id], event, name, None, at, "", now))
        return _store(rows)
    except DatabaseError:
        logger.exception("the %s events of %d messages were not recorded", name, len(ids))
        return 0


def _flush(pending: dict[str, list]) -> None:
    for name, ids in pending.items():
        message_events_record(ids, name)
