"""Reads of the channels app; each takes the workspace first."""

import re
import uuid
from datetime import UTC, datetime, timedelta

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.db.models.functions import TruncHour
from django.utils import timezone
from django.utils.translation import gettext

from rapport.channels.models import (
    Broadcast,
    ContactPolicy,
    EmailSettings,
    Message,
    OutboxMail,
    Suppression,
    Template,
)
from rapport.channels.rules import SkipReason
from rapport.core.selectors import object_get
from rapport.tenancy.models import Workspace


def template_list(*, workspace: Workspace) -> QuerySet[Template]:
    return Template.objects.filter(workspace=workspace).order_by("name")


def template_get(*, workspace: Workspace, template_id: uuid.UUID) -> Template:
    return object_get(
        Template.objects.filter(workspace=workspace),
        message=gettext("No template with id %(pk)s in this workspace"),
        pk=template_id,
    )


def broadcast_list(*, workspace: Workspace) -> QuerySet[Broadcast]:
    return Broadcast.objects.filter(workspace=workspace).order_by("-created_at")


def broadcast_get(*, workspace: Workspace, broadcast_id: uuid.UUID) -> Broadcast:
    return object_get(
        Broadcast.objects.filter(workspace=workspace),
        message=gettext("No broadcast with id %(pk)s in this workspace"),
        pk=broadcast_id,
    )


def message_list(
    *, workspace: Workspace, channel: str | None = None, status: str | None = None
) -> QuerySet[Message]:
    """Newest first; `channel=webhook&status=failed` is the webhooks' dead-letter list."""
    found = Message.objects.filter(workspace=workspace)
    if channel:
        found = found.filter(channel=channel)
    if status:
        found = found.filter(status=status)
    return found.order_by("-created_at", "-id")


def message_get(*, workspace: Workspace, message_id: uuid.UUID) -> Message:
    return object_get(
        Message.objects.filter(workspace=workspace),
        message=gettext("No message with id %(pk)s in this workspace"),
        pk=message_id,
    )


_VARIABLE = re.compile(r"\{\{\s*((?:customer|account)\.[A-Za-z_][\w]*)")

SENT_STATES = [Message.Status.SENT, Message.Status.DELIVERED, Message.Status.BOUNCED]


def broadcast_stats(*, workspace: Workspace, broadcast_id: uuid.UUID) -> dict:
    """{targeted, sent, delivered, skipped: {reason: n}, failed, opened, clicked,
    unsubscribed, bounced, queued}: `sent` counts every message that left (delivered
    and bounced ones too); the control group is among the skipped (`holdout`)."""
    rows = Message.objects.filter(workspace=workspace, broadcast_id=broadcast_id)
    totals = rows.aggregate(
        targeted=Count("pk"),
        sent=Count("pk", filter=Q(status__in=SENT_STATES)),
        delivered=Count("pk", filter=Q(status=Message.Status.DELIVERED)),
        failed=Count("pk", filter=Q(status=Message.Status.FAILED)),
        bounced=Count("pk", filter=Q(status=Message.Status.BOUNCED)),
        queued=Count("pk", filter=Q(status__in=[Message.Status.QUEUED, Message.Status.SENDING])),
        opened=Count("pk", filter=Q(opened_at__isnull=False)),
        clicked=Count("pk", filter=Q(clicked_at__isnull=False)),
        unsubscribed=Count("pk", filter=Q(unsubscribed_at__isnull=False)),
    )
    skipped = dict(
        rows.filter(status=Message.Status.SKIPPED)
        .values_list("skip_reason")
        .annotate(n=Count("pk"))
        .values_list("skip_reason", "n")
    )
    return {**totals, "skipped": skipped}


def outbox_list(*, workspace: Workspace) -> QuerySet[OutboxMail]:
    return OutboxMail.objects.filter(workspace=workspace).order_by("-created_at")


def profile_messages(*, workspace: Workspace, profile_id: uuid.UUID) -> QuerySet[Message]:
    return Message.objects.filter(workspace=workspace, profile_id=profile_id).order_by(
        "-created_at"
    )


def email_settings_get(*, workspace: Workspace) -> EmailSettings:
    return EmailSettings.objects.filter(workspace=workspace).first() or EmailSettings(
        workspace=workspace
    )


def contact_policy_get(*, workspace: Workspace) -> ContactPolicy:
    return ContactPolicy.objects.filter(workspace=workspace).first() or ContactPolicy(
        workspace=workspace
    )


def outbox_get(*, workspace: Workspace, mail_id: uuid.UUID) -> OutboxMail:
    return object_get(
        OutboxMail.objects.filter(workspace=workspace),
        message=gettext("No outbox mail with id %(pk)s in this workspace"),
        pk=mail_id,
    )


def outbox_message_id(mail: OutboxMail) -> uuid.UUID | None:
    """The id of the message an outbox mail was sent for (its Message-ID header is
    <message id@domain>), or None."""
    local = mail.message_id.strip().strip("<>").partition("@")[0]
    try:
        return uuid.UUID(local)
    except ValueError:
        return None


def suppression_list(
    *, workspace: Workspace, channel: str | None = None, q: str | None = None
) -> QuerySet[Suppression]:
    """Newest first; `q` finds addresses containing it (case-insensitively)."""
    found = Suppression.objects.filter(workspace=workspace)
    if channel:
        found = found.filter(channel=channel)
    if q:
        found = found.filter(address__icontains=q.strip())
    return found.order_by("-created_at", "-id")


