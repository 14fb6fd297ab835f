"""The web origins a source accepts events from (its CORS setting). Pure functions.

A pattern is `*` (any origin, Segment's behaviour and the default), an exact origin
(`https://shop.example.com`, `http://localhost:3000`) or a subdomain wildcard
(`https://*.example.com`, which matches `https://www.example.com` and
`https://a.b.example.com` but not `https://example.com` itself).
"""

import re
from urllib.parse import urlsplit

ANY = "*"
MAX_PATTERNS = 100
MAX_LENGTH = 300
_HOST = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_IPV6 = re.compile(r"^\[[0-9a-f:.]+\]$")


class InvalidOrigin(ValueError):
    pass


def origin_pattern_clean(value: object) -> str:
    """One pattern as stored (lower case, no trailing slash), or `InvalidOrigin`."""
    if not isinstance(value, str):
        raise InvalidOrigin("each origin must be a string")
    text = value.strip().lower().rstrip("/")
    if len(text) > MAX_LENGTH:
        raise InvalidOrigin(f"an origin is at most {MAX_LENGTH} characters")
    if text == ANY:
        return ANY
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise InvalidOrigin(f"{value[:100]!r} is not an origin") from None
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidOrigin(
            f"{value[:100]!r} is not an origin: write it as https://host or http://host:port"
        )
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidOrigin(
            f"{value[:100]!r} is not an origin: an origin has no path, query or user name"
        )
    if not (_HOST.match(host) or _IPV6.match(f"[{host}]")):
        raise InvalidOrigin(f"{value[:100]!r} has an invalid host name")
    netloc = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{netloc}" + (f":{port}" if port is not None else "")


def origin_patterns_clean(values: object) -> list[str]:
    """A whole list as stored: each pattern cleaned, duplicates dropped, order kept."""
    if not isinstance(values, list | tuple):
        raise InvalidOrigin("allowed origins must be a list")
    cleaned: list[str] = []
    for value in values:
        pattern = origin_pattern_clean(value)
        if pattern not in cleaned:
            cleaned.append(pattern)
    if len(cleaned) > MAX_PATTERNS:
        raise InvalidOrigin(f"at most {MAX_PATTERNS} origins")
    return cleaned


def origin_allowed(origin: str, patterns) -> bool:
    """Whether a browser's `Origin` header matches one of the patterns."""
    origin = origin.strip().lower()
    for pattern in patterns:
        if pattern in (ANY, origin):
            return True
        scheme, sep, rest = pattern.partition("://*.")
        if sep and origin.startswith(f"{scheme}://"):
            # "https://*.example.com:8443" → any subdomain, same scheme and port.
            host_and_port = origin[len(scheme) + 3 :]
            if host_and_port.endswith(f".{rest}") and "/" not in host_and_port:
                return True
    return False
