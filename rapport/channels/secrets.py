"""Secrets a workspace gives Rapport (a mail transport's password or API key), stored
encrypted with Fernet (AES-128-CBC with an HMAC) under a key derived from SECRET_KEY:
a copy of the database alone does not give them away. Rotating SECRET_KEY makes them
unreadable; they must then be entered again."""

import base64
import hashlib
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
