"""One outgoing HTTP request for the transports: a timeout, no redirects, a cap on how
much of the answer is read, and network failures turned into retryable TransportErrors."""

from __future__ import annotations

import email.utils
import ipaddress
import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from rapport.channels.transports import TransportError

# httpx logs every request at INFO, URL included: a webhook URL can carry a receiver's
# token in its query, and a broadcast would log a line per message. Warnings only.
logging.getLogger("httpx").setLevel(logging.WARNING)

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "Rapport/0.1 (+https://github.com/rapport)"


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: httpx.Headers
    body: bytes  # at most max_response_bytes of it
    truncated: bool

    def json(self) -> Any:
        import json

        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None

    def retry_after(self) -> float | None:
        """Seconds from a Retry-After header (a number or an HTTP date), if any."""
        value = self.headers.get("retry-after")
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


_client: httpx.Client | None = None
_client_pid = 0
_client_lock = threading.Lock()


def client() -> httpx.Client:
    """The process's shared client: connections (and the TLS context, ~50 ms to build)
    are reused across sends. Thread-safe; a forked worker builds its own."""
    global _client, _client_pid
    with _client_lock:
        if _client is None or _client_pid != os.getpid():
            _client = httpx.Client(
                follow_redirects=False,
                timeout=DEFAULT_TIMEOUT,
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            )
            _client_pid = os.getpid()
        return _client


def check_public_destination(url: str) -> None:
    """Refuse a URL whose host resolves to a loopback, private, link-local or otherwise
    non-public address (a workspace's webhook must not reach Rapport's own network).
    Not retryable: the address will not change by waiting."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
        parts = parts._replace(netloc="")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TransportError(f"Not an http(s) URL: {url!r}", retryable=False)
    try:
        infos = socket.getaddrinfo(parts.hostname, port or 443, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise TransportError(f"Cannot resolve {parts.hostname!r}: {exc}", retryable=True) from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise TransportError(
                f"{parts.hostname!r} resolves to a non-public address ({address})",
                retryable=False,
            )


def post(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
    data: Mapping[str, Any] | None = None,
    json_body: Any = None,
    auth: tuple[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
) -> HttpResponse:
    """POST and read at most ``max_response_bytes`` of the answer. A connection error or
    a timeout raises a retryable TransportError (the request may or may not have reached
    the provider: that is what the idempotency key is for). ``timeout`` bounds each
    network wait; reading the body stops after twice that (a receiver that drips it)."""
    deadline = time.monotonic() + 2 * timeout
    all_headers = {"User-Agent": USER_AGENT}
    all_headers.update(headers or {})
    try:
        with client().stream(
            "POST",
            url,
            headers=all_headers,
            content=content,
            data=data,
            json=json_body,
            auth=auth,
            timeout=timeout,
        ) as response:
            chunks: list[bytes] = []
            size = 0
            truncated = False
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size >= max_response_bytes:
                    truncated = size > max_response_bytes
                    break
                if time.monotonic() > deadline:
                    # The status is known; a body that drips in is cut, not waited for.
                    truncated = True
                    break
            body = b"".join(chunks)[:max_response_bytes]
            return HttpResponse(response.status_code, response.headers, body, truncated)
    except httpx.TimeoutException as exc:
        raise TransportError(f"Timed out after {timeout:g}s: {url}", retryable=True) from exc
    except httpx.HTTPError as exc:
        raise TransportError(f"HTTP error calling {url}: {exc}", retryable=True) from exc
