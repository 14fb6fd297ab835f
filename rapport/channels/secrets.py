"""Secrets a workspace gives Rapport (a mail transport's password or API key), stored
encrypted with Fernet (AES-128-CBC with an HMAC) under a key derived from SECRET_KEY:
a copy of the database alone does not give them away. Rotating SECRET_KEY makes them
unreadable; they must then be entered again.

The secrets a workspace's settings row (`EmailSettings`) keeps are described once here,
as `SecretField`s, and written and read only through `secret_put` and `secret_get`:
the transport URL (with the redacted label shown in its place), the SMS provider's
credentials (JSON) and the webhook signing secret."""

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


def _fernet() -> Fernet:
    digest = hashlib.sha256(b"rapport.channels.secrets:" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def secret_encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode() if value else ""


def secret_decrypt(token: str) -> str | None:
    """The value, or None when it cannot be read (SECRET_KEY changed)."""
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        return None


def url_redacted(url: str) -> str:
    """A transport URL as it may be shown: no password, no query (API keys)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    if parts.username:
        host = f"{parts.username}:***@{host}"
    return urlunsplit((parts.scheme, host, parts.path, "***" if parts.query else "", ""))


@dataclass(frozen=True)
class SecretField:
    """A secret kept on a settings row: the column holding it encrypted, and, when a
    part of it may be shown, the column holding that part and the function making it.
    `as_json`: the secret is a dict, stored as its JSON."""

    column: str
    label_column: str = ""
    redact: Callable[[str], str] | None = None
    as_json: bool = False


TRANSPORT = SecretField("transport_encrypted", "transport_label", url_redacted)
SMS_CREDENTIALS = SecretField("sms_credentials_encrypted", as_json=True)
WEBHOOK_SECRET = SecretField("webhook_secret_encrypted")


def secret_put(row: Any, field: SecretField, value: str | dict | None) -> None:
    """Stores `value` encrypted on the row (not saved), with its shown part; an empty
    value clears both."""
    text = (json.dumps(value) if field.as_json else value) if value else ""
    setattr(row, field.column, secret_encrypt(text))
    if field.label_column:
        setattr(row, field.label_column, field.redact(text) if text and field.redact else "")


def secret_get(row: Any, field: SecretField) -> Any:
    """The stored value ("", or {} for JSON, when there is none or no row), or None
    when it cannot be read (SECRET_KEY changed)."""
    raw = secret_decrypt(getattr(row, field.column)) if row is not None else ""
    if raw is None or not field.as_json:
        return raw
    return json.loads(raw) if raw else {}


def secret_is_set(row: Any, field: SecretField) -> bool:
    return row is not None and bool(getattr(row, field.column))
