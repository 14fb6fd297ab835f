"""Open and click tracking for email: each link of the HTML goes through a signed
Rapport URL that records the click and redirects to the link, and a 1x1 image records
the open. The signature covers the message and the link, so the redirect can only
lead where the message's author pointed (never an open redirect), and a token cannot
be made up for another message."""

import re
from functools import lru_cache
from html import unescape
from urllib.parse import quote

from django.conf import settings
from django.core import signing
from django.utils.html import escape

from rapport.channels import hooks

SALT = "rapport.channels.tracking"
_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(https?://[^"']+)\2""", re.IGNORECASE)


@lru_cache(maxsize=32)
def _signer_with(salt: str, key: str, fallback_keys: tuple) -> signing.Signer:
    return signing.Signer(key=key, salt=salt, fallback_keys=list(fallback_keys))


def signer(salt: str) -> signing.Signer:
    """A Signer for this salt and the current SECRET_KEY, made once (a batch signs two
    or three tokens a message)."""
    return _signer_with(salt, settings.SECRET_KEY, tuple(settings.SECRET_KEY_FALLBACKS))


def _signer() -> signing.Signer:
    return signer(SALT)


# Not compressed: zlib saved a few characters on long links for a third of the cost
# of a token. Tokens made compressed earlier still read (`unsign_object` tells).
def click_token(message_id: str, url: str) -> str:
    return _signer().sign_object({"m": message_id, "u": url})


def open_token(message_id: str) -> str:
    return _signer().sign_object({"m": message_id})


def token_read(token: str) -> dict | None:
    try:
        value = _signer().unsign_object(token)
    except (signing.BadSignature, ValueError):
        return None
    return value if isinstance(value, dict) and "m" in value else None


def html_tracked(html: str, *, message_id: str, base: str, keep: set[str]) -> str:
    """Links rewritten through the click URL (except those in `keep`, such as the
    unsubscribe link), and the open image before </body> (or at the end)."""

    def rewrite(match: re.Match) -> str:
        url = unescape(match.group(3))
        if url in keep or any(url.startswith(base + prefix) for prefix in hooks.untracked_prefixes):
            return match.group(0)
        tracked = f"{base}/m/c/{quote(click_token(message_id, url), safe=':')}"
        return f"{match.group(1)}{match.group(2)}{escape(tracked)}{match.group(2)}"

    html = _HREF.sub(rewrite, html)
    pixel = (
        f'<img src="{escape(base)}/m/o/{quote(open_token(message_id), safe=":")}" '
        'width="1" height="1" alt="">'
    )
    at = html.lower().rfind("</body>")
    return html[:at] + pixel + html[at:] if at >= 0 else html + pixel
