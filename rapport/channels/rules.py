"""The rules checked at the moment of sending, every time: erasure, consent for the
channel and purpose, suppression, the contact policy's caps (marketing) and quiet
hours (marketing). Checked when the message is sent, not when it was planned.

Consent: marketing needs a granted, unexpired statement for the channel; a
transactional message is sent unless the customer denied transactional messages on
the channel. Quiet hours are read in the customer's time zone: their `timezone` trait
(an IANA name such as "Europe/Paris"), else the policy's `timezone`; a marketing
message due in quiet hours waits until they end (deferred, not skipped).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rapport.channels.models import ContactPolicy, Message, Purpose, Suppression
from rapport.profiles import selectors as profile_selectors

# The consent channel a message channel answers to (None: no consent of its own).
CONSENT_CHANNEL = {"email": "email", "sms": "sms", "push": "push", "webhook": None}


class SkipReason:
    ERASED = "erased"
    NO_CONSENT = "no_consent"
    SUPPRESSED = "suppressed"
    CONTACT_POLICY = "contact_policy"
    NO_ADDRESS = "no_address"
    HOLDOUT = "holdout"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Verdict:
    skip: str = ""
    wait_until: datetime | None = None


def policy_of(workspace_id) -> ContactPolicy:
    return ContactPolicy.objects.filter(workspace_id=workspace_id).first() or ContactPolicy(
        workspace_id=workspace_id
    )


def _zone(name: object, fallback: str) -> ZoneInfo:
    for candidate in (name, fallback, "UTC"):
        if isinstance(candidate, str) and candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def quiet_until(*, policy: ContactPolicy, traits: dict, now: datetime) -> datetime | None:
    """When the customer's quiet hours end, if `now` is inside them."""
    start, end = policy.quiet_start % 24, policy.quiet_end % 24
    if start == end:
        return None
    local = now.astimezone(_zone(traits.get("timezone"), policy.timezone))
    hour = local.hour
    inside = start <= hour < end if start < end else (hour >= start or hour < end)
    if not inside:
        return None
    ends = local.replace(hour=end, minute=0, second=0, microsecond=0)
    if ends <= local:
        ends += timedelta(days=1)
    return ends


def _consented(message: Message, profile, now: datetime) -> bool:
    consent_channel = CONSENT_CHANNEL.get(message.channel)
    if consent_channel is None:
        return True
    status = profile_selectors.consent_status(
        profile_id=profile.pk, channel=consent_channel, purpose=message.purpose, now=now
    )
    if message.purpose == Purpose.MARKETING:
        return status == "granted"
    return status != "denied"


def _over_cap(message: Message, policy: ContactPolicy, now: datetime) -> bool:
    cap = (policy.caps or {}).get(message.channel)
    if not isinstance(cap, dict) or cap.get("max") is None:
        return False
    days = float(cap.get("days") or 7)
    recent = (
        Message.objects.filter(
            profile_id=message.profile_id,
            channel=message.channel,
            purpose=Purpose.MARKETING,
            sent_at__gte=now - timedelta(days=days),
        )
        .exclude(pk=message.pk)
        .count()
    )
    return recent >= int(cap["max"])


def send_verdict(*, message: Message, profile, address: str | None, now: datetime) -> Verdict:
    if profile is None:
        return Verdict(skip=SkipReason.ERASED)
    if not _consented(message, profile, now):
        return Verdict(skip=SkipReason.NO_CONSENT)
    if not address:
        return Verdict(skip=SkipReason.NO_ADDRESS)
    if Suppression.objects.filter(
        workspace_id=message.workspace_id, channel=message.channel, address=address.lower()
    ).exists():
        return Verdict(skip=SkipReason.SUPPRESSED)
    if message.purpose == Purpose.MARKETING:
        policy = policy_of(message.workspace_id)
        if _over_cap(message, policy, now):
            return Verdict(skip=SkipReason.CONTACT_POLICY)
        wait = quiet_until(policy=policy, traits=profile.traits or {}, now=now)
        if wait is not None:
            return Verdict(wait_until=wait)
    return Verdict()
