"""Malformed JSON, wrong types, unknown fields, oversized bodies and bad ids get a 4xx
in the error shape, name the field, and change nothing."""

import uuid

import pytest

from tests.api.operations import EXAMPLE_BODIES, OPERATIONS, example_body
from tests.api.snapshots import database_counts

WITH_BODY = [op for op in OPERATIONS if op.body_schema is not None and not op.multipart]
WITH_IDS = [op for op in OPERATIONS if op.path_params]
# Path parameters that are keys (lower-case words), not UUIDs.
KEY_PARAMS = {"action_key"}
WRONG_VALUES = [123, 4.5, True, None, ["a"], {"a": 1}, "x" * 5000]


def _assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["message"]
    if code:
        assert error["code"] == code
    return error


def test_every_body_operation_has_an_example():
    assert {op.key for op in WITH_BODY} == set(EXAMPLE_BODIES)


@pytest.mark.parametrize("operation", WITH_BODY, ids=str)
@pytest.mark.parametrize(
    "raw",
    [b'{"name":', b"not json", b"{'single': 'quotes'}", b"\xff\xfe\x00", b'{"a": 1}}'],
    ids=["truncated", "text", "single-quotes", "binary", "trailing"],
)
def test_malformed_json_is_400(operation, raw, tenant):
    before = database_counts()
    response = tenant.api().request(operation.method, operation.url(tenant.path_objects()), raw=raw)
    _assert_error(response, 400, "invalid_json")
    assert database_counts() == before


@pytest.mark.parametrize("operation", WITH_BODY, ids=str)
@pytest.mark.parametrize("body", [[], [1, 2], "text", 7, None], ids=repr)
def test_body_of_wrong_shape_is_422(operation, body, tenant):
    before = database_counts()
    raw = b"null" if body is None else None
    response = tenant.api().request(
        operation.method, operation.url(tenant.path_objects()), body, raw=raw
    )
    assert response.status_code in (400, 422), response.content
    _assert_error(response, response.status_code)
    assert database_counts() == before


_JSON_TYPES = {
    list: "array",
    dict: "object",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
}


def _schema_types(schema: dict) -> set[str]:
    types = set()
    for option in schema.get("anyOf", [schema]):
        if "$ref" in option:
            types.add("object")  # a nested schema (e.g. the channel settings' `sms`)
            continue
        kind = option.get("type")
        types |= set(kind) if isinstance(kind, list) else {kind}
    return types - {None}


def _is_wrong(value, schema: dict) -> bool:
    """Whether a value has a type (or length) the field's schema does not allow."""
    if value is None:
        return True
    kind = _JSON_TYPES[type(value)]
    allowed = _schema_types(schema)
    if kind == "integer" and "number" in allowed:
        return False
    if kind not in allowed:
        return True
    if kind == "string":
        limit = max(
            (o.get("maxLength", 10**9) for o in schema.get("anyOf", [schema])), default=10**9
        )
        return len(value) > limit
    return False


def _fields(operation) -> list[str]:
    return list(operation.body_schema.get("properties", {}))


@pytest.mark.parametrize(
    ("operation", "field"),
    [(op, field) for op in WITH_BODY for field in _fields(op)],
    ids=lambda v: str(v),
)
def test_wrong_type_for_each_field_names_the_field(operation, field, tenant):
    before = database_counts()
    url = operation.url(tenant.path_objects())
    schema = operation.body_schema["properties"][field]
    for wrong in [value for value in WRONG_VALUES if _is_wrong(value, schema)]:
        body = {**example_body(operation, tenant.path_objects()), field: wrong}
        response = tenant.api().request(operation.method, url, body)
        if wrong is None:
            # Leaving an optional field out is allowed; it may still make the rest of
            # the body inconsistent, which must then be a 4xx in the error shape.
            assert response.status_code < 300 or 400 <= response.status_code < 500
            if response.status_code >= 400:
                _assert_error(response, response.status_code)
            before = database_counts()
            continue
        error = _assert_error(response, 422, "validation_error")
        assert field in error["message"]
        assert any(detail["field"] == field for detail in error["details"])
        assert database_counts() == before


