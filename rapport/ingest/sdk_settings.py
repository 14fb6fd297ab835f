"""The settings the SDKs fetch when they start, served by Rapport itself.

Segment's SDKs fetch `<cdn>/v1/projects/<writeKey>/settings` (analytics-next from
`cdnURL`, analytics-swift and analytics-kotlin from `cdnHost`); RudderStack's fetch
`<configUrl>/sourceConfig?writeKey=…` (or with the key as Basic auth). Pointing those
options at Rapport is then all a site or an app needs: the answer tells the SDK to
send its events back here, to this very host, and turns off what would call out to
the vendors (their metrics, device-mode destinations, error reporting).
"""

import orjson
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from rapport.core.errors import error_body
from rapport.ingest.cors import cors_grant, origin_permitted, origin_refused, preflight
from rapport.ingest.tracking import write_key_from_basic_auth
from rapport.tenancy.selectors import (
    WriteKeyGrant,
    origins_allowed_by_any_source,
    write_key_resolve,
)

METHODS = "GET, HEAD, OPTIONS"


def _answer(request: HttpRequest, raw_key: str | None, body) -> HttpResponse:
    grant: WriteKeyGrant | None = write_key_resolve(raw=raw_key) if raw_key else None
    patterns = grant.allowed_origins if grant else origins_allowed_by_any_source()
    if request.method == "OPTIONS":
        return preflight(request, patterns, METHODS)
    if grant is None:
        response = HttpResponse(
            orjson.dumps(error_body("not_found", "Unknown or revoked write key")),
            status=404,
            content_type="application/json",
        )
    elif not origin_permitted(request, patterns):
        return origin_refused(request.headers["Origin"])
    else:
        response = HttpResponse(
            orjson.dumps(body(request, raw_key, grant)), content_type="application/json"
        )
        # Settings change rarely; a minute of caching spares a request per page view.
        response["Cache-Control"] = "public, max-age=60"
    return cors_grant(request, response, patterns)


def _segment(request: HttpRequest, write_key: str, grant: WriteKeyGrant) -> dict:
    return {
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                # analytics-next and the mobile SDKs post to `<protocol>://<apiHost>/t`…
                "apiHost": f"{request.get_host()}/v1",
                "protocol": request.scheme,
                "unbundledIntegrations": [],
                "addBundledMetadata": True,
                "maybeBundledConfigIds": {},
                "versionSettings": {"componentTypes": ["browser", "ios", "android", "server"]},
            }
        },
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        # A sample rate of 0 keeps analytics-next from posting its own telemetry.
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
    }


def _rudderstack(request: HttpRequest, write_key: str, grant: WriteKeyGrant) -> dict:
    return {
        "isHosted": False,
        "source": {
            "id": str(grant.source_id),
            "name": "Rapport",
            "writeKey": write_key,
            "workspaceId": str(grant.workspace_id),
            "enabled": True,
            "deleted": False,
            "transient": False,
            "config": {
                "statsCollection": {"errors": {"enabled": False}, "metrics": {"enabled": False}}
            },
            # No device-mode destination: nothing for the SDK to fetch from a CDN.
            "destinations": [],
            "connections": [],
        },
    }


@csrf_exempt
@require_http_methods(["GET", "HEAD", "OPTIONS"])
def segment_settings(request: HttpRequest, write_key: str) -> HttpResponse:
    return _answer(request, write_key, _segment)


@csrf_exempt
@require_http_methods(["GET", "HEAD", "OPTIONS"])
def rudderstack_source_config(request: HttpRequest) -> HttpResponse:
    raw_key = request.GET.get("writeKey") or write_key_from_basic_auth(request)
    return _answer(request, raw_key, _rudderstack)
