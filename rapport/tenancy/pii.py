"""Masking of personal data for roles without the `pii.read` permission.

The one place that decides what counts as an email or a phone number and how each
shape of record (an event, a profile, a merge...) is shown to such a role: the API and
the pages both go through `masked_record` and the `shown_*` helpers, so that a surface
cannot mask differently from another.

An email or a phone is recognised by the key it is under (`email`, `contact_phone`,
`telephone`...) and by what it looks like wherever it is (a user id that is an email,
a phone number under a key of any name, an address inside a sentence).
"""

import copy
import re
from typing import Any

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


# A whole value made of a phone number's characters; the checks in `looks_like_phone`
# then tell a phone from a date, an IP address or an amount written the same way.
_PHONE_CHARACTERS = re.compile(r"^(?:\+|00)?[\s(]*\d[\d\s().\-/]*\d$")
_SEPARATED = re.compile(r"\d[\s().\-/]+\d")
_NOT_PHONES = (
    re.compile(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}$"),  # 2026-01-31
    re.compile(r"^\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}$"),  # 31/01/2026
    re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$"),  # 192.168.0.1
    re.compile(r"^\d{1,3}(?:[ ,.]\d{3})+(?:[.,]\d+)?$"),  # 1 234 567.50
    re.compile(r"^\d+[.,]\d+$"),  # 1234.5678
)
# A phone number inside text: international form only (`+44 20 7946 0958`), since a
# run of digits in a sentence is more often an order number than a phone.
_PHONE_IN_TEXT = re.compile(r"(?<![\w+])\+\d[\d\s().\-]{5,}\d")
_EMAIL_IN_TEXT = re.compile(r"[^@\s\"'<>(),;:]+@[^@\s\"'<>(),;:]+\.[A-Za-z]{2,}")


def _digit_count(text: str) -> int:
    return sum(ch.isdigit() for ch in text)


def looks_like_email(text: str) -> bool:
    return bool(_EMAIL_IN_TEXT.fullmatch(text.strip()))


def looks_like_phone(text: str) -> bool:
    """A phone number as people write one: `+447700900123`, `0044 7700 900123`,
    `(020) 7946 0958`, `415-555-0199`. A bare run of digits without `+` is not one
    (an order or customer number), unless it sits under a phone key."""
    value = text.strip()
    if not _PHONE_CHARACTERS.match(value) or not 7 <= _digit_count(value) <= 15:
        return False
    if value.startswith("+"):
        return True
    if any(pattern.match(value) for pattern in _NOT_PHONES):
        return False
    return bool(_SEPARATED.search(value))


def mask_text(text: str) -> str:
    """Free text (a merge's reason, a timeline title) with every email and
    international phone number in it masked."""
    if "@" in text:
        text = _EMAIL_IN_TEXT.sub(lambda m: mask_email(m.group(0)), text)
    if "+" in text:
        text = _PHONE_IN_TEXT.sub(
            lambda m: mask_phone(m.group(0)) if 7 <= _digit_count(m.group(0)) <= 15 else m.group(0),
            text,
        )
    return text


def mask_string(text: str) -> str:
    """A string value of unknown meaning: masked whole when it is an email or a phone
    number, else with the emails and phone numbers inside it masked."""
    if looks_like_email(text):
        return mask_email(text.strip())
    if looks_like_phone(text):
        return mask_phone(text)
    return mask_text(text)


def mask_identifier(kind: str, value: str) -> str:
    """An identifier as a person without the PII permission sees it: emails and phones
    by their kind, and any other kind (a user id, an external id) when its value is an
    email or a phone number."""
    if not value:
        return value
    if kind == "email":
        return mask_email(value)
    if kind == "phone":
        return mask_phone(value)
    return mask_string(value)


def mask_identifier_pairs(pairs: list) -> list:
    """`[[kind, value], ...]` (what a merge moved) with each value masked."""
    return [
        [pair[0], mask_identifier(str(pair[0]), str(pair[1])), *pair[2:]]
        if isinstance(pair, list | tuple) and len(pair) >= 2
        else mask_personal_data(pair)
        for pair in pairs
    ]


# Keys are compared by their words: `contact_phone`, `contactPhone` and `Contact Phone`
# are all ["contact", "phone"].
_EMAIL_KEYS = {"email", "emailaddress", "mail"}
_EMAIL_WORDS = {"email", "emails", "mail", "emailaddress"}
_PHONE_WORDS = {
    "phone",
    "phones",
    "telephone",
    "tel",
    "mobile",
    "cell",
    "cellphone",
    "fax",
    "sms",
    "msisdn",
    "whatsapp",
    "phonenumber",
}
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


def _words(name) -> list[str]:
    return [word.lower() for word in _WORD.findall(str(name))]


def _is_email_key(name) -> bool:
    words = _words(name)
    return "".join(words) in _EMAIL_KEYS or any(w in _EMAIL_WORDS for w in words)