@pytest.mark.parametrize("operation", WITH_BODY, ids=str)
def test_unknown_field_is_refused(operation, tenant):
    before = database_counts()
    body = {**example_body(operation, tenant.path_objects()), "is_superuser": True}
    response = tenant.api().request(operation.method, operation.url(tenant.path_objects()), body)
    error = _assert_error(response, 422, "validation_error")
    assert "is_superuser" in error["message"]
    assert database_counts() == before


@pytest.mark.parametrize("operation", WITH_BODY, ids=str)
def test_oversized_body_is_413(operation, tenant, settings):
    before = database_counts()
    body = {
        **example_body(operation, tenant.path_objects()),
        "padding": "x" * (settings.RAPPORT_API_MAX_BODY_BYTES + 1),
    }
    response = tenant.api().request(operation.method, operation.url(tenant.path_objects()), body)
    error = _assert_error(response, 413, "payload_too_large")
    assert str(settings.RAPPORT_API_MAX_BODY_BYTES) in error["message"]
    assert database_counts() == before


@pytest.mark.parametrize("operation", WITH_IDS, ids=str)
@pytest.mark.parametrize("bad_id", ["not-a-uuid", "1 OR 1=1", "%27%3B--"])
def test_malformed_ids_are_422_naming_the_parameter(operation, bad_id, tenant):
    before = database_counts()
    values = {name: bad_id for name in operation.path_params}
    response = tenant.api().request(
        operation.method, operation.url(values), example_body(operation, tenant.path_objects())
    )
    if bad_id == "not-a-uuid" and set(operation.path_params) <= KEY_PARAMS:
        # A well-formed key that no action has.
        _assert_error(response, 404, "not_found")
        assert database_counts() == before
        return
    error = _assert_error(response, 422, "validation_error")
    assert operation.path_params[0] in error["message"]
    assert database_counts() == before


@pytest.mark.parametrize("operation", WITH_IDS, ids=str)
def test_unknown_ids_are_404(operation, tenant):
    before = database_counts()
    values = {name: str(uuid.uuid4()) for name in operation.path_params}
    response = tenant.api().request(
        operation.method, operation.url(values), example_body(operation, tenant.path_objects())
    )
    _assert_error(response, 404, "not_found")
    assert database_counts() == before


@pytest.mark.parametrize(
    "query",
    ["limit=abc", "limit=0", "limit=100000", "offset=-1", "offset=x"],
)
def test_bad_pagination_is_422(query, tenant):
    response = tenant.api().get(f"/api/v1/sources?{query}")
    error = _assert_error(response, 422, "validation_error")
    assert query.split("=")[0] in error["message"]


def test_unknown_path_and_wrong_method_answer_in_the_error_shape(tenant):
    _assert_error(tenant.api().get("/api/v1/nothing-here"), 404, "not_found")
    error = _assert_error(tenant.api().request("PUT", "/api/v1/me"), 405, "method_not_allowed")
    assert error["details"]["allowed_methods"] == ["GET"]


@pytest.mark.parametrize(
    "name",
    [
        "<script>alert(1)</script>",
        "'; DROP TABLE tenancy_source; --",
        "Robert'); DELETE FROM tenancy_workspace;--",
        "Ünïcødé 名前 🚀",
    ],
)
def test_hostile_names_are_stored_verbatim(name, tenant):
    response = tenant.api().post("/api/v1/sources", {"name": name})
    assert response.status_code == 201, response.content
    assert response.json()["name"] == name
    listed = tenant.api().get("/api/v1/sources").json()["items"]
    assert name in [source["name"] for source in listed]


def _query_params(predicate) -> list[tuple]:
    """(operation, parameter name) for every GET query parameter whose schema (or one
    of its alternatives) the predicate accepts."""
    from rapport.api import api

    found = []
    paths = api.get_openapi_schema()["paths"]
    for op in OPERATIONS:
        if op.method != "GET":
            continue
        for param in paths[op.path]["get"].get("parameters", []):
            if param["in"] != "query":
                continue
            schema = param["schema"]
            options = schema.get("anyOf", [schema])
            if any(predicate(option) for option in options):
                found.append((op, param["name"]))
    return found


STRING_QUERIES = _query_params(lambda s: s.get("type") == "string" and "enum" not in s)
DATETIME_QUERIES = _query_params(lambda s: s.get("format") == "date-time")
LISTS = [op for op, name in _query_params(lambda s: True) if name == "offset"]


