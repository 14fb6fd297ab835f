"""Messages to customers: templates, broadcasts, one row per send, the suppression
list, the contact policy and each workspace's sender settings.

A `Message` is the record of one send. It is written (planned) before anything is
sent, claimed in a transaction of its own (status `sending`), and only then handed to
the provider with its id as the Message-ID / idempotency key: a recipient of a
broadcast has at most one row (UNIQUE broadcast, profile), a single message at most one
per idempotency key (UNIQUE workspace, idempotency_key)."""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from uuid_utils.compat import uuid7


class Channel(models.TextChoices):
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")
    PUSH = "push", _("Push notifications")
    WEBHOOK = "webhook", _("Webhook")
    IN_APP = "in_app", _("In-app message")


class Purpose(models.TextChoices):
    MARKETING = "marketing", _("Marketing")
    TRANSACTIONAL = "transactional", _("Transactional")


class Template(models.Model):
    """What a message says. Email: a subject, an HTML body and an optional plain-text
    part (made from the HTML when empty). Other channels: `text` alone."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )

    class Format(models.TextChoices):
        HTML = "html", _("HTML")
        MJML = "mjml", _("MJML (responsive)")

    name = models.CharField(max_length=200)
    channel = models.CharField(max_length=20, choices=Channel.choices, default=Channel.EMAIL)
    subject = models.CharField(max_length=500, blank=True)
    # How the author writes the body: HTML as sent, or MJML (kept in `source`) compiled
    # to HTML in `html` at each save. Either way `html` is what is rendered and sent.
    format = models.CharField(max_length=8, choices=Format.choices, default=Format.HTML)
    source = models.TextField(blank=True)
    html = models.TextField(blank=True)
    text = models.TextField(blank=True)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="channels_template_name"),
        ]

    def __str__(self) -> str:
        return self.name


class Broadcast(models.Model):
    """One message to every member of a segment, planned as a `Message` per member."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SCHEDULED = "scheduled", _("Scheduled")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        CANCELLED = "cancelled", _("Cancelled")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    name = models.CharField(max_length=200)
    channel = models.CharField(max_length=20, choices=Channel.choices, default=Channel.EMAIL)
    purpose = models.CharField(max_length=20, choices=Purpose.choices, default=Purpose.MARKETING)
    segment = models.ForeignKey(
        "segments.Segment", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    template = models.ForeignKey(Template, null=True, on_delete=models.PROTECT, related_name="+")
    # Content written in the broadcast itself, when there is no template.
    subject = models.CharField(max_length=500, blank=True)
    html = models.TextField(blank=True)
    text = models.TextField(blank=True)
    # A webhook broadcast: the receiver every recipient's signed call goes to.
    url = models.URLField(max_length=2000, blank=True)
    # The content decided per recipient by the decisions app (next best action) for
    # this placement; the broadcast's own content, if any, goes to those given nothing.
    decide = models.BooleanField(default=False)
    decide_placement = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    # The share of members kept as a control group (recorded, never sent).
    holdout = models.FloatField(default=0)
    # What the broadcast is meant to cause: customers doing this event within
    # `conversion_days` after the send, compared between recipients and the holdout.
    conversion_event = models.CharField(max_length=255, default="Order Completed", blank=True)
    conversion_days = models.PositiveSmallIntegerField(default=7)
    send_at = models.DateTimeField(null=True, blank=True)
    planned_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "-created_at"], name="channels_bc_ws_time")]

    def __str__(self) -> str:
        return self.name


