"""Email through Django's mail backends.

The transport is chosen per workspace: its own (EmailSettings, encrypted), else the
install's `RAPPORT_EMAIL_URL`, else the local outbox (rows in `OutboxMail`, shown in the
UI), so that a fresh install sends nothing anywhere by surprise. URLs:

- `smtp://user:pass@host:587` (plain), `smtp+tls://...` (STARTTLS), `smtps://...` (TLS);
- `anymail://<esp>?api_key=...&sender_domain=...`: django-anymail's backend for the ESP
  (`anymail.backends.<esp>.EmailBackend`), its settings as query parameters;
- `outbox://`: the local outbox; `console://`: printed (development).
"""

import contextlib
import dataclasses
import email.utils
import re
import smtplib
import socket
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.base import BaseEmailBackend
from django.utils.module_loading import import_string
from django.utils.translation import gettext

from rapport.channels import mime
from rapport.channels.dispatch import Outgoing, SendError, SendResult, Session, transport_register
from rapport.channels.models import EmailSettings, OutboxMail
from rapport.channels.secrets import TRANSPORT, secret_get


class OutboxBackend(BaseEmailBackend):
    """Keeps each message as a row of the workspace's outbox."""

    def __init__(self, *, workspace_id: Any = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.workspace_id = workspace_id

    def send_messages(self, email_messages) -> int:
        rows = []
        for message in email_messages:
            html = next(
                (
                    body
                    for body, mime in getattr(message, "alternatives", [])
                    if mime == "text/html"
                ),
                "",
            )
            rows.append(
                OutboxMail(
                    workspace_id=self.workspace_id,
                    message_id=message.extra_headers.get("Message-ID", ""),
                    from_email=message.from_email,
                    to=list(message.to),
                    subject=message.subject,
                    text=message.body,
                    html=html,
                    headers=dict(message.extra_headers),
                )
            )
        OutboxMail.objects.bulk_create(rows)
        return len(rows)


class TransportUrlError(ValueError):
    """A transport URL no backend can be made from; its text is a sentence in the
    active language, shown to the person who entered the URL."""


def backend_from_url(url: str, *, workspace_id: Any = None) -> BaseEmailBackend:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    timeout = getattr(settings, "EMAIL_TIMEOUT", 10)
    if scheme in ("smtp", "smtp+tls", "smtps"):
        if not parts.hostname:
            raise TransportUrlError(gettext("an SMTP URL needs a host: smtp://user:pass@host:port"))
        return import_string("django.core.mail.backends.smtp.EmailBackend")(
            host=parts.hostname,
            port=parts.port or (465 if scheme == "smtps" else 587 if scheme == "smtp+tls" else 25),
            username=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            use_tls=scheme == "smtp+tls",
            use_ssl=scheme == "smtps",
            timeout=timeout,
            fail_silently=False,
        )
    if scheme == "anymail":
        esp = (parts.hostname or "").lower()
        if not esp.replace("_", "").isalnum():
            raise TransportUrlError(gettext("name the ESP: anymail://<esp>?api_key=..."))
        options = {key: value for key, value in parse_qsl(parts.query)}
        try:
            backend = import_string(f"anymail.backends.{esp}.EmailBackend")
        except ImportError as exc:
            raise TransportUrlError(
                gettext("django-anymail has no ESP named %(esp)r") % {"esp": esp}
            ) from exc
        return backend(fail_silently=False, **options)
    if scheme == "outbox":
        return OutboxBackend(workspace_id=workspace_id)
    if scheme == "console":
        return import_string("django.core.mail.backends.console.EmailBackend")()
    raise TransportUrlError(
        gettext(
            "the transport URL must start with smtp://, smtp+tls://, smtps://, anymail:// "
            "or outbox://"
        )
    )


def url_check(url: str) -> None:
    """Raise TransportUrlError for a URL no backend can be made from."""
    backend_from_url(url, workspace_id=None)


def _workspace_settings(workspace_id: Any) -> EmailSettings | None:
    return EmailSettings.objects.filter(workspace_id=workspace_id).first()


def workspace_backend(workspace_id: Any, found: EmailSettings | None = None) -> BaseEmailBackend:
    own = found or _workspace_settings(workspace_id)
    url = secret_get(own, TRANSPORT)
    if url is None:
        raise SendError(
            "The workspace's mail transport cannot be read (SECRET_KEY changed): "
            "enter it again in Settings",
            retryable=False,
        )
    url = url or getattr(settings, "RAPPORT_EMAIL_URL", "")
    if not url:
        return OutboxBackend(workspace_id=workspace_id)
    try:
        return backend_from_url(url, workspace_id=workspace_id)
    except TransportUrlError as exc:
        raise SendError(str(exc), retryable=False) from exc


def sender_of(found: EmailSettings | None) -> tuple[str, str]:
    """(From, Reply-To) for a workspace's mail."""
    address = (found.from_email if found else "") or settings.DEFAULT_FROM_EMAIL
    name = found.from_name if found else ""
    reply_to = found.reply_to if found else ""
    return (email.utils.formataddr((name, address)) if name else address), reply_to


def message_id_header(message_id: str) -> str:
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2] or "rapport.invalid"
    return f"<{message_id}@{domain}>"


