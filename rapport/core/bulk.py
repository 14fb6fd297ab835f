"""Set-based writes for the hot paths (event ingestion, identity resolution).

Django's `bulk_create` and `bulk_update` adapt values one by one and, for updates,
build one CASE expression per field: thousands of rows cost seconds. These helpers send
one statement a batch: on PostgreSQL the rows travel as binary arrays expanded by
`unnest` (or, with JSON columns, as one JSON document expanded by `jsonb_to_recordset`),
bound on the server (`core.rows.statement_run`); on SQLite `executemany` runs a prepared
statement. Columns and types come from the model, identifiers are quoted, every value
is a bound parameter.
"""

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
from django.db import connection, models, transaction
from django.utils import timezone

from rapport.core.rows import statement_run


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


def _records(
    rows: Sequence[dict[str, Any]], fields: Sequence[models.Field]
) -> tuple[str, list[Any]]:
    """The rows as a PostgreSQL row source `r` with a column per field, and its
    parameters. Plain columns, each of one Python type, travel as binary arrays expanded
    by `unnest` (5,000 rows: 2 ms, against 15 ms to build a JSON document); rows with
    JSON, or a column of mixed types (ids as UUIDs and as text), as one JSON document
    expanded by `jsonb_to_recordset`."""
    columns = [[row[f.attname] for row in rows] for f in fields]
    if not any(isinstance(f, models.JSONField) for f in fields) and all(
        len({type(v) for v in column} - {type(None)}) <= 1 for column in columns
    ):
        arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
        names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
        return f"unnest({arrays}) AS r({names})", columns
    document = orjson.dumps(
        [{f.column: row[f.attname] for f in fields} for row in rows], default=str
    ).decode()
    return f"jsonb_to_recordset(%s::jsonb) AS r({_record_type(fields)})", [document]


def rows_insert(
    model: type[models.Model], rows: Sequence[dict[str, Any]], *, conflict: Sequence[str]
) -> None:
    """Insert rows given as {attname: value}, skipping those that collide on the unique
    columns `conflict` (none named: a collision raises IntegrityError)."""
    if not rows:
        return
    # A sequence primary key the rows leave out is the database's to fill.
    fields = [
        f
        for f in model._meta.concrete_fields
        if not (isinstance(f, models.AutoField | models.BigAutoField) and f.attname not in rows[0])
    ]
    for field in fields:
        missing = [row for row in rows if field.attname not in row]
        if not missing:
            continue
        if callable(field.default) and field.default not in (dict, list):
            for row in missing:  # a value of its own each (a new id, the time)
                row[field.attname] = field.get_default()
        else:
            default = field.get_default()  # written out at once: one object serves all
            for row in missing:
                row[field.attname] = default
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    if connection.vendor == "postgresql":
        target = ", ".join(connection.ops.quote_name(c) for c in conflict)
        source, params = _records(rows, fields)
        skip = f" ON CONFLICT ({target}) DO NOTHING" if conflict else ""
        statement_run(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {source}{skip}", params
        )
        return
    converters = [(f.attname, _sqlite_converter(f)) for f in fields]
    values = [tuple(convert(row[name]) for name, convert in converters) for row in rows]
    placeholders = ", ".join(["%s"] * len(fields))
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT{' OR IGNORE' if conflict else ''} INTO {table} ({columns})"
            f" VALUES ({placeholders})",
            values,
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
    if connection.vendor == "postgresql":
        record_fields = [pk, *targets]
        assignments = ", ".join(
            f"{connection.ops.quote_name(f.column)} = r.{connection.ops.quote_name(f.column)}"
            for f in targets
        )
        key = connection.ops.quote_name(pk.column)
        source, params = _records(rows, record_fields)
        statement_run(
            f"UPDATE {table} SET {assignments} FROM {source} WHERE {table}.{key} = r.{key}",
            params,
            by_key=True,
        )
        return
    converters = [(f.attname, _sqlite_converter(f)) for f in [*targets, pk]]
    values = [tuple(convert(row[name]) for name, convert in converters) for row in rows]
    assignments = ", ".join(f"{connection.ops.quote_name(f.column)} = %s" for f in targets)
    key = connection.ops.quote_name(pk.column)
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {table} SET {assignments} WHERE {key} = %s", values)


def rows_widen(
    model: type[models.Model],
    rows: Sequence[tuple[Any, Any, Any]],
    *,
    low: str,
    high: str,
) -> None:
    """Widen a range kept in two columns of many rows, given as (pk, low, high): `low`
    becomes the lesser and `high` the greater of the stored and the given value (a NULL
    stored value takes the given one); `updated_at` is set when the model has it. One
    statement, no read."""
    if not rows:
        return
    meta = model._meta
    table = connection.ops.quote_name(meta.db_table)
    key = connection.ops.quote_name(meta.pk.column)
    low_field, high_field = meta.get_field(low), meta.get_field(high)
    lo, hi = (connection.ops.quote_name(f.column) for f in (low_field, high_field))
    stamp = any(f.name == "updated_at" for f in meta.concrete_fields)
    now = [timezone.now()] if stamp else []
    touch = ", updated_at = %s" if stamp else ""
    if connection.vendor == "postgresql":
        keys, lows, highs = (list(column) for column in zip(*rows, strict=True))
        # Bound on the server: three array parameters, sent in binary.
        statement_run(
            f"UPDATE {table} AS t SET {lo} = LEAST(t.{lo}, r.low), "
            f"{hi} = GREATEST(t.{hi}, r.high){touch} "
            f"FROM unnest(%s::{meta.pk.db_type(connection)}[], "
            f"%s::{low_field.db_type(connection)}[], %s::{high_field.db_type(connection)}[]) "
            f"AS r(key, low, high) WHERE t.{key} = r.key",
            [*now, keys, lows, highs],
            by_key=True,
        )
        return
    with connection.cursor() as cursor:
        convert_key = _sqlite_converter(meta.pk)
        convert_low, convert_high = _sqlite_converter(low_field), _sqlite_converter(high_field)
        extra = [connection.ops.adapt_datetimefield_value(now[0])] if stamp else []
        cursor.executemany(
            f"UPDATE {table} SET {lo} = MIN(COALESCE({lo}, %s), %s), "
            f"{hi} = MAX(COALESCE({hi}, %s), %s){touch} WHERE {key} = %s",
            [
                (
                    convert_low(low_value),
                    convert_low(low_value),
                    convert_high(high_value),
                    convert_high(high_value),
                    *extra,
                    convert_key(pk),
                )
                for pk, low_value, high_value in rows
            ],
        )


