"""Reading import files into Segment-shaped items: JSON Lines of events, and CSV rows
of customers (each an identify, the other columns its traits with inferred types)."""

import csv
import hashlib
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from rapport.ingest.spec import Invalid

_INT = re.compile(r"^[+-]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[+-]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][+-]?[0-9]+)?$")


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


def value_infer(raw: str) -> Any:
    """'42' -> 42, '4.5' -> 4.5, 'true' -> True, '' -> None; '02134' stays text, as
    codes with leading zeros are not numbers."""
    value = raw.strip()
    if value == "":
        return None
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if _INT.match(value):
        return int(value)
    if _FLOAT.match(value) and not (value.startswith("0") and value[1:2].isdigit()):
        number = float(value)
        if math.isfinite(number):
            return number
    return value


def csv_header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        try:
            return next(csv.reader(fh))
        except StopIteration:
            return []
        except (csv.Error, UnicodeDecodeError) as exc:
            raise Invalid("file", f"not a readable CSV file: {exc}") from None


def jsonl_items(path: Path, *, start: int, message_prefix: str) -> Iterator[tuple[int, Any]]:
    """(line number, item or Invalid) for every non-empty line after `start`."""
    with path.open("rb") as fh:
        number = 0
        for line in fh:
            if not line.strip():
                continue
            number += 1
            if number <= start:
                continue
            try:
                item = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield number, Invalid("line", f"not valid JSON: {exc}")
                continue
            if isinstance(item, dict) and not item.get("messageId"):
                item["messageId"] = f"{message_prefix}-{number}"
            yield number, item


def csv_items(
    path: Path, *, id_column: str, start: int, message_prefix: str
) -> Iterator[tuple[int, Any]]:
    """(row number, identify item or Invalid) for every data row after `start`."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        for number, row in enumerate(reader, start=1):
            if number <= start:
                continue
            if None in row:
                yield number, Invalid("row", "row has more values than the header has columns")
                continue
            user_id = (row.get(id_column) or "").strip()
            if not user_id:
                yield number, Invalid(id_column, f"{id_column} is empty")
                continue
            traits = {}
            for column, raw in row.items():
                if column == id_column or raw is None:
                    continue
                value = value_infer(raw)
                if value is not None:
                    traits[column] = value
            yield (
                number,
                {
                    "type": "identify",
                    "userId": user_id,
                    "traits": traits,
                    "messageId": f"{message_prefix}-{number}",
                },
            )