def _is_phone_key(name) -> bool:
    return any(w in _PHONE_WORDS or w.endswith("phone") for w in _words(name))


def _mask_under_key(name, item):
    if isinstance(item, bool) or item is None:
        return item
    if _is_email_key(name) and isinstance(item, str):
        exact = "".join(_words(name)) in _EMAIL_KEYS
        # `email_status: "bounced"` is no address; under `email` itself anything is.
        return mask_email(item) if exact or "@" in item else mask_string(item)
    if _is_phone_key(name) and isinstance(item, str | int):
        text = str(item)
        # `mobile_app_version: "3.2.1"` is no phone number; five digits may be one.
        return mask_phone(text) if _digit_count(text) >= 5 else text
    return mask_personal_data(item)


def mask_personal_data(value):
    """A copy of a JSON value with emails and phone numbers masked: under keys that
    name them (`email`, `contact_phone`, `telephone`...), and wherever a string is or
    contains one."""
    if isinstance(value, dict):
        return {name: _mask_under_key(name, item) for name, item in value.items()}
    if isinstance(value, list):
        return [mask_personal_data(item) for item in value]
    if isinstance(value, str):
        return mask_string(value)
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
        if _is_email_key(part) or _is_phone_key(part) or joined in _IDENTIFIER_NAMES:
            return True
        if any(w in _PERSONAL_WORDS or w.endswith("phone") for w in words):
            return True
    return False


# --- What each kind of record holds, and how a role without pii.read sees it ----------

JSON, IDENTIFIER, TEXT, PAIRS = "json", "identifier", "text", "pairs"

_MASKS = {
    JSON: mask_personal_data,
    IDENTIFIER: lambda value: mask_identifier("", value) if isinstance(value, str) else value,
    TEXT: lambda value: mask_text(value) if isinstance(value, str) else value,
    PAIRS: lambda value: mask_identifier_pairs(value) if isinstance(value, list) else value,
}

RECORD_FIELDS: dict[str, dict[str, str]] = {
    "event": {
        "properties": JSON,
        "traits": JSON,
        "context": JSON,
        "user_id": IDENTIFIER,
        "anonymous_id": IDENTIFIER,
        "previous_id": IDENTIFIER,
    },
    "profile": {"traits": JSON},
    "account": {"traits": JSON},
    # A pair in the duplicates queue: `key` is the user id or the group id.
    "duplicate_record": {"key": IDENTIFIER, "traits": JSON},
    "merge": {"identifiers": PAIRS, "reason": TEXT},
    "account_merge": {"reason": TEXT},
    "quarantined": {"payload": JSON, "message_id": IDENTIFIER},
}


def masked_record(principal, item: Any, kind: str) -> Any:
    """The record as `principal` may see it: itself for roles with pii.read, else a
    copy (a model instance or a dict) with the personal fields of its kind masked. The
    original is left alone, so that a cached or saved object never holds masked data."""
    if principal.can_see_pii or item is None:
        return item
    fields = RECORD_FIELDS[kind]
    if isinstance(item, dict):
        return {
            name: _MASKS[fields[name]](value) if name in fields else value
            for name, value in item.items()
        }
    shown = copy.copy(item)
    for name, shape in fields.items():
        if hasattr(shown, name):
            setattr(shown, name, _MASKS[shape](getattr(shown, name)))
    return shown


def mask_trait_changes(changes: dict) -> dict:
    """`{name: {"from": old, "to": new, ...}}` (a person's edit of traits) with each
    old and new value masked as a trait of that name would be."""
    masked = {}
    for name, change in changes.items():
        if not isinstance(change, dict):
            masked[name] = mask_personal_data(change)
            continue
        masked[name] = {
            key: _mask_under_key(name, value) if key in ("from", "to") else value
            for key, value in change.items()
        }
    return masked


def shown_trait_changes(principal, changes: dict) -> dict:
    return changes if principal.can_see_pii else mask_trait_changes(changes)


def shown_json(principal, value):
    return value if principal.can_see_pii else mask_personal_data(value)


def shown_identifier(principal, kind: str, value: str) -> str:
    return value if principal.can_see_pii else mask_identifier(kind, value)


def shown_text(principal, text: str | None) -> str | None:
    return text if principal.can_see_pii or not text else mask_text(text)


class MaskedPage:
    """A queryset whose sliced rows come out as `masked_record` shows them: pagination
    counts and slices it as usual, and only the page shown is masked."""

    def __init__(self, queryset, principal, kind: str = "event"):
        if kind not in RECORD_FIELDS:
            raise KeyError(f"unknown kind of record {kind!r}")
        self.queryset = queryset
        self.principal = principal
        self.kind = kind

    def count(self) -> int:
        return self.queryset.count()

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, key):
        return [masked_record(self.principal, item, self.kind) for item in self.queryset[key]]
