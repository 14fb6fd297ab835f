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
