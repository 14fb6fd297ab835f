"""Errors that services raise and that every interface (API, UI, CLI) turns into its
own answer: the API into `{"error": {"code", "message", "details"}}` with the status
below, the CLI into one line and a non-zero exit."""

from typing import Any


class RapportError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class InvalidInputError(RapportError):
    status = 422
    code = "validation_error"

    def __init__(self, message: str, *, field: str, code: str | None = None) -> None:
        super().__init__(message, code=code, details=[{"field": field, "message": message}])
        self.field = field


class NotFoundError(RapportError):
    status = 404
    code = "not_found"


class ConflictError(RapportError):
    status = 409
    code = "conflict"


class PermissionDeniedError(RapportError):
    status = 403
    code = "forbidden"


class MethodNotAllowedError(RapportError):
    """A GET where only a POST is served (an export of personal data is never a GET:
    a link followed by a crawler or a prefetch must disclose nothing)."""

    status = 405
    code = "method_not_allowed"

    def __init__(self, message: str, *, allow: str = "POST") -> None:
        super().__init__(message)
        self.allow = allow


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}
