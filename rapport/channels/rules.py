"""The rules checked at the moment of sending, every time: erasure, consent for the
channel and purpose, suppression, the contact policy's caps (marketing) and quiet
hours (marketing). Checked when the message is sent, not when it was planned.

Consent: marketing needs a granted, unexpired statement for the channel; a
transactional message is sent unless the customer denied transactional messages on
the channel. Quiet hours are read in the customer's time zone: their `timezone` trait
(an IANA name such as "Europe/Paris"), else the policy's `timezone`; a marketing
message due in quiet hours waits until they end (deferred, not skipped).
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import Count

from rapport.channels.models import ContactPolicy, Message, Purpose, Suppression
from rapport.profiles import selectors as profile_selectors

# The consent channel a message channel answers to (None: no consent of its own).
# In-app messages need none (as in Braze and Pega): they are shown only inside a
# session the customer opened, and one dismissed never comes back.
CONSENT_CHANNEL = {"email": "email", "sms": "sms", "push": "push", "webhook": None, "in_app": None}


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


@dataclass
class Facts:
    """What the rules need for a batch of sends, read in a few set-based queries
    (`facts_read`); `verdict` then decides each message without a query."""

    now: datetime
    # {(consent channel, purpose): {profile_id: status}}
    consent: dict = field(default_factory=dict)
    # {(workspace_id, channel, lower-cased address)} on the suppression list
    suppressed: set = field(default_factory=set)
    # {workspace_id: ContactPolicy}, for the workspaces with marketing in the batch
    policies: dict = field(default_factory=dict)
    # {(profile_id, channel): marketing sent within the cap's window}; each send
    # decided in the batch counts too
    recent: dict = field(default_factory=dict)


def facts_read(items, *, now: datetime) -> Facts:
    """`items`: (message, profile or None, address or None) for each message to check."""
    facts = Facts(now=now)
    consent_wanted: dict[tuple, set] = {}
    addresses: dict[tuple, set] = {}
    marketing_workspaces = set()
    for message, profile, address in items:
        if profile is None:
            continue
        consent_channel = CONSENT_CHANNEL.get(message.channel)
        if consent_channel is not None:
            consent_wanted.setdefault((consent_channel, message.purpose), set()).add(profile.pk)
        if address:
            addresses.setdefault((message.workspace_id, message.channel), set()).add(
                address.lower()
            )
        if message.purpose == Purpose.MARKETING:
            marketing_workspaces.add(message.workspace_id)
    for (channel, purpose), profile_ids in consent_wanted.items():
        facts.consent[(channel, purpose)] = profile_selectors.consent_statuses(
            profile_ids=profile_ids, channel=channel, purpose=purpose, now=now
        )
    for (workspace_id, channel), wanted in addresses.items():
        facts.suppressed.update(
            (workspace_id, channel, address)
            for address in Suppression.objects.filter(
                workspace_id=workspace_id, channel=channel, address__any=list(wanted)
            ).values_list("address", flat=True)
        )
    if marketing_workspaces:
        found = {
            policy.workspace_id: policy
            for policy in ContactPolicy.objects.filter(workspace_id__in=marketing_workspaces)
        }
        for workspace_id in marketing_workspaces:
            facts.policies[workspace_id] = found.get(workspace_id) or ContactPolicy(
                workspace_id=workspace_id
            )
    # The caps: marketing already sent to these customers, per channel with a cap.
    capped: dict[tuple, set] = {}
    batch_ids = [message.pk for message, _, _ in items]
    for message, profile, _ in items:
        if profile is None or message.purpose != Purpose.MARKETING or not message.profile_id:
            continue
        cap = _cap(facts.policies[message.workspace_id], message.channel)
        if cap is not None:
            capped.setdefault((message.channel, cap[1]), set()).add(message.profile_id)
    for (channel, days), profile_ids in capped.items():
        counted = (
            Message.objects.filter(
                profile_id__any=list(profile_ids),
                channel=channel,
                purpose=Purpose.MARKETING,
                sent_at__gte=now - timedelta(days=days),
            )
            .exclude(pk__any=batch_ids)
            .values("profile_id")
            .annotate(n=Count("id"))
            .values_list("profile_id", "n")
        )
        for profile_id, n in counted:
            facts.recent[(profile_id, channel)] = n
    return facts


def _cap(policy: ContactPolicy, channel: str) -> tuple[int, float] | None:
    cap = (policy.caps or {}).get(channel)
    if not isinstance(cap, dict) or cap.get("max") is None:
        return None
    return int(cap["max"]), float(cap.get("days") or 7)


def verdict(*, message: Message, profile, address: str | None, facts: Facts) -> Verdict:
    """The rules for one message of the batch, from what `facts_read` read. A marketing
    send it allows counts towards the customer's cap for the rest of the batch."""
    if profile is None:
        return Verdict(skip=SkipReason.ERASED)
    consent_channel = CONSENT_CHANNEL.get(message.channel)
    if consent_channel is not None:
        status = facts.consent.get((consent_channel, message.purpose), {}).get(
            profile.pk, "unknown"
        )
        allowed = (
            status == "granted" if message.purpose == Purpose.MARKETING else status != "denied"
        )
        if not allowed:
            return Verdict(skip=SkipReason.NO_CONSENT)
    if not address:
        return Verdict(skip=SkipReason.NO_ADDRESS)
    if (message.workspace_id, message.channel, address.lower()) in facts.suppressed:
        return Verdict(skip=SkipReason.SUPPRESSED)
    if message.purpose == Purpose.MARKETING:
        policy = facts.policies[message.workspace_id]
        cap = _cap(policy, message.channel)
        key = (message.profile_id, message.channel)
        if cap is not None and facts.recent.get(key, 0) >= cap[0]:
            return Verdict(skip=SkipReason.CONTACT_POLICY)
        wait = quiet_until(policy=policy, traits=profile.traits or {}, now=facts.now)
        if wait is not None:
            return Verdict(wait_until=wait)
        if cap is not None:
            facts.recent[key] = facts.recent.get(key, 0) + 1
    return Verdict()


def send_verdict(*, message: Message, profile, address: str | None, now: datetime) -> Verdict:
    """The rules for one message (the batch path's, for a batch of one)."""
    facts = facts_read([(message, profile, address)], now=now)
    return verdict(message=message, profile=profile, address=address, facts=facts)


def profile_verdict(*, workspace_id, profile, channel: str, purpose: str, now: datetime) -> Verdict:
    """The send-time rules for a message on `channel` that has not been written yet: what
    the decision engine asks before it offers an outbound action. The customer's
    address is looked up as a send would (traits, then identifiers)."""
    from rapport.channels import dispatch
    from rapport.channels.services import _identifiers_attach

    message = Message(workspace_id=workspace_id, channel=channel, purpose=purpose)
    if profile is not None:
        message.profile_id = profile.pk
    address = None
    transport = dispatch.transport_for(channel)
    if profile is not None and transport is not None:
        address = transport.address(profile)
        if address is None:
            _identifiers_attach([profile])
            address = transport.address(profile)
    if channel == "webhook" and profile is not None:
        # A webhook's receiver is the message's, not the customer's: nothing to check.
        address = address or "webhook"
    facts = facts_read([(message, profile, address)], now=now)
    return verdict(message=message, profile=profile, address=address, facts=facts)
