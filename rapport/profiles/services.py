"""Accounts (companies) from `group` calls: created on first sight, traits latest-wins
with their source, a parent account from the `parent_group_id` trait, and the caller's
profile as a member. Consent statements from events and from people, kept as history."""

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone
from django.utils.translation import gettext

from rapport.core.bulk import rows_widen
from rapport.core.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
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
    TraitEdit,
)
from rapport.profiles.selectors import profile_family_ids
from rapport.tenancy.models import Workspace
from rapport.tenancy.pii import mask_personal_data, personal_key
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
                _, joined = AccountMember.objects.get_or_create(
                    workspace_id=workspace_id, account=account, profile_id=event.profile_id
                )
                if joined:
                    # What the person did before joining counts as the account's too.
                    person = (
                        Profile.objects.filter(pk=event.profile_id)
                        .values_list("first_seen_at", "last_seen_at")
                        .first()
                    )
                    for seen in person or ():
                        if seen is not None and (
                            account.first_seen_at is None or seen < account.first_seen_at
                        ):
                            account.first_seen_at = seen
                        if seen is not None and (
                            account.last_seen_at is None or seen > account.last_seen_at
                        ):
                            account.last_seen_at = seen
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
    # The survivor's accounts now include what the merged profile did, and the other way.
    bounds = Profile.objects.filter(pk__in=[source_profile_id, target_profile_id]).aggregate(
        first=Min("first_seen_at"), last=Max("last_seen_at")
    )
    if bounds["last"] is not None:
        accounts_seen_widen(seen={target_profile_id: (bounds["first"], bounds["last"])})


def accounts_seen_widen(*, seen: dict[Any, tuple[datetime, datetime]]) -> None:
    """An account's first and last seen cover its people's activity, not only its own
    group calls: the accounts of these profiles (most have none) widen to the
    (first, last) each profile was just seen. Kept on write, so that a list of 20,000
    accounts reads a column rather than a million profiles."""
    if not seen:
        return
    ranges: dict[Any, tuple[datetime, datetime]] = {}
    for profile_id, account_id in AccountMember.objects.filter(
        profile_id__any=list(seen)
    ).values_list("profile_id", "account_id"):
        first, last = seen[profile_id]
        first = first or last
        if account_id in ranges:
            low, high = ranges[account_id]
            ranges[account_id] = (min(low, first), max(high, last))
        else:
            ranges[account_id] = (first, last)
    # In key order, so that two workers widening the same accounts never deadlock.
    rows_widen(
        Account,
        [(pk, low, high) for pk, (low, high) in sorted(ranges.items(), key=lambda r: str(r[0]))],
        low="first_seen_at",
        high="last_seen_at",
    )


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


@dataclass(frozen=True)
class MergeSentences:
    """What a merge of two records of one kind says when refused, each a whole sentence
    for that kind, already translated; `already_merged` has %(pk)s and
    %(merged_into_id)s."""

    not_found: str
    itself: str
    why: str
    already_merged: str


def merge_request_check(survivor, merged, reason: str, *, sentences: MergeSentences) -> str:
    """A person's request to merge two records (profiles or accounts) of one workspace:
    two different records and a reason. Returns the reason, trimmed."""
    if survivor.workspace_id != merged.workspace_id:
        raise NotFoundError(sentences.not_found)
    if survivor.pk == merged.pk:
        raise InvalidInputError(sentences.itself, field="other")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInputError(sentences.why, field="reason")
    return reason


def merge_records_lock(survivor, merged, *, sentences: MergeSentences):
    """Both records of a merge, re-read and locked; refused if either was merged
    meanwhile."""
    model = type(survivor)
    survivor = model.objects.select_for_update().get(pk=survivor.pk)
    merged = model.objects.select_for_update().get(pk=merged.pk)
    for record in (survivor, merged):
        if record.merged_into_id is not None:
            raise ConflictError(
                sentences.already_merged
                % {"pk": record.pk, "merged_into_id": record.merged_into_id},
                code="already_merged",
            )
    return survivor, merged


def _account_merge_sentences() -> MergeSentences:
    return MergeSentences(
        not_found=gettext("No such account in this workspace"),
        itself=gettext("An account cannot be merged with itself"),
        why=gettext("Say why these are the same company"),
        already_merged=gettext(
            "Account %(pk)s was merged into %(merged_into_id)s; merge that one instead"
        ),
    )


