"""Storing events: validated, deduplicated by messageId, refused items quarantined,
and handed to the pipeline (rapport/ingest/pipeline.py) in the same transaction."""

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone
from django.utils.text import get_valid_filename
from django.utils.translation import gettext

from rapport.core.errors import ConflictError, InvalidInputError
from rapport.core.rows import rows_read
from rapport.ingest import files
from rapport.ingest.models import Event, ImportJob, QuarantinedEvent
from rapport.ingest.spec import Invalid, Refused, event_parse, refused_from
from rapport.ingest.writer import events_write
from rapport.tenancy.models import Source, Workspace
from rapport.tenancy.services import Actor, audit_log_record, source_create

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Destination:
    """Where events go: resolved from a write key (or an import's source)."""

    workspace_id: Any
    source_id: Any


@dataclass
class IngestResult:
    accepted: int = 0
    refused: list[Refused] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.refused)


class DispatchedEvent(NamedTuple):
    """A stored event as consumers get it: the ids, the time, the traits and the parts
    of `context` that identify or state consent (`traits`, `externalIds`, `consent`).
    Properties and the rest of the context stay in the database; a consumer that needs
    them reads the `Event` by `id`."""

    id: Any
    message_id: str
    type: str
    event: str
    timestamp: datetime
    user_id: str
    anonymous_id: str
    previous_id: str
    group_id: str
    source_id: Any
    profile_id: Any
    traits: dict
    context: dict

    @property
    def pk(self) -> Any:
        return self.id


CONTEXT_KEYS_DISPATCHED = ("traits", "externalIds", "consent")


def events_parse(
    items: Iterable[Any],
    *,
    received_at: datetime,
    forced_type: str | None = None,
    batch_context: dict | None = None,
    batch_sent_at: datetime | None = None,
) -> tuple[list[dict], list[Refused]]:
    rows: dict[str, dict] = {}
    refused: list[Refused] = []
    for index, raw in enumerate(items):
        try:
            row = event_parse(
                raw,
                received_at=received_at,
                forced_type=forced_type,
                batch_context=batch_context,
                batch_sent_at=batch_sent_at,
            )
        except Invalid as error:
            refused.append(refused_from(index, raw, error, batch_context=batch_context))
            continue
        # A messageId repeated inside one request is the same event sent twice.
        rows.setdefault(row["message_id"], row)
    return list(rows.values()), refused


@dataclass(frozen=True)
class IngestBatch:
    destination: Destination
    rows: list[dict]
    refused: list[Refused]
    received_at: datetime


def events_ingest(
    *,
    destination: Destination,
    rows: list[dict],
    refused: list[Refused],
    received_at: datetime,
) -> IngestResult:
    """Store parsed rows and quarantine refused items, all in one transaction; the
    downstream task is enqueued in it too, so nothing is handed on that did not commit.
    A messageId already stored in the workspace is acknowledged and not stored again."""
    batch = IngestBatch(
        destination=destination, rows=rows, refused=refused, received_at=received_at
    )
    return events_ingest_many(batches=[batch])[0]


def events_ingest_many(*, batches: list[IngestBatch]) -> list[IngestResult]:
    """Several requests' events in one transaction (see group_commit): one write, one
    commit, one pipeline batch (and its task) per workspace."""
    from rapport.ingest.pipeline import pipeline_batch_create

    events: list[dict] = []
    quarantined: list[QuarantinedEvent] = []
    by_workspace: dict[str, list[str]] = {}
    results = []
    for batch in batches:
        workspace_id, source_id = batch.destination.workspace_id, batch.destination.source_id
        message_ids = [row["message_id"] for row in batch.rows]
        events += [
            {**row, "workspace_id": workspace_id, "source_id": source_id} for row in batch.rows
        ]
        by_workspace.setdefault(str(workspace_id), []).extend(message_ids)
        quarantined += [
            QuarantinedEvent(
                workspace_id=workspace_id,
                source_id=source_id,
                received_at=batch.received_at,
                reason=item.reason,
                field=item.field,
                message_id=item.message_id,
                payload=item.payload,
            )
            for item in batch.refused
        ]
        results.append(
            IngestResult(accepted=len(batch.rows), refused=batch.refused, message_ids=message_ids)
        )
    now = timezone.now()
    with transaction.atomic():
        if events:
            events_write(events)
            for workspace_id, message_ids in by_workspace.items():
                if message_ids:
                    pipeline_batch_create(
                        workspace_id=workspace_id, message_ids=message_ids, now=now
                    )
        if quarantined:
            QuarantinedEvent.objects.bulk_create(quarantined)
    return results


