"""Stored events, the quarantine of refused ones, and file imports."""

import uuid
from datetime import datetime

from django.http import HttpRequest
from ninja import Field, File, Form, Query, Router, Schema, Status
from ninja.files import UploadedFile

from rapport.core.pagination import LimitOffsetPagination, paginate
from rapport.core.types import IsoDatetime
from rapport.ingest import selectors, services
from rapport.ingest.models import EventType, ImportJob
from rapport.tenancy.pii import mask_personal_data


class EventOut(Schema):
    id: uuid.UUID
    message_id: str
    type: EventType
    event: str
    user_id: str
    anonymous_id: str
    group_id: str
    previous_id: str
    source_id: uuid.UUID | None
    profile_id: uuid.UUID | None
    timestamp: datetime
    received_at: datetime
    sent_at: datetime | None
    original_timestamp: datetime | None
    in_future: bool
    properties: dict
    traits: dict
    context: dict


class EventFilter(Schema):
    user_id: str | None = Field(None, max_length=255)
    anonymous_id: str | None = Field(None, max_length=255)
    type: EventType | None = None
    event: str | None = Field(None, max_length=255, description="Event name (track), or page name")
    source_id: uuid.UUID | None = None
    profile_id: uuid.UUID | None = Field(
        None, description="The customer (after a merge, the survivor)"
    )
    since: IsoDatetime | None = None
    until: IsoDatetime | None = None


class QuarantinedOut(Schema):
    id: uuid.UUID
    source_id: uuid.UUID | None
    received_at: datetime
    field: str
    reason: str
    message_id: str
    payload: dict | list | str | int | float | bool | None


class QuarantineFilter(Schema):
    source_id: uuid.UUID | None = None
    field: str | None = Field(None, max_length=100)


class ImportOut(Schema):
    id: uuid.UUID
    kind: ImportJob.Kind
    filename: str
    file_size: int
    id_column: str
    status: ImportJob.Status
    rows_done: int
    rows_total: int | None = Field(None, description="Rows counted in the file (for progress)")
    accepted: int
    rejected: int
    errors: list[dict]
    failure: str
    created_at: datetime
    finished_at: datetime | None


def masked(principal, item, *fields: str):
    """The item with personal data masked in the named JSON fields, for roles that may
    not see it."""
    if principal.can_see_pii:
        return item
    for name in fields:
        setattr(item, name, mask_personal_data(getattr(item, name)))
    return item


events_router = Router(tags=["events"])
imports_router = Router(tags=["imports"])


@events_router.get("", response=list[EventOut], summary="Stored events, newest first")
@paginate(LimitOffsetPagination)
def event_list(request: HttpRequest, filters: Query[EventFilter]):
    request.auth.require("events.read")
    events = selectors.event_list(workspace=request.auth.workspace, **filters.dict())
    return MaskedPage(events, request.auth)


@events_router.get("/quarantine", response=list[QuarantinedOut], summary="Refused events")
@paginate(LimitOffsetPagination)
def quarantine_list(request: HttpRequest, filters: Query[QuarantineFilter]):
    request.auth.require("events.quarantine.read")
    items = selectors.quarantine_list(workspace=request.auth.workspace, **filters.dict())
    return MaskedPage(items, request.auth, fields=("payload",))


@events_router.get("/{event_id}", response=EventOut)
def event_get(request: HttpRequest, event_id: uuid.UUID):
    request.auth.require("events.read")
    event = selectors.event_get(workspace=request.auth.workspace, event_id=event_id)
    return masked(request.auth, event, "properties", "traits", "context")


class MaskedPage:
    """A queryset whose sliced rows come out masked for roles without pii.read:
    pagination counts and slices it as usual, and only the page shown is masked."""

    def __init__(self, queryset, principal, fields=("properties", "traits", "context")):
        self.queryset = queryset
        self.principal = principal
        self.fields = fields

    def count(self) -> int:
        return self.queryset.count()

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, key):
        return [masked(self.principal, item, *self.fields) for item in self.queryset[key]]


@imports_router.get("", response=list[ImportOut])
@paginate(LimitOffsetPagination)
def import_list(request: HttpRequest):
    request.auth.require("imports.manage")
    return selectors.import_job_list(workspace=request.auth.workspace)


@imports_router.post(
    "",
    response={202: ImportOut},
    summary="Upload a file to import (CSV of customers or JSON Lines of events)",
)
def import_create(
    request: HttpRequest,
    file: File[UploadedFile],
    kind: Form[ImportJob.Kind],
    id_column: Form[str] = "",
):
    request.auth.require("imports.manage")
    job = services.import_job_upload(
        workspace=request.auth.workspace,
        chunks=file.chunks(),
        filename=file.name or "upload",
        kind=kind,
        id_column=id_column,
        actor=request.auth.actor,
    )
    return Status(202, job)


@imports_router.get("/{import_id}", response=ImportOut)
def import_get(request: HttpRequest, import_id: uuid.UUID):
    request.auth.require("imports.manage")
    return selectors.import_job_get(workspace=request.auth.workspace, import_id=import_id)


ROUTERS = [
    ("v1/events", events_router),
    ("v1/imports", imports_router),
]
