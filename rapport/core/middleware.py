"""Keeps the API's promise of one error shape, whatever part of the stack answers.

Django itself answers some requests before a Ninja view runs (an unknown URL, a body
over the size limit, a method not allowed, a database that went away). For API paths
this middleware turns those answers into `{"error": {...}}` JSON too.
"""

import logging
from collections.abc import Callable
from http import HTTPStatus

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.utils import translation
from django.utils.translation import gettext, gettext_lazy

from rapport.core.errors import RapportError, error_body

logger = logging.getLogger(__name__)

API_PATH_PREFIXES = ("/api/", "/v1/")
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    503: "service_unavailable",
}


def is_api_path(path: str) -> bool:
    return path.startswith(API_PATH_PREFIXES)


def is_tracking_path(path: str) -> bool:
    """The Tracking API answers SDKs, not people: its errors stay in English."""
    return is_api_path(path) and not path.startswith("/api/")


# What a status alone says, in the person's language (HTTPStatus's phrase in English).
STATUS_PHRASES = {
    400: gettext_lazy("Bad Request"),
    401: gettext_lazy("Unauthorized"),
    403: gettext_lazy("Forbidden"),
    404: gettext_lazy("Not Found"),
    405: gettext_lazy("Method Not Allowed"),
    409: gettext_lazy("Conflict"),
    413: gettext_lazy("Request Entity Too Large"),
    415: gettext_lazy("Unsupported Media Type"),
    422: gettext_lazy("Unprocessable Entity"),
    429: gettext_lazy("Too Many Requests"),
    500: gettext_lazy("Internal Server Error"),
    503: gettext_lazy("Service Unavailable"),
}


def status_phrase(status: int) -> str:
    if status in STATUS_PHRASES:
        return str(STATUS_PHRASES[status])
    return HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""


def error_language(request: HttpRequest) -> str:
    """The language of an error that this middleware answers itself: English on the
    Tracking API; on the management API the one Django's LocaleMiddleware would pick
    (Accept-Language, the language cookie), since the answer comes before it runs."""
    if is_tracking_path(request.path):
        return "en"
    return translation.get_language_from_request(request)


def error_response(status: int, code: str, message: str, details=None) -> JsonResponse:
    return JsonResponse(error_body(code, message, details), status=status)


NUL_MESSAGE = gettext_lazy("a NUL character (\\u0000) is not allowed")


def _query_nul(request: HttpRequest) -> str | None:
    """The query parameter with a NUL character in its name or value, or None. Every
    filter reaches the database, and PostgreSQL's text cannot hold one: refused here
    once rather than a 500 from each list."""
    query = request.META.get("QUERY_STRING", "")
    if "%00" not in query and "\x00" not in query:
        return None
    for name, values in request.GET.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            return name.replace("\x00", "\\u0000")
    return None


def status_code_name(status: int) -> str:
    return STATUS_CODES.get(status, "error")


class ApiErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_api_path(request.path):
            return self._page(request)
        with translation.override(error_language(request)):
            refused = self._refuse(request)
        if refused is not None:
            return refused
        response = self.get_response(request)
        if is_tracking_path(request.path):
            with translation.override("en"):
                return self._shape(response)
        return self._shape(response)

    def _page(self, request: HttpRequest) -> HttpResponse:
        nul = _query_nul(request)
        if nul is not None:
            with translation.override(translation.get_language_from_request(request)):
                text = f"{nul}: {NUL_MESSAGE}"
            return HttpResponseBadRequest(text, content_type="text/plain")
        return self.get_response(request)

    def _refuse(self, request: HttpRequest) -> HttpResponse | None:
        nul = _query_nul(request)
        if nul is not None:
            message = gettext("Invalid value for '%(field)s': %(message)s") % {
                "field": nul,
                "message": NUL_MESSAGE,
            }
            return error_response(
                422, "validation_error", message, [{"field": nul, "message": str(NUL_MESSAGE)}]
            )
        return self._refuse_oversized(request)

    def _refuse_oversized(self, request: HttpRequest) -> HttpResponse | None:
        if request.method not in BODY_METHODS:
            return None
        limit = settings.RAPPORT_API_MAX_BODY_BYTES
        if request.META.get("CONTENT_TYPE", "").startswith("multipart/form-data"):
            # File uploads (imports) stream to disk and may be much larger.
            limit = settings.RAPPORT_UPLOAD_MAX_BYTES
        raw_length = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw_length)
        except ValueError:
            return error_response(
                400, "bad_request", gettext("Content-Length header is not a number")
            )
        if length > limit:
            return error_response(
                413,
                "payload_too_large",
                gettext("Request body is %(length)s bytes; the limit is %(limit)s bytes")
                % {"length": length, "limit": limit},
                {"limit_bytes": limit},
            )
        return None

    def _shape(self, response: HttpResponse) -> HttpResponse:
        if response.status_code < 400:
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        status = response.status_code
        message = status_phrase(status)
        details = None
        if status == 405 and response.has_header("Allow"):
            details = {"allowed_methods": response["Allow"].split(", ")}
            message = gettext("Method not allowed; allowed: %(methods)s") % {
                "methods": response["Allow"]
            }
        shaped = error_response(status, status_code_name(status), message, details)
        if response.has_header("Allow"):
            shaped["Allow"] = response["Allow"]
        return shaped

    def process_view(self, request: HttpRequest, *args: object) -> None:
        # After LocaleMiddleware and the person's language: the Tracking API speaks English.
        if is_tracking_path(request.path):
            translation.activate("en")
            request.LANGUAGE_CODE = "en"

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not is_api_path(request.path):
            return None
        if isinstance(exc, RapportError):
            return error_response(exc.status, exc.code, exc.message, exc.details)
        if isinstance(exc, OperationalError | InterfaceError) or (
            isinstance(exc, DatabaseError) and "connect" in str(exc).lower()
        ):
            logger.warning("database unavailable for %s: %s", request.path, exc)
            response = error_response(
                503, "service_unavailable", gettext("The database is unavailable; retry later")
            )
            response["Retry-After"] = "5"
            return response
        logger.exception("unhandled error on %s", request.path)
        return error_response(500, "internal_error", gettext("Internal server error"))
