"""Reading import files into Segment-shaped items: JSON Lines of events, and CSV rows
of customers (each an identify, the other columns its traits with inferred types)."""

import csv
import hashlib
import math
import re
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from rapport.ingest.spec import Invalid

_INT = re.compile(r"^[+-]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[+-]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][+-]?[0-9]+)?$")
# Columns whose values identify rather than count (phone numbers, ids, postcodes):
# kept as text, whatever they look like, as "07700 900101" and "00123" must stay
# themselves. Matched on the words of the column's name (`customerId` is customer, id).
_IDENTIFIER_WORDS = frozenset(
    {
        *("id", "ids", "uuid", "guid", "ref", "reference", "sku", "ean", "upc", "gtin", "isbn"),
        *("phone", "mobile", "cell", "tel", "telephone", "fax", "msisdn"),
        *("zip", "zipcode", "postcode", "postal", "code", "iban", "ssn", "passport"),
    }
)
_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")
# Integers past 2**53 lose digits in JSON readers (JavaScript's among them): such a
# value is a card or account number, not a quantity.
MAX_EXACT_INT = 2**53
# A cell may be larger than csv's default limit (128 KB); the row it is in is then
# refused by the event size limit, alone, rather than failing the file.
MAX_CELL_CHARS = 16 * 1024 * 1024
csv.field_size_limit(MAX_CELL_CHARS)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def count_rows(path: Path, *, kind: str) -> int:
    with path.open("rb") as fh:
        lines = sum(1 for line in fh if line.strip())
    return max(lines - 1, 0) if kind == "customers" else lines


def is_identifier_column(name: str) -> bool:
    """`phone`, `Mobile Phone`, `customerId`, `zip_code`, `Postcode`: yes; `orders`,
    `age`, `lifetime_value`: no."""
    return any(word.lower() in _IDENTIFIER_WORDS for word in _WORDS.findall(name))


def value_infer(raw: str, column: str = "") -> Any:
    """'42' -> 42, '4.5' -> 4.5, 'true' -> True, '' -> None. Text stays text where it
    is an identifier, not a number: in an identifier column (phones, ids, postcodes),
    with a leading `+` (+447700900101) or a leading zero (02134)."""
    value = raw.strip()
    if value == "":
        return None
    if column and is_identifier_column(column):
        return value
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if value.startswith("+") or (
        value.lstrip("-").startswith("0") and value.lstrip("-")[1:2].isdigit()
    ):
        return value
    if _INT.match(value):
        number = int(value)
        return number if abs(number) <= MAX_EXACT_INT else value
    if _FLOAT.match(value):
        number = float(value)
        if math.isfinite(number):
            return number
    return value


def csv_header(path: Path) -> list[str]:
    """The header row's column names, or `Invalid` for a file that is not CSV."""
    for _, record in csv_records(path):
        if isinstance(record, Invalid):
            raise Invalid("file", f"not a readable CSV file: {record.reason}")
        if any("\x00" in name for name in record):
            raise Invalid("file", "a column name in the header has a NUL character (\\u0000)")
        return record
    return []


class _Unreadable(Exception):
    """A line that is not UTF-8."""


def csv_records(path: Path) -> Iterator[tuple[int, list[str] | Invalid]]:
    """(line number, cells or `Invalid`) for each record of a CSV file, the header
    first, blank lines skipped. A record spans several lines when a quoted value holds a
    line break. One that cannot be read (a line that is not UTF-8, a quote that is never
    closed, a cell over the size limit, a quoted value spilling over lines into the
    wrong number of columns) is refused alone, and reading resumes on the line after its
    first: a stray quote cannot swallow the rows after it."""
    header_width: int | None = None
    with path.open("rb") as fh:
        lines = enumerate(fh, start=1)
        pending: deque[tuple[int, bytes]] = deque()
        taken: list[tuple[int, bytes]] = []

        def feed() -> Iterator[str]:
            while True:
                if pending:
                    number, raw = pending.popleft()
                else:
                    item = next(lines, None)
                    if item is None:
                        return
                    number, raw = item
                taken.append((number, raw))
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise _Unreadable(
                        f"line {number} is not valid UTF-8 (byte {exc.start + 1} of the line)"
                    ) from None
                yield text.removeprefix("\ufeff") if number == 1 else text

        reader = csv.reader(feed(), strict=True)
        while True:
            taken.clear()
            try:
                cells = next(reader)
            except StopIteration:
                return
            except (csv.Error, _Unreadable) as exc:
                problem = str(exc)
            else:
                if not cells:
                    continue
                if header_width is None:
                    header_width = len(cells)
                if len(taken) == 1 or len(cells) == header_width:
                    yield taken[0][0], cells
                    continue
                problem = f"it runs over {len(taken)} lines into {len(cells)} values"
            if not taken:
                return
            first = taken[0][0]
            if len(taken) > 1:
                problem = f"a quoted value that opens on line {first} is not closed ({problem})"
            yield first, Invalid("row", f"row is not readable CSV: {problem}")
            # The lines after the first are read again, as rows of their own.
            pending.extendleft(reversed(taken[1:]))
            reader = csv.reader(feed(), strict=True)


class ImportRow(NamedTuple):
    """One row of a file: its number among the file's rows (what an import resumes
    from), the line it starts on (what a person looks for), and its item or `Invalid`."""

    number: int
    line: int
    item: Any


def jsonl_items(path: Path, *, start: int, message_prefix: str) -> Iterator[ImportRow]:
    """Every non-empty line after the `start`th: its event, or `Invalid`."""
    with path.open("rb") as fh:
        number = 0
        for line, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            number += 1
            if number <= start:
                continue
            try:
                item = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                yield ImportRow(number, line, Invalid("line", f"not valid JSON: {exc}"))
                continue
            if isinstance(item, dict) and not item.get("messageId"):
                item["messageId"] = f"{message_prefix}-{number}"
            yield ImportRow(number, line, item)


def csv_items(
    path: Path, *, id_column: str, start: int, message_prefix: str
) -> Iterator[ImportRow]:
    """Every data row after the `start`th: an identify of the id column's value with
    the other columns as traits, or `Invalid`."""
    records = csv_records(path)
    header = next((cells for _, cells in records if not isinstance(cells, Invalid)), [])
    for number, (line, cells) in enumerate(records, start=1):
        if number <= start:
            continue
        if isinstance(cells, Invalid):
            yield ImportRow(number, line, cells)
            continue
        if len(cells) > len(header):
            yield ImportRow(
                number, line, Invalid("row", "row has more values than the header has columns")
            )
            continue
        row = dict(zip(header, cells, strict=False))
        user_id = (row.get(id_column) or "").strip()
        if not user_id:
            yield ImportRow(number, line, Invalid(id_column, f"{id_column} is empty"))
            continue
        traits = {}
        for column, raw in row.items():
            if column == id_column:
                continue
            value = value_infer(raw, column)
            if value is not None:
                traits[column] = value
        item = {
            "type": "identify",
            "userId": user_id,
            "traits": traits,
            "messageId": f"{message_prefix}-{number}",
        }
        yield ImportRow(number, line, item)
