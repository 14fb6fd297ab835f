"""Identifiers as they are matched: read from an event, normalised, placeholders
dropped. Pure functions, no database."""

from collections.abc import Iterable
from typing import NamedTuple

import phonenumbers

USER_ID = "user_id"
ANONYMOUS_ID = "anonymous_id"
EMAIL = "email"
PHONE = "phone"
BUILT_IN_KINDS = (USER_ID, EMAIL, PHONE, ANONYMOUS_ID)
MAX_VALUE_LENGTH = 255

# Values that SDKs, forms and test scripts send when they have no real one.
DEFAULT_BLOCKED_VALUES = (
    "",
    "null",
    "none",
    "nil",
    "undefined",
    "anonymous",
    "unknown",
    "n/a",
    "na",
    "0",
    "-1",
    "test",
    "test@test.com",
    "test@example.com",
    "example@example.com",
    "noreply@example.com",
    "email@example.com",
)


class Identity(NamedTuple):
    """One identifier: hashed and compared as a plain tuple, since resolution keys
    dictionaries by millions of them."""

    kind: str
    value: str


def blocked_set(values: Iterable[str]) -> frozenset[str]:
    """Blocked values as `identities_of` compares them (once per batch, not per event)."""
    return values if isinstance(values, frozenset) else frozenset(v.lower() for v in values)


def normalize_email(raw: str) -> str | None:
    value = raw.strip().lower()
    local, at, domain = value.partition("@")
    if not at or not local or "." not in domain or " " in value:
        return None
    return value


def normalize_phone(raw: str, *, default_region: str | None = None) -> str | None:
    """E.164 (`+442079460958`), or None when it is not a possible number."""
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize(kind: str, raw, *, default_region: str | None = None) -> str | None:
    if raw is None or isinstance(raw, bool | dict | list):
        return None
    text = str(raw).strip()
    if not text or len(text) > MAX_VALUE_LENGTH:
        return None
    if kind == EMAIL:
        return normalize_email(text)
    if kind == PHONE:
        return normalize_phone(text, default_region=default_region)
    return text


_PLAIN = frozenset({USER_ID, ANONYMOUS_ID})


def _trait(traits: dict, *names: str):
    for name in names:
        if name in traits and traits[name] not in (None, ""):
            return traits[name]
    return None


def identities_of(
    event: dict,
    *,
    external_kinds: Iterable[str] = (),
    blocked: Iterable[str] = DEFAULT_BLOCKED_VALUES,  # or a `blocked_set`
    default_region: str | None = None,
) -> list[Identity]:
    """Every identifier an event carries: its user and anonymous ids, the email and
    phone in its traits (top level or context.traits), external ids declared by the
    workspace (`context.externalIds` entries of those types, or traits of those names);
    alias's previousId counts as an anonymous id."""
    blocked_values = blocked_set(blocked)
    context = event.get("context") or {}
    # Most events (a page view, a track) carry no traits: no dictionary to build.
    context_traits, own_traits = context.get("traits"), event.get("traits")
    if context_traits and own_traits:
        traits = {**context_traits, **own_traits}
    else:
        traits = own_traits or context_traits or {}
    raw: list[tuple[str, object]] = [
        (USER_ID, event.get("user_id")),
        (ANONYMOUS_ID, event.get("anonymous_id")),
        (ANONYMOUS_ID, event.get("previous_id")),
    ]
    if traits:
        raw.append((EMAIL, _trait(traits, "email", "Email", "email_address")))
        raw.append((PHONE, _trait(traits, "phone", "Phone", "phone_number", "mobile")))
    kinds = external_kinds if isinstance(external_kinds, frozenset) else frozenset(external_kinds)
    if kinds:
        for entry in context.get("externalIds") or []:
            if isinstance(entry, dict) and entry.get("type") in kinds:
                raw.append((entry["type"], entry.get("id")))
        for kind in kinds:
            if kind in traits:
                raw.append((kind, traits[kind]))
    found: list[Identity] = []
    for kind, value in raw:
        if value is None or value == "":
            continue
        if kind in _PLAIN and type(value) is str and value == value.strip() and value:
            # An id sent as a clean string (nearly all of them) is its own normal form.
            normalized = value if len(value) <= MAX_VALUE_LENGTH else None
        else:
            normalized = normalize(kind, value, default_region=default_region)
        if normalized is None or normalized.lower() in blocked_values:
            continue
        identity = Identity(kind, normalized)
        if identity not in found:
            found.append(identity)
    return found
