"""A real SMTP server (aiosmtpd) on this machine, for the mail Rapport sends. Its port
is RAPPORT_TEST_SMTP_PORT when set, else a free one."""

import contextlib
import email
import email.policy
import logging
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller

# aiosmtpd logs each connection at INFO from its own thread, which can outlive the
# test's captured log stream ("--- Logging error ---" in the output): warnings suffice.
logging.getLogger("mail.log").setLevel(logging.WARNING)


@dataclass
class Mailbox:
    host: str
    port: int
    messages: list[email.message.EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    # Offer PIPELINING (RFC 2920) in the EHLO answer.
    pipelining: bool = False
    # Recipients refused at RCPT (550).
    refuse: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append(message)
            self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            # As Postfix does; aiosmtpd reads one command a line, so it can take them.
            responses.insert(-1, "250-PIPELINING")
        return responses

    def body(self, index: int = -1) -> str:
        return self.messages[index].get_body(preferencelist=("plain",)).get_content()


def _port() -> int:
    if os.environ.get("RAPPORT_TEST_SMTP_PORT"):
        return int(os.environ["RAPPORT_TEST_SMTP_PORT"])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def smtp_server(*, pipelining: bool = False) -> Iterator[Mailbox]:
    mailbox = Mailbox(host="127.0.0.1", port=_port(), pipelining=pipelining)
    controller = Controller(mailbox, hostname=mailbox.host, port=mailbox.port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


def free_port() -> int:
    """A port nothing listens on (for a mail server that is down)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
