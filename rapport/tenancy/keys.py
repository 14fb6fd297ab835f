"""Secrets handed to people and machines (API tokens, write keys): generated with the
`secrets` module, stored only as SHA-256. A token has 190+ bits of entropy, so a fast
hash is safe here where a password would need a slow one."""

import hashlib
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
API_TOKEN_PREFIX = "rpt_"  # noqa: S105 - a public marker, not a secret
SECRET_LENGTH = 40
DISPLAY_PREFIX_LENGTH = 8


def secret_generate(*, prefix: str = "") -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(SECRET_LENGTH))


def secret_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def secret_display_prefix(raw: str) -> str:
    return (
        raw[: len(API_TOKEN_PREFIX) + DISPLAY_PREFIX_LENGTH]
        if raw.startswith(API_TOKEN_PREFIX)
        else raw[:DISPLAY_PREFIX_LENGTH]
    )


def secret_looks_valid(raw: str, *, prefix: str = "") -> bool:
    body = raw[len(prefix) :]
    return (
        raw.startswith(prefix)
        and len(body) == SECRET_LENGTH
        and all(ch in _ALPHABET for ch in body)
    )
