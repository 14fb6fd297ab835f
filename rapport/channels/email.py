"""Email through Django's mail backends.

The transport is chosen per workspace: its own (EmailSettings, encrypted), else the
install's `RAPPORT_EMAIL_URL`, else the local outbox (rows in `OutboxMail`, shown in the
UI), so that a fresh install sends nothing anywhere by surprise. URLs:

- `smtp://user:pass@host:587` (plain), `smtp+tls://...` (STARTTLS), `smtps://...` (TLS);
- `anymail://<esp>?api_key=...&sender_domain=...`: django-anymail's backend for the ESP
  (`anymail.backends.<esp>.EmailBackend`), its settings as query parameters;
- `outbox://`: the local outbox; `console://`: printed (development).
"""

import email.utils
import smtplib
import socket
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.base import BaseEmailBackend
from django.utils.module_loading import import_string

from rapport.channels.dispatch import Outgoing, SendError, SendResult, Session, transport_register
from rapport.channels.models import EmailSettings, OutboxMail
from rapport.channels.secrets import secret_decrypt


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
    pass


def backend_from_url(url: str, *, workspace_id: Any = None) -> BaseEmailBackend:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    timeout = getattr(settings, "EMAIL_TIMEOUT", 10)
    if scheme in ("smtp", "smtp+tls", "smtps"):
        if not parts.hostname:
            raise TransportUrlError("an SMTP URL needs a host: smtp://user:pass@host:port")
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
            raise TransportUrlError("name the ESP: anymail://<esp>?api_key=...")
        options = {key: value for key, value in parse_qsl(parts.query)}
        try:
            backend = import_string(f"anymail.backends.{esp}.EmailBackend")
        except ImportError as exc:
            raise TransportUrlError(f"django-anymail has no ESP named {esp!r}") from exc
        return backend(fail_silently=False, **options)
    if scheme == "outbox":
        return OutboxBackend(workspace_id=workspace_id)
    if scheme == "console":
        return import_string("django.core.mail.backends.console.EmailBackend")()
    raise TransportUrlError(
        "the transport URL must start with smtp://, smtp+tls://, smtps://, anymail:// or outbox://"
    )


def url_check(url: str) -> None:
    """Raise TransportUrlError for a URL no backend can be made from."""
    backend_from_url(url, workspace_id=None)


def _workspace_settings(workspace_id: Any) -> EmailSettings | None:
    return EmailSettings.objects.filter(workspace_id=workspace_id).first()


def workspace_backend(workspace_id: Any, found: EmailSettings | None = None) -> BaseEmailBackend:
    own = found or _workspace_settings(workspace_id)
    url = ""
    if own is not None and own.transport_encrypted:
        url = secret_decrypt(own.transport_encrypted)
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


def email_send(*, outgoing: Outgoing, session: Session) -> SendResult:
    """One email over the batch's open connection for the workspace."""
    key = f"email:{outgoing.workspace_id}"
    if key not in session.state:
        found = _workspace_settings(outgoing.workspace_id)
        backend = workspace_backend(outgoing.workspace_id, found)
        try:
            backend.open()
        except _RETRYABLE as exc:
            raise SendError(f"mail server unreachable: {exc}", retryable=True) from exc
        session.state[key] = (backend, sender_of(found))
        session.on_close(backend.close)
    backend, (from_email, reply_to) = session.state[key]
    headers = {"Message-ID": message_id_header(outgoing.message_id), **outgoing.headers}
    mail = EmailMultiAlternatives(
        subject=outgoing.subject,
        body=outgoing.text,
        from_email=from_email,
        to=[outgoing.to],
        reply_to=[reply_to] if reply_to else None,
        headers=headers,
        connection=backend,
    )
    if outgoing.html:
        mail.attach_alternative(outgoing.html, "text/html")
    # anymail: the id is the ESP's idempotency key where it has one.
    mail.metadata = {"rapport_message_id": outgoing.message_id}
    try:
        sent = mail.send(fail_silently=False)
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
    if not sent:
        raise SendError("the mail backend accepted nothing", retryable=True)
    status = getattr(mail, "anymail_status", None)
    provider_id = (getattr(status, "message_id", None) if status else None) or headers["Message-ID"]
    return SendResult(provider_id=str(provider_id)[:255])


def email_address(profile) -> str | None:
    value = (profile.traits or {}).get("email")
    if isinstance(value, str) and "@" in value:
        return value.strip()
    for identifier in profile.identifiers.all():
        if identifier.kind == "email":
            return identifier.value
    return None


transport_register(channel="email", send=email_send, address=email_address)