class Message(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        SKIPPED = "skipped", _("Skipped")
        FAILED = "failed", _("Failed")
        BOUNCED = "bounced", _("Bounced")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    # Erasing the customer empties this: the row stays (counted in the broadcast's
    # results) and a send not yet made is skipped as `erased`.
    profile = models.ForeignKey(
        "profiles.Profile", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    broadcast = models.ForeignKey(
        Broadcast, null=True, blank=True, on_delete=models.CASCADE, related_name="messages"
    )
    channel = models.CharField(max_length=20, choices=Channel.choices)
    purpose = models.CharField(max_length=20, choices=Purpose.choices)
    template = models.ForeignKey(
        Template, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # {"subject", "html", "text"} when written for this message (no template).
    content = models.JSONField(default=dict, blank=True)
    # NULL, not "": unique only among the messages that have one.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    # The decision (rapport/decisions) whose action this message carries: its opens
    # and clicks are that action's impressions and clicks. No foreign key: the
    # channels know nothing of the decisions app.
    decision_id = models.UUIDField(null=True, blank=True)
    decision_action = models.CharField(max_length=64, blank=True)
    # The subject as sent (personalised), for the timeline and the message list.
    subject = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    skip_reason = models.CharField(max_length=40, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    provider_id = models.CharField(max_length=255, blank=True)
    # The queued task that claimed the send: the same task, taken over after its worker
    # died, may resume a send left `sending`; any other leaves it alone.
    claimed_by = models.CharField(max_length=64, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    bounced_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    # An in-app message the customer closed: no longer shown (rapport/channels/inapp.py).
    dismissed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["broadcast", "profile"],
                condition=Q(broadcast__isnull=False),
                name="channels_message_once_per_broadcast",
            ),
            models.UniqueConstraint(
                fields=["workspace", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="channels_message_idempotency",
            ),
        ]
        indexes = [
            # The contact policy: a customer's recent sends on a channel.
            models.Index(
                fields=["profile", "channel", "-sent_at"], name="channels_msg_profile_sent"
            ),
            models.Index(fields=["broadcast", "status"], name="channels_msg_bc_status"),
            # Providers' callbacks name the message by the id they gave it.
            models.Index(
                fields=["provider_id"], name="channels_msg_provider", condition=~Q(provider_id="")
            ),
            # The in-app messages a customer's app polls for.
            models.Index(
                fields=["profile", "-sent_at"],
                name="channels_msg_inapp_pending",
                condition=Q(channel="in_app", dismissed_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.status}"


class Suppression(models.Model):
    """An address never written to again on its channel (a bounce, a complaint, or a
    person's decision)."""

    class Reason(models.TextChoices):
        BOUNCE = "bounce", _("Bounced")
        COMPLAINT = "complaint", _("Complaint")
        MANUAL = "manual", _("Added by hand")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    channel = models.CharField(max_length=20, choices=Channel.choices, default=Channel.EMAIL)
    # Lower-cased email, or a phone number in E.164.
    address = models.CharField(max_length=320)
    reason = models.CharField(max_length=12, choices=Reason.choices)
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "channel", "address"], name="channels_suppression_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.address} ({self.reason})"


class ContactPolicy(models.Model):
    """How often a customer may receive marketing, and when not. Transactional messages
    are exempt from the caps and quiet hours (never from consent denied, suppression
    or erasure)."""

    workspace = models.OneToOneField(
        "tenancy.Workspace", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    # {"email": {"max": 2, "days": 7}, "sms": {"max": 1, "days": 7}}
    caps = models.JSONField(default=dict, blank=True)
    # Local hours (0-23) in the customer's time zone (their `timezone` trait, else
    # `timezone` below) during which marketing waits; equal hours: no quiet hours
    # (e.g. 21 and 8: nothing from 21:00 to 07:59, sent at 08:00).
    quiet_start = models.PositiveSmallIntegerField(default=0)
    quiet_end = models.PositiveSmallIntegerField(default=0)
    timezone = models.CharField(max_length=64, default="UTC")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"contact policy of {self.workspace_id}"


class EmailSettings(models.Model):
    """A workspace's sender and (optionally) its own transport. The transport URL is
    stored encrypted (`rapport.channels.secrets`) and never shown again: `transport_label`
    is the URL without its password."""

    workspace = models.OneToOneField(
        "tenancy.Workspace", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    from_email = models.EmailField(blank=True)
    from_name = models.CharField(max_length=200, blank=True)
    reply_to = models.EmailField(blank=True)
    transport_encrypted = models.TextField(blank=True)
    transport_label = models.CharField(max_length=500, blank=True)
    # SMS: the provider ("twilio" | "vonage"), its credentials as encrypted JSON (never
    # shown again), the sender (number or alphanumeric id) and the region numbers
    # without a country code are read in.
    sms_provider = models.CharField(max_length=20, blank=True)
    sms_credentials_encrypted = models.TextField(blank=True)
    sms_sender = models.CharField(max_length=32, blank=True)
    sms_default_region = models.CharField(max_length=2, blank=True)
    # The secret part of the providers' callback URLs, /m/sms/<provider>/<token>/.
    sms_callback_token = models.CharField(max_length=64, blank=True, db_index=True)
    # Standard Webhooks signing secret (whsec_...), encrypted; shown once when made.
    webhook_secret_encrypted = models.TextField(blank=True)
    # Web push: the workspace's VAPID key pair, made on first use (rapport/channels/push.py);
    # the private key encrypted, the public one is what sites subscribe browsers with.
    push_vapid_private_encrypted = models.TextField(blank=True)
    push_vapid_public_key = models.CharField(max_length=100, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"email settings of {self.workspace_id}"


class PushSubscription(models.Model):
    """A browser subscribed to web push for a customer (the `PushSubscription` a site's
    page posts to `POST /v1/push/subscriptions`). `gone_at`: the push service answered
    404 or 410, the browser unsubscribed; it is not written to again."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    profile = models.ForeignKey(
        "profiles.Profile", on_delete=models.CASCADE, related_name="push_subscriptions"
    )
    endpoint = models.URLField(max_length=2000)
    p256dh = models.CharField(max_length=200)
    auth = models.CharField(max_length=100)
    user_agent = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    gone_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "endpoint"], name="channels_push_subscription_endpoint"
            ),
        ]

    def __str__(self) -> str:
        return f"push subscription of {self.profile_id}"


class OutboxMail(models.Model):
    """Mail kept here instead of sent: the transport when none is set, so that a fresh
    install works with no mail server and its mail can be read in the UI."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    message_id = models.CharField(max_length=255, blank=True)
    from_email = models.CharField(max_length=500)
    to = models.JSONField(default=list)
    subject = models.CharField(max_length=1000, blank=True)
    text = models.TextField(blank=True)
    html = models.TextField(blank=True)
    headers = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "-created_at"], name="channels_outbox_ws")]

    def __str__(self) -> str:
        return self.subject
