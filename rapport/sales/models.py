"""The sales team's records: owners of customers and accounts, pipelines of ordered
stages, deals moving through them (every move kept), tasks, and notes of calls,
meetings and emails.

A deal carries a `version` that every change bumps: a move names the version it was
read at, so of two people moving the same deal at once one wins and the other is told
(409) instead of silently overwriting. Its `status` (open, won, lost) follows the
kind of its stage.
"""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from rapport.core.models import WorkspaceOwnedModel


class Pipeline(WorkspaceOwnedModel):
    name = models.CharField(max_length=100)
    position = models.PositiveIntegerField(default=0)
    # The currency a new deal of this pipeline takes when none is given.
    currency = models.CharField(max_length=3, default="USD")

    class Meta:
        ordering = ["position", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="sales_pipeline_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class StageKind(models.TextChoices):
    OPEN = "open", _("Open")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


class Stage(WorkspaceOwnedModel):
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="stages")
    name = models.CharField(max_length=100)
    position = models.PositiveIntegerField()
    # Chance that a deal in this stage is won, 0-100: weighs the forecast.
    probability = models.PositiveSmallIntegerField(default=0)
    kind = models.CharField(max_length=10, choices=StageKind.choices, default=StageKind.OPEN)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "name"], name="sales_stage_name_unique"),
            models.CheckConstraint(
                condition=Q(probability__lte=100), name="sales_stage_probability_range"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Deal(WorkspaceOwnedModel):
    pipeline = models.ForeignKey(Pipeline, on_delete=models.PROTECT, related_name="deals")
    stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="deals")
    name = models.CharField(max_length=200)
    amount = models.DecimalField(max_digits=18, decimal_places=4, default=0)
    currency = models.CharField(max_length=3)
    expected_close = models.DateField(null=True, blank=True)
    owner = models.ForeignKey(
        "tenancy.Membership", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    profile = models.ForeignKey(
        "profiles.Profile", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    account = models.ForeignKey(
        "profiles.Account", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=10, choices=StageKind.choices, default=StageKind.OPEN)
    stage_changed_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        indexes = [
            # The board: a pipeline's open deals by stage.
            models.Index(
                fields=["workspace", "pipeline", "status", "stage"], name="sales_deal_board"
            ),
            # A column of the board: a stage's most recently moved deals first.
            models.Index(fields=["stage", "-stage_changed_at"], name="sales_deal_column"),
            models.Index(fields=["workspace", "owner", "status"], name="sales_deal_owner"),
            models.Index(fields=["profile"], name="sales_deal_profile"),
            models.Index(fields=["account"], name="sales_deal_account"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="sales_deal_amount_positive")
        ]

    def __str__(self) -> str:
        return self.name


class DealStageChange(WorkspaceOwnedModel):
    """One move of a deal, kept for its history, the timeline and the forecast."""

    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="changes")
    from_stage = models.ForeignKey(
        Stage, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    to_stage = models.ForeignKey(Stage, on_delete=models.SET_NULL, null=True, related_name="+")
    from_name = models.CharField(max_length=100, blank=True)
    to_name = models.CharField(max_length=100)
    actor_label = models.CharField(max_length=200)
    at = models.DateTimeField()

    class Meta:
        ordering = ["at"]
        indexes = [models.Index(fields=["deal", "at"], name="sales_change_deal")]


class Task(WorkspaceOwnedModel):
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # A task due on a day (all_day) is overdue once that day has passed where its
    # reader is; one due at a time, once that time has passed.
    due_at = models.DateTimeField(null=True, blank=True)
    all_day = models.BooleanField(default=False)
    remind_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    assignee = models.ForeignKey(
        "tenancy.Membership", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    profile = models.ForeignKey(
        "profiles.Profile", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    account = models.ForeignKey(
        "profiles.Account", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    deal = models.ForeignKey(
        Deal, on_delete=models.SET_NULL, null=True, blank=True, related_name="tasks"
    )
    done_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=200)
    # Set when a journey step made it: a retried step finds its task instead of
    # making a second (UNIQUE).
    journey_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001

    class Meta:
        indexes = [
            models.Index(
                fields=["workspace", "assignee", "done_at", "due_at"], name="sales_task_mine"
            ),
            models.Index(fields=["profile"], name="sales_task_profile"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "journey_key"],
                condition=Q(journey_key__isnull=False),
                name="sales_task_journey_once",
            )
        ]

    def __str__(self) -> str:
        return self.title


class NoteKind(models.TextChoices):
    NOTE = "note", _("Note")
    CALL = "call", _("Call")
    MEETING = "meeting", _("Meeting")
    EMAIL = "email", _("Email")


class Note(WorkspaceOwnedModel):
    """A note, or a logged call, meeting or email, on a customer, an account or a deal.
    Its body is HTML sanitised when written (nh3)."""

    kind = models.CharField(max_length=10, choices=NoteKind.choices, default=NoteKind.NOTE)
    body = models.TextField()
    occurred_at = models.DateTimeField()
    author = models.ForeignKey(
        "tenancy.Membership", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    author_label = models.CharField(max_length=200)
    profile = models.ForeignKey(
        "profiles.Profile", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    account = models.ForeignKey(
        "profiles.Account", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    deal = models.ForeignKey(
        Deal, on_delete=models.SET_NULL, null=True, blank=True, related_name="notes"
    )
    mentions = models.ManyToManyField("tenancy.Membership", blank=True, related_name="+")

    class Meta:
        indexes = [
            models.Index(fields=["profile", "occurred_at"], name="sales_note_profile"),
            models.Index(fields=["account", "occurred_at"], name="sales_note_account"),
        ]


class Notification(WorkspaceOwnedModel):
    """Something a member should see: a mention in a note, a task given to them."""

    member = models.ForeignKey("tenancy.Membership", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20)
    text = models.CharField(max_length=300)
    link = models.CharField(max_length=300, blank=True)
    note = models.ForeignKey(
        Note, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    task = models.ForeignKey(
        Task, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["member", "read_at"], name="sales_notification_unread")]


class Owner(WorkspaceOwnedModel):
    """The member who owns a customer or an account (one each)."""

    member = models.ForeignKey("tenancy.Membership", on_delete=models.CASCADE, related_name="+")
    profile = models.OneToOneField(
        "profiles.Profile", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    account = models.OneToOneField(
        "profiles.Account", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["workspace", "member"], name="sales_owner_member")]
        constraints = [
            models.CheckConstraint(
                condition=Q(profile__isnull=False, account__isnull=True)
                | Q(profile__isnull=True, account__isnull=False),
                name="sales_owner_one_subject",
            )
        ]


class LeadModel(WorkspaceOwnedModel):
    """A trained lead score: a logistic regression on the customers of won and lost
    deals, as they were when each deal opened. `params` holds what scoring needs (the
    features' means and scales, the industries, the coefficients); `metrics` its
    cross-validated ROC AUC against the prior-only baseline."""

    version = models.PositiveIntegerField()
    deals = models.PositiveIntegerField()
    won = models.PositiveIntegerField()
    params = models.JSONField()
    metrics = models.JSONField()

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "version"], name="sales_leadmodel_version_unique"
            )
        ]


class LeadScore(models.Model):
    """A customer's current lead score: the chance that a deal with them is won, and
    the features that move it most."""

    profile = models.OneToOneField(
        "profiles.Profile", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    model = models.ForeignKey(LeadModel, on_delete=models.CASCADE, related_name="+")
    probability = models.FloatField()
    reasons = models.JSONField(default=list)
    scored_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["workspace", "probability"], name="sales_leadscore_ranked")]

    def __str__(self) -> str:
        return f"{self.profile_id}: {self.probability:.2f}"