_RETRYABLE = (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, socket.timeout, OSError)


class _SmtpSender:
    """One SMTP connection kept open for a batch, each message written as bytes
    (rapport/channels/mime.py). Where the server offers PIPELINING (RFC 2920: Postfix,
    Exim and the big providers do), MAIL, RCPT and DATA go in one write and their
    replies are read together: two round trips a message instead of four."""

    def __init__(self, *, host: str, port: int, username: str, password: str, tls: str) -> None:
        self.host, self.port, self.username, self.password, self.tls = (
            host,
            port,
            username,
            password,
            tls,
        )
        self.timeout = getattr(settings, "EMAIL_TIMEOUT", 10)
        self.connection: smtplib.SMTP | None = None
        self.pipelining = False

    def open(self) -> None:
        if self.tls == "ssl":
            connection = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout)
        else:
            connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            connection.ehlo_or_helo_if_needed()
            if self.tls == "starttls":
                connection.starttls()
                connection.ehlo()
            if self.username:
                connection.login(self.username, self.password)
        except BaseException:
            connection.close()
            raise
        self.pipelining = connection.has_extn("pipelining")
        self.connection = connection

    def close(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                connection.quit()
            except (smtplib.SMTPServerDisconnected, OSError):
                connection.close()

    def _reset(self) -> None:
        # After a refusal the transaction is cleared, so the next message starts clean.
        with contextlib.suppress(smtplib.SMTPException, OSError):
            self.connection.rset()

    def send(self, *, sender: str, recipient: str, data: bytes) -> None:
        connection = self.connection
        if connection is None:
            raise smtplib.SMTPServerDisconnected("not connected")
        # Dot-stuffing (RFC 5321 4.5.2) and the end of data.
        body = _LEADING_DOT.sub(b"..", data)
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        body += b".\r\n"
        if self.pipelining:
            connection.send(
                f"MAIL FROM:<{sender}>\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode("ascii")
            )
            mail, rcpt, data_reply = (
                connection.getreply(),
                connection.getreply(),
                connection.getreply(),
            )
            if data_reply[0] == 354 and (mail[0] != 250 or rcpt[0] not in (250, 251)):
                # Should not happen (no valid recipient: the server refuses DATA), but
                # if it does, end the data at once: nothing is delivered.
                connection.send(b".\r\n")
                connection.getreply()
        else:
            mail = connection.mail(sender)
            rcpt = connection.rcpt(recipient) if mail[0] == 250 else (503, b"")
            data_reply = connection.docmd("DATA") if rcpt[0] in (250, 251) else (503, b"")
        if mail[0] != 250:
            self._reset()
            raise smtplib.SMTPSenderRefused(mail[0], mail[1], sender)
        if rcpt[0] not in (250, 251):
            self._reset()
            raise smtplib.SMTPRecipientsRefused({recipient: rcpt})
        if data_reply[0] != 354:
            self._reset()
            raise smtplib.SMTPDataError(data_reply[0], data_reply[1])
        connection.send(body)
        code, reply = connection.getreply()
        if code != 250:
            self._reset()
            raise smtplib.SMTPDataError(code, reply)


_LEADING_DOT = re.compile(rb"(?m)^\.")


def _smtp_sender(url: str) -> "_SmtpSender | None":
    """The direct SMTP sender for an smtp:// URL; None for any other kind of transport."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtp+tls", "smtps") or not parts.hostname:
        return None
    return _SmtpSender(
        host=parts.hostname,
        port=parts.port or (465 if scheme == "smtps" else 587 if scheme == "smtp+tls" else 25),
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        tls={"smtps": "ssl", "smtp+tls": "starttls"}.get(scheme, ""),
    )


def _transport_url(workspace_id: Any, found: EmailSettings | None) -> str:
    url = secret_get(found, TRANSPORT)
    if url is None:
        raise SendError(
            "The workspace's mail transport cannot be read (SECRET_KEY changed): "
            "enter it again in Settings",
            retryable=False,
        )
    return url or getattr(settings, "RAPPORT_EMAIL_URL", "")


@dataclasses.dataclass
class _Connection:
    """A workspace's mail connection for the batch: a direct SMTP sender, or a Django
    mail backend (the outbox, an ESP through anymail, the console)."""

    from_email: str
    reply_to: str
    smtp: _SmtpSender | None = None
    backend: BaseEmailBackend | None = None
    # For the direct path, worked out once: the envelope sender and the headers every
    # message of the batch carries.
    envelope_from: str = ""
    from_header: str = ""
    reply_to_header: str = ""

    def __post_init__(self) -> None:
        self.envelope_from = email.utils.parseaddr(self.from_email)[1]
        if self.envelope_from.isascii():
            self.from_header = mime.address_header("From", self.from_email)
            if self.reply_to:
                self.reply_to_header = mime.address_header("Reply-To", self.reply_to)


def _connect(workspace_id: Any, session: Session) -> _Connection:
    found = _workspace_settings(workspace_id)
    url = _transport_url(workspace_id, found)
    from_email, reply_to = sender_of(found)
    smtp = _smtp_sender(url) if url else None
    try:
        if smtp is not None:
            smtp.open()
            session.on_close(smtp.close)
            return _Connection(from_email=from_email, reply_to=reply_to, smtp=smtp)
        backend = workspace_backend(workspace_id, found)
        backend.open()
    except _RETRYABLE as exc:  # smtplib's errors are OSErrors too
        raise SendError(f"mail server unreachable: {exc}", retryable=True) from exc
    session.on_close(backend.close)
    return _Connection(from_email=from_email, reply_to=reply_to, backend=backend)


def _send_direct(connection: _Connection, outgoing: Outgoing, headers: dict[str, str]) -> bool:
    """Sent over the direct SMTP connection; False when this message needs what only the
    `email` package does (an address that is not ASCII: SMTPUTF8, IDNA)."""
    envelope_from = connection.envelope_from
    if not (envelope_from.isascii() and outgoing.to.isascii() and "@" in outgoing.to):
        return False
    extra = dict(headers)
    if connection.reply_to_header:
        extra["Reply-To"] = connection.reply_to_header
    try:
        data = mime.message_bytes(
            boundary_key=outgoing.message_id.replace("-", ""),
            from_header=connection.from_header,
            to=outgoing.to,
            subject=outgoing.subject,
            text=outgoing.text,
            html=outgoing.html,
            headers=extra,
            date=email.utils.formatdate(),
        )
    except mime.HeaderError as exc:
        raise SendError(str(exc), retryable=False) from exc
    connection.smtp.send(sender=envelope_from, recipient=outgoing.to, data=data)
    return True


def _send_through_backend(
    connection: _Connection, outgoing: Outgoing, headers: dict[str, str]
) -> str | None:
    """Sent through the Django backend; the provider's id for it, if it gave one."""
    mail = EmailMultiAlternatives(
        subject=outgoing.subject,
        body=outgoing.text,
        from_email=connection.from_email,
        to=[outgoing.to],
        reply_to=[connection.reply_to] if connection.reply_to else None,
        headers=headers,
        connection=connection.backend,
    )
    if outgoing.html:
        mail.attach_alternative(outgoing.html, "text/html")
    # anymail: the id is the ESP's idempotency key where it has one.
    mail.metadata = {"rapport_message_id": outgoing.message_id}
    if not mail.send(fail_silently=False):
        raise SendError("the mail backend accepted nothing", retryable=True)
    status = getattr(mail, "anymail_status", None)
    return getattr(status, "message_id", None) if status else None


def email_send(*, outgoing: Outgoing, session: Session) -> SendResult:
    """One email over the batch's open connection for the workspace."""
    key = f"email:{outgoing.workspace_id}"
    if key not in session.state:
        session.state[key] = _connect(outgoing.workspace_id, session)
    connection = session.state[key]
    headers = {"Message-ID": message_id_header(outgoing.message_id), **outgoing.headers}
    provider_id = None
    try:
        if connection.smtp is None or not _send_direct(connection, outgoing, headers):
            if connection.smtp is not None:
                # One message the direct path leaves to Django: over its own backend.
                connection.backend = connection.backend or workspace_backend(outgoing.workspace_id)
            provider_id = _send_through_backend(connection, outgoing, headers)
    except SendError:
        raise
    except smtplib.SMTPRecipientsRefused as exc:
        raise SendError(f"recipient refused: {exc.recipients}", retryable=False) from exc
    except smtplib.SMTPResponseException as exc:
        # 4xx: try again later; 5xx: permanent.
        raise SendError(
            f"{exc.smtp_code} {exc.smtp_error!r}", retryable=exc.smtp_code < 500
        ) from exc
    except _RETRYABLE as exc:
        # The connection is gone: the next send opens a new one.
        session.state.pop(key, None)
        raise SendError(f"mail server: {exc}", retryable=True) from exc
    except Exception as exc:
        status = getattr(exc, "status_code", None) or getattr(
            getattr(exc, "response", None), "status_code", None
        )
        retryable = status is None or status >= 500 or status == 429
        raise SendError(f"{type(exc).__name__}: {exc}", retryable=retryable) from exc
    return SendResult(provider_id=str(provider_id or headers["Message-ID"])[:255])


def email_address(profile) -> str | None:
    value = (profile.traits or {}).get("email")
    if isinstance(value, str) and "@" in value:
        return value.strip()
    for identifier in profile.identifiers.all():
        if identifier.kind == "email":
            return identifier.value
    return None


transport_register(channel="email", send=email_send, address=email_address)
