"""Bodies without a Content-Length: read up to a limit and handed to Django with their
length (the real server is exercised in tests/ingest/test_live.py)."""

import io

import pytest

from rapport.core.chunked import ChunkedBodyMiddleware


class _Stream(io.BytesIO):
    """A server's de-chunked input that counts what was read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.taken = 0

    def read(self, size=-1):
        block = super().read(size)
        self.taken += len(block)
        return block


def _run(environ: dict) -> dict:
    seen = {}

    def app(environ, start_response):
        seen["length"] = environ.get("CONTENT_LENGTH")
        seen["body"] = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        return [b""]

    ChunkedBodyMiddleware(app)(environ, lambda *a: None)
    return seen


def _environ(body: bytes, **extra) -> dict:
    return {
        "REQUEST_METHOD": "POST",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": _Stream(body),
        "wsgi.input_terminated": True,
        "CONTENT_TYPE": "application/json",
        **extra,
    }


def test_a_chunked_body_reaches_the_app_with_its_length():
    seen = _run(_environ(b'{"a": 1}'))

    assert seen == {"length": "8", "body": b'{"a": 1}'}


def test_reading_stops_one_byte_past_the_limit(settings):
    settings.RAPPORT_API_MAX_BODY_BYTES = 1000
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    environ = _environ(b"x" * 5000)
    stream = environ["wsgi.input"]

    seen = _run(environ)

    # Declared 1,001 bytes: every endpoint's own size check answers 413.
    assert seen["length"] == "1001"
    assert stream.taken == len(seen["body"]) == 1001


@pytest.mark.parametrize(
    "extra",
    [
        {"CONTENT_LENGTH": "3"},  # a declared length is Django's business
        {"HTTP_TRANSFER_ENCODING": ""},
        {"wsgi.input_terminated": False},  # a server that does not end the stream itself
    ],
)
def test_other_requests_pass_untouched(extra):
    environ = _environ(b"abc", **extra)
    stream = environ["wsgi.input"]

    ChunkedBodyMiddleware(lambda environ, start: [b""])(environ, lambda *a: None)

    assert environ["wsgi.input"] is stream
    assert stream.taken == 0
