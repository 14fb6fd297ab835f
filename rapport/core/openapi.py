"""The error answers in the OpenAPI document, declared once for every operation.

Each endpoint declares its success; the errors come from shared layers (authentication,
roles, validation, the database, the middleware) and have one shape. They are added
here by what an operation takes, so that a client (and schemathesis) knows every status
it can get, and a new endpoint documents them the day it lands."""

from typing import Any

ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "Stable, e.g. validation_error"},
                "message": {"type": "string", "description": "Names the offending field"},
                "details": {"description": "Every problem, for validation errors"},
            },
            "required": ["code", "message", "details"],
        }
    },
    "required": ["error"],
}

WHY = {
    400: "Malformed request: the body is not JSON, or a header is unreadable",
    401: "Missing, malformed, expired or revoked credentials",
    403: "The token's role may not do this",
    404: "No such object in this workspace",
    409: "The request conflicts with the current state",
    413: "The request body is over the size limit",
    422: "A parameter or a field of the body is invalid (the message names it)",
    503: "The database is unavailable; retry after the time in Retry-After",
}
BODY_METHODS = {"post", "put", "patch", "delete"}


def error_statuses(method: str, operation: dict[str, Any]) -> list[int]:
    statuses = [401, 403, 404, 422, 503]
    if method in BODY_METHODS:
        statuses += [400, 409, 413]
    return sorted(statuses)


def errors_documented(schema: dict[str, Any]) -> dict[str, Any]:
    """The document with the error answers added to each operation (those it declares
    itself are kept)."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for methods in schema.get("paths", {}).values():
        for method, operation in methods.items():
            responses = operation.setdefault("responses", {})
            for status in error_statuses(method, operation):
                if status in responses or str(status) in responses:
                    continue
                response: dict[str, Any] = {"description": WHY[status], "content": content}
                if status == 503:
                    response["headers"] = {
                        "Retry-After": {
                            "description": "Seconds to wait before retrying",
                            "schema": {"type": "string"},
                        }
                    }
                responses[status] = response
    return schema
