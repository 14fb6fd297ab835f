"""CSV that a spreadsheet opens without running anything: every CSV Rapport writes
(exports, reports) goes through here, so that a customer's name, an event name or a
property value that starts like a formula stays text.

A spreadsheet (Excel, LibreOffice, Google Sheets) reads a cell that starts with `=`,
`+`, `-` or `@` as a formula, and a leading tab or line break can hide one; a formula
can open links (`=HYPERLINK`), leak other cells or run commands (`+cmd|...`). Such a
cell gets a leading apostrophe, which the spreadsheet shows as text (OWASP's advice).
Plain numbers (`-12.5`, `+447700900101`) are no formula and are left as they are.
"""

import csv
import io
import re
from collections.abc import Iterable, Iterator
from typing import Any

from django.http import HttpResponse, StreamingHttpResponse

# The full-width forms are read as their ASCII twins by some spreadsheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_NUMBER = re.compile(r"^[+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$")


def csv_cell(value: Any) -> Any:
    """The value as a cell: text that could start a formula made inert, None empty."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _NUMBER.match(value):
        return "'" + value
    return value


def csv_lines(rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """Each row as one line of CSV, for a streamed download."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([csv_cell(value) for value in row])
        yield buffer.getvalue()


def _attachment(response: HttpResponse | StreamingHttpResponse, filename: str):
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def csv_response(rows: Iterable[Iterable[Any]], filename: str) -> HttpResponse:
    """A CSV download built whole (reports)."""
    content = "".join(csv_lines(rows))
    return _attachment(HttpResponse(content, content_type="text/csv; charset=utf-8"), filename)


def csv_streaming_response(lines: Iterable[str], filename: str) -> StreamingHttpResponse:
    """A CSV download streamed line by line (exports of any size); `lines` come from
    `csv_lines`."""
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    return _attachment(response, filename)


def csv_file_response(path, filename: str):
    """A CSV file written earlier from `csv_lines` (a scheduled export's run), served
    as a download without reading it whole."""
    from django.http import FileResponse

    return FileResponse(
        open(path, "rb"),
        as_attachment=True,
        filename=filename,
        content_type="text/csv; charset=utf-8",
    )
