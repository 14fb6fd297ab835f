"""Abstract bases every domain model builds on."""

import uuid

from django.db import models


class TimeStampedModel(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class WorkspaceOwnedModel(TimeStampedModel):
    """A domain row: it belongs to exactly one workspace, the isolation boundary."""

    workspace = models.ForeignKey("tenancy.Workspace", on_delete=models.CASCADE, related_name="+")

    class Meta:
        abstract = True


class ScheduledRun(models.Model):
    """When a periodic job (rapport/core/schedule.py) is next due for a workspace. A
    worker claims a due run by moving `next_at` with a conditional UPDATE: of several
    workers only one enqueues it."""

    name = models.CharField(max_length=100)
    workspace = models.ForeignKey("tenancy.Workspace", on_delete=models.CASCADE, related_name="+")
    next_at = models.DateTimeField()
    last_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "workspace"], name="core_scheduledrun_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name} at {self.next_at}"


class WorkerProcess(models.Model):
    """A running `rapport worker` (rapport/core/leases.py): it beats every few seconds.
    The tasks it runs are tied to it by the worker id the task queue records at claim
    time (`DBTaskResult.worker_ids[-1]`), so a claim and its owner are one write."""

    id = models.CharField(primary_key=True, max_length=64)
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    # The process's start time in clock ticks since boot (Linux): with the pid, it tells
    # a live worker on this host from a new process that reuses a dead one's pid.
    process_start = models.BigIntegerField(null=True, blank=True)
    started_at = models.DateTimeField()
    beat_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)
    lost_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["beat_at"], name="core_workerprocess_beat_idx")]

    def __str__(self) -> str:
        return f"worker {self.id} ({self.host} pid {self.pid})"


class TaskTakeover(models.Model):
    """A task taken from a worker that stopped beating: put back to READY for another
    worker, or failed once it has been taken over too often. Its count per task is the
    task's attempt number."""

    class Outcome(models.TextChoices):
        REQUEUED = "requeued"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    task = models.ForeignKey(
        "django_tasks_database.DBTaskResult", on_delete=models.CASCADE, related_name="+"
    )
    task_path = models.TextField()
    lost_worker_id = models.CharField(max_length=64, blank=True)
    taken_by = models.CharField(max_length=64, blank=True)
    taken_at = models.DateTimeField()
    attempt = models.PositiveIntegerField()
    outcome = models.CharField(max_length=10, choices=Outcome.choices)

    class Meta:
        indexes = [models.Index(fields=["taken_at"], name="core_tasktakeover_taken_idx")]
        constraints = [
            # Two workers reclaiming at once cannot both record the same attempt.
            models.UniqueConstraint(fields=["task", "attempt"], name="core_tasktakeover_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.task_path} attempt {self.attempt}: {self.outcome}"
