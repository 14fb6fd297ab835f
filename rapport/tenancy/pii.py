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


# What a segment rule may not ask about without pii.read (rapport/segments/conditions.py).
# Keys are compared by their words: `contact_phone`, `contactPhone` and `Contact Phone`
# are all ["contact", "phone"].
_KEY_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_PERSONAL_WORDS = {"email", "emails", "mail", "emailaddress", "phone", "phones", "telephone"}
_PERSONAL_WORDS |= {"tel", "mobile", "cellphone", "fax", "sms", "msisdn", "whatsapp"}
_IDENTIFIER_NAMES = {"userid", "anonymousid", "externalid"}


def personal_key(name) -> bool:
    """Whether a trait or property of this name (dotted for nested keys) holds what
    masking hides: an email, a phone number, an identifier. A question about its value
    (a segment rule's `starts_with`, `eq`, ...) would reveal the masked value."""
    for part in str(name).split("."):
        words = [word.lower() for word in _KEY_WORD.findall(part)]
        joined = "".join(words)
        if joined in _EMAIL_KEYS or joined in _PHONE_KEYS or joined in _IDENTIFIER_NAMES:
            return True
        if any(w in _PERSONAL_WORDS or w.endswith("phone") for w in words):
            return True
    return False
