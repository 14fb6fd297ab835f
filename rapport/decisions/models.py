"""Next best action: the catalogue of actions (offers, messages, service actions),
an adaptive propensity model per action, and the log of every decision and outcome.

A decision (`Decision`) answers "what should this customer get now, on this channel
and placement": the eligible actions are ranked by priority = propensity x context
weight x value x lever (as in Pega Customer Decision Hub), and the first `limit` are
given, one `DecisionAction` row each. Outcomes (`Outcome`, UNIQUE per decision,
action and outcome, so a retry records nothing twice) label those rows; the learner
folds each labelled row into the action's `ActionModel` once (`learned_at`).
"""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from uuid_utils.compat import uuid7


class Channel(models.TextChoices):
    WEB = "web", _("Website")
    APP = "app", _("Mobile app")
    ASSISTED = "assisted", _("Agent's screen")
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")
    PUSH = "push", _("Push")
    IN_APP = "in_app", _("In-app")
    WEBHOOK = "webhook", _("Webhook")


# Channels that reach out to the customer: consent, suppression and the contact
# policy of the channels app apply. The others answer a customer who is already here.
OUTBOUND = frozenset({"email", "sms", "push", "webhook"})


class OutcomeKind(models.TextChoices):
    IMPRESSION = "impression", _("Impression")
    CLICKED = "clicked", _("Clicked")
    ACCEPTED = "accepted", _("Accepted")
    DECLINED = "declined", _("Declined")
    CONVERTED = "converted", _("Converted")


# What the learner counts as a success; "declined", or an impression with none of
# these within the response window, is a failure.
POSITIVE = frozenset({"clicked", "accepted", "converted"})


class DecisionSettings(models.Model):
    """A workspace's decision settings: the control group, the context weights and
    how fast old evidence fades."""

    class ControlMode(models.TextChoices):
        RANDOM = "random", _("A random eligible action")
        NOTHING = "nothing", _("Nothing")

    workspace = models.OneToOneField(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", primary_key=True
    )
    # Share of customers (stable per customer) in the control group, 0-50.
    control_percent = models.PositiveSmallIntegerField(default=5)
    control_mode = models.CharField(
        max_length=10, choices=ControlMode.choices, default=ControlMode.RANDOM
    )
    # {channel: weight} and {placement: weight}; absent means 1.
    channel_weights = models.JSONField(default=dict, blank=True)
    placement_weights = models.JSONField(default=dict, blank=True)
    # An impression with no positive outcome within this window is a failure.
    response_window_hours = models.PositiveIntegerField(default=24)
    # Evidence older than this weighs half as much (the models drift to the prior).
    half_life_days = models.FloatField(default=30.0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(control_percent__lte=50), name="decisions_settings_control_range"
            ),
            models.CheckConstraint(
                condition=Q(half_life_days__gt=0), name="decisions_settings_half_life_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"decision settings of {self.workspace_id}"


class Action(models.Model):
    """An offer, a message or a service action that a decision may give."""

    class Kind(models.TextChoices):
        OFFER = "offer", _("Offer")
        MESSAGE = "message", _("Message")
        SERVICE = "service", _("Service action")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    key = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.OFFER)
    # Channel values (Channel); an action is considered only on these.
    channels = models.JSONField(default=list)
    # Placement names ("home_banner", "cart"); empty: any placement.
    placements = models.JSONField(default=list, blank=True)
    # {channel: {"title", "body", "image_url", "link_url", ...}}
    content = models.JSONField(default=dict, blank=True)
    template = models.ForeignKey(
        "channels.Template",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    # Money in `currency`, or a plain weight when `currency` is blank.
    value = models.DecimalField(max_digits=18, decimal_places=4, default=1)
    currency = models.CharField(max_length=3, blank=True)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    # At most this many decisions in all give it (budget), or per UTC day (capacity).
    budget = models.PositiveIntegerField(null=True, blank=True)
    daily_capacity = models.PositiveIntegerField(null=True, blank=True)
    given = models.PositiveIntegerField(default=0)
    # A segment rule (rapport/segments/rules.py); empty: everyone.
    eligibility = models.JSONField(default=dict, blank=True)
    # The business lever, and one per channel ({channel: lever}); absent means 1.
    lever = models.FloatField(default=1.0)
    channel_levers = models.JSONField(default=dict, blank=True)
    # The propensity a new action starts from (the prior's mean).
    prior_propensity = models.FloatField(default=0.05)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="decisions_action_key"),
            models.CheckConstraint(condition=Q(lever__gte=0), name="decisions_action_lever"),
            models.CheckConstraint(condition=Q(value__gte=0), name="decisions_action_value"),
            models.CheckConstraint(
                condition=Q(prior_propensity__gt=0) & Q(prior_propensity__lt=1),
                name="decisions_action_prior",
            ),
        ]

    def __str__(self) -> str:
        return self.key


