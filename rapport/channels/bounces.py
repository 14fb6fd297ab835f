"""Bounces that come back by mail: delivery status notifications (RFC 3464) arriving at
the bounce address of mail sent over SMTP (ESPs report theirs by webhook, esp.py).

A DSN is a multipart/report whose message/delivery-status part holds one block per
recipient (Final-Recipient, Action, Status, Diagnostic-Code), followed by the returned
message or its headers (message/rfc822, text/rfc822-headers). The message is found by
the Message-ID Rapport gave it (`<message id@domain>`, rapport/channels/email.py), read
from the returned headers, else from the DSN's own In-Reply-To and References. Each
recipient then becomes a delivery event (services.delivery_event_record):

- a permanent failure (Status 5.x.x, or Action: failed without a status) is a bounce:
  the message is marked bounced and the address suppressed;
- a transient one (4.x.x, or Action: delayed) is recorded (an "Email Bounced" event
  with bounce_type "transient" and the message's error), and suppresses nothing;
- Action: delivered / relayed / expanded is a delivery.

Mail that is not a DSN, or that names no message of ours, changes nothing. Feed them with
`rapport bounces-read` (stdin, a file, an mbox or a Maildir).
"""

import email
import email.policy
import mailbox
import re
import uuid
from dataclasses import dataclass, field
from email.message import Message as MailMessage
from email.parser import HeaderParser
from pathlib import Path

from rapport.channels import services

_ID = re.compile(r"<([^<>@\s]+)@[^<>\s]*>")


@dataclass
class Recipient:
    address: str
    action: str
    status: str
    diagnostic: str

    @property
    def kind(self) -> str | None:
        """The delivery event this recipient's block means (None: nothing to record)."""
        action = self.action.lower()
        if self.status.startswith("5") or (action == "failed" and not self.status):
            return "bounced"
        if self.status.startswith("4") or action == "delayed":
            return "deferred"
        if action in ("delivered", "relayed", "expanded") or self.status.startswith("2"):
            return "delivered"
        return None


@dataclass
class Dsn:
    message_ids: list[str] = field(default_factory=list)
    recipients: list[Recipient] = field(default_factory=list)


@dataclass
class ReadResult:
    read: int = 0
    not_dsn: int = 0
    not_ours: int = 0
    bounced: int = 0
    deferred: int = 0
    delivered: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _address(value: str) -> str:
    """ "rfc822; Jane@Example.com" -> "jane@example.com"."""
    _, _, address = (value or "").partition(";")
    return (address or value or "").strip().strip("<>").strip().lower()


def _status(value: str) -> str:
    found = re.search(r"\b[245]\.\d{1,3}\.\d{1,3}\b", value or "")
    return found.group(0) if found else ""


def _header_blocks(part: MailMessage) -> list[MailMessage]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, MailMessage)]
    # Some parsers leave the status as text: its blocks are separated by blank lines.
    text = payload if isinstance(payload, str) else ""
    return [HeaderParser().parsestr(block) for block in re.split(r"\r?\n\s*\r?\n", text) if block]


def _returned_headers(part: MailMessage) -> MailMessage | None:
    kind = part.get_content_type()
    if kind == "message/rfc822":
        payload = part.get_payload()
        if isinstance(payload, list) and payload:
            return payload[0]
    if kind == "text/rfc822-headers":
        text = part.get_payload(decode=True) or b""
        return HeaderParser().parsestr(text.decode("utf-8", "replace"))
    return None


def dsn_parse(raw: bytes | MailMessage) -> Dsn | None:
    """The DSN's recipients and the Message-IDs it names (the returned message's first),
    or None when the mail is not a delivery status notification."""
    message = (
        raw
        if isinstance(raw, MailMessage)
        else email.message_from_bytes(raw, policy=email.policy.compat32)
    )
    status_part = None
    returned = None
    for part in message.walk():
        kind = part.get_content_type()
        if kind in ("message/delivery-status", "message/global-delivery-status"):
            status_part = status_part or part
        elif kind in ("message/rfc822", "text/rfc822-headers") and returned is None:
            returned = _returned_headers(part)
    if status_part is None:
        return None
    dsn = Dsn()
    for block in _header_blocks(status_part):
        recipient = block.get("Final-Recipient") or block.get("Original-Recipient")
        if not recipient:
            continue  # the per-message block
        dsn.recipients.append(
            Recipient(
                address=_address(str(recipient)),
                action=str(block.get("Action", "")).strip(),
                status=_status(str(block.get("Status", ""))),
                diagnostic=" ".join(str(block.get("Diagnostic-Code", "")).split())[:500],
            )
        )
    headers = []
    if returned is not None:
        headers.append(str(returned.get("Message-ID", "")))
    headers += [str(message.get("In-Reply-To", "")), str(message.get("References", ""))]
    for value in headers:
        for found in _ID.finditer(value):
            if found.group(0) not in dsn.message_ids:
                dsn.message_ids.append(found.group(0))
    return dsn


def _ours(message_ids: list[str]):
    """The first of these Message-IDs that is one of our messages."""
    for header in message_ids:
        local = header.strip("<>").partition("@")[0]
        try:
            metadata = {"rapport_message_id": str(uuid.UUID(local))}
        except ValueError:
            metadata = {}
        found = services._message_for_event(provider_id=header, metadata=metadata)
        if found is not None:
            return found, metadata, header
    return None


def dsn_record(raw: bytes | MailMessage, result: ReadResult | None = None) -> ReadResult:
    """Record what one mail reports (see the module's docstring)."""
    result = result or ReadResult()
    result.read += 1
    dsn = dsn_parse(raw)
    if dsn is None or not dsn.recipients:
        result.not_dsn += 1
        return result
    found = _ours(dsn.message_ids)
    if found is None:
        result.not_ours += 1
        return result
    message, _, header = found
    for recipient in dsn.recipients:
        kind = recipient.kind
        if kind is None:
            continue
        description = " ".join(p for p in (recipient.status, recipient.diagnostic) if p)
        services.delivery_event_record(
            event_type=kind,
            provider_id=header,
            metadata={"rapport_message_id": str(message.pk)},
            recipient=recipient.address if kind == "bounced" else "",
            description=description,
        )
        setattr(result, kind, getattr(result, kind) + 1)
    return result


def bounces_read(source: str | Path | bytes) -> ReadResult:
    """Every mail of `source`: raw bytes (one mail), a Maildir (a directory with cur/
    and new/), an mbox file, or a file holding one mail."""
    result = ReadResult()
    if isinstance(source, bytes):
        return dsn_record(source, result)
    path = Path(source)
    if path.is_dir():
        box = mailbox.Maildir(path, factory=None, create=False)
        for key in box.iterkeys():
            dsn_record(box.get_bytes(key), result)
        return result
    data = path.read_bytes()
    if data.startswith(b"From "):
        for item in mailbox.mbox(path, create=False):
            dsn_record(item.as_bytes(), result)
        return result
    return dsn_record(data, result)
