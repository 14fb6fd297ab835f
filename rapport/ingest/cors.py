"""CORS for the Tracking API and the SDK settings endpoints.

Browsers send events from a site's pages to Rapport: a cross-origin request, preceded
by a preflight (OPTIONS) whenever the SDK adds a header such as `Authorization`. Which
pages may do so is a setting of each source (`Source.allowed_origins`, any origin by
default, as Segment). django-cors-headers decides in a middleware from one global list;
here the decision depends on the write key, which most requests carry in their body
and a preflight does not carry at all. So:

- a preflight is granted when the source named in the URL (`?writeKey=`, the settings
  paths) allows the origin, or, with no key in the URL, when some live source does;
- an event itself is refused (403, no CORS grant) unless its own source allows the
  page's origin. Requests without an `Origin` header (servers, mobile apps) and
  same-origin ones are not concerned.
"""

import re
from collections.abc import Iterable

import orjson
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers

from rapport.core.errors import error_body
from rapport.tenancy.origins import origin_allowed

# Long enough to spare a preflight per event, short enough that a tightened setting
# is not undone by browsers' caches for long (and each event is checked anyway).
PREFLIGHT_MAX_AGE = 600
# Headers the SDKs send: Segment's (Authorization, X-Retry-Count), RudderStack's
# (AnonymousId, SentAt, Rsa-*), gzip bodies. Used when a preflight names none.
DEFAULT_ALLOWED_HEADERS = (
    "Authorization, Content-Type, Content-Encoding, X-Retry-Count, AnonymousId, SentAt"
)
_HEADER_LIST = re.compile(
    r"^\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*\s*$"
)


def request_origin(request: HttpRequest) -> str | None:
    """The page's origin when this is a cross-origin browser request, else None."""
    origin = request.headers.get("Origin")
    if not origin:
        return None
    if origin.lower() == f"{request.scheme}://{request.get_host()}".lower():
        return None
    return origin


def origin_permitted(request: HttpRequest, patterns: Iterable[str]) -> bool:
    origin = request_origin(request)
    return origin is None or origin_allowed(origin, patterns)


def origin_refused(origin: str) -> HttpResponse:
    response = HttpResponse(
        orjson.dumps(
            error_body(
                "origin_not_allowed",
                f"The origin {origin[:200]!r} may not send events to this source: "
                "add it to the source's allowed origins",
                {"origin": origin[:200]},
            )
        ),
        status=403,
        content_type="application/json",
    )
    patch_vary_headers(response, ("Origin",))
    return response


def cors_grant(request: HttpRequest, response: HttpResponse, patterns: Iterable[str]):
    """Let the page read this response when its origin is allowed."""
    patch_vary_headers(response, ("Origin",))
    origin = request_origin(request)
    if origin is not None and origin_allowed(origin, patterns):
        response["Access-Control-Allow-Origin"] = origin
        # Segment's SDKs read Retry-After on a 429 or 503 to pace their retries.
        response["Access-Control-Expose-Headers"] = "Retry-After"
    return response


def preflight(request: HttpRequest, patterns: Iterable[str], methods: str) -> HttpResponse:
    """The answer to an OPTIONS request: a grant for an allowed origin, a 403 without
    any CORS header for a refused one."""
    origin = request_origin(request)
    if origin is None:
        response = HttpResponse(status=204)
        response["Allow"] = methods
        return response
    if not origin_allowed(origin, patterns):
        return origin_refused(origin)
    requested = request.headers.get("Access-Control-Request-Headers", "")
    response = HttpResponse(status=204)
    response["Access-Control-Allow-Origin"] = origin
    response["Access-Control-Allow-Methods"] = methods
    response["Access-Control-Allow-Headers"] = (
        requested.strip() if _HEADER_LIST.match(requested) else DEFAULT_ALLOWED_HEADERS
    )
    response["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
    patch_vary_headers(
        response, ("Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers")
    )
    return response