def events_dispatch(*, workspace_id: Any, message_ids: list[str]) -> int:
    """Every consumer of the pipeline on these stored events now, oldest first, raising
    the first failure (tests and scripts; workers run the pipeline's batches)."""
    from rapport.ingest.pipeline import events_process

    return events_process(workspace_id=workspace_id, message_ids=message_ids)


def events_dispatched(*, workspace_id: Any, message_ids: list[str]) -> list[DispatchedEvent]:
    """The stored events of these message ids as consumers get them, oldest first. Read
    as plain rows: a worker hands on thousands at a time, and model instances with every
    column would cost more than the consumers' work."""
    rows = (
        Event.objects.filter(workspace_id=workspace_id, message_id__any=message_ids)
        .order_by("timestamp", "id")
        .values_list(
            *DispatchedEvent._fields[:-1], *(f"context__{key}" for key in CONTEXT_KEYS_DISPATCHED)
        )
    )
    width = len(DispatchedEvent._fields) - 1
    return [
        DispatchedEvent(
            *row[:width],
            {
                key: value
                for key, value in zip(CONTEXT_KEYS_DISPATCHED, row[width:], strict=True)
                if value is not None
            },
        )
        for row in rows_read(rows)
    ]


# --- File imports ---------------------------------------------------------------------

IMPORT_CHUNK_ROWS = 1000
IMPORT_SOURCE_NAME = "File import"
MAX_KEPT_ERRORS = 100


def import_job_create(
    *,
    workspace: Workspace,
    kind: str,
    path: Path,
    filename: str,
    actor: Actor,
    id_column: str = "",
    stored: bool = False,
) -> ImportJob:
    """An import of a file, or the unfinished import of the same file to resume."""
    if kind not in ImportJob.Kind.values:
        raise InvalidInputError(
            gettext("kind must be one of %(choices)s")
            % {"choices": ", ".join(ImportJob.Kind.values)},
            field="kind",
        )
    if kind == ImportJob.Kind.CUSTOMERS:
        if not id_column:
            raise InvalidInputError(
                gettext("id_column is required for a customers import"), field="id_column"
            )
        try:
            header = files.csv_header(path)
        except Invalid as error:
            raise InvalidInputError(error.reason, field="file") from None
        if id_column not in header:
            raise InvalidInputError(
                gettext("column %(id_column)r is not in the file's header (%(choices)s)")
                % {"id_column": id_column, "choices": ", ".join(header[:20])},
                field="id_column",
            )
    else:
        id_column = ""
    digest = files.file_sha256(path)
    with transaction.atomic():
        job, created = ImportJob.objects.get_or_create(
            workspace=workspace,
            kind=kind,
            file_sha256=digest,
            id_column=id_column,
            defaults={
                "filename": filename.replace("\x00", "")[:255],
                "file_size": path.stat().st_size,
                "rows_total": files.count_rows(path, kind=kind),
                "stored_path": str(path) if stored else "",
            },
        )
        if not created and stored and job.status != ImportJob.Status.DONE:
            job.stored_path = str(path)
            job.save(update_fields=["stored_path", "updated_at"])
        if created:
            audit_log_record(
                workspace=workspace,
                actor=actor,
                action="import.create",
                target=job,
                details={"kind": kind, "filename": job.filename, "sha256": digest},
            )
    return job


def import_job_upload(
    *,
    workspace: Workspace,
    chunks: Iterable[bytes],
    filename: str,
    kind: str,
    actor: Actor,
    id_column: str = "",
) -> ImportJob:
    """Keep an uploaded file and queue its import for a worker: the job and its task
    are committed together."""
    from rapport.ingest.tasks import import_run

    folder = Path(settings.DATA_DIR) / "imports"
    folder.mkdir(exist_ok=True)
    target = folder / f"{uuid.uuid4()}-{get_valid_filename(filename)[:100] or 'upload'}"
    with target.open("wb") as fh:
        for chunk in chunks:
            fh.write(chunk)
    try:
        with transaction.atomic():
            job = import_job_create(
                workspace=workspace,
                kind=kind,
                path=target,
                filename=filename,
                id_column=id_column,
                stored=True,
                actor=actor,
            )
            if job.status != ImportJob.Status.DONE:
                import_run.enqueue(import_job_id=str(job.pk))
    except Exception:
        target.unlink(missing_ok=True)
        raise
    if job.stored_path != str(target):
        # The same file was imported before: that import's copy is the one kept.
        target.unlink(missing_ok=True)
    return job


