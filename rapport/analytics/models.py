"""What the KPIs count in a workspace, and their daily snapshots (the history the
dashboards' trends are drawn from)."""

from django.db import models
from uuid_utils.compat import uuid7

from rapport.core.money import MONEY_DIGITS, MONEY_PLACES

# Segment's e-commerce and email specs name these events.
DEFAULT_MESSAGE_EVENTS = [
    "Email Delivered",
    "Email Sent",
    "Email Bounced",
    "Push Notification Received",
    "SMS Delivered",
    # Rapport's own messages (rapport/channels/events.py).
    "SMS Sent",
    "Email Marked as Spam",
]
DEFAULT_ENGAGEMENT_EVENTS = [
    "Email Opened",
    "Email Link Clicked",
    "Push Notification Tapped",
    "SMS Replied",
    "In-App Message Clicked",
]


def _message_events() -> list[str]:
    return list(DEFAULT_MESSAGE_EVENTS)


def _engagement_events() -> list[str]:
    return list(DEFAULT_ENGAGEMENT_EVENTS)


class AnalyticsSettings(models.Model):
    """Per workspace. Purchases and their value are the segments' settings (one
    definition of a purchase for RFM, CLV and the KPIs)."""

    workspace = models.OneToOneField(
        "tenancy.Workspace", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    # Days and months start at midnight here (an IANA name such as Europe/London).
    timezone = models.CharField(max_length=64, default="UTC")
    refund_event = models.CharField(max_length=255, default="Order Refunded")
    nps_event = models.CharField(max_length=255, default="Survey Answered")
    nps_property = models.CharField(max_length=255, default="score")
    # Sent to the customer: neither activity nor engagement.
    message_events = models.JSONField(default=_message_events)
    # The customer reacting to a message: engagement, not activity.
    engagement_events = models.JSONField(default=_engagement_events)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"analytics settings of {self.workspace_id}"


class KpiSnapshot(models.Model):
    """The KPIs of the `window_days` days that end with `day` (inclusive, in the
    workspace's time zone), for every customer or for one segment's members of the
    time, as computed after that day ended."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey("tenancy.Workspace", on_delete=models.CASCADE, related_name="+")
    segment = models.ForeignKey(
        "segments.Segment", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    day = models.DateField()
    window_days = models.SmallIntegerField()
    # Every KPI but money (counts, rates, NPS), and what was left out for want of a rate.
    figures = models.JSONField()
    # The money KPIs, Decimal in `currency` (the reporting currency when computed); null
    # where undefined (no order: no average order value). `analytics.kpis.MONEY_FIGURES`
    # names where each sits in the figures a reader gets (`snapshot_figures`).
    currency = models.CharField(max_length=3, blank=True)
    revenue = models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES, null=True)
    average_order_value = models.DecimalField(
        max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES, null=True
    )
    clv_average = models.DecimalField(
        max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES, null=True
    )
    clv_total = models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES, null=True)
    gross_purchase_value = models.DecimalField(
        max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES, null=True
    )
    refunded = models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES, null=True)
    # Taken later for a past day (a back-fill) rather than the night after it.
    backfilled = models.BooleanField(default=False)
    computed_at = models.DateTimeField()
    seconds = models.FloatField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "window_days", "day"],
                condition=models.Q(segment__isnull=True),
                name="analytics_snapshot_all_unique",
            ),
            models.UniqueConstraint(
                fields=["workspace", "segment", "window_days", "day"],
                condition=models.Q(segment__isnull=False),
                name="analytics_snapshot_segment_unique",
            ),
        ]
        indexes = [
            models.Index(
                fields=["workspace", "window_days", "segment", "-day"],
                name="analytics_snapshot_ws_day",
            )
        ]

    def __str__(self) -> str:
        return f"KPIs of {self.window_days} days to {self.day}"
