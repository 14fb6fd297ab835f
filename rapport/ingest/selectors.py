import uuid
from datetime import datetime

from django.db.models import QuerySet

from rapport.core.selectors import object_get
from rapport.ingest.models import Event, ImportJob, QuarantinedEvent
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


def event_get(*, workspace: Workspace, event_id: uuid.UUID) -> Event:
    return object_get(Event.objects.filter(workspace=workspace), what="event", pk=event_id)


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


def import_job_get(*, workspace: Workspace, import_id: uuid.UUID) -> ImportJob:
    return object_get(import_job_list(workspace=workspace), what="import", pk=import_id)
