"""Data: sources and their write keys, and the live event debugger."""

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from rapport.core.errors import InvalidInputError, RapportError
from rapport.ingest import selectors as ingest_selectors
from rapport.tenancy import selectors as tenancy_selectors
from rapport.tenancy import services as tenancy_services
from rapport.tenancy.models import Source
from rapport.tenancy.pii import mask_personal_data
from rapport.web.pages import error_text, uuid_or_none, workspace_page

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


def _source_page(request: HttpRequest, source: Source, *, new_key: str | None = None):
    principal = request.principal
    context = {
        "source": source,
        "keys": source.write_keys.all(),
        "new_key": new_key,
        "can_manage": principal.has_perm("sources.manage"),
    }
    return render(request, "web/data/source.html", context)


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
def write_key_revoke(request: HttpRequest, source_id, key_id) -> HttpResponse:
    principal = request.principal
    key = tenancy_selectors.write_key_get(
        workspace=principal.workspace, source_id=source_id, key_id=key_id
    )
    tenancy_services.write_key_revoke(write_key=key, actor=principal.actor)
    return redirect("web:source_detail", source_id=source_id)


def _debugger_rows(request: HttpRequest) -> dict:
    principal = request.principal
    source_id = None
    if request.GET.get("source"):
        source_id = uuid_or_none(request.GET["source"])
        if source_id is None:
            raise InvalidInputError("not a source id", field="source")
        tenancy_selectors.source_get(workspace=principal.workspace, source_id=source_id)
    events = ingest_selectors.event_list(workspace=principal.workspace, source_id=source_id)
    rows = []
    for event in events[:DEBUGGER_ROWS]:
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
        if not principal.can_see_pii:
            payload = mask_personal_data(payload)
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