def account_merge(*, survivor: Account, merged: Account, reason: str, actor: Actor) -> AccountMerge:
    """A person's merge of two accounts they know to be one company (the "second legal
    entity" case). Members, child accounts and traits the survivor lacks move over;
    later group calls for the merged group_id land on the survivor. Undo with
    `account_unmerge`."""
    sentences = _account_merge_sentences()
    reason = merge_request_check(survivor, merged, reason, sentences=sentences)
    with transaction.atomic():
        survivor, merged = merge_records_lock(survivor, merged, sentences=sentences)
        if survivor.parent_id == merged.pk or merged.parent_id == survivor.pk:
            raise ConflictError(
                gettext(
                    "One of these accounts is the other's parent company; a subsidiary is not a "
                    "duplicate. Change the hierarchy first if it is wrong."
                ),
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
            raise ConflictError(gettext("This merge was already undone"), code="already_unmerged")
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
        raise InvalidInputError(gettext("expires_at must be in the future"), field="expires_at")
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
        raise InvalidInputError(gettext("a view needs a name"), field="name")
    if len(name) > 100:
        raise InvalidInputError(gettext("at most 100 characters"), field="name")
    return name


def _view_name_free(view: SavedView, name: str) -> None:
    """Two views a person sees side by side never share a name."""
    same = SavedView.objects.filter(
        workspace_id=view.workspace_id, list=view.list, name__iexact=name
    ).exclude(pk=view.pk)
    same = same.filter(shared=True) if view.shared else same.filter(owner=view.owner, shared=False)
    if same.exists():
        raise InvalidInputError(gettext("a view of this list already has this name"), field="name")


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
        raise InvalidInputError(
            gettext("must be one of %(choices)s") % {"choices": ", ".join(lists.LISTS)},
            field="list",
        )
    if not shared and actor.user is None:
        raise InvalidInputError(gettext("a private view needs a signed-in person"), field="shared")
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
            raise InvalidInputError(
                gettext("a private view needs a signed-in person"), field="shared"
            )
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
        raise InvalidInputError(
            gettext("must be one of %(choices)s") % {"choices": ", ".join(lists.LISTS)},
            field="list",
        )
    if view is not None and view.list != list_name:
        raise InvalidInputError(gettext("a view of another list"), field="view")
    with transaction.atomic():
        SavedViewDefault.objects.filter(workspace=workspace, user=user, list=list_name).delete()
        if view is None:
            return None
        return SavedViewDefault.objects.create(
            workspace=workspace, user=user, list=list_name, view=view
        )


# --- A person's edits of a customer's traits ----------------------------------------------

TRAIT_EDIT_MAX_FIELDS = 50
TRAIT_NAME_MAX = 100
TRAIT_TEXT_MAX = 2000
TRAIT_JSON_MAX = 10_000
TRAIT_DEPTH_MAX = 5
# Integers beyond this lose digits in JavaScript and in PostgreSQL's JSON numbers read
# as doubles by segment rules.
TRAIT_INT_MAX = 2**53


def _trait_name_check(name: Any) -> str:
    field = f"traits.{name}"
    if not isinstance(name, str) or not name or name != name.strip():
        raise InvalidInputError(
            gettext("a field name is a non-empty text without spaces around it"), field=field
        )
    if len(name) > TRAIT_NAME_MAX:
        raise InvalidInputError(
            gettext("a field name has at most %(trait_name_max)s characters")
            % {"trait_name_max": TRAIT_NAME_MAX},
            field=field,
        )
    if "." in name or name.startswith("$") or any(ord(ch) < 32 for ch in name):
        # Dots name nested fields in segment rules; `$` marks operators in many tools.
        raise InvalidInputError(
            gettext("a field name may not hold dots or control characters, nor start with $"),
            field=field,
        )
    return name


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _trait_value_check(name: str, value: Any) -> Any:
    field = f"traits.{name}"
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) > TRAIT_INT_MAX:
            raise InvalidInputError(
                gettext("a whole number is at most %(trait_int_max)s")
                % {"trait_int_max": TRAIT_INT_MAX},
                field=field,
            )
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(gettext("a number must be finite"), field=field)
        return value
    if isinstance(value, str):
        if len(value) > TRAIT_TEXT_MAX:
            raise InvalidInputError(
                gettext("a text has at most %(trait_text_max)s characters")
                % {"trait_text_max": TRAIT_TEXT_MAX},
                field=field,
            )
        return value
    if isinstance(value, dict | list):
        try:
            size = len(json.dumps(value, allow_nan=False))
        except (TypeError, ValueError):
            raise InvalidInputError(gettext("not a JSON value"), field=field) from None
        if size > TRAIT_JSON_MAX:
            raise InvalidInputError(
                gettext("a nested value has at most %(trait_json_max)s characters as JSON")
                % {"trait_json_max": TRAIT_JSON_MAX},
                field=field,
            )
        if _depth(value) > TRAIT_DEPTH_MAX:
            raise InvalidInputError(
                gettext("a value nests at most %(trait_depth_max)s levels deep")
                % {"trait_depth_max": TRAIT_DEPTH_MAX},
                field=field,
            )
        if isinstance(value, dict):
            for key in value:
                if not isinstance(key, str):
                    raise InvalidInputError(gettext("nested field names are texts"), field=field)
        return value
    raise InvalidInputError(
        gettext("a value is a text, a number, true/false, a list, an object or null"), field=field
    )


