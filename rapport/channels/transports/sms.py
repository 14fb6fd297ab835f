"""What the SMS adapters share: numbers in E.164, the text of a message, and the
keywords that opt a customer out (or back in)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import phonenumbers

from rapport.channels.transports import InboundKind, TransportError

# The industry's standard opt-out and opt-in keywords (the ones Twilio and the US
# carriers honour: STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, plus REVOKE and
# OPTOUT), with their Russian counterparts. A reply opts out when it is one of them,
# alone, in any case, with punctuation around it ignored.
OPT_OUT_KEYWORDS = frozenset(
    {
        "stop",
        "stopall",
        "unsubscribe",
        "cancel",
        "end",
        "quit",
        "revoke",
        "optout",
        "opt-out",
        "opt out",
        # Russian: "stop", "unsubscribe" (verb and noun), "cancel".
        "стоп",
        "отписаться",
        "отписка",
        "отмена",
    }
)
OPT_IN_KEYWORDS = frozenset({"start", "unstop", "старт", "подписаться"})

_EDGE_PUNCTUATION = re.compile(r"^[\s\W_]+|[\s\W_]+$", re.UNICODE)


def keyword_of(text: str) -> str:
    """The reply reduced to what keyword matching compares: case-folded, "yo" as "ye", the
    punctuation and spaces around it removed, inner runs of spaces made one."""
    folded = (text or "").casefold().replace("\u0451", "\u0435")  # yo -> ye
    folded = _EDGE_PUNCTUATION.sub("", folded)
    return " ".join(folded.split())


def inbound_kind(text: str) -> str:
    """InboundKind.OPT_OUT for "STOP", "Stop.", "СТОП!" and the other keywords alone;
    OPT_IN for START/UNSTOP; MESSAGE for anything else ("please stop calling me" is a
    message a person should read, not an opt-out keyword)."""
    keyword = keyword_of(text)
    if keyword in OPT_OUT_KEYWORDS:
        return InboundKind.OPT_OUT
    if keyword in OPT_IN_KEYWORDS:
        return InboundKind.OPT_IN
    return InboundKind.MESSAGE


def to_e164(number: str, default_region: str | None = None) -> str:
    """``number`` as E.164 ("+79161234567"). A national number ("8 916 123-45-67") needs
    ``default_region`` ("RU"). Anything that is not a valid number raises a
    non-retryable TransportError naming it."""
    region = (default_region or "").upper() or None
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException as exc:
        raise TransportError(
            f"Not a phone number: {number!r} ({exc})", retryable=False, provider_code="to"
        ) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise TransportError(
            f"Not a valid phone number: {number!r}", retryable=False, provider_code="to"
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def e164_or_raw(number: str) -> str:
    """A number a provider called back with, as E.164 when it is one ("447700900001"
    from Vonage becomes "+447700900001"); otherwise as it came (a short code, a name)."""
    raw = (number or "").strip()
    if not raw:
        return ""
    candidate = raw if raw.startswith("+") else "+" + raw
    try:
        parsed = phonenumbers.parse(candidate, None)
    except phonenumbers.NumberParseException:
        return raw
    if phonenumbers.is_possible_number(parsed):
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return raw


def text_of(content: Mapping[str, Any]) -> str:
    """The message text (``content["text"]``, or ``content["body"]``); an empty one is a
    non-retryable error."""
    text = content.get("text") or content.get("body") or ""
    if not isinstance(text, str) or not text.strip():
        raise TransportError("The message has no text", retryable=False, provider_code="text")
    return text


def require(config: Mapping[str, Any], *keys: str, provider: str) -> None:
    missing = [key for key in keys if not config.get(key)]
    if missing:
        raise TransportError(
            f"{provider} is not configured: missing {', '.join(missing)}", retryable=False
        )
