"""Set-based writes for the hot paths (event ingestion, identity resolution).

Django's `bulk_create` and `bulk_update` adapt values one by one and, for updates,
build one CASE expression per field: thousands of rows cost seconds. These helpers send
one statement a batch: on PostgreSQL the rows travel as one JSON document expanded by
`jsonb_to_recordset`, on SQLite `executemany` runs a prepared statement. Columns and
types come from the model, identifiers are quoted, every value is a bound parameter.
"""

import uuid
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from django.db import connection, models


def _sqlite_converter(field: models.Field) -> Callable[[Any], Any]:
    if isinstance(field, models.JSONField):
        return lambda v: orjson.dumps(v).decode()
    if isinstance(field, models.UUIDField) or (
        isinstance(field, models.ForeignKey) and isinstance(field.target_field, models.UUIDField)
    ):
        return lambda v: None if v is None else (uuid.UUID(v) if isinstance(v, str) else v).hex
    if isinstance(field, models.DateTimeField):
        return connection.ops.adapt_datetimefield_value
    return lambda v: v


def _record_type(fields: Sequence[models.Field]) -> str:
    return ", ".join(
        f"{connection.ops.quote_name(f.column)} {f.db_type(connection)}" for f in fields
    )


def _document(rows: Sequence[dict[str, Any]], fields: Sequence[models.Field]) -> str:
    return orjson.dumps(
        [{f.column: row[f.attname] for f in fields} for row in rows], default=str
    ).decode()


def rows_insert(
    model: type[models.Model], rows: Sequence[dict[str, Any]], *, conflict: Sequence[str]
) -> None:
    """Insert rows given as {attname: value}, skipping those that collide on the unique
    columns `conflict`."""
    if not rows:
        return
    fields = list(model._meta.concrete_fields)
    for field in fields:
        for row in rows:
            if field.attname not in row:
                row[field.attname] = field.get_default()
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            target = ", ".join(connection.ops.quote_name(c) for c in conflict)
            cursor.execute(
                f"INSERT INTO {table} ({columns}) "
                f"SELECT {columns} FROM jsonb_to_recordset(%s::jsonb) AS r({_record_type(fields)}) "
                f"ON CONFLICT ({target}) DO NOTHING",
                [_document(rows, fields)],
            )
        else:
            converters = [(f.attname, _sqlite_converter(f)) for f in fields]
            values = [tuple(convert(row[name]) for name, convert in converters) for row in rows]
            placeholders = ", ".join(["%s"] * len(fields))
            cursor.executemany(
                f"INSERT OR IGNORE INTO {table} ({columns}) VALUES ({placeholders})", values
            )


def rows_update(
    model: type[models.Model], rows: Sequence[dict[str, Any]], *, fields: Sequence[str]
) -> None:
    """Set `fields` of many rows in one statement; each row is {"pk": ..., field: ...}
    with attnames (`profile_id`, not `profile`)."""
    if not rows:
        return
    meta = model._meta
    pk = meta.pk
    targets = [meta.get_field(name) for name in fields]
    table = connection.ops.quote_name(meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            record_fields = [pk, *targets]
            document = orjson.dumps(
                [{f.column: row[f.attname] for f in record_fields} for row in rows], default=str
            ).decode()
            assignments = ", ".join(
                f"{connection.ops.quote_name(f.column)} = r.{connection.ops.quote_name(f.column)}"
                for f in targets
            )
            key = connection.ops.quote_name(pk.column)
            cursor.execute(
                f"UPDATE {table} SET {assignments} "
                f"FROM jsonb_to_recordset(%s::jsonb) AS r({_record_type(record_fields)}) "
                f"WHERE {table}.{key} = r.{key}",
                [document],
            )
        else:
            converters = [(f.attname, _sqlite_converter(f)) for f in [*targets, pk]]
            values = [tuple(convert(row[name]) for name, convert in converters) for row in rows]
            assignments = ", ".join(f"{connection.ops.quote_name(f.column)} = %s" for f in targets)
            key = connection.ops.quote_name(pk.column)
            cursor.executemany(f"UPDATE {table} SET {assignments} WHERE {key} = %s", values)