def trait_holds_personal_data(name: str, value: Any) -> bool:
    """Whether a masked person would see the field or its value other than it is."""
    if personal_key(name):
        return True
    return value is not None and mask_personal_data({name: value}) != {name: value}


def profile_traits_edit(
    *,
    workspace: Workspace,
    profile: Profile,
    changes: dict[str, Any],
    actor: Actor,
    can_see_pii: bool,
) -> TraitEdit | None:
    """A person sets or removes a customer's traits (`None` removes a field, as in a
    JSON merge patch). Each changed trait's source becomes the person and the moment,
    so that only a later event overwrites it (latest wins, as between events); the
    edit goes on the customer's timeline and in the audit log (names only, never the
    values). Returns None when nothing changed.

    Identifiers are left alone: editing `email` changes the trait, not the identity
    graph, so an edit never merges two customers (merging is a separate, explicit act).
    Without pii.read (`can_see_pii` False) a person can neither see nor change personal
    data: fields named like an email or a phone number, or whose value holds one."""
    if profile.workspace_id != workspace.pk:
        raise NotFoundError(gettext("No such profile in this workspace"))
    if not isinstance(changes, dict) or not changes:
        raise InvalidInputError(gettext("name at least one field to change"), field="traits")
    if len(changes) > TRAIT_EDIT_MAX_FIELDS:
        raise InvalidInputError(
            gettext("at most %(trait_edit_max_fields)s fields at a time")
            % {"trait_edit_max_fields": TRAIT_EDIT_MAX_FIELDS},
            field="traits",
        )
    cleaned = {
        _trait_name_check(name): _trait_value_check(name, value) for name, value in changes.items()
    }
    with transaction.atomic():
        profile = Profile.objects.select_for_update().get(pk=profile.pk)
        if profile.merged_into_id is not None:
            raise ConflictError(
                gettext("Profile %(pk)s was merged into %(merged_into_id)s; edit that one instead")
                % {"pk": profile.pk, "merged_into_id": profile.merged_into_id},
                code="already_merged",
            )
        if not can_see_pii:
            for name, value in cleaned.items():
                if trait_holds_personal_data(name, value) or trait_holds_personal_data(
                    name, profile.traits.get(name)
                ):
                    raise PermissionDeniedError(
                        gettext(
                            "%(name)s: your role does not see personal data, so it cannot change it"
                        )
                        % {"name": name},
                        details=[{"field": f"traits.{name}", "permission": "pii.read"}],
                    )
        now = timezone.now()
        applied = {}
        for name, value in cleaned.items():
            present = name in profile.traits
            if value is None and not present:
                continue
            if value is not None and present and profile.traits[name] == value:
                continue
            before = profile.traits.get(name)
            applied[name] = (
                {"from": before, "removed": True}
                if value is None
                else {"from": before, "to": value}
            )
        if not applied:
            return None
        edit = TraitEdit.objects.create(
            workspace=workspace,
            profile=profile,
            changes=applied,
            actor_label=actor.label[:200],
            actor_user=actor.user,
            at=now,
        )
        # What the person typed wins now, even over an event stamped in the future.
        _trait_edit_apply(profile, edit, force=True)
        profile.save(update_fields=["traits", "trait_sources", "updated_at"])
        audit_log_record(
            workspace=workspace,
            actor=actor,
            action="profile.traits_edit",
            target=profile,
            details={
                "changed": sorted(n for n, c in applied.items() if not c.get("removed")),
                "removed": sorted(n for n, c in applied.items() if c.get("removed")),
            },
        )
    return edit


def _trait_edit_apply(profile, edit: TraitEdit, *, force: bool = False) -> None:
    """One edit onto a profile's traits, where it is newer than what set each trait. A
    removal keeps its source (a tombstone), so that an older event replayed later does
    not bring the field back."""
    at = edit.at.isoformat()
    for name, change in edit.changes.items():
        source = profile.trait_sources.get(name)
        if not force and source is not None and source.get("at", "") > at:
            continue
        profile.trait_sources[name] = {
            "at": at,
            "source_id": None,
            "message_id": None,
            "actor": edit.actor_label,
            "edit_id": str(edit.pk),
            **({"removed": True} if change.get("removed") else {}),
        }
        if change.get("removed"):
            profile.traits.pop(name, None)
        else:
            profile.traits[name] = change.get("to")


def trait_edits_replay(*, profile) -> None:
    """The edits people made on this profile and on those merged into it, onto its
    traits (after they were recomputed from its events, as an unmerge does)."""
    family = profile_family_ids(profile_id=profile.pk)
    for edit in TraitEdit.objects.filter(profile_id__in=family).order_by("at", "id"):
        _trait_edit_apply(profile, edit)
