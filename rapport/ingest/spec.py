"""The Segment Spec as Rapport reads it: one raw item in, one row to store or one
reason to refuse it. Pure functions, no database.

Timestamps: `timestamp` is the corrected time, `receivedAt - (sentAt -
originalTimestamp)`, when the client sent `originalTimestamp` and `sentAt` (a device
with a wrong clock is thereby corrected). An explicit `timestamp` without
`originalTimestamp` is honoured as it is (server libraries and historical imports).
With neither, the event happened when it was received.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

MAX_EVENT_BYTES = 32 * 1024
MAX_REQUEST_BYTES = 500 * 1024
MAX_ID_LENGTH = 255
FUTURE_TOLERANCE = timedelta(days=1)
TYPES = ("identify", "track", "page", "screen", "group", "alias")
OBJECT_FIELDS = ("properties", "traits", "context", "integrations")


class Invalid(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


class TooLarge(Invalid):
    """Over a size limit: the whole request is refused, not only this item."""


NUL = "\x00"
# What a NUL character becomes in a refused payload kept in quarantine: the JSON escape
# as visible text, since PostgreSQL can store neither NUL in text nor `\u0000` in jsonb.
NUL_ESCAPED = "\\u0000"


def nul_path(value: Any, path: str = "") -> str | None:
    """Where a NUL character is in a JSON value (`properties.name`, `traits` for a key
    with one), or None. PostgreSQL stores no NUL in text or jsonb, and most destinations
    break on it: such an event is refused, naming the place."""
    if isinstance(value, str):
        return path or "item" if NUL in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            key = str(key)
            if NUL in key:
                return path or "item"
            found = nul_path(item, f"{path}.{key}" if path else key)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = nul_path(item, f"{path}[{index}]" if path else f"[{index}]")
            if found is not None:
                return found
    return None


def nul_escaped(value: Any) -> Any:
    """The value with every NUL character (in keys and strings) written as `\\u0000`."""
    if isinstance(value, str):
        return value.replace(NUL, NUL_ESCAPED)
    if isinstance(value, dict):
        return {
            str(key).replace(NUL, NUL_ESCAPED): nul_escaped(item) for key, item in value.items()
        }
    if isinstance(value, list):
        return [nul_escaped(item) for item in value]
    return value


@dataclass(frozen=True)
class Refused:
    index: int
    field: str
    reason: str
    message_id: str
    payload: Any
    over_limit: bool = False


def parse_time(value: Any, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(field, f"{field} must be an ISO-8601 date-time string")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Invalid(field, f"{field} is not an ISO-8601 date-time: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if not 1970 <= parsed.year <= 2200:
        raise Invalid(field, f"{field} is out of range: {value[:40]!r}")
    return parsed.astimezone(UTC)


def _id(item: dict, field: str, *, required: bool = False) -> str:
    value = item.get(field)
    if value is None or value == "":
        if required:
            raise Invalid(field, f"{field} is required")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Invalid(field, f"{field} must be a string or a number")
    text = str(value).strip() if isinstance(value, str) else str(value)
    if not text:
        if required:
            raise Invalid(field, f"{field} is required")
        return ""
    if len(text) > MAX_ID_LENGTH:
        raise Invalid(field, f"{field} is longer than {MAX_ID_LENGTH} characters")
    return text


def _object(item: dict, field: str) -> dict:
    value = item.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid(field, f"{field} must be an object")
    return value


def event_parse(
    raw: Any,
    *,
    received_at: datetime,
    forced_type: str | None = None,
    batch_context: dict | None = None,
    batch_sent_at: datetime | None = None,
) -> dict:
    """One item as the keyword arguments of an `Event` row, or `Invalid`."""
    if not isinstance(raw, dict):
        raise Invalid("item", "each event must be a JSON object")
    kind = forced_type or raw.get("type")
    objects = {field: _object(raw, field) for field in OBJECT_FIELDS}
    if batch_context:
        objects["context"] = {**batch_context, **objects["context"]}
    stored = _as_stored(raw, objects["context"])
    encoded = orjson.dumps(stored)
    if len(encoded) > MAX_EVENT_BYTES:
        # Measured as stored: a batch's `context` is copied into each of its events.
        raise TooLarge("item", f"event is larger than the {MAX_EVENT_BYTES // 1024} KB limit")
    # The walk that names the place runs only for the rare event whose JSON has one.
    where = nul_path(stored) if b"\\u0000" in encoded else None
    if where is not None:
        raise Invalid(
            where.split(".", 1)[0].split("[", 1)[0],
            f"{where} contains a NUL character (\\u0000), which cannot be stored",
        )
    if kind not in TYPES:
        raise Invalid("type", f"type must be one of {', '.join(TYPES)}")

    message_id = _id(raw, "messageId") or str(uuid.uuid4())
    user_id = _id(raw, "userId")
    anonymous_id = _id(raw, "anonymousId")
    context_traits = objects["context"].get("traits")
    if kind == "identify" and isinstance(context_traits, dict):
        # RudderStack's SDKs (and analytics.js for some calls) send a person's traits
        # in context.traits; the top-level ones win where both name a trait.
        objects["traits"] = {**context_traits, **objects["traits"]}

    row = {
        "message_id": message_id,
        "type": kind,
        "event": "",
        "user_id": user_id,
        "anonymous_id": anonymous_id,
        "group_id": "",
        "previous_id": "",
    }
    if kind == "track":
        name = raw.get("event")
        if not isinstance(name, str) or not name.strip():
            raise Invalid("event", "event (the name of the action) is required for track")
        if len(name) > MAX_ID_LENGTH:
            raise Invalid("event", f"event is longer than {MAX_ID_LENGTH} characters")
        row["event"] = name.strip()
    elif kind in ("page", "screen"):
        name = raw.get("name")
        if name is not None and not isinstance(name, str):
            raise Invalid("name", "name must be a string")
        row["event"] = (name or "").strip()[:MAX_ID_LENGTH]
    elif kind == "group":
        row["group_id"] = _id(raw, "groupId", required=True)
    elif kind == "alias":
        row["previous_id"] = _id(raw, "previousId", required=True)
        row["user_id"] = _id(raw, "userId", required=True)
    if not row["user_id"] and not row["anonymous_id"]:
        raise Invalid("userId", "userId or anonymousId is required")

    explicit = parse_time(raw.get("timestamp"), "timestamp")
    original = parse_time(raw.get("originalTimestamp"), "originalTimestamp")
    sent_at = parse_time(raw.get("sentAt"), "sentAt") or batch_sent_at
    if original is not None and sent_at is not None:
        timestamp = received_at - (sent_at - original)
    elif explicit is not None:
        timestamp = explicit
    elif original is not None:
        timestamp = original
    else:
        timestamp = received_at

    row.update(
        timestamp=timestamp,
        received_at=received_at,
        sent_at=sent_at,
        original_timestamp=original if original is not None else explicit,
        in_future=timestamp > received_at + FUTURE_TOLERANCE,
        **objects,
    )
    return row


def _as_stored(raw: dict, context: dict) -> dict:
    """The item as it would be stored: with the batch's `context` merged into its own."""
    if not context or context is raw.get("context"):
        return raw
    return {**raw, "context": context}


def refused_from(
    index: int, raw: Any, error: Invalid, *, batch_context: dict | None = None
) -> Refused:
    """The refused item as quarantine keeps it: as it would have been stored (with the
    batch's context), cut down to a marker past the size limit, and with any NUL
    character escaped so that the refusal itself can be stored."""
    message_id = ""
    if isinstance(raw, dict) and isinstance(raw.get("messageId"), str | int):
        message_id = nul_escaped(str(raw["messageId"]))[:MAX_ID_LENGTH]
    payload = raw
    if isinstance(raw, dict) and batch_context and isinstance(raw.get("context", {}), dict):
        payload = _as_stored(raw, {**batch_context, **raw.get("context", {})})
    try:
        if len(orjson.dumps(payload)) > MAX_EVENT_BYTES:
            payload = {"truncated": True}
    except TypeError:
        payload = None
    return Refused(
        index=index,
        field=nul_escaped(error.field),
        reason=nul_escaped(error.reason),
        message_id=message_id,
        payload=nul_escaped(payload),
        over_limit=isinstance(error, TooLarge),
    )
