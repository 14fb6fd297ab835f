"""The model registry (every trained version with its data window, features, metrics
and who trained it), each customer's current scores, and the churn drivers found with
a churn model."""

from django.db import models
from django.utils.translation import gettext_lazy as _
from uuid_utils.compat import uuid7

from rapport.core.money import MONEY_DIGITS, MONEY_PLACES


class PredictionSettings(models.Model):
    """Per workspace: what counts as churn, and how lifetime value is computed. The
    scheduled retraining uses these; the CLI and API can override them per run."""

    class Label(models.TextChoices):
        EVENT = "event", "A cancellation event within a horizon"
        INACTIVE = "inactive", "No activity for a number of days"
        TRAIT = "trait", "A trait (e.g. from billing)"

    workspace = models.OneToOneField(
        "tenancy.Workspace", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    churn_label = models.CharField(max_length=10, choices=Label.choices, default=Label.INACTIVE)
    churn_event = models.CharField(max_length=255, blank=True)
    churn_horizon_days = models.IntegerField(default=30)
    churn_inactive_days = models.IntegerField(default=30)
    churn_trait = models.CharField(max_length=255, blank=True)
    churn_positive = models.CharField(max_length=255, blank=True)
    clv_time_unit = models.CharField(max_length=4, default="week")
    clv_months = models.IntegerField(default=12)
    clv_monthly_discount = models.FloatField(default=0.01)
    # Why the last training in the background failed (cleared by the next success).
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"prediction settings of {self.workspace_id}"


class PredictionModel(models.Model):
    """One trained version of a workspace's churn or CLV model."""

    class Kind(models.TextChoices):
        CLV = "clv", _("Lifetime value (BG/NBD + Gamma-Gamma)")
        CHURN = "churn", _("Churn risk (gradient boosting)")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=5, choices=Kind.choices)
    version = models.IntegerField()
    # What it was asked to do (label, horizon, time unit, cut-off).
    config = models.JSONField(default=dict)
    # Fitted parameters (CLV), or the feature specification (churn).
    params = models.JSONField(default=dict)
    features = models.JSONField(default=list)
    metrics = models.JSONField(default=dict)
    # The churn model's booster and calibration (LightGBM text model + JSON).
    artifact = models.TextField(blank=True)
    data_from = models.DateTimeField(null=True, blank=True)
    data_to = models.DateTimeField(null=True, blank=True)
    trained_by = models.CharField(max_length=200, blank=True)
    trained_at = models.DateTimeField()
    seconds = models.FloatField(default=0)
    scored_at = models.DateTimeField(null=True, blank=True)
    scored = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "kind", "version"], name="predictions_model_version"
            )
        ]
        ordering = ["-trained_at"]

    def __str__(self) -> str:
        return f"{self.kind} v{self.version}"


class ChurnScore(models.Model):
    """A customer's current churn probability, risk band and top reasons."""

    class Band(models.TextChoices):
        LOW = "low", _("Low")
        MEDIUM = "medium", _("Medium")
        HIGH = "high", _("High")

    profile = models.OneToOneField(
        "profiles.Profile", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    model = models.ForeignKey(PredictionModel, on_delete=models.CASCADE, related_name="+")
    probability = models.FloatField()
    band = models.CharField(max_length=6, choices=Band.choices)
    # [{"feature", "label", "value", "contribution"}], the largest pushes towards churn.
    reasons = models.JSONField(default=list)
    computed_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "band"], name="predictions_churn_ws_band"),
            models.Index(fields=["workspace", "probability"], name="predictions_churn_ws_prob"),
        ]

    def __str__(self) -> str:
        return f"{self.probability:.2f} {self.band}"


class ClvScore(models.Model):
    """A buyer's current BG/NBD and Gamma-Gamma figures. Only customers who bought have
    one."""

    profile = models.OneToOneField(
        "profiles.Profile", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    model = models.ForeignKey(PredictionModel, on_delete=models.CASCADE, related_name="+")
    frequency = models.IntegerField()
    recency = models.FloatField()
    age = models.FloatField()
    p_alive = models.FloatField()
    expected_purchases_30 = models.FloatField()
    expected_purchases_90 = models.FloatField()
    expected_purchases_365 = models.FloatField()
    # Money, in `currency` (the reporting currency the model learnt in), as
    # `rapport.core.money.MONEY_DIGITS` / `MONEY_PLACES` say (18 digits, 4 after the
    # point). The model's math stays in floats; only what is stored is Decimal. Null
    # where the math gave no number (NaN), rather than a made-up zero.
    expected_order_value = models.DecimalField(
        max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES, null=True
    )
    clv = models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES, null=True)
    currency = models.CharField(max_length=3, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["workspace", "clv"], name="predictions_clv_ws_clv")]

    def __str__(self) -> str:
        return f"{self.clv} {self.currency}"


class ChurnDriver(models.Model):
    """A behaviour found with a churn model, with how much more (or less) often the
    customers who show it churn than those who don't."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    model = models.ForeignKey(PredictionModel, on_delete=models.CASCADE, related_name="drivers")
    rank = models.IntegerField()
    kind = models.CharField(max_length=20)
    # What the behaviour is about (event, days, threshold, trait, value): the UI words it.
    params = models.JSONField(default=dict)
    description = models.CharField(max_length=500)
    # The segment rule that selects the customers who show the behaviour.
    rule = models.JSONField(default=dict)
    support = models.IntegerField()
    churn_rate = models.FloatField()
    churn_rate_others = models.FloatField()
    relative_risk = models.FloatField()
    ci_low = models.FloatField()
    ci_high = models.FloatField()

    class Meta:
        ordering = ["rank"]
        indexes = [models.Index(fields=["model", "rank"], name="predictions_driver_rank")]

    def __str__(self) -> str:
        return self.description
