import uuid

from django.db.models import Q, QuerySet, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils import timezone

from rapport.core.errors import InvalidInputError
from rapport.core.selectors import object_get
from rapport.identity.models import Identifier
from rapport.identity.normalize import normalize_email, normalize_phone
from rapport.ingest.models import Event
from rapport.profiles.models import (
    Account,
    AccountMember,
    AccountMerge,
    ConsentChange,
    ConsentChannel,
    ConsentPurpose,
    ConsentStatus,
    Profile,
)
from rapport.tenancy.models import Workspace


def profile_list(*, workspace: Workspace, include_merged: bool = False) -> QuerySet[Profile]:
    profiles = Profile.objects.filter(workspace=workspace)
    if not include_merged:
        profiles = profiles.filter(merged_into__isnull=True)
    return profiles.order_by("-last_seen_at", "-id")


def profile_search(
    *, workspace: Workspace, q: str | None = None, trait: str | None = None
) -> QuerySet[Profile]:
    """Profiles holding an identifier equal to `q` (as typed, or normalised as an email
    or a phone number), and/or whose trait has a value (`trait` = "name:value")."""
    profiles = profile_list(workspace=workspace)
    if q:
        text = q.strip()
        candidates = {text, text.lower()}
        candidates |= {v for v in (normalize_email(text), normalize_phone(text)) if v}
        holders = Identifier.objects.filter(workspace=workspace, value__in=candidates)
        profiles = profiles.filter(pk__in=holders.values("profile_id"))
    if trait:
        name, sep, value = trait.partition(":")
        if not sep or not name.strip():
            raise InvalidInputError("trait must be written name:value", field="trait")
        # A literal key: a name like "plan__icontains" is a trait name, not a lookup.
        profiles = profiles.annotate(
            _trait=Cast(KeyTextTransform(name.strip(), "traits"), TextField())
        ).filter(_trait=value.strip())
    return profiles


def profile_get(*, workspace: Workspace, profile_id: uuid.UUID) -> Profile:
    return object_get(
        Profile.objects.filter(workspace=workspace).prefetch_related("identifiers"),
        what="profile",
        pk=profile_id,
    )


def profile_timeline(
    *,
    workspace: Workspace,
    profile_id: uuid.UUID,
    type: str | None = None,
    event: str | None = None,
) -> QuerySet[Event]:
    """Everything the customer did, newest first (events now; messages, tickets, orders
    and points join as their apps arrive)."""
    profile = profile_get(workspace=workspace, profile_id=profile_id)
    events = Event.objects.filter(workspace=workspace, profile=profile)
    if type:
        events = events.filter(type=type)
    if event:
        events = events.filter(event=event)
    return events.order_by("-timestamp", "-id")


def account_list(
    *, workspace: Workspace, q: str | None = None, include_merged: bool = False
) -> QuerySet[Account]:
    accounts = Account.objects.filter(workspace=workspace)
    if not include_merged:
        accounts = accounts.filter(merged_into__isnull=True)
    if q:
        accounts = accounts.filter(Q(name__icontains=q.strip()) | Q(group_id=q.strip()))
    return accounts.order_by("name", "group_id")


def account_get(*, workspace: Workspace, account_id: uuid.UUID) -> Account:
    return object_get(
        Account.objects.filter(workspace=workspace).select_related("parent"),
        what="account",
        pk=account_id,
    )


def account_members(*, workspace: Workspace, account_id: uuid.UUID) -> QuerySet[Profile]:
    account = account_get(workspace=workspace, account_id=account_id)
    return profile_list(workspace=workspace).filter(account_links__account=account)


def account_merged_group_ids(account: Account) -> list[str]:
    """Group ids of the accounts merged into this one, directly or through others."""
    found, frontier = [], [account.pk]
    while frontier:
        rows = list(
            Account.objects.filter(merged_into_id__in=frontier).values_list("pk", "group_id")
        )
        found += [group_id for _, group_id in rows]
        frontier = [pk for pk, _ in rows]
    return found


def account_timeline(*, workspace: Workspace, account_id: uuid.UUID) -> QuerySet[Event]:
    """Everything the account's people did, and the account's own group calls."""
    account = account_get(workspace=workspace, account_id=account_id)
    members = AccountMember.objects.filter(account=account).values("profile_id")
    group_ids = [account.group_id, *account_merged_group_ids(account)]
    return (
        Event.objects.filter(workspace=workspace)
        .filter(Q(profile_id__in=members) | Q(group_id__in=group_ids))
        .order_by("-timestamp", "-id")
    )


def consent_history(*, workspace: Workspace, profile_id: uuid.UUID) -> QuerySet[ConsentChange]:
    profile = profile_get(workspace=workspace, profile_id=profile_id)
    return ConsentChange.objects.filter(profile=profile).order_by("-at", "-id")


def consent_current(*, workspace: Workspace, profile_id: uuid.UUID) -> list[dict]:
    """Per channel and purpose: the latest statement, or unknown; a granted consent past
    its expiry counts as unknown."""
    now = timezone.now()
    latest: dict[tuple[str, str], ConsentChange] = {}
    for change in consent_history(workspace=workspace, profile_id=profile_id):
        latest.setdefault((change.channel, change.purpose), change)
    current = []
    for channel in ConsentChannel.values:
        for purpose in ConsentPurpose.values:
            change = latest.get((channel, purpose))
            expired = bool(change and change.expires_at and change.expires_at <= now)
            current.append(
                {
                    "channel": channel,
                    "purpose": purpose,
                    "status": ConsentStatus.UNKNOWN if change is None or expired else change.status,
                    "at": change.at if change else None,
                    "expires_at": change.expires_at if change else None,
                    "expired": expired,
                    "source": change.source if change else "",
                }
            )
    return current


def account_merge_list(
    *, workspace: Workspace, account: Account | None = None
) -> QuerySet[AccountMerge]:
    merges = AccountMerge.objects.filter(workspace=workspace)
    if account is not None:
        merges = merges.filter(Q(survivor=account) | Q(merged=account))
    return merges.order_by("-created_at", "-id")


def account_merge_get(*, workspace: Workspace, merge_id: uuid.UUID) -> AccountMerge:
    return object_get(account_merge_list(workspace=workspace), what="account merge", pk=merge_id)
