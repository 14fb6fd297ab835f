"""The OpenAPI document names each schema by its class: two request or response
classes of the same name in different apps would silently share one entry, and the
documentation (and these tests, which read it) would show one app's fields for the
other's endpoint."""

import importlib
import inspect
import json
import pkgutil

from pydantic import BaseModel

import rapport
from rapport.api import api


def test_schema_class_names_are_unique_across_the_apps():
    seen: dict[str, str] = {}
    for app in pkgutil.iter_modules(rapport.__path__):
        try:
            module = importlib.import_module(f"rapport.{app.name}.api")
        except ModuleNotFoundError:
            continue
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseModel)
                and value.__module__ == module.__name__
            ):
                assert name not in seen, f"{name} is defined in {seen.get(name)} and {module}"
                seen[name] = module.__name__


def test_every_schema_and_enumeration_name_means_one_thing():
    """Each class's schema brings its nested ones (enumerations such as a model's
    `Kind`): two of one name in different apps would share one entry too."""
    definitions: dict[str, dict[str, str]] = {}
    for app in pkgutil.iter_modules(rapport.__path__):
        try:
            module = importlib.import_module(f"rapport.{app.name}.api")
        except ModuleNotFoundError:
            continue
        for name, value in vars(module).items():
            if not (inspect.isclass(value) and issubclass(value, BaseModel)):
                continue
            for mode in ("validation", "serialization"):
                nested = value.model_json_schema(mode=mode).get("$defs", {})
                for key, definition in nested.items():
                    text = json.dumps(definition, sort_keys=True)
                    definitions.setdefault(key, {})[text] = f"{module.__name__}.{name}"
    clashes = {key: list(seen.values()) for key, seen in definitions.items() if len(seen) > 1}
    assert clashes == {}


def test_source_and_import_kinds_are_documented_apart():
    schemas = api.get_openapi_schema()["components"]["schemas"]

    def kinds(name: str) -> list[str]:
        ref = schemas[name]["properties"]["kind"]
        ref = ref.get("$ref") or ref["allOf"][0]["$ref"]
        return schemas[ref.rsplit("/", 1)[-1]]["enum"]

    assert "http" in kinds("SourceIn") and "http" in kinds("SourceOut")
    assert kinds("ImportOut") == ["events", "customers"]


def test_each_settings_endpoint_documents_its_own_fields():
    paths = api.get_openapi_schema()["paths"]
    schemas = api.get_openapi_schema()["components"]["schemas"]

    def body_fields(path: str) -> set[str]:
        ref = paths[path]["patch"]["requestBody"]["content"]["application/json"]["schema"]
        return set(schemas[ref["$ref"].rsplit("/", 1)[-1]]["properties"])

    assert {"purchase_event", "reporting_currency"} <= body_fields("/api/v1/workspace/commerce")
    assert "churn_label" in body_fields("/api/v1/models/settings")
    assert "timezone" in body_fields("/api/v1/analytics/settings")


def test_every_operation_documents_its_error_answers():
    schema = api.get_openapi_schema()
    error = {"$ref": "#/components/schemas/Error"}
    assert set(schema["components"]["schemas"]["Error"]["properties"]) == {"error"}
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            responses = operation["responses"]
            expected = {401, 403, 404, 422, 503}
            if method in ("post", "patch", "put", "delete"):
                expected |= {400, 409, 413}
            assert expected <= set(responses), f"{method} {path}"
            for status in expected:
                assert responses[status]["content"]["application/json"]["schema"] == error
            assert "Retry-After" in responses[503]["headers"]
