"""Consent statements read from an event. Pure functions, no database.

Two shapes are read:
- a `consent` trait (identify traits or context.traits):
  `{"email": {"marketing": "granted", "transactional": true}, "sms": false,
    "push": {"marketing": {"status": "granted", "expires_at": "2027-01-01T00:00:00Z"}}}`
  (a bare status for a channel means its marketing purpose);
- `context.consent.categoryPreferences` (or `preferences`), as consent managers send it:
  `{"email_marketing": true, "sms": false, "direct_mail_transactional": true}`.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from rapport.profiles.models import ConsentChannel, ConsentPurpose, ConsentStatus

_GRANTED = {"granted", "yes", "true", "opt_in", "opted_in", "subscribed"}
_DENIED = {"denied", "no", "false", "opt_out", "opted_out", "unsubscribed"}


@dataclass(frozen=True)
class Statement:
    channel: str
    purpose: str
    status: str
    expires_at: datetime | None = None


def status_of(value) -> str | None:
    if isinstance(value, bool):
        return ConsentStatus.GRANTED if value else ConsentStatus.DENIED
    if isinstance(value, str):
        text = value.strip().lower().replace("-", "_").replace(" ", "_")
        if text in _GRANTED:
            return ConsentStatus.GRANTED
        if text in _DENIED:
            return ConsentStatus.DENIED
        if text == "unknown":
            return ConsentStatus.UNKNOWN
    return None


def _expiry(value) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _split_key(key: str) -> tuple[str, str] | None:
    text = key.strip().lower()
    for channel in ConsentChannel.values:
        if text == channel:
            return channel, ConsentPurpose.MARKETING
        for purpose in ConsentPurpose.values:
            if text == f"{channel}_{purpose}":
                return channel, purpose
    return None


def statements_in(*, traits: dict | None, context: dict | None) -> list[Statement]:
    found: dict[tuple[str, str], Statement] = {}
    context = context or {}
    merged_traits = {**(context.get("traits") or {}), **(traits or {})}
    trait = merged_traits.get("consent")
    if isinstance(trait, dict):
        for channel, value in trait.items():
            if channel not in ConsentChannel.values:
                continue
            per_purpose = value if isinstance(value, dict) else {ConsentPurpose.MARKETING: value}
            for purpose, detail in per_purpose.items():
                if purpose not in ConsentPurpose.values:
                    continue
                expires = None
                if isinstance(detail, dict):
                    expires = _expiry(detail.get("expires_at"))
                    detail = detail.get("status")
                status = status_of(detail)
                if status:
                    found[(channel, purpose)] = Statement(channel, purpose, status, expires)
    consent = context.get("consent")
    if isinstance(consent, dict):
        preferences = consent.get("categoryPreferences") or consent.get("preferences") or {}
        if isinstance(preferences, dict):
            for key, value in preferences.items():
                target = _split_key(str(key))
                status = status_of(value)
                if target and status:
                    found[target] = Statement(target[0], target[1], status)
    return list(found.values())
