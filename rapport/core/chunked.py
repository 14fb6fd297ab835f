"""Request bodies sent without a Content-Length (`Transfer-Encoding: chunked`), as
analytics-kotlin streams its gzip batches and any HTTP client streams a generator.

Django reads exactly CONTENT_LENGTH bytes of `wsgi.input`, so such a body reached the
views empty. The server (granian, gunicorn) already removes the chunk framing and says
the stream ends by itself (`wsgi.input_terminated`); this wrapper reads it, up to a
limit and spooled to disk past a megabyte, and hands Django the body with its length.
A body over the limit is cut at limit + 1 bytes and declared so: each endpoint's own
size check then refuses it (413) exactly as if the client had declared that length.
"""

import tempfile
from collections.abc import Callable, Iterable

from django.conf import settings

BLOCK = 64 * 1024
IN_MEMORY = 1024 * 1024


def body_limit(environ: dict) -> int:
    """The largest body any endpoint takes for this kind of request."""
    if environ.get("CONTENT_TYPE", "").startswith("multipart/form-data"):
        return settings.RAPPORT_UPLOAD_MAX_BYTES
    return max(settings.RAPPORT_API_MAX_BODY_BYTES, settings.DATA_UPLOAD_MAX_MEMORY_SIZE)


class ChunkedBodyMiddleware:
    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if (
            not environ.get("CONTENT_LENGTH")
            and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
            and environ.get("wsgi.input_terminated")
        ):
            self._buffer(environ)
        return self.app(environ, start_response)

    def _buffer(self, environ: dict) -> None:
        limit = body_limit(environ)
        stream = environ["wsgi.input"]
        spool = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY)  # noqa: SIM115 - handed on
        size = 0
        while size <= limit:
            block = stream.read(min(BLOCK, limit + 1 - size))
            if not block:
                break
            spool.write(block)
            size += len(block)
        spool.seek(0)
        environ["wsgi.input"] = spool
        environ["CONTENT_LENGTH"] = str(size)
