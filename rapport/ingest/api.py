"""Stored events, the quarantine of refused ones, file imports, and the event pipeline."""

import uuid
from datetime import datetime

from django.http import HttpRequest
from ninja import Field, File, Form, Query, Router, Schema, Status
from ninja.files import UploadedFile
from pydantic import ConfigDict

from rapport.core.pagination import LimitOffsetPagination, paginate
from rapport.core.types import IsoDatetime
from rapport.ingest import pipeline, selectors, services
from rapport.ingest.models import EventType, ImportJob
from rapport.tenancy.pii import MaskedPage, masked_record, shown_text


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
    return MaskedPage(items, request.auth, kind="quarantined")


@events_router.get("/{event_id}", response=EventOut)
def event_get(request: HttpRequest, event_id: uuid.UUID):
    request.auth.require("events.read")
    event = selectors.event_get(workspace=request.auth.workspace, event_id=event_id)
    return masked_record(request.auth, event, "event")


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


pipeline_router = Router(tags=["pipeline"])


class PipelineConsumerOut(Schema):
    name: str
    lag: int = Field(description="Events stored and not yet processed by this consumer")
    failed: int = Field(
        description="Events in batches parked after too many failures (retry them after a fix)"
    )
    oldest_waiting_at: datetime | None = Field(
        description="When the oldest event this consumer has not processed was stored"
    )
    last_error: str = Field(description="The consumer's latest error on work it has left")


class PipelineOut(Schema):
    consumers: list[PipelineConsumerOut]


# The declared consumers, documented as the enum they are (checked against the pipeline
# in force, which tests may replace).
CONSUMER_NAMES = {"enum": [consumer.name for consumer in pipeline.PIPELINE]}


class PipelineRetryIn(Schema):
    model_config = ConfigDict(extra="forbid")

    consumer: str = Field(
        max_length=50,
        json_schema_extra=CONSUMER_NAMES,
        description="The consumer whose parked work to retry",
    )


class PipelineRetryOut(Schema):
    batches: int = Field(description="Parked batches handed to a worker again")


class PipelineReplayIn(Schema):
    model_config = ConfigDict(extra="forbid")

    consumer: str = Field(max_length=50, json_schema_extra=CONSUMER_NAMES)
    since: IsoDatetime = Field(description="Events with a timestamp from this time...")
    until: IsoDatetime = Field(description="...to before this one")


class PipelineReplayOut(Schema):
    events: int
    batches: int


@pipeline_router.get(
    "", response=PipelineOut, summary="How far each consumer of the event pipeline is"
)
def pipeline_get(request: HttpRequest):
    request.auth.require("pipeline.read")
    states = selectors.pipeline_state(workspace=request.auth.workspace)
    consumers = [
        {
            "name": s.name,
            "lag": s.lag,
            "failed": s.failed,
            "oldest_waiting_at": s.oldest_waiting_at,
            # An error may quote the data that caused it.
            "last_error": shown_text(request.auth, s.last_error),
        }
        for s in states
    ]
    return {"consumers": consumers}


@pipeline_router.post(
    "/retry", response={202: PipelineRetryOut}, summary="Retry parked pipeline work"
)
def pipeline_retry(request: HttpRequest, payload: PipelineRetryIn):
    request.auth.require("pipeline.manage")
    batches = pipeline.pipeline_retry(
        workspace=request.auth.workspace, actor=request.auth.actor, consumer=payload.consumer
    )
    return Status(202, {"batches": batches})


@pipeline_router.post(
    "/replay",
    response={202: PipelineReplayOut},
    summary="Process a time range of events through one consumer again",
)
def pipeline_replay(request: HttpRequest, payload: PipelineReplayIn):
    request.auth.require("pipeline.manage")
    events, batches = pipeline.pipeline_replay(
        workspace=request.auth.workspace,
        actor=request.auth.actor,
        consumer=payload.consumer,
        since=payload.since,
        until=payload.until,
    )
    return Status(202, {"events": events, "batches": batches})


ROUTERS = [
    ("v1/events", events_router),
    ("v1/imports", imports_router),
    ("v1/pipeline", pipeline_router),
]