def _import_destination(workspace_id) -> Destination:
    source = Source.objects.filter(
        workspace_id=workspace_id, name__iexact=IMPORT_SOURCE_NAME
    ).first()
    if source is None:
        workspace = Workspace.objects.get(pk=workspace_id)
        source, _ = source_create(
            workspace=workspace,
            name=IMPORT_SOURCE_NAME,
            kind=Source.Kind.IMPORT,
            actor=Actor.system("import"),
        )
    return Destination(workspace_id=workspace_id, source_id=source.pk)


def import_run(
    *,
    import_job_id,
    path: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportJob:
    """Import the file from where the job last stopped. Each chunk of rows is stored
    together with the job's progress, so an interruption loses nothing and a re-run
    stores nothing twice."""
    job = ImportJob.objects.get(pk=import_job_id)
    if job.status == ImportJob.Status.DONE:
        return job
    path = Path(path or job.stored_path)
    if not path.exists():
        raise InvalidInputError(
            gettext("file %(path)s is not there any more") % {"path": path}, field="file"
        )
    if files.file_sha256(path) != job.file_sha256:
        raise ConflictError(gettext("the file changed since the import began"), code="file_changed")
    destination = _import_destination(job.workspace_id)
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.RUNNING, failure="")
    prefix = f"import-{job.file_sha256[:24]}"
    if job.kind == ImportJob.Kind.CUSTOMERS:
        items = files.csv_items(
            path, id_column=job.id_column, start=job.rows_done, message_prefix=prefix
        )
    else:
        items = files.jsonl_items(path, start=job.rows_done, message_prefix=prefix)
    try:
        chunk: list[files.ImportRow] = []
        for row in items:
            chunk.append(row)
            if len(chunk) >= IMPORT_CHUNK_ROWS:
                _import_chunk(job, destination, chunk, progress)
                chunk = []
        if chunk:
            _import_chunk(job, destination, chunk, progress)
    except Exception as exc:
        failure = str(exc)
        if isinstance(exc, DatabaseError):
            # The database's own message quotes SQL and values: logged, not shown.
            logger.warning("import %s stopped by the database: %s", job.pk, exc)
            failure = (
                "The database refused to store the rows; the rows before are stored, "
                "and running the import again resumes after them."
            )
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJob.Status.FAILED, failure=failure[:2000]
        )
        raise
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJob.Status.DONE, finished_at=timezone.now()
    )
    job.refresh_from_db()
    if job.stored_path:
        # An uploaded copy is no longer needed once every row is stored.
        Path(job.stored_path).unlink(missing_ok=True)
    return job


def _import_chunk(
    job: ImportJob, destination: Destination, chunk: list[files.ImportRow], progress
) -> None:
    received_at = timezone.now()
    unreadable = [
        Refused(index=i, field=row.item.field, reason=row.item.reason, message_id="", payload=None)
        for i, row in enumerate(chunk)
        if isinstance(row.item, Invalid)
    ]
    readable = [(i, row.item) for i, row in enumerate(chunk) if not isinstance(row.item, Invalid)]
    rows, refused = events_parse([item for _, item in readable], received_at=received_at)
    # Refused indices are positions among the readable items: map them back to the chunk.
    refused = [
        Refused(
            index=readable[r.index][0],
            field=r.field,
            reason=r.reason,
            message_id=r.message_id,
            payload=r.payload,
        )
        for r in refused
    ]
    all_refused = sorted(unreadable + refused, key=lambda r: r.index)
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job.pk)
        events_ingest(
            destination=destination, rows=rows, refused=all_refused, received_at=received_at
        )
        job.rows_done = chunk[-1].number
        job.accepted += len(rows)
        job.rejected += len(all_refused)
        room = MAX_KEPT_ERRORS - len(job.errors)
        job.errors = job.errors + [
            {
                "row": chunk[r.index].number,
                "line": chunk[r.index].line,
                "field": r.field,
                "reason": r.reason,
            }
            for r in all_refused[: max(room, 0)]
        ]
        job.save(update_fields=["rows_done", "accepted", "rejected", "errors", "updated_at"])
    if progress is not None:
        progress(len(chunk))
