"""Query expressions over keys of JSON columns (traits, event properties), the same on
SQLite and PostgreSQL: a key as text, as a number when it holds one, or whether it is
there at all. The segment rules, the analytics and the prediction features all read
JSON through these."""

from __future__ import annotations

import json
from typing import Any

from django.db.models import BooleanField, FloatField, Func
from django.db.models.fields.json import KeyTextTransform, KeyTransform


def _sqlite_paths(keys: list[str]) -> tuple[str, str]:
    """SQLite matches a path's labels against the document's text as stored, and a
    document holds non-ASCII keys either as written (orjson) or as \\u escapes (Django's
    encoder): the path in both spellings."""
    raw = "$" + "".join("." + json.dumps(k, ensure_ascii=False) for k in keys)
    escaped = "$" + "".join("." + json.dumps(k) for k in keys)
    return raw, escaped


def _sqlite_value(function: str, lhs: str, params, keys) -> tuple[str, tuple]:
    raw, escaped = _sqlite_paths(keys)
    if raw == escaped:
        return f"{function}({lhs}, %s)", (*params, raw)
    return (
        f"COALESCE({function}({lhs}, %s), {function}({lhs}, %s))",
        (*params, raw, *params, escaped),
    )


class _SqliteKeys:
    def as_sqlite(self, compiler, connection):
        lhs, params, keys = self.preprocess_lhs(compiler, connection)
        kind, kind_params = _sqlite_value("JSON_TYPE", lhs, params, keys)
        value, value_params = _sqlite_value("JSON_EXTRACT", lhs, params, keys)
        # JSON true / false / null read as the words, as PostgreSQL's ->> gives them.
        return (
            f"(CASE WHEN {kind} IN ('true', 'false', 'null') THEN {kind} ELSE {value} END)",
            (*kind_params, *kind_params, *value_params),
        )


class Key(_SqliteKeys, KeyTransform):
    pass


class KeyText(_SqliteKeys, KeyTextTransform):
    pass


class _JsonKeyFunc(Func):
    """SQL over one key of a JSON column, written per database by `key_sql`."""

    def __init__(self, transform: KeyTransform) -> None:
        super().__init__(transform)

    def as_sql(self, compiler, connection, **extra):
        transform = self.get_source_expressions()[0]
        lhs, params, keys = transform.preprocess_lhs(compiler, connection)
        return self.key_sql(connection.vendor, lhs, tuple(params), keys)

    def key_sql(self, vendor: str, lhs: str, params: tuple, keys: list[str]):
        raise NotImplementedError


class JsonPresent(_JsonKeyFunc):
    """The key is there and not JSON null."""

    output_field = BooleanField()

    def key_sql(self, vendor, lhs, params, keys):
        if vendor == "postgresql":
            return f"COALESCE(jsonb_typeof({lhs} #> %s) <> 'null', false)", (*params, keys)
        kind, kind_params = _sqlite_value("JSON_TYPE", lhs, params, keys)
        return f"COALESCE({kind} <> 'null', 0)", kind_params


class JsonNumber(_JsonKeyFunc):
    """A JSON value as a number when it is one, else NULL (a string such as "abc" in a
    property must not fail the whole query, as a cast would on PostgreSQL)."""

    output_field = FloatField()

    def key_sql(self, vendor, lhs, params, keys):
        if vendor == "postgresql":
            sql = (
                f"(CASE WHEN jsonb_typeof({lhs} #> %s) = 'number' THEN ({lhs} #>> %s)::float8 END)"
            )
            return sql, (*params, keys, *params, keys)
        kind, kind_params = _sqlite_value("JSON_TYPE", lhs, params, keys)
        value, value_params = _sqlite_value("JSON_EXTRACT", lhs, params, keys)
        sql = f"(CASE WHEN {kind} IN ('integer', 'real') THEN {value} END)"
        return sql, (*kind_params, *value_params)


def json_key(column: str, name: str, cls=None) -> KeyTransform:
    """`traits` + "address.city" -> traits -> address -> city."""
    expression: Any = column
    parts = name.split(".")
    for part in parts[:-1]:
        expression = Key(part, expression)
    return (cls or Key)(parts[-1], expression)


def json_number(column: str, name: str) -> JsonNumber:
    """A key of a JSON column (dotted for nested keys) as a number, or NULL."""
    return JsonNumber(json_key(column, name))


def json_text(column: str, name: str) -> KeyText:
    """A key of a JSON column as text (true / false as the words), or NULL."""
    return json_key(column, name, KeyText)