def rows_insert_select(model: type[models.Model], columns: Sequence[str], queryset) -> int:
    """INSERT INTO model (columns) SELECT <the queryset's values_list, column for
    column>, in the database: rows that collide with a unique constraint are skipped.
    Returns how many were inserted."""
    sql, params = queryset.query.sql_with_params()
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(model._meta.get_field(c).column) for c in columns)
    with connection.cursor() as cursor:
        # SQLite needs the WHERE to read ON CONFLICT as the insert's, not the join's.
        cursor.execute(
            f"INSERT INTO {table} ({names}) SELECT * FROM ({sql}) AS source WHERE 1 = 1 "
            "ON CONFLICT DO NOTHING",
            params,
        )
        return cursor.rowcount


@contextmanager
def ids_temp_table(queryset) -> Iterator[str]:
    """The queryset's primary keys written once into a temporary table of this
    connection (dropped on leaving), for several statements to read a costly result
    without computing it again. Yields the table's name."""
    name = f"rapport_ids_{uuid.uuid4().hex[:16]}"
    pk = queryset.model._meta.pk
    sql, params = queryset.values_list("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {name} (id {pk.db_type(connection)} PRIMARY KEY)")
        try:
            cursor.execute(f"INSERT INTO {name} (id) {sql}", params)
            cursor.execute(f"ANALYZE {name}")
            yield name
        finally:
            cursor.execute(f"DROP TABLE IF EXISTS {name}")


def rows_in_table(queryset, column: str, table: str, *, present: bool = True):
    """The queryset's rows whose `column` is (or, present=False, is not) an id in the
    temporary table `table` (from `ids_temp_table`): a semi- or anti-join."""
    model = queryset.model
    qualified = (
        f"{connection.ops.quote_name(model._meta.db_table)}."
        f"{connection.ops.quote_name(model._meta.get_field(column).column)}"
    )
    test = "EXISTS" if present else "NOT EXISTS"
    # Only identifiers go into the SQL: the model's own, quoted, and the table name
    # that ids_temp_table made.
    condition = f"{test} (SELECT 1 FROM {table} AS t WHERE t.id = {qualified})"
    return queryset.extra(where=[condition])  # noqa: S610


def tables_analyze(*models: type[models.Model]) -> None:
    """Refresh the planner's statistics of tables just rewritten in bulk: autovacuum does
    it minutes later, if at all, and a query planned on the old figures (a table of
    100,000 rows taken for 4) can take minutes instead of a second."""
    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


# What autovacuum itself waits for before it analyses a table again
# (autovacuum_analyze_threshold + autovacuum_analyze_scale_factor x rows).
STALE_ROWS = 50
STALE_SHARE = 0.1
QUICK_STATISTICS_TARGET = 10


def tables_analyze_stale(*models: type[models.Model]) -> list[str]:
    """PostgreSQL: analyse each of these tables whose rows changed since its last
    analysis by more than autovacuum's own threshold, as autovacuum would have (it may be
    off, as on many development servers, or behind); returns the tables analysed.

    Tables that grow from nothing under a steady load (a new workspace's events,
    profiles, identifiers) are otherwise planned on the figures of their first minute:
    a batch's `profile_id = ANY(...)` became a filter over every event of the workspace
    (measured: 150 ms a batch at 50,000 events, instead of 10). One worker at a time
    (an advisory lock tried, not waited for); a millisecond when nothing is due."""
    if connection.vendor != "postgresql" or not models:
        return []
    tables = [model._meta.db_table for model in models]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid"
            " WHERE s.schemaname = current_schema() AND s.relname = ANY(%s)"
            " AND s.n_mod_since_analyze > %s + %s * GREATEST(c.reltuples, 0)",
            [tables, STALE_ROWS, STALE_SHARE],
        )
        stale = sorted(row[0] for row in cursor.fetchall())
    if not stale:
        return []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(hashtext('rapport.tables_analyze_stale'))")
        if not cursor.fetchone()[0]:
            return []
        # A quick sample (3,000 rows rather than 30,000: 60 ms rather than 500 ms for
        # 100,000 events), enough to correct figures that are off by more than
        # autovacuum allows; autovacuum's own analysis replaces it when it runs.
        cursor.execute(f"SET LOCAL default_statistics_target = {int(QUICK_STATISTICS_TARGET)}")
        for table in stale:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
    return stale
