"""A local HTTP receiver (http.server in a thread) standing in for the providers: it
records each request exactly as it arrived and answers from a queue of responses."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (timeouts)


@dataclass
class Receiver:
    url: str
    requests: list[Request] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    default: Reply = field(default_factory=Reply)
    # Fixed answers by path (a page, a script), served before the queue and not recorded.
    routes: dict[str, Reply] = field(default_factory=dict)

    def reply(self, status: int = 200, body: bytes | str = b"", **headers: str) -> None:
        if isinstance(body, str):
            body = body.encode()
        self.replies.append(
            Reply(status, body, {k.replace("_", "-"): v for k, v in headers.items()})
        )

    @property
    def last(self) -> Request:
        assert self.requests, "the receiver got no request"
        return self.requests[-1]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: Receiver

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in two writes: without this, a kept-alive client
            # waits on its delayed ACK (~40 ms a request).
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            route = state.routes.get(self.path.split("?", 1)[0])
            if route is not None:
                self._answer(route)
                return
            state.requests.append(
                Request(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
            )
            reply = state.replies.pop(0) if state.replies else state.default
            self._answer(reply)

        def _answer(self, reply: Reply) -> None:
            if reply.delay:
                time.sleep(reply.delay)
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_POST = _handle
        do_GET = _handle

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
