"""Masking of personal data for roles without the `pii.read` permission."""

import re

_EMAIL = re.compile(r"^(?P<local>[^@\s]+)@(?P<domain>[^@\s]+)$")


def mask_email(value: str | None) -> str | None:
    """`jane.doe@example.com` -> `j•••@e••••••.com`: enough to tell two apart, not to
    contact anyone."""
    if not value:
        return value
    match = _EMAIL.match(value.strip())
    if not match:
        return "•••"
    local, domain = match["local"], match["domain"]
    host, _, tld = domain.rpartition(".")
    if not host:
        host, tld = domain, ""
    masked_domain = host[0] + "•" * (len(host) - 1)
    if tld:
        masked_domain += "." + tld
    return f"{local[0]}•••@{masked_domain}"


def mask_phone(value: str | None) -> str | None:
    """`+44 20 7946 0958` -> `••••••••••58`: the last two digits only."""
    if not value:
        return value
    digits = re.sub(r"\D", "", value)
    if len(digits) <= 2:
        return "•" * len(digits)
    return "•" * (len(digits) - 2) + digits[-2:]


def mask_identifier(kind: str, value: str) -> str:
    """An identifier as a person without the PII permission sees it."""
    if kind == "email":
        return mask_email(value)
    if kind == "phone":
        return mask_phone(value)
    return value


_EMAIL_KEYS = {"email", "emailaddress", "mail"}
_PHONE_KEYS = {"phone", "phonenumber", "mobile", "mobilephone", "mobilenumber", "tel", "sms"}
_EMAIL_ANYWHERE = re.compile(r"[^@\s\"'<>]+@[^@\s\"'<>]+\.[A-Za-z]{2,}")


def _key(name) -> str:
    return str(name).lower().replace("_", "").replace("-", "")


def mask_personal_data(value):
    """A copy of a JSON value with emails and phone numbers masked: under keys that
    name them (`email`, `phone`, `mobile`, ...), and any email address in any string."""
    if isinstance(value, dict):
        masked = {}
        for name, item in value.items():
            key = _key(name)
            if key in _EMAIL_KEYS and isinstance(item, str):
                masked[name] = mask_email(item)
            elif key in _PHONE_KEYS and isinstance(item, str | int) and not isinstance(item, bool):
                masked[name] = mask_phone(str(item))
            else:
                masked[name] = mask_personal_data(item)
        return masked
    if isinstance(value, list):
        return [mask_personal_data(item) for item in value]
    if isinstance(value, str) and "@" in value:
        return _EMAIL_ANYWHERE.sub(lambda m: mask_email(m.group(0)), value)
    return value


_IDENTIFIER_KEYS = {"userid", "anonymousid", "externalid"}


def personal_key(name) -> bool:
    """Whether a trait or property of this name (dotted for nested keys) holds what
    masking hides: an email, a phone number, an identifier. A question about its value
    (a segment rule's `starts_with`, `eq`, ...) would reveal the masked value."""
    for part in str(name).split("."):
        key = _key(part)
        if key in _EMAIL_KEYS or key in _PHONE_KEYS or key in _IDENTIFIER_KEYS:
            return True
        if "email" in key or "phone" in key or "mobile" in key:
            return True
    return False