def test_the_sweeps_below_find_their_parameters():
    names = {(op.path, name) for op, name in STRING_QUERIES}
    assert {("/api/v1/profiles", "q"), ("/api/v1/events", "user_id")} <= names
    assert ("/api/v1/audit-log", "since") in {(op.path, name) for op, name in DATETIME_QUERIES}
    assert len(LISTS) > 15


@pytest.mark.parametrize(("operation", "name"), STRING_QUERIES, ids=str)
def test_a_nul_character_in_a_query_parameter_is_422_naming_it(operation, name, tenant):
    url = operation.url(tenant.path_objects())
    response = tenant.api().get(f"{url}?{name}=a%00b")
    error = _assert_error(response, 422, "validation_error")
    assert name in error["message"]


@pytest.mark.parametrize(
    "offset", [str(2**63), str(2**63 - 1), str(2**31), "1" + "0" * 30], ids=len
)
@pytest.mark.parametrize("operation", LISTS, ids=str)
def test_a_huge_offset_is_422_naming_it(operation, offset, tenant):
    url = operation.url(tenant.path_objects())
    error = _assert_error(tenant.api().get(f"{url}?offset={offset}"), 422, "validation_error")
    assert "offset" in error["message"]


def test_the_largest_offset_allowed_answers_an_empty_page(tenant):
    response = tenant.api().get(f"/api/v1/events?offset={2**31 - 1}&limit=500")
    assert response.status_code == 200, response.content
    assert response.json()["items"] == []


@pytest.mark.parametrize("offset", ["+16:00", "-23:59", "+15:59", "Z"])
@pytest.mark.parametrize(("operation", "name"), DATETIME_QUERIES, ids=str)
def test_a_time_with_any_utc_offset_is_read(operation, name, offset, tenant):
    url = operation.url(tenant.path_objects())
    value = f"2026-01-01T00:00:00{offset}".replace("+", "%2B")
    response = tenant.api().get(f"{url}?{name}={value}")
    assert response.status_code == 200, response.content


def _with_nul(body, path: str = ""):
    """The body with a NUL character in its first text value, and that value's path
    (`rule.all[0].trait`)."""
    if isinstance(body, str):
        return body + "\x00", path
    if isinstance(body, dict):
        for key, value in body.items():
            changed, where = _with_nul(value, f"{path}.{key}" if path else key)
            if where is not None:
                return {**body, key: changed}, where
    if isinstance(body, list):
        for index, value in enumerate(body):
            changed, where = _with_nul(value, f"{path}[{index}]")
            if where is not None:
                return [*body[:index], changed, *body[index + 1 :]], where
    return body, None


WITH_TEXT = [op for op in WITH_BODY if _with_nul(EXAMPLE_BODIES[op.key])[1] is not None]


@pytest.mark.parametrize("operation", WITH_TEXT, ids=str)
def test_a_nul_character_in_a_body_is_422_naming_the_field_and_changes_nothing(operation, tenant):
    body, where = _with_nul(example_body(operation, tenant.path_objects()))
    before = database_counts()
    response = tenant.api().request(operation.method, operation.url(tenant.path_objects()), body)
    error = _assert_error(response, 422, "validation_error")
    assert error["details"][0]["field"] == where
    assert where in error["message"]
    assert database_counts() == before


DATE_QUERIES = _query_params(lambda s: s.get("format") in ("date", "date-time"))


@pytest.mark.parametrize("value", ["0.5", "1700000000", "-1"])
@pytest.mark.parametrize(("operation", "name"), DATE_QUERIES, ids=str)
def test_a_number_for_a_date_is_422_naming_the_parameter(operation, name, value, tenant):
    url = operation.url(tenant.path_objects())
    error = _assert_error(tenant.api().get(f"{url}?{name}={value}"), 422, "validation_error")
    assert name in error["message"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/analytics/snapshots/take", {"day": 0}, "day"),
        ("/api/v1/models/clv/train", {"as_of": 1700000000}, "as_of"),
    ],
)
def test_a_number_for_a_date_in_a_body_is_422(path, body, field, tenant):
    before = database_counts()
    error = _assert_error(tenant.api().post(path, body), 422, "validation_error")
    assert field in error["message"]
    assert database_counts() == before
