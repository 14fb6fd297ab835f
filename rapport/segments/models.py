from django.db import models
from uuid_utils.compat import uuid7


class Segment(models.Model):
    """A group of customers: by a rule that keeps itself up to date (dynamic), or a
    list (static: uploaded, or a snapshot of a dynamic one)."""

    class Kind(models.TextChoices):
        DYNAMIC = "dynamic"
        STATIC = "static"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.DYNAMIC)
    # The rule (rapport/segments/rules.py) of a dynamic segment; {} for a static one.
    rule = models.JSONField(default=dict, blank=True)
    # Segments this one's rule refers to (refreshed first; a cycle is refused).
    depends_on = models.JSONField(default=list, blank=True)
    # Whether the rule has a time window (re-checked on a schedule, not only on events).
    timed = models.BooleanField(default=False)
    size = models.BigIntegerField(default=0)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    refresh_seconds = models.FloatField(null=True, blank=True)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="segments_segment_name"),
        ]

    def __str__(self) -> str:
        return self.name


class SegmentMembership(models.Model):
    """One stay of a profile in a segment: when it entered and when it left. The
    current members are the rows not left; the rows left are the history."""

    # Never exposed by id; a plain sequence lets membership be written by INSERT ... SELECT.
    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    segment = models.ForeignKey(
        Segment, on_delete=models.CASCADE, related_name="memberships", db_index=False
    )
    profile = models.ForeignKey(
        "profiles.Profile", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    entered_at = models.DateTimeField()
    left_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # A profile is in a segment at most once at a time.
            models.UniqueConstraint(
                fields=["segment", "profile"],
                condition=models.Q(left_at__isnull=True),
                name="segments_membership_current",
            ),
        ]
        indexes = [
            models.Index(fields=["segment", "-entered_at"], name="segments_membership_entered"),
            models.Index(fields=["profile", "segment"], name="segments_membership_profile"),
            # Who left lately (home's "segments that shrank"): only the rows that left.
            models.Index(
                fields=["segment", "-left_at"],
                name="segments_membership_left",
                condition=models.Q(left_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.profile_id} in {self.segment_id}"


class RfmScore(models.Model):
    """A customer's recency, frequency and monetary value, their 1-5 scores within the
    workspace, and the named cell. Only customers who bought have one."""

    profile = models.OneToOneField(
        "profiles.Profile", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    last_purchase_at = models.DateTimeField()
    recency_days = models.IntegerField()
    frequency = models.IntegerField()
    # In `currency` (the workspace's reporting currency when computed), purchases in
    # a currency without an exchange rate left out.
    monetary = models.DecimalField(max_digits=18, decimal_places=2)
    currency = models.CharField(max_length=3, blank=True)
    r = models.SmallIntegerField()
    f = models.SmallIntegerField()
    m = models.SmallIntegerField()
    cell = models.CharField(max_length=30)
    computed_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["workspace", "cell"], name="segments_rfm_ws_cell")]

    def __str__(self) -> str:
        return f"{self.r}{self.f}{self.m} {self.cell}"


class LifecycleStage(models.Model):
    """A stage of the workspace's lifecycle, or a sub-stage of one (`parent`). Stages
    are checked in `position` order, a stage's sub-stages before it; the first whose
    rule matches is the customer's stage. The last stage catches everyone else."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    key = models.SlugField(max_length=60)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    position = models.IntegerField(default=0)
    rule = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="segments_stage_key"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def label(self) -> str:
        """The name in the person's language (a default name is translated)."""
        from rapport.segments.lifecycle import stage_label

        return stage_label(self.key, self.name)

    @property
    def description_label(self) -> str:
        """The description in the person's language (a default one is translated)."""
        from rapport.segments.lifecycle import stage_description

        return stage_description(self.key, self.description)


class LifecycleState(models.Model):
    """A customer's current lifecycle stage (and sub-stage) and since when."""

    profile = models.OneToOneField(
        "profiles.Profile", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    stage = models.CharField(max_length=60)
    sub_stage = models.CharField(max_length=60, blank=True)
    since = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["workspace", "stage"], name="segments_lifecycle_ws_stage")]

    def __str__(self) -> str:
        return self.sub_stage or self.stage


class LifecycleChange(models.Model):
    """A customer moved from one stage to another (from "" on the first placement)."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    profile = models.ForeignKey(
        "profiles.Profile", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    from_stage = models.CharField(max_length=60, blank=True)
    from_sub_stage = models.CharField(max_length=60, blank=True)
    to_stage = models.CharField(max_length=60)
    to_sub_stage = models.CharField(max_length=60, blank=True)
    at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "-at"], name="segments_lifechange_ws_time"),
            models.Index(fields=["profile", "-at"], name="segments_lifechange_profile"),
        ]

    def __str__(self) -> str:
        return f"{self.from_stage} -> {self.to_stage}"


class AudienceSchedule(models.Model):
    """A segment's hashed audience (Google Customer Match, Meta) written to a file on a
    schedule, each run honouring consent as it stands then (rapport/segments/audiences.py)."""

    class Every(models.TextChoices):
        DAILY = "daily"
        WEEKLY = "weekly"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    segment = models.ForeignKey(
        Segment, on_delete=models.CASCADE, related_name="audience_schedules"
    )
    format = models.CharField(max_length=10)
    every = models.CharField(max_length=10, choices=Every.choices, default=Every.DAILY)
    # The hour of the day (UTC) it runs at.
    hour = models.PositiveSmallIntegerField(default=3)
    next_run_at = models.DateTimeField()
    last_run_at = models.DateTimeField(null=True, blank=True)
    # The last run's counts: members, exported, no_consent, no_identifier.
    last_counts = models.JSONField(default=dict, blank=True)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "next_run_at"], name="segments_audsched_due"),
        ]

    def __str__(self) -> str:
        return f"{self.format} {self.every} of {self.segment_id}"


class AudienceRun(models.Model):
    """One run of an audience schedule: its file (under RAPPORT_EXPORT_DIR) and counts."""

    class Status(models.TextChoices):
        DONE = "done"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    schedule = models.ForeignKey(AudienceSchedule, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=10, choices=Status.choices)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    # Relative to RAPPORT_EXPORT_DIR; "" when the run failed.
    file = models.CharField(max_length=500, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["schedule", "-started_at"], name="segments_audrun_sched")]

    def __str__(self) -> str:
        return f"{self.status} {self.started_at}"
