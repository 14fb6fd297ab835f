"""Accounts (companies) from `group` calls: created on first sight, traits latest-wins
with their source, a parent account from the `parent_group_id` trait, and the caller's
profile as a member."""

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from rapport.ingest.models import Event, EventType
from rapport.profiles.models import Account, AccountMember

PARENT_TRAITS = ("parent_group_id", "parentGroupId", "parent_id")


def _account_for(workspace_id: Any, group_id: str, cache: dict[str, Account]) -> Account:
    if group_id not in cache:
        cache[group_id], _ = Account.objects.get_or_create(
            workspace_id=workspace_id, group_id=group_id
        )
    return cache[group_id]


def _creates_cycle(account: Account, parent: Account) -> bool:
    seen, node = set(), parent
    while node is not None and node.pk not in seen:
        if node.pk == account.pk:
            return True
        seen.add(node.pk)
        node = node.parent
    return False


def accounts_from_events(workspace_id: Any, events: Iterable[Event]) -> int:
    """The `events_dispatch` consumer for group calls (runs after identity resolution,
    so it reads each event's profile afresh)."""
    ids = [e.pk for e in events if e.type == EventType.GROUP]
    if not ids:
        return 0
    group_events = Event.objects.filter(pk__in=ids).order_by("timestamp", "id")
    cache: dict[str, Account] = {}
    with transaction.atomic():
        for event in group_events:
            account = _account_for(workspace_id, event.group_id, cache)
            for name, value in (event.traits or {}).items():
                source = account.trait_sources.get(name)
                if source is None or source["at"] <= event.timestamp.isoformat():
                    account.traits[name] = value
                    account.trait_sources[name] = {
                        "at": event.timestamp.isoformat(),
                        "source_id": str(event.source_id) if event.source_id else None,
                        "message_id": event.message_id,
                    }
            if isinstance(account.traits.get("name"), str):
                account.name = account.traits["name"][:255]
            parent_id = next(
                (str(account.traits[t]) for t in PARENT_TRAITS if account.traits.get(t)), None
            )
            if parent_id and parent_id != account.group_id:
                parent = _account_for(workspace_id, parent_id[:255], cache)
                if not _creates_cycle(account, parent):
                    account.parent = parent
            if account.first_seen_at is None or event.timestamp < account.first_seen_at:
                account.first_seen_at = event.timestamp
            if account.last_seen_at is None or event.timestamp > account.last_seen_at:
                account.last_seen_at = event.timestamp
            if event.profile_id:
                AccountMember.objects.get_or_create(
                    workspace_id=workspace_id, account=account, profile_id=event.profile_id
                )
        now = timezone.now()
        for account in cache.values():
            account.updated_at = now
        Account.objects.bulk_update(
            list(cache.values()),
            [
                "name",
                "traits",
                "trait_sources",
                "parent",
                "first_seen_at",
                "last_seen_at",
                "updated_at",
            ],
        )
    return len(ids)


def account_members_move(*, source_profile_id: Any, target_profile_id: Any) -> None:
    """A merged profile's account memberships follow the surviving profile."""
    already = AccountMember.objects.filter(profile_id=target_profile_id).values("account_id")
    AccountMember.objects.filter(profile_id=source_profile_id, account_id__in=already).delete()
    AccountMember.objects.filter(profile_id=source_profile_id).update(profile_id=target_profile_id)


def account_members_recompute(*, workspace_id: Any, profile_id: Any) -> None:
    """Memberships from the profile's own group calls (after an unmerge)."""
    AccountMember.objects.filter(profile_id=profile_id).delete()
    group_ids = set(
        Event.objects.filter(profile_id=profile_id, type=EventType.GROUP).values_list(
            "group_id", flat=True
        )
    )
    accounts = Account.objects.filter(workspace_id=workspace_id, group_id__in=group_ids)
    AccountMember.objects.bulk_create(
        [
            AccountMember(workspace_id=workspace_id, account=account, profile_id=profile_id)
            for account in accounts
        ]
    )
