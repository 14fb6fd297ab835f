import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Max, Min, Q, QuerySet, Sum
from django.utils.translation import gettext

from rapport.core.selectors import object_get
from rapport.ingest.models import Event, ImportJob, PipelineStep, QuarantinedEvent
from rapport.ingest.pipeline import pipeline_consumers
from rapport.tenancy.models import Workspace


def event_list(
    *,
    workspace: Workspace,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    type: str | None = None,
    event: str | None = None,
    source_id: uuid.UUID | None = None,
    profile_id: uuid.UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[Event]:
    events = Event.objects.filter(workspace=workspace)
    if user_id:
        events = events.filter(user_id=user_id)
    if anonymous_id:
        events = events.filter(anonymous_id=anonymous_id)
    if type:
        events = events.filter(type=type)
    if event:
        events = events.filter(event=event)
    if source_id:
        events = events.filter(source_id=source_id)
    if profile_id:
        events = events.filter(profile_id=profile_id)
    if since:
        events = events.filter(timestamp__gte=since)
    if until:
        events = events.filter(timestamp__lt=until)
    return events.order_by("-timestamp", "-id")


def event_recent(
    *, workspace: Workspace, source_id: uuid.UUID | None = None, limit: int = 50
) -> list[Event]:
    """The last events received, newest first. Ties (one request's events share a
    received time) keep one order by id, so a refreshed list does not shuffle."""
    events = Event.objects.filter(workspace=workspace)
    if source_id:
        events = events.filter(source_id=source_id)
    return list(events.order_by("-received_at", "-id")[:limit])


def event_get(*, workspace: Workspace, event_id: uuid.UUID) -> Event:
    return object_get(
        Event.objects.filter(workspace=workspace),
        message=gettext("No event with id %(pk)s in this workspace"),
        pk=event_id,
    )


def quarantine_list(
    *, workspace: Workspace, source_id: uuid.UUID | None = None, field: str | None = None
) -> QuerySet[QuarantinedEvent]:
    items = QuarantinedEvent.objects.filter(workspace=workspace)
    if source_id:
        items = items.filter(source_id=source_id)
    if field:
        items = items.filter(field=field)
    return items.order_by("-received_at", "-id")


def import_job_list(*, workspace: Workspace) -> QuerySet[ImportJob]:
    return ImportJob.objects.filter(workspace=workspace).order_by("-created_at", "id")


def import_job_failed(*, workspace: Workspace, since: datetime) -> QuerySet[ImportJob]:
    """Imports that failed since `since`, the latest first."""
    return ImportJob.objects.filter(
        workspace=workspace, status=ImportJob.Status.FAILED, created_at__gte=since
    ).order_by("-created_at", "id")


def import_job_get(*, workspace: Workspace, import_id: uuid.UUID) -> ImportJob:
    return object_get(
        import_job_list(workspace=workspace),
        message=gettext("No import with id %(pk)s in this workspace"),
        pk=import_id,
    )


# --- The event pipeline ----------------------------------------------------------------


@dataclass(frozen=True)
class ConsumerState:
    name: str
    label: str
    # Events stored and not yet processed by the consumer (parked ones included).
    lag: int
    # Events in parked batches.
    failed: int
    oldest_waiting_at: datetime | None
    last_error: str
    last_failed_at: datetime | None


def pipeline_state(*, workspace: Workspace) -> list[ConsumerState]:
    """Each consumer of the pipeline, in order, with the work it has left."""
    workspace_id = workspace.pk
    totals = {
        row["consumer"]: row
        for row in PipelineStep.objects.filter(workspace_id=workspace_id)
        .values("consumer")
        .annotate(
            lag=Sum("batch__size"),
            failed=Sum("batch__size", filter=Q(parked_at__isnull=False)),
            oldest=Min("batch__created_at"),
            last_failed_at=Max("failed_at"),
        )
    }
    states = []
    for consumer in pipeline_consumers():
        row = totals.get(consumer.name, {})
        states.append(
            ConsumerState(
                name=consumer.name,
                label=str(consumer.label or consumer.name),
                lag=row.get("lag") or 0,
                failed=row.get("failed") or 0,
                oldest_waiting_at=row.get("oldest"),
                last_error=_last_error(workspace_id, consumer.name)
                if row.get("last_failed_at")
                else "",
                last_failed_at=row.get("last_failed_at"),
            )
        )
    return states


def _last_error(workspace_id: Any, consumer: str) -> str:
    return (
        PipelineStep.objects.filter(
            workspace_id=workspace_id, consumer=consumer, failed_at__isnull=False
        )
        .order_by("-failed_at")
        .values_list("last_error", flat=True)
        .first()
        or ""
    )
