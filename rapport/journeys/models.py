"""Journeys: a graph of steps (rapport/journeys/graph.py) that customers walk, one
`Enrolment` row each, its timers in the row.

Durable by construction: where a customer is (`step`), what it waits for (`due_at`,
`waiting_for`) and what already ran (`StepRun`, UNIQUE per enrolment, step and visit)
are rows, written in the transaction that runs the step. A runner reads only the rows
that are due, through a partial index on `due_at` that holds only live enrolments with
a timer: a million customers waiting three days cost an index entry each and no work
until their time comes. Whoever runs an enrolment holds it (`SELECT ... FOR UPDATE SKIP
LOCKED` on PostgreSQL, the `claimed_until` lease elsewhere), so two workers never run
the same step of the same enrolment.
"""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from uuid_utils.compat import uuid7


class Journey(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ACTIVE = "active", _("Active")
        PAUSED = "paused", _("Paused")
        STOPPED = "stopped", _("Stopped")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    # The number of the current `JourneyVersion`: new enrolments enter it.
    version = models.PositiveIntegerField(default=1)
    holdout_percent = models.PositiveSmallIntegerField(default=0)
    # Copied from the current version's graph, to be queried.
    goal = models.JSONField(default=dict, blank=True)
    reentry = models.JSONField(default=dict, blank=True)
    trigger = models.JSONField(default=dict, blank=True)
    trigger_type = models.CharField(max_length=40, default="manual")
    # The event's name for `trigger.type == "event"`, else "".
    trigger_event = models.CharField(max_length=255, blank=True)
    # The goal's event name (goal met by an event), else "".
    goal_event = models.CharField(max_length=255, blank=True)
    created_by = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(holdout_percent__lte=100), name="journeys_journey_holdout_range"
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "-created_at"], name="journeys_journey_ws"),
            models.Index(
                fields=["workspace", "trigger_type", "trigger_event"],
                name="journeys_journey_trigger",
                condition=Q(status="active"),
            ),
        ]

    def __str__(self) -> str:
        return self.name


class JourneyVersion(models.Model):
    """The graph as it was at one edit; enrolments keep the version they entered."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    journey = models.ForeignKey(
        Journey, on_delete=models.CASCADE, related_name="versions", db_index=False
    )
    number = models.PositiveIntegerField()
    graph = models.JSONField()
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["journey", "number"], name="journeys_version_number"),
        ]

    def __str__(self) -> str:
        return f"{self.journey_id} v{self.number}"


class Enrolment(models.Model):
    class State(models.TextChoices):
        ACTIVE = "active", _("Active")
        COMPLETED = "completed", _("Completed")
        CONVERTED = "converted", _("Converted")
        EXITED = "exited", _("Exited")
        HELD_OUT = "held_out", _("Held out")

    # The states of an enrolment still in the journey (at most one per customer).
    LIVE = ("active", "held_out")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    journey = models.ForeignKey(
        Journey, on_delete=models.CASCADE, related_name="enrolments", db_index=False
    )
    version = models.ForeignKey(
        JourneyVersion, on_delete=models.CASCADE, related_name="enrolments", db_index=False
    )
    profile = models.ForeignKey(
        "profiles.Profile", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE)
    # The step the customer is at: to run when due, or being waited at (`resume` set).
    step = models.CharField(max_length=100, blank=True)
    # How many times the customer has reached `step` (1 the first time): a StepRun is
    # unique per (enrolment, step, visit), so a step runs once per visit.
    visit = models.PositiveIntegerField(default=1)
    # Visits per step key, for the next time a step is reached (a loop through a wait).
    visits = models.JSONField(default=dict, blank=True)
    # Set while waiting at `step`: where to go when due ("" = the end). NULL: `step`
    # itself runs when due.
    resume = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    due_at = models.DateTimeField(null=True, blank=True)
    # The event a `wait_event` step waits for ("" when none).
    waiting_for = models.CharField(max_length=255, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    holdout = models.BooleanField(default=False)
    # The label (or index) of the split path taken last.
    path = models.CharField(max_length=100, blank=True)
    entered_at = models.DateTimeField()
    # The goal counts until then (the goal's `within_days`); NULL: no limit.
    goal_until = models.DateTimeField(null=True, blank=True)
    exited_at = models.DateTimeField(null=True, blank=True)
    exit_reason = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # Two triggers at once enrol a customer once.
            models.UniqueConstraint(
                fields=["journey", "profile"],
                condition=Q(state__in=("active", "held_out")),
                name="journeys_enrolment_live",
            ),
        ]
        indexes = [
            # The runner's only read: a workspace's live enrolments whose timer is set, by
            # time.
            models.Index(
                fields=["workspace", "due_at"],
                name="journeys_enrolment_due",
                condition=Q(state__in=("active", "held_out"), due_at__isnull=False),
            ),
            # Whether anyone waits for an event (the events consumer asks per name).
            models.Index(
                fields=["workspace", "waiting_for"],
                name="journeys_enrolment_waiting",
                condition=Q(state="active") & ~Q(waiting_for=""),
            ),
            models.Index(
                fields=["profile"],
                name="journeys_enrolment_profile",
                condition=Q(state__in=("active", "held_out")),
            ),
            models.Index(fields=["journey", "state", "step"], name="journeys_enrolment_counts"),
            models.Index(fields=["profile", "journey", "-entered_at"], name="journeys_enrol_hist"),
        ]

    def __str__(self) -> str:
        return f"{self.profile_id} in {self.journey_id} at {self.step} ({self.state})"


class StepRun(models.Model):
    """One step run for one enrolment: its outcome. UNIQUE (enrolment, step, visit):
    the step log that makes each step run at most once per visit."""

    # Never exposed by id; written in bulk.
    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="+", db_index=False)
    enrolment = models.ForeignKey(
        Enrolment, on_delete=models.CASCADE, related_name="runs", db_index=False
    )
    step = models.CharField(max_length=100)
    visit = models.PositiveIntegerField(default=1)
    # What happened: "sent", "held_out", "waiting", "yes", "no", "path:A", "skipped", ...
    outcome = models.CharField(max_length=60)
    detail = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["enrolment", "step", "visit"], name="journeys_steprun_once"
            ),
        ]
        indexes = [models.Index(fields=["journey", "step"], name="journeys_steprun_step")]

    def __str__(self) -> str:
        return f"{self.enrolment_id} {self.step}#{self.visit}: {self.outcome}"


class TriggerMark(models.Model):
    """A time trigger's occurrence already acted on (rapport/journeys/triggers.py), so
    that it enrols once: per customer and day for a date trait (`key` the local date),
    per moment for a schedule (no customer; `key` the occurrence in UTC)."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="+", db_index=False)
    profile = models.ForeignKey(
        "profiles.Profile",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
    )
    key = models.CharField(max_length=64)
    at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["journey", "profile", "key"],
                condition=Q(profile__isnull=False),
                name="journeys_mark_profile_once",
            ),
            models.UniqueConstraint(
                fields=["journey", "key"],
                condition=Q(profile__isnull=True),
                name="journeys_mark_moment_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.journey_id} {self.key} {self.profile_id or ''}"
