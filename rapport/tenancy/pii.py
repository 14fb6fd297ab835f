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
