"""Data: sources and their write keys, the live event debugger, the quarantine of
refused events, file imports with their progress, and the event pipeline."""

import json

from django.core.paginator import Paginator
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods, require_POST

from rapport.core.errors import InvalidInputError, RapportError
from rapport.ingest import pipeline as ingest_pipeline
from rapport.ingest import selectors as ingest_selectors
from rapport.ingest import services as ingest_services
from rapport.ingest.models import ImportJob
from rapport.tenancy import selectors as tenancy_selectors
from rapport.tenancy import services as tenancy_services
from rapport.tenancy.models import Source
from rapport.tenancy.pii import masked_record, shown_text
from rapport.web.pages import error_text, page_query, uuid_or_none, workspace_page

DEBUGGER_ROWS = 50


@workspace_page("sources.read")
def source_list(request: HttpRequest) -> HttpResponse:
    return _sources_page(request)


def _sources_page(request: HttpRequest, *, error: RapportError | None = None) -> HttpResponse:
    principal = request.principal
    context = {
        "sources": tenancy_selectors.source_list(workspace=principal.workspace),
        "kinds": Source.Kind.choices,
        "can_manage": principal.has_perm("sources.manage"),
        "error": error_text(error) if error else None,
        "name": request.POST.get("name", ""),
    }
    return render(request, "web/data/sources.html", context, status=error.status if error else 200)


