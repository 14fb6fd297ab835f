"""Accounts (companies) from `group` calls: created on first sight, traits latest-wins
with their source, a parent account from the `parent_group_id` trait, and the caller's
profile as a member. Consent statements from events and from people, kept as history."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from rapport.core.errors import ConflictError, InvalidInputError, NotFoundError
from rapport.ingest.models import Event, EventType
from rapport.profiles import lists
from rapport.profiles.consent import statements_in
from rapport.profiles.models import (
    Account,
    AccountMember,
    AccountMerge,
    ConsentChange,
    Profile,
    SavedView,
    SavedViewDefault,
)
from rapport.tenancy.services import Actor, audit_log_record

PARENT_TRAITS = ("parent_group_id", "parentGroupId", "parent_id")


def record_live(record):
    """A profile or account itself, or the one it was merged into (a chain of merges
    followed to the end); None if a record on the way no longer exists."""
    model, seen = type(record), set()
    while record is not None and record.merged_into_id is not None and record.pk not in seen:
        seen.add(record.pk)
        record = model.objects.filter(pk=record.merged_into_id).first()
    return record


def _account_for(workspace_id: Any, group_id: str, cache: dict[str, Account]) -> Account:
    if group_id not in cache:
        account, _ = Account.objects.get_or_create(workspace_id=workspace_id, group_id=group_id)
        cache[group_id] = record_live(account)
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
        Event.objects.filter(
            workspace_id=workspace_id, profile_id=profile_id, type=EventType.GROUP
        ).values_list("group_id", flat=True)
    )
    accounts = {
        record_live(account).pk
        for account in Account.objects.filter(workspace_id=workspace_id, group_id__in=group_ids)
    }
    AccountMember.objects.bulk_create(
        [
            AccountMember(workspace_id=workspace_id, account_id=account_id, profile_id=profile_id)
            for account_id in accounts
        ]
    )


def merge_request_check(survivor, merged, reason: str, *, what: str, same: str) -> str:
    """A person's request to merge two records (profiles or accounts) of one workspace:
    two different records and a reason. Returns the reason, trimmed."""
    if survivor.workspace_id != merged.workspace_id:
        raise NotFoundError(f"No such {what} in this workspace")
    if survivor.pk == merged.pk:
        article = "An" if what[0] in "aeiou" else "A"
        raise InvalidInputError(f"{article} {what} cannot be merged with itself", field="other")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInputError(f"Say why these are the same {same}", field="reason")
    return reason


def merge_records_lock(survivor, merged, *, what: str):
    """Both records of a merge, re-read and locked; refused if either was merged
    meanwhile."""
    model = type(survivor)
    survivor = model.objects.select_for_update().get(pk=survivor.pk)
    merged = model.objects.select_for_update().get(pk=merged.pk)
    for record in (survivor, merged):
        if record.merged_into_id is not None:
            raise ConflictError(
                f"{what.capitalize()} {record.pk} was merged into {record.merged_into_id}; "
                "merge that one instead",
                code="already_merged",
            )
    return survivor, merged


def account_merge(*, survivor: Account, merged: Account, reason: str, actor: Actor) -> AccountMerge:
    """A person's merge of two accounts they know to be one company (the "second legal
    entity" case). Members, child accounts and traits the survivor lacks move over;
    later group calls for the merged group_id land on the survivor. Undo with
    `account_unmerge`."""
    reason = merge_request_check(survivor, merged, reason, what="account", same="company")
    with transaction.atomic():
        survivor, merged = merge_records_lock(survivor, merged, what="account")
        if survivor.parent_id == merged.pk or merged.parent_id == survivor.pk:
            raise ConflictError(
                "One of these accounts is the other's parent company; a subsidiary is not a "
                "duplicate. Change the hierarchy first if it is wrong.",
                code="parent_and_child",
            )
        already = set(
            AccountMember.objects.filter(account=survivor).values_list("profile_id", flat=True)
        )
        members = []
        for profile_id in AccountMember.objects.filter(account=merged).values_list(
            "profile_id", flat=True
        ):
            members.append([str(profile_id), profile_id in already])
        AccountMember.objects.filter(account=merged, profile_id__in=already).delete()
        AccountMember.objects.filter(account=merged).update(account=survivor)
        children = [
            str(pk)
            for pk in Account.objects.filter(parent=merged)
            .exclude(pk=survivor.pk)
            .values_list("pk", flat=True)
        ]
        Account.objects.filter(pk__in=children).update(parent=survivor)
        added = []
        for name, value in merged.traits.items():
            if name not in survivor.traits:
                survivor.traits[name] = value
                survivor.trait_sources[name] = merged.trait_sources.get(name, {})
                added.append(name)
        for bound, pick in (("first_seen_at", min), ("last_seen_at", max)):
            values = [v for v in (getattr(survivor, bound), getattr(merged, bound)) if v]
            setattr(survivor, bound, pick(values) if values else None)
        survivor.save()
        merged.merged_into = survivor
        merged.save(update_fields=["merged_into", "updated_at"])
        merge = AccountMerge.objects.create(
            workspace_id=survivor.workspace_id,
            survivor=survivor,
            merged=merged,
            members=members,
            children=children,
            reason=reason[:2000],
            actor_label=actor.label,
        )
        audit_log_record(
            workspace=survivor.workspace,
            actor=actor,
            action="account.merge",
            target=merge,
            details={
                "survivor": str(survivor.pk),
                "merged": str(merged.pk),
                "reason": reason,
                "traits_added": added,
            },
        )
    return merge


def account_unmerge(*, merge: AccountMerge, actor: Actor) -> AccountMerge:
    """Undo an account merge: the merged account's members and child accounts go back,
    and the survivor loses the traits it only had from the merged account."""
    with transaction.atomic():
        merge = AccountMerge.objects.select_for_update().get(pk=merge.pk)
        if merge.unmerged_at is not None:
            raise ConflictError("This merge was already undone", code="already_unmerged")
        survivor = Account.objects.select_for_update().get(pk=merge.survivor_id)
        restored = Account.objects.select_for_update().get(pk=merge.merged_id)
        for profile_id, was_in_survivor in merge.members:
            if not was_in_survivor:
                AccountMember.objects.filter(account=survivor, profile_id=profile_id).delete()
            if Profile.objects.filter(pk=profile_id).exists():
                AccountMember.objects.get_or_create(
                    workspace_id=merge.workspace_id, account=restored, profile_id=profile_id
                )
        Account.objects.filter(pk__in=merge.children, parent=survivor).update(parent=restored)
        for name, source in restored.trait_sources.items():
            if survivor.trait_sources.get(name) == source:
                survivor.traits.pop(name, None)
                survivor.trait_sources.pop(name, None)
        survivor.save()
        restored.merged_into = None
        restored.save(update_fields=["merged_into", "updated_at"])
        merge.unmerged_at = timezone.now()
        merge.save(update_fields=["unmerged_at"])
        audit_log_record(
            workspace=survivor.workspace,
            actor=actor,
            action="account.unmerge",
            target=merge,
            details={"survivor": str(survivor.pk), "restored": str(restored.pk)},
        )
    return merge


# --- Consent --------------------------------------------------------------------------


def consents_from_events(workspace_id: Any, events: Iterable[Event]) -> int:
    """The `events_dispatch` consumer for consent statements (after identity
    resolution). Running it twice on the same events records nothing twice."""
    candidates = [e.pk for e in events if statements_in(traits=e.traits, context=e.context)]
    if not candidates:
        return 0
    created = 0
    with transaction.atomic():
        for event in Event.objects.filter(pk__in=candidates, profile__isnull=False):
            source = f"event:{event.message_id}"
            for statement in statements_in(traits=event.traits, context=event.context):
                _, made = ConsentChange.objects.get_or_create(
                    workspace_id=workspace_id,
                    profile_id=event.profile_id,
                    channel=statement.channel,
                    purpose=statement.purpose,
                    source=source,
                    defaults={
                        "origin_profile_id": event.profile_id,
                        "status": statement.status,
                        "at": event.timestamp,
                        "expires_at": statement.expires_at,
                    },
                )
                created += made
    return created


def consent_set(
    *,
    profile: Profile,
    channel: str,
    purpose: str,
    status: str,
    actor: Actor,
    expires_at: datetime | None = None,
) -> ConsentChange:
    """A person records consent (a phone call, a signed form)."""
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInputError("expires_at must be in the future", field="expires_at")
    with transaction.atomic():
        change = ConsentChange.objects.create(
            workspace_id=profile.workspace_id,
            profile=profile,
            origin_profile_id=profile.pk,
            channel=channel,
            purpose=purpose,
            status=status,
            at=timezone.now(),
            expires_at=expires_at,
            source=f"api:{actor.label}"[:300],
        )
        audit_log_record(
            workspace=profile.workspace,
            actor=actor,
            action="consent.set",
            target=profile,
            details={"channel": channel, "purpose": purpose, "status": status},
        )
    return change


def consents_move(*, source_profile_id: Any, target_profile_id: Any) -> None:
    ConsentChange.objects.filter(profile_id=source_profile_id).update(profile_id=target_profile_id)


def consents_restore(*, profile_id: Any, family: Iterable[Any]) -> None:
    """After an unmerge: statements first recorded on the restored profile (or on a
    profile merged into it) come back to it."""
    ConsentChange.objects.filter(origin_profile_id__in=list(family)).update(profile_id=profile_id)


# --- Saved views of the customer and account lists ------------------------------------


def _view_name_clean(name) -> str:
    name = name.strip() if isinstance(name, str) else ""
    if not name:
        raise InvalidInputError("a view needs a name", field="name")
    if len(name) > 100:
        raise InvalidInputError("at most 100 characters", field="name")
    return name


def _view_name_free(view: SavedView, name: str) -> None:
    """Two views a person sees side by side never share a name."""
    same = SavedView.objects.filter(
        workspace_id=view.workspace_id, list=view.list, name__iexact=name
    ).exclude(pk=view.pk)
    same = same.filter(shared=True) if view.shared else same.filter(owner=view.owner, shared=False)
    if same.exists():
        raise InvalidInputError("a view of this list already has this name", field="name")


def saved_view_create(
    *,
    workspace,
    actor: Actor,
    list_name: str,
    name: str,
    shared: bool = False,
    columns: list | None = None,
    sort: str = "",
    filters: dict | None = None,
) -> SavedView:
    """A view of a list: private to the person who makes it, or shared with the
    workspace. An API token has no person to keep a private view for."""
    if list_name not in lists.LISTS:
        raise InvalidInputError(f"must be one of {', '.join(lists.LISTS)}", field="list")
    if not shared and actor.user is None:
        raise InvalidInputError("a private view needs a signed-in person", field="shared")
    view = SavedView(
        workspace=workspace,
        list=list_name,
        name=_view_name_clean(name),
        owner=actor.user,
        shared=bool(shared),
        columns=lists.columns_clean(
            list_name, lists.DEFAULT_COLUMNS[list_name] if columns is None else columns
        ),
        sort=lists.sort_clean(list_name, sort),
        filters=lists.filters_clean(list_name, filters or {}),
        created_by=actor.label,
    )
    _view_name_free(view, view.name)
    view.save()
    return view


def saved_view_update(
    *,
    view: SavedView,
    actor: Actor,
    name: str | None = None,
    shared: bool | None = None,
    columns: list | None = None,
    sort: str | None = None,
    filters: dict | None = None,
) -> SavedView:
    """Rename it, share or unshare it, or keep a new arrangement in it."""
    if name is not None:
        view.name = _view_name_clean(name)
    if shared is not None:
        if not shared and view.owner_id is None:
            raise InvalidInputError("a private view needs a signed-in person", field="shared")
        view.shared = bool(shared)
    if columns is not None:
        view.columns = lists.columns_clean(view.list, columns)
    if sort is not None:
        view.sort = lists.sort_clean(view.list, sort)
    if filters is not None:
        view.filters = lists.filters_clean(view.list, filters)
    _view_name_free(view, view.name)
    view.save()
    if not view.shared:
        # Those who opened it by default no longer see it.
        SavedViewDefault.objects.filter(view=view).exclude(user_id=view.owner_id).delete()
    return view


def saved_view_delete(*, view: SavedView, actor: Actor) -> None:
    view.delete()


def saved_view_default_set(
    *, workspace, user, list_name: str, view: SavedView | None
) -> SavedViewDefault | None:
    """The view this person's list opens with; None: the list as it comes."""
    if list_name not in lists.LISTS:
        raise InvalidInputError(f"must be one of {', '.join(lists.LISTS)}", field="list")
    if view is not None and view.list != list_name:
        raise InvalidInputError("a view of another list", field="view")
    with transaction.atomic():
        SavedViewDefault.objects.filter(workspace=workspace, user=user, list=list_name).delete()
        if view is None:
            return None
        return SavedViewDefault.objects.create(
            workspace=workspace, user=user, list=list_name, view=view
        )
