"""The management API: `/api/v1/...`, OpenAPI at `/api/docs`, one error shape.

Every error leaves as `{"error": {"code", "message", "details"}}`; validation errors
name the offending field in `message` and list every problem in `details`.
"""

import json
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser

from rapport.analytics.api import ROUTERS as ANALYTICS_ROUTERS
from rapport.channels.api import ROUTERS as CHANNEL_ROUTERS
from rapport.core.api import ROUTERS as SEARCH_ROUTERS
from rapport.core.errors import (
    InvalidInputError,
    MethodNotAllowedError,
    RapportError,
    error_body,
)
from rapport.core.middleware import NUL_MESSAGE, status_code_name
from rapport.core.openapi import errors_documented
from rapport.core.pydantic_messages import pydantic_message
from rapport.decisions.api import ROUTERS as ACTION_ROUTERS
from rapport.decisions.api_decisions import ROUTERS as DECISION_ROUTERS
from rapport.identity.api import ROUTERS as IDENTITY_ROUTERS
from rapport.ingest.api import ROUTERS as INGEST_ROUTERS
from rapport.ingest.spec import nul_path
from rapport.journeys.api import ROUTERS as JOURNEY_ROUTERS
from rapport.predictions.api import ROUTERS as PREDICTION_ROUTERS
from rapport.profiles.api import ROUTERS as PROFILE_ROUTERS
from rapport.sales.api import ROUTERS as SALES_ROUTERS
from rapport.segments.api import ROUTERS as SEGMENT_ROUTERS
from rapport.tenancy.api import ROUTERS as TENANCY_ROUTERS
from rapport.tenancy.auth import ApiTokenAuth, WorkspaceSessionAuth


class InvalidJsonError(ValueError):
    pass


class JsonParser(Parser):
    def parse_body(self, request: HttpRequest) -> Any:
        try:
            data = json.loads(request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidJsonError(str(exc)) from exc
        # PostgreSQL's text and jsonb cannot hold a NUL character: refused here, naming
        # the field, rather than a 500 from whichever write reaches the database.
        where = nul_path(data)
        if where is not None:
            raise InvalidInputError(str(NUL_MESSAGE), field=where)
        return data


class RapportAPI(NinjaAPI):
    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        return errors_documented(schema)


api = RapportAPI(
    title="Rapport API",
    version="1",
    description=(
        "Manage a Rapport workspace. Authenticate with `Authorization: Bearer <token>` "
        "(create tokens with `rapport workspace create` or `POST /api/v1/tokens`). "
        'Errors answer `{"error": {"code", "message", "details"}}`; text (in a '
        "body or a query) may not contain a NUL character (`\\u0000`): a 422 names the field."
    ),
    auth=[ApiTokenAuth(), WorkspaceSessionAuth()],
    parser=JsonParser(),
    urls_namespace="api",
    docs_url="/docs",
)

for prefix, router in [
    *TENANCY_ROUTERS,
    *INGEST_ROUTERS,
    *PROFILE_ROUTERS,
    *IDENTITY_ROUTERS,
    *SEGMENT_ROUTERS,
    *PREDICTION_ROUTERS,
    *ANALYTICS_ROUTERS,
    *CHANNEL_ROUTERS,
    *JOURNEY_ROUTERS,
    *ACTION_ROUTERS,
    *DECISION_ROUTERS,
    *SALES_ROUTERS,
    *SEARCH_ROUTERS,
]:
    api.add_router(prefix, router)


def _respond(request: HttpRequest, status: int, code: str, message: str, details=None):
    return api.create_response(request, error_body(code, message, details), status=status)


def _field_of(loc: tuple | list) -> str:
    parts = list(loc)
    if not parts:
        return "body"
    source = parts[0]
    # Ninja puts the body under the view's parameter name: ("body", "payload", "name").
    rest = parts[2:] if source == "body" else parts[1:]
    return ".".join(str(p) for p in rest) or str(source)


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    details = [
        {
            "field": _field_of(err.get("loc", ())),
            "message": pydantic_message(err),
            "type": err.get("type"),
        }
        for err in exc.errors
    ]
    first = details[0] if details else {"field": "body", "message": gettext("invalid")}
    message = gettext("Invalid value for '%(field)s': %(message)s") % {
        "field": first["field"],
        "message": first["message"],
    }
    if len(details) > 1:
        message += gettext(" (and %(count)s more)") % {"count": len(details) - 1}
    return _respond(request, 422, "validation_error", message, details)


@api.exception_handler(AuthenticationError)
def on_authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = _respond(
        request,
        401,
        "unauthorized",
        gettext(
            "Missing, malformed, expired or revoked credentials: "
            "send 'Authorization: Bearer <token>'"
        ),
    )
    response["WWW-Authenticate"] = 'Bearer realm="rapport"'
    return response


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if isinstance(exc.__cause__, InvalidJsonError):
        return _respond(
            request,
            400,
            "invalid_json",
            gettext("Request body is not valid JSON: %(error)s") % {"error": exc.__cause__},
        )
    if isinstance(exc.__cause__, RapportError):
        return on_rapport_error(request, exc.__cause__)
    return _respond(request, exc.status_code, status_code_name(exc.status_code), str(exc))


@api.exception_handler(RapportError)
def on_rapport_error(request: HttpRequest, exc: RapportError) -> HttpResponse:
    message = exc.message
    if isinstance(exc, InvalidInputError):
        message = gettext("Invalid value for '%(field)s': %(message)s") % {
            "field": exc.field,
            "message": exc.message,
        }
    response = _respond(request, exc.status, exc.code, message, exc.details)
    if isinstance(exc, MethodNotAllowedError):
        response["Allow"] = exc.allow
    return response


@api.exception_handler(Http404)
def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _respond(request, 404, "not_found", str(exc) or gettext("Not found"))
