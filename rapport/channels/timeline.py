"""Messages on the customer's timeline.

What happened to a message that left is an event of the customer (its send, delivery,
opens, clicks, bounce, replies: rapport/channels/events.py), on the timeline as any
event is, with the sentences below ("Sent email *Your March offers*"). A message that
failed (before the provider took it, or undelivered after) is listed from its row
here ("Could not send email *Your March offers*"). Nothing is listed twice.
"""

from django.utils.html import format_html
from django.utils.translation import gettext as _

from rapport.channels.models import Message
from rapport.profiles.selectors import TimelineEntry, profile_family_ids
from rapport.profiles.timeline_sentences import CHANNEL_LABELS, quoted

# The messages listed from their rows: their failure is no event of the customer.
SHOWN = [Message.Status.FAILED]


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
                at=message.updated_at,
                channel=message.channel,
                title=f"{message.channel} {message.status}: {subject}"[:300],
                data={"message": data},
            )
        )
    return entries


def message_sentence(entry):
    data = entry.data["message"]
    channel = CHANNEL_LABELS.get(data["channel"], data["channel"])
    if data["status"] == Message.Status.FAILED:
        wording = _("Could not send %(channel)s")
    elif data["status"] == Message.Status.BOUNCED:
        wording = _("Bounced %(channel)s")
    else:
        wording = _("Sent %(channel)s")
    text = wording % {"channel": channel}
    if data["subject"]:
        return format_html("{} {}", text, quoted(data["subject"]))
    return format_html("{}", text)


def _channel_sentence(wording, *, quote: str = "subject"):
    """A sentence for a message's event: the wording with the channel's name, then the
    subject (or the reply's text) when the event has one."""

    def sentence(event):
        properties = getattr(event, "properties", None)
        properties = properties if isinstance(properties, dict) else {}
        code = str(properties.get("channel") or "")
        text = wording() % {"channel": CHANNEL_LABELS.get(code, code)}
        quoted_value = str(properties.get(quote) or "")
        if quoted_value:
            return format_html("{} {}", text, quoted(quoted_value))
        return format_html("{}", text)

    return sentence


# The events of messages that the profiles app has no sentence for.
EVENT_SENTENCES = {
    "Email Sent": _channel_sentence(lambda: _("Sent %(channel)s")),
    "SMS Sent": _channel_sentence(lambda: _("Sent %(channel)s")),
    "SMS Delivered": _channel_sentence(lambda: _("Received %(channel)s")),
    "Email Marked as Spam": _channel_sentence(lambda: _("Marked %(channel)s as spam")),
    "SMS Replied": _channel_sentence(lambda: _("Replied to %(channel)s:"), quote="text"),
}