def suppression_get(*, workspace: Workspace, suppression_id: uuid.UUID) -> Suppression:
    return object_get(
        Suppression.objects.filter(workspace=workspace),
        message=gettext("No suppression with id %(pk)s in this workspace"),
        pk=suppression_id,
    )


# How many hours a broadcast's results chart spans at most (two weeks).
TIMELINE_MAX_HOURS = 14 * 24


def broadcast_timeline(broadcast: Broadcast, *, now: datetime | None = None) -> list[dict]:
    """Per hour since the send: messages sent, first opened and first clicked in that
    hour, [{"hour", "sent", "opened", "clicked"}], every hour from the send's to the
    last with news (or now), two weeks at most. Empty before the send."""
    start = broadcast.send_at
    if start is None:
        return []
    start = start.replace(minute=0, second=0, microsecond=0)
    end = start + timedelta(hours=TIMELINE_MAX_HOURS)
    rows = Message.objects.filter(workspace_id=broadcast.workspace_id, broadcast=broadcast)
    counts: dict[datetime, dict[str, int]] = {}
    last = start
    for field, key in (("sent_at", "sent"), ("opened_at", "opened"), ("clicked_at", "clicked")):
        for hour, n in (
            rows.filter(**{f"{field}__gte": start, f"{field}__lt": end})
            .annotate(hour=TruncHour(field, tzinfo=UTC))
            .values_list("hour")
            .annotate(n=Count("pk"))
            .values_list("hour", "n")
        ):
            counts.setdefault(hour, {})[key] = n
            last = max(last, hour)
    now = now or timezone.now()
    if broadcast.status == Broadcast.Status.SENDING:
        last = max(last, min(now, end - timedelta(hours=1)))
    points = []
    hour = start
    while hour <= last:
        found = counts.get(hour, {})
        points.append(
            {
                "hour": hour,
                "sent": found.get("sent", 0),
                "opened": found.get("opened", 0),
                "clicked": found.get("clicked", 0),
            }
        )
        hour += timedelta(hours=1)
    return points


def broadcast_conversions(broadcast: Broadcast, *, now: datetime | None = None) -> dict | None:
    """Recipients against the holdout: the share of each who did the broadcast's
    conversion event within its window after the send, and the lift (relative: 0.25
    is 25 % more conversions than the holdout). None before the send or without an
    event."""
    if broadcast.send_at is None or not broadcast.conversion_event:
        return None
    from rapport.ingest.models import Event

    since = broadcast.send_at
    until = since + timedelta(days=broadcast.conversion_days)
    converted = Exists(
        Event.objects.filter(
            workspace_id=broadcast.workspace_id,
            profile_id=OuterRef("profile_id"),
            event=broadcast.conversion_event,
            timestamp__gte=since,
            timestamp__lt=until,
        )
    )
    rows = Message.objects.filter(
        workspace_id=broadcast.workspace_id, broadcast=broadcast, profile__isnull=False
    )
    groups = rows.aggregate(
        sent=Count("pk", filter=Q(status__in=SENT_STATES)),
        holdout=Count(
            "pk", filter=Q(status=Message.Status.SKIPPED, skip_reason=SkipReason.HOLDOUT)
        ),
    )
    done = rows.filter(converted).aggregate(
        sent=Count("pk", filter=Q(status__in=SENT_STATES)),
        holdout=Count(
            "pk", filter=Q(status=Message.Status.SKIPPED, skip_reason=SkipReason.HOLDOUT)
        ),
    )
    sent_rate = done["sent"] / groups["sent"] if groups["sent"] else None
    holdout_rate = done["holdout"] / groups["holdout"] if groups["holdout"] else None
    lift = (
        (sent_rate - holdout_rate) / holdout_rate
        if sent_rate is not None and holdout_rate
        else None
    )
    return {
        "event": broadcast.conversion_event,
        "days": broadcast.conversion_days,
        "until": until,
        "window_open": (now or timezone.now()) < until,
        "sent": groups["sent"],
        "sent_converted": done["sent"],
        "sent_rate": sent_rate,
        "holdout": groups["holdout"],
        "holdout_converted": done["holdout"],
        "holdout_rate": holdout_rate,
        "lift": lift,
    }


def template_variables(*sources: str) -> list[str]:
    """The customer's and account's values a template names (`customer.first_name`),
    in the order first written."""
    found: list[str] = []
    for source in sources:
        for name in _VARIABLE.findall(source or ""):
            if name not in found:
                found.append(name)
    return found


def content_preview(*, content: dict[str, str], profile=None) -> dict:
    """A message rendered as `profile` would get it (no one: every value empty), and
    the values it names that this customer lacks (where a fallback, `|default:`,
    shows instead). {"subject", "html", "text", "missing", "error"}."""
    from django.template import TemplateSyntaxError

    from rapport.channels.render import profile_context, render

    context = profile_context(profile) if profile is not None else {}
    context["unsubscribe_url"] = context["preferences_url"] = "#unsubscribe"
    missing = []
    for name in template_variables(*content.values()):
        scope, _, key = name.partition(".")
        value = (context.get(scope) or {}).get(key) if scope in ("customer", "account") else None
        if value in (None, "", [], {}):
            missing.append(name)
    try:
        rendered = render(
            subject=content.get("subject", ""),
            html=content.get("html", ""),
            text=content.get("text", ""),
            context=context,
        )
    except TemplateSyntaxError as exc:
        return {"subject": "", "html": "", "text": "", "missing": missing, "error": str(exc)}
    return {
        "subject": rendered.subject,
        "html": rendered.html,
        "text": rendered.text,
        "missing": missing,
        "error": "",
    }
