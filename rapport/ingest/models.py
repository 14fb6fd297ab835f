from django.db import models
from django.utils.translation import gettext_lazy as _
from uuid_utils.compat import uuid7

from rapport.core.models import WorkspaceOwnedModel


class EventType(models.TextChoices):
    IDENTIFY = "identify"
    TRACK = "track"
    PAGE = "page"
    SCREEN = "screen"
    GROUP = "group"
    ALIAS = "alias"


class Event(models.Model):
    """One Segment-spec call as stored: the corrected time, the ids, and what the
    client sent. Written only by `events_ingest`."""

    # Time-ordered ids keep the primary key index append-only under heavy ingestion.
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    source = models.ForeignKey(
        "tenancy.Source", null=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    message_id = models.CharField(max_length=255)
    # The customer, once identity resolution has run (follows merges and unmerges).
    # No constraint in the database: only resolution, merges and unmerges write it, with
    # profiles of the same transaction, and a deferred check of every event it sets cost
    # resolution a tenth of its time. Deleting a profile still nulls it (Django's
    # SET_NULL), and erasure deletes the events first.
    profile = models.ForeignKey(
        "profiles.Profile",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    type = models.CharField(max_length=8, choices=EventType.choices)
    # The track event's name, or the page or screen name.
    event = models.CharField(max_length=255, blank=True)
    user_id = models.CharField(max_length=255, blank=True)
    anonymous_id = models.CharField(max_length=255, blank=True)
    group_id = models.CharField(max_length=255, blank=True)
    previous_id = models.CharField(max_length=255, blank=True)
    # timestamp is the corrected time of the event; the rest is what the client said.
    timestamp = models.DateTimeField()
    received_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    original_timestamp = models.DateTimeField(null=True, blank=True)
    in_future = models.BooleanField(default=False)
    properties = models.JSONField(default=dict, blank=True)
    traits = models.JSONField(default=dict, blank=True)
    context = models.JSONField(default=dict, blank=True)
    integrations = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "message_id"], name="ingest_event_message_id_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "-timestamp"], name="ingest_event_ws_time"),
            # The indexes below hold only the events that have the value they are keyed
            # on (a query always names one): each index entry costs every insert and
            # every resolution of an event (measured: the user and anonymous id indexes
            # were 40% of setting 5,000 events' profile), and page views have no user
            # id, identify calls no event name.
            models.Index(
                fields=["workspace", "user_id", "-timestamp"],
                name="ingest_event_ws_user",
                condition=~models.Q(user_id=""),
            ),
            models.Index(
                fields=["workspace", "anonymous_id", "-timestamp"],
                name="ingest_event_ws_anon",
                condition=~models.Q(anonymous_id=""),
            ),
            # Events by name in a time window; with the profile in the key, a segment's
            # "did X n times in the last 90 days" reads the index alone (measured: 2.2 s
            # down to 1.0 s over 20M events).
            models.Index(
                fields=["workspace", "event", "-timestamp", "profile"],
                name="ingest_event_ws_name_profile",
                condition=~models.Q(event=""),
            ),
            # The profile's timeline.
            models.Index(
                fields=["workspace", "profile", "-timestamp"], name="ingest_event_ws_profile"
            ),
            # An account's own group calls (few: the index holds only them).
            models.Index(
                fields=["workspace", "group_id", "-timestamp"],
                name="ingest_event_ws_group",
                condition=~models.Q(group_id=""),
            ),
            # The debugger's "last events received": the order of arrival, which an
            # import of old history or a late mobile batch makes differ from event time.
            models.Index(
                fields=["workspace", "-received_at", "-id"], name="ingest_event_ws_received"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event or ''} {self.message_id}"


class QuarantinedEvent(models.Model):
    """An item that was refused, kept with the reason so that whoever sends it can
    see what to fix."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    source = models.ForeignKey(
        "tenancy.Source", null=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    received_at = models.DateTimeField()
    reason = models.TextField()
    field = models.CharField(max_length=100, blank=True)
    message_id = models.CharField(max_length=255, blank=True)
    payload = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "-received_at"], name="ingest_quarantine_ws_time"),
        ]

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


# The API documents an enumeration by its class name, which must be unique across the
# apps: `Kind` is a source's kind (tenancy), hence these names.
class ImportKind(models.TextChoices):
    EVENTS = "events", _("Events (JSON Lines)")
    CUSTOMERS = "customers", _("Customers (CSV)")


class ImportStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ImportJob(WorkspaceOwnedModel):
    """A file being imported. Progress is committed with each chunk of rows, so that a
    re-run of the same file resumes where it stopped and stores nothing twice."""

    Kind = ImportKind
    Status = ImportStatus

    kind = models.CharField(max_length=20, choices=Kind.choices)
    filename = models.CharField(max_length=255)
    file_sha256 = models.CharField(max_length=64)
    file_size = models.BigIntegerField(default=0)
    stored_path = models.CharField(max_length=500, blank=True)
    id_column = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    rows_done = models.BigIntegerField(default=0)
    # Counted when the job is created, for progress; a CSV value spanning lines makes it
    # an estimate.
    rows_total = models.BigIntegerField(null=True, blank=True)
    accepted = models.BigIntegerField(default=0)
    rejected = models.BigIntegerField(default=0)
    # The first reasons for rejection, with their line numbers.
    errors = models.JSONField(default=list, blank=True)
    failure = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "kind", "file_sha256", "id_column"],
                name="ingest_importjob_file_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} import of {self.filename}"


class PipelineBatch(models.Model):
    """Events stored together and not yet through every consumer of the pipeline
    (rapport/ingest/pipeline.py). Written in the transaction that stores the events;
    deleted when its last step is done, so the table holds only unfinished work."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    created_at = models.DateTimeField()
    # The events by messageId (unique in the workspace), as the ingest stored them.
    message_ids = models.JSONField(default=list)
    size = models.IntegerField()
    # A worker on it until then (renewed between consumers); after that, a dead one.
    claimed_until = models.DateTimeField(null=True, blank=True)
    # When the sweeper last handed it to a worker again.
    swept_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "created_at"], name="ingest_pipebatch_ws_time"),
        ]

    def __str__(self) -> str:
        return f"batch of {self.size} events at {self.created_at}"


class PipelineStep(models.Model):
    """One consumer's unfinished work on one batch: deleted in the transaction that
    commits the work. A failure is recorded here, retried at `next_at`, and after
    too many tries parked (`parked_at`) until someone retries it."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    # Indexed by the unique constraint below, which starts with it.
    batch = models.ForeignKey(
        PipelineBatch, on_delete=models.CASCADE, related_name="steps", db_index=False
    )
    consumer = models.CharField(max_length=50)
    next_at = models.DateTimeField()
    attempts = models.IntegerField(default=0)
    last_error = models.TextField(blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    parked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["batch", "consumer"], name="ingest_pipestep_batch_consumer_unique"
            ),
        ]
        indexes = [
            models.Index(
                fields=["workspace", "consumer", "next_at"], name="ingest_pipestep_ws_consumer"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.consumer} on {self.batch_id}"
