"""The HTTP Tracking API, compatible with Segment's and RudderStack's SDKs:
`POST /v1/identify|track|page|screen|group|alias|batch`, the short paths analytics.js
and the mobile SDKs use (`/v1/i|t|p|s|g|a|b`), and RudderStack's beacon batches.

Authentication is the source's write key, as HTTP Basic user name (empty password),
`writeKey` in the body (analytics.js, analytics-swift, analytics-kotlin) or in the
query string (beacons). Bodies are JSON whatever their Content-Type (browsers send
`text/plain` to spare a preflight), plain or gzip, with a Content-Length or chunked.
Browsers' cross-origin requests are held to the source's allowed origins (cors.py).
A 200 means every accepted event is committed; a refused item of a batch is
quarantined with its reason and does not sink the others.
"""

import base64
import binascii
import zlib

import orjson
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from rapport.core.errors import error_body
from rapport.ingest.cors import cors_grant, origin_permitted, origin_refused, preflight
from rapport.ingest.group_commit import ingest_grouped
from rapport.ingest.services import Destination, IngestBatch, events_ingest_many, events_parse
from rapport.ingest.spec import MAX_EVENT_BYTES, MAX_REQUEST_BYTES, Invalid, parse_time
from rapport.tenancy.selectors import origins_allowed_by_any_source, write_key_resolve

MAX_BATCH_ITEMS = 2500


def _json(data: dict, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(data), status=status, content_type="application/json")


def _error(status: int, code: str, message: str, details=None) -> HttpResponse:
    response = _json(error_body(code, message, details), status)
    if status == 401:
        response["WWW-Authenticate"] = 'Basic realm="rapport"'
    return response


class RequestRefused(Exception):
    def __init__(self, response: HttpResponse) -> None:
        self.response = response


def _body(request: HttpRequest) -> bytes:
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise RequestRefused(_too_big())
    body = request.body
    encoding = request.headers.get("Content-Encoding", "").lower().strip()
    if encoding == "gzip":
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            body = inflater.decompress(body, MAX_REQUEST_BYTES + 1)
        except zlib.error:
            raise RequestRefused(
                _error(400, "bad_request", "Body is not valid gzip (Content-Encoding: gzip)")
            ) from None
        if inflater.unconsumed_tail or not inflater.eof:
            raise RequestRefused(_too_big())
    elif encoding not in ("", "identity"):
        raise RequestRefused(
            _error(415, "unsupported_media_type", f"Content-Encoding {encoding!r} is not supported")
        )
    if len(body) > MAX_REQUEST_BYTES:
        raise RequestRefused(_too_big())
    return body


def _too_big() -> HttpResponse:
    return _error(
        413,
        "payload_too_large",
        f"Request body is larger than the {MAX_REQUEST_BYTES // 1024} KB limit",
        {"limit_bytes": MAX_REQUEST_BYTES},
    )


def write_key_from_basic_auth(request: HttpRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.split(":", 1)[0] or None


def _write_key(request: HttpRequest, payload: dict) -> str | None:
    if request.headers.get("Authorization", "").lower().startswith("basic "):
        return write_key_from_basic_auth(request)
    key = payload.get("writeKey")
    if isinstance(key, str) and key:
        return key
    return request.GET.get("writeKey") or None


def _destination(request: HttpRequest, payload: dict) -> Destination:
    key = _write_key(request, payload)
    grant = write_key_resolve(raw=key) if key else None
    if grant is None:
        raise RequestRefused(
            _error(
                401,
                "unauthorized",
                "Missing, unknown or revoked write key: send it as the HTTP Basic user name",
            )
        )
    request.tracking_origins = grant.allowed_origins
    if not origin_permitted(request, grant.allowed_origins):
        raise RequestRefused(origin_refused(request.headers["Origin"]))
    return Destination(workspace_id=grant.workspace_id, source_id=grant.source_id)


def _parse_payload(request: HttpRequest) -> dict:
    body = _body(request)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestRefused(
            _error(400, "invalid_json", f"Body is not valid JSON: {exc}")
        ) from None
    if not isinstance(payload, dict):
        raise RequestRefused(_error(400, "bad_request", "Body must be a JSON object"))
    return payload


def _ingest(request: HttpRequest, kind: str | None) -> HttpResponse:
    received_at = timezone.now()
    try:
        payload = _parse_payload(request)
        destination = _destination(request, payload)
        if kind is None:
            items = payload.get("batch")
            if not isinstance(items, list):
                return _error(400, "bad_request", "batch must be a list of events")
            if len(items) > MAX_BATCH_ITEMS:
                return _error(
                    413, "payload_too_large", f"batch has more than {MAX_BATCH_ITEMS} events"
                )
            context = payload.get("context")
            batch_context = context if isinstance(context, dict) else None
            try:
                batch_sent_at = parse_time(payload.get("sentAt"), "sentAt")
            except Invalid as error:
                return _error(422, "validation_error", error.reason, [{"field": "sentAt"}])
        else:
            items, batch_context, batch_sent_at = [payload], None, None
    except RequestRefused as refused:
        return refused.response

    rows, refused = events_parse(
        items,
        received_at=received_at,
        forced_type=kind,
        batch_context=batch_context,
        batch_sent_at=batch_sent_at,
    )
    if any(item.over_limit for item in refused):
        # A limit, not a mistake in one item: the request is refused whole.
        return _error(
            413,
            "payload_too_large",
            f"An event is larger than the {MAX_EVENT_BYTES // 1024} KB limit",
            {"limit_bytes": MAX_EVENT_BYTES},
        )
    batch = IngestBatch(
        destination=destination, rows=rows, refused=refused, received_at=received_at
    )
    try:
        if settings.RAPPORT_INGEST_GROUP_COMMIT:
            result = ingest_grouped(batch)
        else:
            result = events_ingest_many(batches=[batch])[0]
    except (DatabaseError, TimeoutError):
        response = _error(503, "service_unavailable", "Events could not be stored; retry later")
        response["Retry-After"] = "5"
        return response

    errors = [{"index": r.index, "field": r.field, "reason": r.reason} for r in result.refused]
    if kind is not None and errors:
        error = errors[0]
        return _error(
            400, "validation_error", f"Invalid '{error['field']}': {error['reason']}", errors
        )
    return _json(
        {
            "success": True,
            "accepted": result.accepted,
            "rejected": result.rejected,
            "errors": errors,
        }
    )


def origins_for(request: HttpRequest) -> tuple[str, ...] | frozenset[str]:
    """The origins this request's source allows, once its write key is known; before
    that (a preflight, a request refused early), those some live source allows."""
    known = getattr(request, "tracking_origins", None)
    if known is not None:
        return known
    key = request.GET.get("writeKey")
    grant = write_key_resolve(raw=key) if key else None
    if grant is not None:
        return grant.allowed_origins
    return origins_allowed_by_any_source()


def _endpoint(kind: str | None):
    @csrf_exempt
    @require_http_methods(["POST", "OPTIONS"])
    def view(request: HttpRequest) -> HttpResponse:
        if request.method == "OPTIONS":
            return preflight(request, origins_for(request), "POST, OPTIONS")
        response = _ingest(request, kind)
        return cors_grant(request, response, origins_for(request))

    view.__name__ = f"tracking_{kind or 'batch'}"
    return view


identify = _endpoint("identify")
track = _endpoint("track")
page = _endpoint("page")
screen = _endpoint("screen")
group = _endpoint("group")
alias = _endpoint("alias")
batch = _endpoint(None)
