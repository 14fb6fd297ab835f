"""Messages on the customer's timeline: each one sent (or failed, or bounced), at the
time it left, with its sentence ("Email sent: *Your March offers*")."""

import uuid

from django.utils.html import format_html
from django.utils.translation import gettext as _

from rapport.channels.models import Message
from rapport.profiles.selectors import TimelineEntry, profile_family_ids
from rapport.profiles.timeline_sentences import CHANNEL_LABELS, quoted

SHOWN = [
    Message.Status.SENT,
    Message.Status.DELIVERED,
    Message.Status.BOUNCED,
    Message.Status.FAILED,
]


def message_entries(workspace, profile, wanted: set, channel: str | None) -> list[TimelineEntry]:
    if "event" not in wanted:
        return []
    messages = Message.objects.filter(
        workspace=workspace,
        profile_id__in=profile_family_ids(profile_id=profile.pk),
        status__in=SHOWN,
    ).select_related("broadcast", "template")
    if channel:
        messages = messages.filter(channel=channel)
    entries = []
    for message in messages.order_by("-created_at")[:200]:
        subject = (
            message.subject
            or (message.template.subject if message.template else "")
            or (message.broadcast.subject if message.broadcast else "")
            or message.content.get("subject", "")
            or (message.broadcast.name if message.broadcast else "")
        )
        data = {
            "id": str(message.pk),
            "channel": message.channel,
            "purpose": message.purpose,
            "status": message.status,
            "subject": subject,
            "broadcast_id": str(message.broadcast_id) if message.broadcast_id else None,
        }
        entries.append(
            TimelineEntry(
                kind="event",
                id=message.pk,
                at=message.sent_at or message.updated_at,
                channel=message.channel,
                title=f"{message.channel} {message.status}: {subject}"[:300],
                data={"message": data},
            )
        )
        # What the customer did with it, as entries of their own.
        for action, at in (("opened", message.opened_at), ("clicked", message.clicked_at)):
            if at is not None:
                entries.append(
                    TimelineEntry(
                        kind="event",
                        id=uuid.uuid5(message.pk, action),
                        at=at,
                        channel=message.channel,
                        title=f"{message.channel} {action}: {subject}"[:300],
                        data={"message": {**data, "action": action}},
                    )
                )
    return entries


def message_sentence(entry):
    data = entry.data["message"]
    channel = CHANNEL_LABELS.get(data["channel"], data["channel"])
    if data.get("action") == "opened":
        wording = _("Opened %(channel)s")
    elif data.get("action") == "clicked":
        wording = _("Clicked a link in %(channel)s")
    elif data["status"] == Message.Status.FAILED:
        wording = _("Could not send %(channel)s")
    elif data["status"] == Message.Status.BOUNCED:
        wording = _("Bounced %(channel)s")
    else:
        wording = _("Sent %(channel)s")
    text = wording % {"channel": channel}
    if data["subject"]:
        return format_html("{} {}", text, quoted(data["subject"]))
    return format_html("{}", text)