class ActionUsage(models.Model):
    """How many decisions gave an action on one UTC day (its daily capacity)."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    action = models.ForeignKey(Action, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    given = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["action", "day"], name="decisions_usage_day"),
        ]

    def __str__(self) -> str:
        return f"{self.action_id} on {self.day}: {self.given}"


class ActionModel(models.Model):
    """An action's adaptive propensity model (rapport/decisions/learner.py): the mean
    and variance of a weight per hashed predictor, as float64 bytes."""

    action = models.OneToOneField(
        Action, on_delete=models.CASCADE, related_name="model", primary_key=True
    )
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    dims = models.PositiveIntegerField()
    mean = models.BinaryField()
    variance = models.BinaryField()
    # Decayed counts of the evidence learned, for the reports.
    positives = models.FloatField(default=0)
    negatives = models.FloatField(default=0)
    # Every outcome learned, never decayed.
    learned = models.PositiveBigIntegerField(default=0)
    # Bumped on every update: decision processes reload a model whose version moved.
    version = models.PositiveBigIntegerField(default=0)
    decayed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"model of {self.action_id} v{self.version}"


class Decision(models.Model):
    """One decision: who, where, whether in the control group, and the predictors it
    was made with (hashed indices, so the learner learns from what was known then)."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    profile = models.ForeignKey(
        "profiles.Profile", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    placement = models.CharField(max_length=100, blank=True)
    context = models.JSONField(default=dict, blank=True)
    control = models.BooleanField(default=False)
    # Who asked: "api", "journey", "broadcast", "email_open".
    origin = models.CharField(max_length=20, default="api")
    features = models.JSONField(default=list)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "-created_at"], name="decisions_decision_ws"),
            models.Index(fields=["profile", "-created_at"], name="decisions_decision_profile"),
        ]

    def __str__(self) -> str:
        return f"decision {self.pk}"


class DecisionAction(models.Model):
    """An action a decision gave, with the numbers behind its rank, and its label once
    the outcome is known (1 success, 0 failure)."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    decision = models.ForeignKey(Decision, on_delete=models.CASCADE, related_name="given")
    action = models.ForeignKey(Action, on_delete=models.CASCADE, related_name="+", db_index=False)
    rank = models.PositiveSmallIntegerField()
    priority = models.FloatField()
    propensity = models.FloatField()
    value = models.DecimalField(max_digits=18, decimal_places=4)
    control = models.BooleanField(default=False)
    impression_at = models.DateTimeField(null=True, blank=True)
    label = models.SmallIntegerField(null=True, blank=True)
    labelled_at = models.DateTimeField(null=True, blank=True)
    learned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["decision", "action"], name="decisions_given_once"),
        ]
        indexes = [
            models.Index(fields=["action", "created_at"], name="decisions_given_action"),
            # The learner's queue: labelled, not yet learned.
            models.Index(
                fields=["workspace", "labelled_at"],
                name="decisions_given_to_learn",
                condition=Q(label__isnull=False, learned_at__isnull=True),
            ),
            # Impressions waiting for their window to close.
            models.Index(
                fields=["workspace", "impression_at"],
                name="decisions_given_open",
                condition=Q(label__isnull=True, impression_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.decision_id} gave {self.action_id}"


class Outcome(models.Model):
    """A customer's answer to an action a decision gave; once per decision, action and
    outcome."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    decision = models.ForeignKey(Decision, on_delete=models.CASCADE, related_name="outcomes")
    action = models.ForeignKey(Action, on_delete=models.CASCADE, related_name="+", db_index=False)
    outcome = models.CharField(max_length=12, choices=OutcomeKind.choices)
    at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["decision", "action", "outcome"], name="decisions_outcome_once"
            ),
        ]
        indexes = [
            models.Index(fields=["action", "outcome", "at"], name="decisions_outcome_action"),
        ]

    def __str__(self) -> str:
        return f"{self.decision_id} {self.action_id} {self.outcome}"


class BlockDecision(models.Model):
    """The decision behind a block of an email decided when it is opened
    (`{% next_best_action placement="..." %}`): made once per message and placement,
    when its image is first loaded, so that reloading it shows the same action."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    message = models.ForeignKey(
        "channels.Message", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    placement = models.CharField(max_length=100, blank=True)
    decision = models.ForeignKey(Decision, on_delete=models.CASCADE, related_name="+")
    # None: the decision gave nothing (a control customer, nothing eligible).
    action = models.ForeignKey(
        Action, null=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "placement"], name="decisions_block_once"),
        ]

    def __str__(self) -> str:
        return f"block {self.placement} of {self.message_id}"
