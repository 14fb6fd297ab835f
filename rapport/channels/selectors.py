"""Reads of the channels app; each takes the workspace first."""

import uuid

from django.db.models import Count, Q, QuerySet

from rapport.channels.models import (
    Broadcast,
    ContactPolicy,
    EmailSettings,
    Message,
    OutboxMail,
    Template,
)
from rapport.core.selectors import object_get
from rapport.tenancy.models import Workspace


def template_list(*, workspace: Workspace) -> QuerySet[Template]:
    return Template.objects.filter(workspace=workspace).order_by("name")


def template_get(*, workspace: Workspace, template_id: uuid.UUID) -> Template:
    return object_get(Template.objects.filter(workspace=workspace), what="template", pk=template_id)


def broadcast_list(*, workspace: Workspace) -> QuerySet[Broadcast]:
    return Broadcast.objects.filter(workspace=workspace).order_by("-created_at")


def broadcast_get(*, workspace: Workspace, broadcast_id: uuid.UUID) -> Broadcast:
    return object_get(
        Broadcast.objects.filter(workspace=workspace), what="broadcast", pk=broadcast_id
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
    return object_get(Message.objects.filter(workspace=workspace), what="message", pk=message_id)


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
