"""The bulk write of events, the hottest path in Rapport.

Django's `bulk_create` spends most of its time adapting values one by one (on
PostgreSQL it quotes the arrays of an UNNEST client-side). Events are written instead
on the same connection, inside the caller's transaction, with one statement a batch:
on PostgreSQL the rows travel as one JSON document expanded by `jsonb_to_recordset`,
on SQLite `INSERT OR IGNORE` runs with executemany. The unique messageId constraint
still decides what is a duplicate. Columns and types come from the model, so a new
field is written without touching this module.
"""

import uuid
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from django.db import connection, models

from rapport.ingest.models import Event


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


def _complete(rows: Sequence[dict[str, Any]], fields: list[models.Field]) -> None:
    """Fill what the parser does not set (the id, defaults) as the model would."""
    for field in fields:
        if any(field.attname not in row for row in rows):
            for row in rows:
                if field.attname not in row:
                    row[field.attname] = field.get_default()


def events_write(rows: Sequence[dict[str, Any]]) -> None:
    """Insert events given as {attname: value}, skipping any whose (workspace,
    messageId) is already stored. No model instances: building them costs more than
    the insert."""
    if not rows:
        return
    fields = list(Event._meta.concrete_fields)
    _complete(rows, fields)
    table = connection.ops.quote_name(Event._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            record = ", ".join(
                f"{connection.ops.quote_name(f.column)} {f.db_type(connection)}" for f in fields
            )
            document = orjson.dumps(
                [{f.column: row[f.attname] for f in fields} for row in rows],
                default=str,
            ).decode()
            cursor.execute(
                f"INSERT INTO {table} ({columns}) "
                f"SELECT {columns} FROM jsonb_to_recordset(%s::jsonb) AS r({record}) "
                "ON CONFLICT (workspace_id, message_id) DO NOTHING",
                [document],
            )
        else:
            converters = [(f.attname, _sqlite_converter(f)) for f in fields]
            values = [tuple(convert(row[name]) for name, convert in converters) for row in rows]
            placeholders = ", ".join(["%s"] * len(fields))
            cursor.executemany(
                f"INSERT OR IGNORE INTO {table} ({columns}) VALUES ({placeholders})", values
            )