@workspace_page("sources.manage")
@require_POST
def source_create(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    try:
        source, raw = tenancy_services.source_create(
            workspace=principal.workspace,
            name=request.POST.get("name", ""),
            kind=request.POST.get("kind", Source.Kind.HTTP),
            actor=principal.actor,
        )
    except RapportError as error:
        return _sources_page(request, error=error)
    return _source_page(request, source, new_key=raw)


def _source_page(
    request: HttpRequest,
    source: Source,
    *,
    new_key: str | None = None,
    origins_error: RapportError | None = None,
):
    principal = request.principal
    context = {
        "source": source,
        "keys": source.write_keys.all(),
        "new_key": new_key,
        "can_manage": principal.has_perm("sources.manage"),
        "origins_text": (
            request.POST.get("allowed_origins", "")
            if origins_error
            else "\n".join(source.allowed_origins)
        ),
        "origins_error": origins_error.message if origins_error else None,
    }
    status = origins_error.status if origins_error else 200
    return render(request, "web/data/source.html", context, status=status)


@workspace_page("sources.read")
def source_detail(request: HttpRequest, source_id) -> HttpResponse:
    workspace = request.principal.workspace
    source = tenancy_selectors.source_get(workspace=workspace, source_id=source_id)
    return _source_page(request, source)


@workspace_page("sources.manage")
@require_POST
def write_key_create(request: HttpRequest, source_id) -> HttpResponse:
    principal = request.principal
    source = tenancy_selectors.source_get(workspace=principal.workspace, source_id=source_id)
    _, raw = tenancy_services.write_key_create(source=source, actor=principal.actor)
    return _source_page(request, source, new_key=raw)


@workspace_page("sources.manage")
@require_POST
def source_origins_update(request: HttpRequest, source_id) -> HttpResponse:
    """The source's allowed origins, one a line (CORS of the Tracking API)."""
    principal = request.principal
    source = tenancy_selectors.source_get(workspace=principal.workspace, source_id=source_id)
    origins = [line.strip() for line in request.POST.get("allowed_origins", "").splitlines()]
    try:
        tenancy_services.source_update(
            source=source, allowed_origins=[o for o in origins if o], actor=principal.actor
        )
    except RapportError as error:
        source.refresh_from_db()
        return _source_page(request, source, origins_error=error)
    return redirect("web:source_detail", source_id=source_id)


@workspace_page("sources.manage")
@require_POST
def write_key_revoke(request: HttpRequest, source_id, key_id) -> HttpResponse:
    principal = request.principal
    key = tenancy_selectors.write_key_get(
        workspace=principal.workspace, source_id=source_id, key_id=key_id
    )
    tenancy_services.write_key_revoke(write_key=key, actor=principal.actor)
    return redirect("web:source_detail", source_id=source_id)


def _source_filter(request: HttpRequest):
    """The `source` query parameter: one of this workspace's source ids, or None."""
    if not request.GET.get("source"):
        return None
    source_id = uuid_or_none(request.GET["source"])
    if source_id is None:
        raise InvalidInputError(gettext("not a source id"), field="source")
    tenancy_selectors.source_get(workspace=request.principal.workspace, source_id=source_id)
    return source_id


def _debugger_rows(request: HttpRequest) -> dict:
    principal = request.principal
    source_id = _source_filter(request)
    events = ingest_selectors.event_recent(
        workspace=principal.workspace, source_id=source_id, limit=DEBUGGER_ROWS
    )
    rows = []
    for stored in events:
        event = masked_record(principal, stored, "event")
        payload = {
            "type": event.type,
            "event": event.event,
            "userId": event.user_id,
            "anonymousId": event.anonymous_id,
            "messageId": event.message_id,
            "properties": event.properties,
            "traits": event.traits,
            "context": event.context,
        }
        payload = {k: v for k, v in payload.items() if v}
        rows.append(
            {
                "event": event,
                "who": payload.get("userId") or payload.get("anonymousId") or "",
                "payload": json.dumps(payload, indent=2, cls=DjangoJSONEncoder),
            }
        )
    return {"rows": rows, "source_id": source_id}


@workspace_page("events.read")
def debugger(request: HttpRequest) -> HttpResponse:
    """The last events as they arrive, newest first, for one source or all."""
    context = _debugger_rows(request)
    if request.htmx:
        return render(request, "web/data/_debugger_rows.html", context)
    context["sources"] = tenancy_selectors.source_list(workspace=request.principal.workspace)
    return render(request, "web/data/debugger.html", context)


QUARANTINE_PAGE = 50
IMPORTS_SHOWN = 50


@workspace_page("events.quarantine.read")
def quarantine_list(request: HttpRequest) -> HttpResponse:
    """Refused events with the field and the reason, newest first."""
    principal = request.principal
    source_id = _source_filter(request)
    field = request.GET.get("field", "").strip()
    if len(field) > 100:
        raise InvalidInputError(gettext("at most 100 characters"), field="field")
    items = ingest_selectors.quarantine_list(
        workspace=principal.workspace, source_id=source_id, field=field or None
    )
    page = Paginator(items, QUARANTINE_PAGE).get_page(request.GET.get("page"))
    sources = {s.pk: s for s in tenancy_selectors.source_list(workspace=principal.workspace)}
    rows = []
    for item in page.object_list:
        item = masked_record(principal, item, "quarantined")
        payload = item.payload
        rows.append(
            {
                "item": item,
                "source": sources.get(item.source_id),
                "payload": json.dumps(payload, indent=2, cls=DjangoJSONEncoder)
                if payload is not None
                else "",
            }
        )
    context = {
        "rows": rows,
        "page": page,
        "query": page_query(request),
        "sources": sources.values(),
        "source_id": source_id,
        "field": field,
    }
    return render(request, "web/data/quarantine.html", context)


def _import_shown(job: ImportJob) -> dict:
    percent = None
    if job.status == ImportJob.Status.DONE:
        percent = 100
    elif job.rows_total:
        percent = min(99, int(job.rows_done * 100 / job.rows_total))
    return {"job": job, "percent": percent, "live": job.status in _LIVE_IMPORTS}


_LIVE_IMPORTS = (ImportJob.Status.PENDING, ImportJob.Status.RUNNING)


def _imports_page(request: HttpRequest, *, error: RapportError | None = None) -> HttpResponse:
    jobs = ingest_selectors.import_job_list(workspace=request.principal.workspace)
    context = {
        "imports": [_import_shown(job) for job in jobs[:IMPORTS_SHOWN]],
        "kinds": ImportJob.Kind.choices,
        "error": error_text(error) if error else None,
        "kind": request.POST.get("kind", ImportJob.Kind.CUSTOMERS),
        "id_column": request.POST.get("id_column", ""),
    }
    return render(request, "web/data/imports.html", context, status=error.status if error else 200)


@workspace_page("imports.manage")
@require_http_methods(["GET", "POST"])
def import_list(request: HttpRequest) -> HttpResponse:
    """The imports so far, and a form to upload a file for the next."""
    if request.method == "GET":
        return _imports_page(request)
    principal = request.principal
    upload = request.FILES.get("file")
    try:
        if upload is None:
            raise InvalidInputError(gettext("choose a file to import"), field="file")
        job = ingest_services.import_job_upload(
            workspace=principal.workspace,
            chunks=upload.chunks(),
            filename=upload.name or "upload",
            kind=request.POST.get("kind", ""),
            id_column=request.POST.get("id_column", "").strip(),
            actor=principal.actor,
        )
    except RapportError as error:
        return _imports_page(request, error=error)
    return redirect("web:import_detail", import_id=job.pk)


@workspace_page("imports.manage")
def import_detail(request: HttpRequest, import_id) -> HttpResponse:
    """One import's progress; the page polls itself while a worker runs it."""
    job = ingest_selectors.import_job_get(
        workspace=request.principal.workspace, import_id=import_id
    )
    context = _import_shown(job)
    template = "web/data/_import_progress.html" if request.htmx else "web/data/import.html"
    return render(request, template, context)


@workspace_page("pipeline.read")
def pipeline_page(request: HttpRequest) -> HttpResponse:
    """Each consumer of the event pipeline: events it has not processed yet, parked
    work with its last error, and a button to retry it once the cause is fixed."""
    principal = request.principal
    states = ingest_selectors.pipeline_state(workspace=principal.workspace)
    rows = [
        {
            "state": state,
            # An error may quote the data that caused it.
            "error": shown_text(principal, state.last_error),
        }
        for state in states
    ]
    context = {
        "rows": rows,
        "can_manage": principal.has_perm("pipeline.manage"),
        "retried": int(retried) if (retried := request.GET.get("retried", "")).isdigit() else None,
    }
    return render(request, "web/data/pipeline.html", context)


@workspace_page("pipeline.manage")
@require_POST
def pipeline_retry(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    batches = ingest_pipeline.pipeline_retry(
        workspace=principal.workspace,
        actor=principal.actor,
        consumer=request.POST.get("consumer", ""),
    )
    return redirect(f"{reverse('web:pipeline')}?retried={batches}")
