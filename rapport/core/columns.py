"""Read a large query as columns (NumPy arrays) rather than as Python rows.

The models read a million customers by dozens of numbers each. As Python tuples that is
tens of millions of objects, converted one by one; and a server-side cursor, which
Django streams them through, keeps PostgreSQL from planning the query in parallel. On
PostgreSQL the query runs as `COPY (...) TO STDOUT` (planned in parallel, sent as CSV)
and pyarrow parses the CSV into columns; on SQLite the rows are fetched in chunks.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from itertools import islice

import numpy as np
from django.core.exceptions import EmptyResultSet
from django.db import connection

FETCH = 20_000


def columns_read(
    queryset,
    *,
    texts: Sequence[int] = (0,),
    epochs: Sequence[int] = (),
    keys: Sequence[int] = (),
) -> list[np.ndarray]:
    """The columns of a `values_list` query: those at `texts` as object arrays of str
    (or None), those at `epochs` (timestamps) as seconds since 1970, those at `keys`
    (UUIDs, never NULL) as uint64 keys (the UUID's last 64 bits: random in UUID 4 and
    7, so distinct ids collide with odds of about n^2 / 2^64), the rest as floats; NULL
    is None in a text column and NaN elsewhere. Keys cost no Python object per row:
    a million customer ids as strings take seconds, as keys milliseconds."""
    width = len(queryset.query.values_select) + len(queryset.query.annotation_select)
    texts = set(texts) - set(keys)
    if connection.vendor == "postgresql":
        return _postgresql(queryset, width, texts, set(epochs), set(keys))
    return _fetched(queryset, width, texts, set(epochs), set(keys))


MASK_64 = (1 << 64) - 1
# The 16 hexadecimal digits of a UUID's text that hold its last 64 bits.
_KEY_DIGITS = np.array([19, 20, 21, 22, *range(24, 36)])
_NIBBLE = np.zeros(256, dtype=np.uint64)
for _digit, _char in enumerate("0123456789abcdef"):
    _NIBBLE[ord(_char)] = _digit
    _NIBBLE[ord(_char.upper())] = _digit


def uuid_key(value) -> int:
    """The key `columns_read` gives a UUID (or its text)."""
    return int(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))) & MASK_64


def _keys_of(column) -> np.ndarray:
    """uint64 keys of a pyarrow string column of UUIDs, read from its buffers."""
    offset_type = np.int64 if column.type == "large_string" else np.int32
    buffers = column.buffers()
    offsets = np.frombuffer(buffers[1], dtype=offset_type)[
        column.offset : column.offset + len(column) + 1
    ]
    if len(column) == 0:
        return np.empty(0, dtype=np.uint64)
    if column.null_count or not np.all(np.diff(offsets) == 36):
        return np.array([uuid_key(v) for v in column.to_pylist()], dtype=np.uint64)
    text = np.frombuffer(buffers[2], dtype=np.uint8)[offsets[0] : offsets[-1]].reshape(-1, 36)
    nibbles = _NIBBLE[text[:, _KEY_DIGITS]]
    keys = np.zeros(len(text), dtype=np.uint64)
    for j in range(16):
        keys = (keys << np.uint64(4)) | nibbles[:, j]
    return keys


def _postgresql(
    queryset, width: int, texts: set[int], epochs: set[int], keys: set[int]
) -> list[np.ndarray]:
    from pyarrow import csv as pacsv

    try:
        sql, params = queryset.query.sql_with_params()
    except EmptyResultSet:  # the query can match nothing (an empty IN list)
        return _empty(width, texts, keys)
    names = [f"c{i}" for i in range(width)]
    outer = ", ".join(
        f"extract(epoch from q.{name})" if i in epochs else f"q.{name}"
        for i, name in enumerate(names)
    )
    statement = f"COPY (SELECT {outer} FROM ({sql}) AS q({', '.join(names)})) TO STDOUT CSV"  # noqa: S608 - the query is the ORM's, its values bound
    options = {
        "read_options": pacsv.ReadOptions(column_names=names, block_size=1 << 22),
        "convert_options": pacsv.ConvertOptions(
            column_types={
                name: ("string" if i in texts or i in keys else "float64")
                for i, name in enumerate(names)
            },
            # In COPY's CSV an empty field is NULL; an empty string is "".
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    }
    parts: list[list[np.ndarray]] = [[] for _ in range(width)]
    with connection.cursor() as cursor, cursor.cursor.copy(statement, params) as copy:
        blocks = iter(copy)
        first = next(blocks, None)
        if first is None:
            return _empty(width, texts, keys)
        # Parsed as the rows arrive, a few megabytes at a time: the CSV of a million
        # customers is never held whole, nor in a table beside its arrays.
        stream = io.BufferedReader(_Blocks(first, blocks), buffer_size=1 << 20)
        for batch in pacsv.open_csv(stream, **options):
            for i in range(width):
                column = batch.column(i)
                if i in keys:
                    parts[i].append(_keys_of(column))
                elif i in texts:
                    parts[i].append(np.array(column.to_pylist(), dtype=object))
                else:
                    parts[i].append(column.to_numpy(zero_copy_only=False))
    out = []
    for i in range(width):
        # Each column's chunks let go as soon as they are joined.
        out.append(np.concatenate(parts[i]))
        parts[i] = []
    return out


class _Blocks(io.RawIOBase):
    """The blocks COPY sends, as a file pyarrow reads."""

    def __init__(self, first, rest) -> None:
        self._rest = rest
        self._pending = memoryview(bytes(first))

    def readable(self) -> bool:
        return True

    def readinto(self, into) -> int:
        while not len(self._pending):
            block = next(self._rest, None)
            if block is None:
                return 0
            self._pending = memoryview(bytes(block))
        size = min(len(into), len(self._pending))
        into[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _empty(width: int, texts: set[int], keys: set[int] = frozenset()) -> list[np.ndarray]:
    return [
        np.empty(0, dtype=np.uint64 if i in keys else object if i in texts else float)
        for i in range(width)
    ]


def _fetched(
    queryset, width: int, texts: set[int], epochs: set[int], keys: set[int]
) -> list[np.ndarray]:
    parts: list[list] = [[] for _ in range(width)]
    rows = queryset.iterator(chunk_size=FETCH)
    while batch := list(islice(rows, FETCH)):
        for i, column in enumerate(zip(*batch, strict=True)):
            if i in keys:
                parts[i].extend(uuid_key(v) for v in column)
            elif i in texts:
                parts[i].extend(None if v is None else str(v) for v in column)
            elif i in epochs:
                parts[i].extend(_seconds(v) for v in column)
            else:
                parts[i].extend(np.nan if v is None else float(v) for v in column)
    return [
        np.array(part, dtype=np.uint64 if i in keys else object if i in texts else float)
        for i, part in enumerate(parts)
    ]


def _seconds(value) -> float:
    if value is None:
        return np.nan
    if isinstance(value, datetime):
        return value.timestamp()
    # A date: its midnight, UTC (as PostgreSQL's extract(epoch from date) counts it).
    return float((value - date(1970, 1, 1)).days * 86400)
