"""Identity resolution of stored events: each event gets its profile, new identifiers
attach, profiles that turn out to be one person are merged (and the merge recorded),
identifiers that would break a limit are dropped and the case recorded.

A batch is resolved in memory (`graph.Graph`) and written back in a few bulk
statements, in two phases: the graph's changes under a per-workspace lock, one worker
at a time; then the events' profiles, traits and first/last seen beside other workers
(see `events_resolve`).
"""

import hashlib
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any

import phonenumbers
from django.db import DatabaseError, OperationalError, connection, transaction
from django.db.models import Max, Min, Q
from django.utils import timezone
from django.utils.translation import gettext
from uuid_utils.compat import uuid7

from rapport.core.bulk import rows_insert, rows_update, rows_widen
from rapport.core.errors import ConflictError, InvalidInputError, NotFoundError, RapportError
from rapport.core.rows import rows_read
from rapport.identity import duplicates
from rapport.identity.graph import DEFAULT_LIMITS, DEFAULT_PRIORITIES, Graph, Rules
from rapport.identity.models import (
    DuplicateCandidate,
    Identifier,
    IdentityCase,
    IdentityRules,
    ProfileMerge,
    Suppression,
)
from rapport.identity.normalize import (
    BUILT_IN_KINDS,
    DEFAULT_BLOCKED_VALUES,
    Identity,
    blocked_set,
    identities_of,
)
from rapport.ingest.models import Event, EventType
from rapport.profiles.models import Account, AccountMember, ConsentChange, Profile
from rapport.profiles.services import (
    MergeSentences,
    account_members_move,
    account_members_recompute,
    account_merge,
    accounts_seen_widen,
    consents_move,
    consents_restore,
    merge_records_lock,
    merge_request_check,
    record_live,
    trait_edits_replay,
)
from rapport.tenancy.models import Workspace
from rapport.tenancy.services import Actor, audit_log_record


def identity_rules_get(*, workspace_id: Any) -> IdentityRules:
    rules, _ = IdentityRules.objects.get_or_create(
        workspace_id=workspace_id,
        defaults={
            "priorities": dict(DEFAULT_PRIORITIES),
            "limits": dict(DEFAULT_LIMITS),
            "blocked_values": list(DEFAULT_BLOCKED_VALUES),
        },
    )
    return rules


KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,63}$")


def identity_rules_update(
    *,
    workspace: Workspace,
    actor: Actor,
    priorities: dict[str, int] | None = None,
    limits: dict[str, int] | None = None,
    external_kinds: list[str] | None = None,
    blocked_values: list[str] | None = None,
    default_phone_region: str | None = None,
    duplicate_min_probability: float | None = None,
    duplicate_auto_merge_probability: Any = ...,
    duplicate_fields: dict[str, str] | None = None,
) -> IdentityRules:
    """Change what is given; the rest stays. New rules apply to events resolved from
    now on; profiles already merged stay merged."""
    rules = identity_rules_get(workspace_id=workspace.pk)
    changes: dict[str, Any] = {}
    if external_kinds is not None:
        for kind in external_kinds:
            if not KIND_PATTERN.match(kind) or kind in BUILT_IN_KINDS:
                raise InvalidInputError(
                    gettext(
                        "%(kind)r is not a usable identifier kind (lower-case letters, digits "
                        "and _; not one of %(choices)s)"
                    )
                    % {"kind": kind, "choices": ", ".join(BUILT_IN_KINDS)},
                    field="external_kinds",
                )
        changes["external_kinds"] = sorted(set(external_kinds))
    known = set(BUILT_IN_KINDS) | set(changes.get("external_kinds", rules.external_kinds))
    for name, mapping, low, high in (
        ("priorities", priorities, 1, 100),
        ("limits", limits, 1, 1000),
    ):
        if mapping is None:
            continue
        for kind, number in mapping.items():
            if kind not in known:
                raise InvalidInputError(
                    gettext("unknown identifier kind %(kind)r") % {"kind": kind}, field=name
                )
            if not low <= number <= high:
                raise InvalidInputError(
                    gettext("%(name)s of %(kind)s must be %(low)s to %(high)s")
                    % {"name": name, "kind": kind, "low": low, "high": high},
                    field=name,
                )
        changes[name] = {**getattr(rules, name), **mapping}
    if blocked_values is not None:
        changes["blocked_values"] = sorted({v.strip().lower() for v in blocked_values})
    if default_phone_region is not None:
        region = default_phone_region.strip().upper()
        if region and region not in phonenumbers.SUPPORTED_REGIONS:
            raise InvalidInputError(
                gettext("%(default_phone_region)r is not a region code like GB or US")
                % {"default_phone_region": default_phone_region},
                field="default_phone_region",
            )
        changes["default_phone_region"] = region
    if duplicate_min_probability is not None:
        if not 0.5 <= duplicate_min_probability <= 1:
            raise InvalidInputError(gettext("must be 0.5 to 1"), field="duplicate_min_probability")
        changes["duplicate_min_probability"] = duplicate_min_probability
    if duplicate_auto_merge_probability is not ...:
        threshold = duplicate_auto_merge_probability
        if threshold is not None and not 0.9 <= threshold <= 1:
            raise InvalidInputError(
                gettext("must be 0.9 to 1, or null to never merge without a person"),
                field="duplicate_auto_merge_probability",
            )
        changes["duplicate_auto_merge_probability"] = threshold
    if duplicate_fields is not None:
        for trait, field_kind in duplicate_fields.items():
            if not trait or len(trait) > 200:
                raise InvalidInputError(
                    gettext("trait names are 1 to 200 characters"), field="duplicate_fields"
                )
            if field_kind not in duplicates.FIELD_KINDS:
                raise InvalidInputError(
                    gettext("%(field_kind)r is not one of %(choices)s")
                    % {"field_kind": field_kind, "choices": ", ".join(duplicates.FIELD_KINDS)},
                    field="duplicate_fields",
                )
        changes["duplicate_fields"] = dict(duplicate_fields)
    with transaction.atomic():
        for name, value in changes.items():
            setattr(rules, name, value)
        rules.save()
        audit_log_record(
            workspace=workspace,
            actor=actor,
            action="identity.rules.update",
            target=rules,
            details={k: v for k, v in changes.items() if k != "blocked_values"}
            | (
                {"blocked_values": len(changes["blocked_values"])}
                if "blocked_values" in changes
                else {}
            ),
        )
    return rules


def _advisory(function: str, key: str) -> None:
    """A PostgreSQL advisory lock function (`pg_advisory_xact_lock`, ...) on a text key."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(hashtextextended(%s, 0))", [key])


def _workspace_lock(workspace_id: Any) -> None:
    """Serialise resolution per workspace (PostgreSQL; SQLite has one writer anyway)."""
    if connection.vendor == "postgresql":
        _advisory("pg_advisory_xact_lock", f"identity:{workspace_id}")


def _event_identities(
    event: Any, rules: IdentityRules, blocked: frozenset, external: frozenset | None = None
) -> list[Identity]:
    return identities_of(
        {
            "user_id": event.user_id,
            "anonymous_id": event.anonymous_id,
            "previous_id": event.previous_id,
            # A group call's traits describe the company (its email, its phone), not
            # the person: they must not join the people of one company.
            "traits": event.traits if event.type != EventType.GROUP else None,
            "context": event.context,
        },
        external_kinds=rules.external_kinds if external is None else external,
        blocked=blocked,
        default_region=rules.default_phone_region or None,
    )


def _load_graph(workspace_id: Any, carried: list[list[Identity]], rules: IdentityRules) -> Graph:
    """Who owns each identifier the batch carries, and every identifier of the owners
    the batch may grow or merge. An event whose identifiers all belong to one profile
    already changes nothing in the graph (`Graph.resolve` takes it without looking at
    what that profile holds), so its profile's identifiers are not read."""
    wanted = {identity for identities in carried for identity in identities}
    owner: dict[Identity, uuid.UUID] = {}
    for kind, value, profile_id in rows_read(
        Identifier.objects.filter(
            workspace_id=workspace_id, value__any={identity.value for identity in wanted}
        ).values_list("kind", "value", "profile_id")
    ):
        # A plain (kind, value) tuple is equal to, and hashes as, the Identity it names:
        # the graph only looks owners up, and thousands of Identity objects cost more.
        if (kind, value) in wanted:
            owner[(kind, value)] = profile_id
    growing: set[uuid.UUID] = set()
    for identities in carried:
        owners = {owner.get(identity) for identity in identities}
        if len(owners) > 1 or None in owners:
            growing |= owners
    growing.discard(None)
    held: dict[uuid.UUID, set[Identity]] = defaultdict(set)
    # By profile id alone (ids are unique, and these came from the workspace's own
    # identifiers): the profile index then serves it whatever the planner's statistics.
    for kind, value, profile_id in rows_read(
        Identifier.objects.filter(profile_id__any=growing).values_list(
            "kind", "value", "profile_id"
        )
    ):
        identity = Identity(kind, value)
        held[profile_id].add(identity)
        owner[identity] = profile_id
    return Graph(
        rules=Rules(priorities=rules.priorities or {}, limits=rules.limits or {}),
        owner=owner,
        held=dict(held),
        new_profile_id=uuid7,
    )


# What resolution, merges and unmerges change of a profile (and `updated_at`).
PROFILE_FIELDS = ["traits", "trait_sources", "first_seen_at", "last_seen_at", "merged_into_id"]


@dataclass(slots=True)
class ProfileState:
    """The part of a profile resolution reads and writes: a batch reads hundreds, and a
    model instance each costs more than resolving their events."""

    pk: uuid.UUID
    traits: dict
    trait_sources: dict
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    merged_into_id: uuid.UUID | None


def _profile_states(
    ids: Iterable[uuid.UUID], *, lock: bool = False
) -> dict[uuid.UUID, ProfileState]:
    """The profiles' states; `lock`: locked until the transaction ends, in id order (the
    statement orders them: sorting UUIDs in Python costs more)."""
    profiles = Profile.objects.filter(pk__any=list(ids))
    if lock:
        profiles = profiles.order_by("pk").select_for_update()
    return {
        row[0]: ProfileState(*row) for row in rows_read(profiles.values_list("pk", *PROFILE_FIELDS))
    }


def _profiles_save(profiles: Iterable[Profile | ProfileState]) -> None:
    """Save what resolution, merges and unmerges change, in one statement."""
    now = timezone.now()
    rows_update(
        Profile,
        [
            {"id": p.pk, **{f: getattr(p, f) for f in PROFILE_FIELDS}, "updated_at": now}
            for p in profiles
        ],
        fields=[*PROFILE_FIELDS, "updated_at"],
    )


def _newer(source: dict | None, at: datetime) -> bool:
    return source is None or source.get("at", "") <= at.isoformat()


def _person_traits(event) -> bool:
    """Whether the event's traits describe the person (a group call's are the company's)."""
    return bool(event.traits) and event.type != EventType.GROUP


def _apply_traits(profile: Profile | ProfileState, event: Event) -> bool:
    """Latest value wins, with when and from where it was set."""
    changed = False
    for name, value in (event.traits or {}).items():
        if _newer(profile.trait_sources.get(name), event.timestamp):
            profile.traits[name] = value
            profile.trait_sources[name] = {
                "at": event.timestamp.isoformat(),
                "source_id": str(event.source_id) if event.source_id else None,
                "message_id": event.message_id,
            }
            changed = True
    return changed


def _combine_traits(survivor: Profile | ProfileState, merged: Profile | ProfileState) -> None:
    for name, source in merged.trait_sources.items():
        if _newer(survivor.trait_sources.get(name), datetime.fromisoformat(source["at"])):
            if source.get("removed"):
                # A field a person removed (profiles.services.profile_traits_edit).
                survivor.traits.pop(name, None)
            else:
                survivor.traits[name] = merged.traits.get(name)
            survivor.trait_sources[name] = source


@dataclass(slots=True)
class _Resolved:
    """What the graph phase of a batch decided, for the apply phase to write."""

    events: list
    # Event id -> the profile it resolved to (live when the graph phase committed).
    final: dict[uuid.UUID, uuid.UUID]
    # Event id -> the profile it had when read (None until resolved once).
    before: dict[uuid.UUID, uuid.UUID | None]
    # Profiles the graph phase created, with the batch's first and last seen.
    created: set[uuid.UUID]
    dropped: list


# The events of the last batch this process resolved, and the profile each went to: the
# consumers after identity in the same pipeline run read them here rather than query
# the events again (`events_profiles_resolved`).
_last_resolved: tuple[frozenset, dict[uuid.UUID, uuid.UUID]] = (frozenset(), {})


def events_profiles_resolved(event_ids: Iterable[Any]) -> dict[Any, uuid.UUID] | None:
    """The profile each of these events got from this process's last resolution (events
    without one are left out), or None if that resolution did not take them all. A
    profile may have been merged into another since; the caller follows merges as it
    would for profiles read from the events."""
    events, final = _last_resolved
    wanted = list(event_ids)
    if not wanted or not events.issuperset(wanted):
        return None
    return {event_id: final[event_id] for event_id in wanted if event_id in final}


# Attempts at a batch when PostgreSQL ends one for a deadlock (rare: the apply phase of
# two workers following the same merge chain).
RESOLVE_ATTEMPTS = 3


def events_resolve(workspace_id: Any, events: Iterable[Event]) -> int:
    """Resolve stored events to profiles (the `events_dispatch` consumer). Returns how
    many got a profile. Safe to run again on the same events.

    Two transactions on PostgreSQL, so that several workers resolve one workspace at
    once: the *graph* phase (who owns which identifier, new profiles, merges) under the
    workspace's lock, one worker at a time; then the *apply* phase (the events' profile,
    traits, first and last seen), most of the work, beside other workers' phases. The
    apply phase locks the profiles it writes and follows any merge another worker made
    in between. Undoing a merge and erasing a person wait for batches in flight
    (`_graph_rewrite_lock`). On SQLite, which has one writer, both phases are one
    transaction."""
    global _last_resolved
    events = sorted(events, key=attrgetter("timestamp", "id"))
    _last_resolved = (frozenset(), {})
    if not events:
        return 0
    rules = identity_rules_get(workspace_id=workspace_id)
    blocked = blocked_set(rules.blocked_values)
    external = frozenset(rules.external_kinds or ())
    # Parsing and normalising identifiers needs no lock.
    carried = {event.id: _event_identities(event, rules, blocked, external) for event in events}
    if connection.vendor != "postgresql":
        with transaction.atomic():
            final = _resolution_apply(
                workspace_id, _resolution_graph(workspace_id, events, carried, rules)
            )
        _last_resolved = (frozenset(e.id for e in events), final)
        return len(final)
    retry = not connection.in_atomic_block
    for attempt in range(1, RESOLVE_ATTEMPTS + 1):
        try:
            with _resolving(workspace_id):
                resolved = _resolution_graph(workspace_id, events, carried, rules)
                final = _resolution_apply(workspace_id, resolved)
            _last_resolved = (frozenset(e.id for e in events), final)
            return len(final)
        except OperationalError as error:
            if not retry or attempt == RESOLVE_ATTEMPTS or not _deadlock(error):
                raise
    raise AssertionError("unreachable")


def _deadlock(error: Exception) -> bool:
    return getattr(error.__cause__, "sqlstate", None) == "40P01"


def _lock_key(workspace_id: Any) -> str:
    return f"identity-apply:{workspace_id}"


@contextmanager
def _resolving(workspace_id: Any):
    """A batch in flight, from its graph phase to the end of its apply phase (a shared
    session lock: many batches at once, none while a merge is undone or a person erased)."""
    _advisory("pg_advisory_lock_shared", _lock_key(workspace_id))
    try:
        yield
    finally:
        # If the connection is gone, its session locks went with it.
        with suppress(DatabaseError):
            _advisory("pg_advisory_unlock_shared", _lock_key(workspace_id))


def _graph_rewrite_lock(workspace_id: Any) -> None:
    """For changes that move identifiers and events by rule rather than by merge chain
    (unmerge, erasure): wait until no batch is between its two phases, and keep new ones
    out until the transaction ends. Taken before the workspace lock, as batches do."""
    if connection.vendor == "postgresql":
        _advisory("pg_advisory_xact_lock", _lock_key(workspace_id))


def _resolution_graph(
    workspace_id: Any, events: list, carried: dict[uuid.UUID, list[Identity]], rules: IdentityRules
) -> _Resolved:
    """The graph phase: identifiers looked up and attached, new profiles created, the
    merges the batch implies made. One worker of the workspace at a time."""
    with transaction.atomic():
        _workspace_lock(workspace_id)
        suppressed = _suppressed(workspace_id, carried.values())
        if suppressed:
            # An erased person's identifiers: their events are dropped, not resolved.
            dropped = {e.id for e in events if suppressed.intersection(carried[e.id])}
            Event.objects.filter(pk__in=dropped).delete()
            events = [e for e in events if e.id not in dropped]
        graph = _load_graph(workspace_id, [carried[e.id] for e in events], rules)
        resolved = {
            event.id: graph.resolve(carried[event.id], event_key=event.message_id)
            for event in events
        }
        final = {event_id: graph.live(p) for event_id, p in resolved.items() if p is not None}

        # New profiles are written with the batch's first and last seen of them; the
        # apply phase moves traits, and first/last seen of the rest.
        created_ids = set(graph.created)
        seen: dict[uuid.UUID, list[datetime]] = defaultdict(list)
        for event in events:
            if final.get(event.id) in created_ids:
                seen[final[event.id]].append(event.timestamp)
        now = timezone.now()
        created = []
        for profile_id in graph.created:
            times = seen.get(profile_id)
            created.append(
                {
                    "id": profile_id,
                    "workspace_id": workspace_id,
                    "first_seen_at": min(times) if times else None,
                    "last_seen_at": max(times) if times else None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        rows_insert(Profile, created, conflict=["id"])
        rows_insert(
            Identifier,
            [
                {
                    "workspace_id": workspace_id,
                    "profile_id": graph.live(profile_id),
                    "kind": identity.kind,
                    "value": identity.value,
                    "created_at": now,
                }
                for identity, profile_id in graph.attached.items()
            ],
            conflict=["workspace_id", "value", "kind"],
        )
        if graph.merges:
            merging = {m.merged for m in graph.merges} | {m.survivor for m in graph.merges}
            profiles = _profile_states(merging | {graph.live(p) for p in merging}, lock=True)
            _merges_apply(workspace_id, graph, profiles)
            _profiles_save(profiles.values())
    return _Resolved(
        events=events,
        final=final,
        before={event.id: event.profile_id for event in events},
        created=created_ids,
        dropped=[
            (d.event_key, d.identity, graph.live(d.profile) if d.profile else None, d.reason)
            for d in graph.dropped
        ],
    )


def _profiles_live_lock(ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """Each profile's live profile: itself, or the end of the merge chain another
    worker made of it since. Every profile on the way is locked until the transaction
    ends, so a merge (which locks both profiles first) waits for this batch's writes and
    then moves them. A profile that no longer exists maps to nothing."""
    ids = set(ids)
    # Profile -> the profile it was merged into (None: live); absent: no such profile.
    into: dict[uuid.UUID, uuid.UUID | None] = {}
    asked: set[uuid.UUID] = set()
    pending = ids
    while pending:
        asked |= pending
        into.update(
            rows_read(
                Profile.objects.filter(pk__any=list(pending))
                .order_by("pk")
                .select_for_update(no_key=True)
                .values_list("pk", "merged_into_id")
            )
        )
        pending = {into[p] for p in pending if into.get(p) is not None} - asked
    live: dict[uuid.UUID, uuid.UUID] = {}
    for start in ids:
        at, hops = start, 0
        while into.get(at) is not None and hops < len(into):
            at, hops = into[at], hops + 1
        if at in into and into[at] is None:
            live[start] = at
    return live


def _resolution_apply(workspace_id: Any, resolved: _Resolved) -> dict[uuid.UUID, uuid.UUID]:
    """The apply phase: each event gets its profile (the live one, should another
    worker have merged it meanwhile), traits and first/last seen move, the dropped
    identifiers are recorded. Runs beside other workers' phases. Returns each resolved
    event's profile."""
    with transaction.atomic():
        live = _profiles_live_lock(set(resolved.final.values()))
        final = {
            event_id: live[profile_id]
            for event_id, profile_id in resolved.final.items()
            if profile_id in live
        }
        rows_update(
            Event,
            [
                {"id": event_id, "profile_id": profile_id}
                for event_id, profile_id in final.items()
                if resolved.before.get(event_id) != profile_id
            ],
            fields=["profile_id"],
        )
        seen: dict[uuid.UUID, list[datetime]] = defaultdict(list)
        for event in resolved.events:
            if event.id in final:
                seen[final[event.id]].append(event.timestamp)
        # Profiles whose traits may change are read and written whole; for the rest
        # only first and last seen move, in one statement. A profile this batch created
        # (and nobody merged since) already has them.
        profiles = _profile_states(
            {final[e.id] for e in resolved.events if _person_traits(e) and e.id in final}
        )
        for event in resolved.events:
            profile = profiles.get(final.get(event.id))
            if profile is not None and _person_traits(event):
                _apply_traits(profile, event)
        seen_only = []
        for profile_id, times in seen.items():
            first, last = min(times), max(times)
            profile = profiles.get(profile_id)
            if profile is None:
                if profile_id not in resolved.created:
                    seen_only.append((profile_id, first, last))
                continue
            if profile.first_seen_at is None or first < profile.first_seen_at:
                profile.first_seen_at = first
            if profile.last_seen_at is None or last > profile.last_seen_at:
                profile.last_seen_at = last
        rows_widen(Profile, seen_only, low="first_seen_at", high="last_seen_at")
        _profiles_save(profiles.values())
        # Their accounts were seen then too.
        accounts_seen_widen(
            seen={profile_id: (min(times), max(times)) for profile_id, times in seen.items()}
        )
        IdentityCase.objects.bulk_create(
            [
                IdentityCase(
                    workspace_id=workspace_id,
                    message_id=event_key,
                    kind=identity.kind,
                    value=identity.value,
                    profile_id=live.get(profile_id, profile_id) if profile_id else None,
                    reason=reason,
                )
                for event_key, identity, profile_id, reason in resolved.dropped
            ]
        )
    return final


def _merge_rows(
    *,
    survivor: Profile,
    merged: Profile,
    identities: list[list[str]],
    automatic: bool,
    reason: str,
    actor_label: str,
    message_id: str = "",
) -> ProfileMerge:
    """Move everything of `merged` to `survivor` (the caller saves both profiles)."""
    Identifier.objects.filter(profile_id=merged.pk).update(profile_id=survivor.pk)
    # With the workspace, so that the (workspace, profile, timestamp) index serves it.
    Event.objects.filter(workspace_id=merged.workspace_id, profile_id=merged.pk).update(
        profile_id=survivor.pk
    )
    account_members_move(source_profile_id=merged.pk, target_profile_id=survivor.pk)
    consents_move(source_profile_id=merged.pk, target_profile_id=survivor.pk)
    _combine_profiles(survivor, merged)
    return ProfileMerge.objects.create(
        workspace_id=survivor.workspace_id,
        survivor_id=survivor.pk,
        merged_id=merged.pk,
        identifiers=identities,
        automatic=automatic,
        reason=reason,
        actor_label=actor_label,
        message_id=message_id,
    )


def _merges_apply(workspace_id: Any, graph: Graph, profiles: dict[uuid.UUID, ProfileState]) -> None:
    """The merges resolution found in a batch, in a few statements whatever their
    number: identifiers and stored events of every merged profile move to the live
    profile at the end of its chain; the rarer account memberships and consents move
    merge by merge, in order."""
    merges = graph.merges
    if not merges:
        return
    target = {m.merged: graph.live(m.merged) for m in merges}
    rows_update(
        Identifier,
        [
            {"id": pk, "profile_id": target[profile_id]}
            # By profile id alone, as in `_load_graph`.
            for pk, profile_id in Identifier.objects.filter(
                profile_id__any=list(target)
            ).values_list("id", "profile_id")
        ],
        fields=["profile_id"],
    )
    rows_update(
        Event,
        [
            {"id": pk, "profile_id": target[profile_id]}
            for pk, profile_id in Event.objects.filter(
                workspace_id=workspace_id, profile_id__any=list(target)
            ).values_list("id", "profile_id")
        ],
        fields=["profile_id"],
    )
    merged_ids = list(target)
    if AccountMember.objects.filter(profile_id__any=merged_ids).exists():
        for m in merges:
            account_members_move(source_profile_id=m.merged, target_profile_id=m.survivor)
    if ConsentChange.objects.filter(profile_id__any=merged_ids).exists():
        for m in merges:
            consents_move(source_profile_id=m.merged, target_profile_id=m.survivor)
    for m in merges:
        _combine_profiles(profiles[m.survivor], profiles[m.merged])
    ProfileMerge.objects.bulk_create(
        [
            ProfileMerge(
                workspace_id=workspace_id,
                survivor_id=m.survivor,
                merged_id=m.merged,
                identifiers=[[i.kind, i.value] for i in m.identities],
                automatic=True,
                reason="shared identifier",
                actor_label="identity resolution",
                message_id=m.event_key,
            )
            for m in merges
        ]
    )


def _combine_profiles(survivor: Profile | ProfileState, merged: Profile | ProfileState) -> None:
    """Traits (latest wins) and first/last seen of `merged` into `survivor`."""
    _combine_traits(survivor, merged)
    if merged.first_seen_at and (
        survivor.first_seen_at is None or merged.first_seen_at < survivor.first_seen_at
    ):
        survivor.first_seen_at = merged.first_seen_at
    if merged.last_seen_at and (
        survivor.last_seen_at is None or merged.last_seen_at > survivor.last_seen_at
    ):
        survivor.last_seen_at = merged.last_seen_at
    merged.merged_into_id = survivor.pk


def profile_merge(*, survivor: Profile, merged: Profile, reason: str, actor: Actor) -> ProfileMerge:
    """A person's merge of two profiles they know to be one customer. Unlike automatic
    merges it may join profiles with different user ids. Undo with `profile_unmerge`."""
    sentences = MergeSentences(
        not_found=gettext("No such profile in this workspace"),
        itself=gettext("A profile cannot be merged with itself"),
        why=gettext("Say why these are the same customer"),
        already_merged=gettext(
            "Profile %(pk)s was merged into %(merged_into_id)s; merge that one instead"
        ),
    )
    reason = merge_request_check(survivor, merged, reason, sentences=sentences)
    with transaction.atomic():
        _workspace_lock(survivor.workspace_id)
        survivor, merged = merge_records_lock(survivor, merged, sentences=sentences)
        identities = [
            [kind, value]
            for kind, value in Identifier.objects.filter(profile_id=merged.pk)
            .order_by("kind", "value")
            .values_list("kind", "value")
        ]
        merge = _merge_rows(
            survivor=survivor,
            merged=merged,
            identities=identities,
            automatic=False,
            reason=reason[:2000],
            actor_label=actor.label,
        )
        _profiles_save([survivor, merged])
        audit_log_record(
            workspace=survivor.workspace,
            actor=actor,
            action="profile.merge",
            target=merge,
            details={"survivor": str(survivor.pk), "merged": str(merged.pk), "reason": reason},
        )
    return merge


def _recompute(profile: Profile, rules: IdentityRules) -> None:
    """Traits and first/last seen from the profile's own events, as resolution would
    have set them."""
    profile.traits, profile.trait_sources = {}, {}
    events = Event.objects.filter(workspace_id=profile.workspace_id, profile_id=profile.pk)
    bounds = events.aggregate(first=Min("timestamp"), last=Max("timestamp"))
    profile.first_seen_at, profile.last_seen_at = bounds["first"], bounds["last"]
    for event in (
        events.exclude(traits={}).exclude(type=EventType.GROUP).order_by("timestamp", "id")
    ).iterator():
        _apply_traits(profile, event)
    # People's edits win over older events, as they did when they were made.
    trait_edits_replay(profile=profile)


def profile_unmerge(*, merge: ProfileMerge, actor: Actor) -> ProfileMerge:
    """Undo a merge: the merged profile gets back the identifiers it brought and the
    events they identify; both profiles' traits and first/last seen are recomputed from
    their events. Events and identifiers that arrived since follow the same rule."""
    with transaction.atomic():
        _graph_rewrite_lock(merge.workspace_id)
        _workspace_lock(merge.workspace_id)
        merge = ProfileMerge.objects.select_for_update().get(pk=merge.pk)
        if merge.unmerged_at is not None:
            raise ConflictError(gettext("This merge was already undone"), code="already_unmerged")
        rules = identity_rules_get(workspace_id=merge.workspace_id)
        restored = Profile.objects.select_for_update().get(pk=merge.merged_id)
        moved = {(kind, value) for kind, value in merge.identifiers}
        holders = Identifier.objects.filter(workspace_id=merge.workspace_id)
        holder_ids = set()
        for identifier in holders.filter(value__in={v for _, v in moved}):
            if (identifier.kind, identifier.value) in moved:
                holder_ids.add(identifier.profile_id)
                identifier.profile_id = restored.pk
                identifier.save(update_fields=["profile"])
        holder_ids.add(merge.survivor_id)
        owner = {
            Identity(kind, value): profile_id
            for kind, value, profile_id in holders.filter(
                profile_id__in=holder_ids | {restored.pk}
            ).values_list("kind", "value", "profile_id")
        }
        graph_rules = Rules(priorities=rules.priorities or {}, limits=rules.limits or {})
        blocked = blocked_set(rules.blocked_values)
        back = []
        for event in Event.objects.filter(
            workspace_id=merge.workspace_id, profile_id__in=holder_ids
        ).iterator():
            identities = sorted(
                _event_identities(event, rules, blocked),
                key=lambda i: (graph_rules.priority(i.kind), i.kind, i.value),
            )
            strongest = next((owner[i] for i in identities if i in owner), None)
            if strongest == restored.pk:
                back.append(event.pk)
        Event.objects.filter(pk__in=back).update(profile_id=restored.pk)
        restored.merged_into_id = None
        restored.save(update_fields=["merged_into"])
        consents_restore(profile_id=restored.pk, family=_family(restored))
        touched = [restored, *Profile.objects.select_for_update().filter(pk__in=holder_ids)]
        now = timezone.now()
        for profile in touched:
            _recompute(profile, rules)
            account_members_recompute(workspace_id=merge.workspace_id, profile_id=profile.pk)
        _profiles_save(touched)
        merge.unmerged_at = now
        merge.save(update_fields=["unmerged_at", "updated_at"])
        audit_log_record(
            workspace=restored.workspace,
            actor=actor,
            action="profile.unmerge",
            target=merge,
            details={
                "survivor": str(merge.survivor_id),
                "restored": str(restored.pk),
                "events": len(back),
            },
        )
    return merge


def _value_hash(identity: Identity) -> str:
    return hashlib.sha256(f"{identity.kind}:{identity.value}".encode()).hexdigest()


def _has_suppressions(workspace_id: Any) -> bool:
    return Suppression.objects.filter(workspace_id=workspace_id).exists()


def _suppressed(workspace_id: Any, carried: Iterable[list[Identity]]) -> set[Identity]:
    if not _has_suppressions(workspace_id):
        return set()
    by_hash = {_value_hash(i): i for identities in carried for i in identities}
    if not by_hash:
        return set()
    hits = Suppression.objects.filter(
        workspace_id=workspace_id, value_hash__any=list(by_hash)
    ).values_list("value_hash", flat=True)
    return {by_hash[h] for h in hits}


def _family(profile: Profile) -> list[uuid.UUID]:
    """The profile and every profile merged into it, directly or through others."""
    family, frontier = [profile.pk], [profile.pk]
    while frontier:
        frontier = list(
            Profile.objects.filter(merged_into_id__in=frontier).values_list("pk", flat=True)
        )
        family += frontier
    return family


def profile_export(*, profile: Profile, actor: Actor) -> dict[str, Any]:
    """Everything Rapport holds about one person, as JSON-ready data (recorded in the
    audit log as an export of personal data)."""
    family = _family(profile)
    identifiers = Identifier.objects.filter(profile_id__in=family).order_by("kind", "value")
    events = Event.objects.filter(
        workspace_id=profile.workspace_id, profile_id__in=family
    ).order_by("timestamp", "id")
    data = {
        "profile": {
            "id": str(profile.pk),
            "traits": profile.traits,
            "trait_sources": profile.trait_sources,
            "first_seen_at": profile.first_seen_at,
            "last_seen_at": profile.last_seen_at,
            "merged_profiles": [str(p) for p in family[1:]],
        },
        "identifiers": [{"kind": i.kind, "value": i.value} for i in identifiers],
        "events": [
            {
                "message_id": e.message_id,
                "type": e.type,
                "event": e.event,
                "timestamp": e.timestamp,
                "received_at": e.received_at,
                "user_id": e.user_id,
                "anonymous_id": e.anonymous_id,
                "properties": e.properties,
                "traits": e.traits,
                "context": e.context,
            }
            for e in events.iterator()
        ],
        "exported_at": timezone.now(),
    }
    audit_log_record(
        workspace=profile.workspace,
        actor=actor,
        action="pii.export",
        target=profile,
        details={"identifiers": len(data["identifiers"]), "events": len(data["events"])},
    )
    return data


# What other apps keep about a person and must forget with them (the channels' messages
# and outbox): each hook is called in the erasure's transaction, before the profiles go,
# with `workspace_id`, `profile_ids` (the person's profile and those merged into it) and
# `identifiers` ((kind, value) pairs).
_ERASURE_HOOKS: dict[str, Any] = {}


def erasure_hook_register(*, name: str, hook: Any) -> None:
    _ERASURE_HOOKS[name] = hook


def profile_erase(*, profile: Profile, actor: Actor) -> dict[str, int]:
    """Erase a person: traits, identifiers and events removed, the identifiers
    suppressed so that later events carrying them are dropped. The audit entry keeps
    counts, never the data."""
    with transaction.atomic():
        _graph_rewrite_lock(profile.workspace_id)
        _workspace_lock(profile.workspace_id)
        family = _family(profile)
        identities = [
            Identity(kind, value)
            for kind, value in Identifier.objects.filter(profile_id__in=family).values_list(
                "kind", "value"
            )
        ]
        Suppression.objects.bulk_create(
            [
                Suppression(
                    workspace_id=profile.workspace_id, kind=i.kind, value_hash=_value_hash(i)
                )
                for i in identities
            ],
            ignore_conflicts=True,
        )
        for hook in _ERASURE_HOOKS.values():
            hook(
                workspace_id=profile.workspace_id,
                profile_ids=list(family),
                identifiers=[(i.kind, i.value) for i in identities],
            )
        events, _ = Event.objects.filter(
            workspace_id=profile.workspace_id, profile_id__in=family
        ).delete()
        IdentityCase.objects.filter(
            workspace_id=profile.workspace_id, value__in=[i.value for i in identities]
        ).delete()
        ProfileMerge.objects.filter(survivor_id__in=family).delete()
        ProfileMerge.objects.filter(merged_id__in=family).delete()
        DuplicateCandidate.objects.filter(
            Q(record_a__in=family) | Q(record_b__in=family), workspace_id=profile.workspace_id
        ).delete()
        Identifier.objects.filter(profile_id__in=family).delete()
        Profile.objects.filter(pk__in=family).delete()
        counts = {"profiles": len(family), "identifiers": len(identities), "events": events}
        audit_log_record(
            workspace=profile.workspace,
            actor=actor,
            action="profile.erase",
            details={"profile": str(profile.pk), **counts},
        )
    return counts


# --- Probabilistic duplicates ------------------------------------------------------------


def _duplicate_fields(kind: str, rules: IdentityRules) -> tuple[duplicates.FieldSpec, ...]:
    return duplicates.fields_for(kind, rules.duplicate_fields)


def _duplicate_records(
    workspace_id: Any, kind: str, fields, region: str | None = None
) -> tuple[list[dict], dict, dict]:
    """The live records to compare, their field labels, and each record's user id (or
    an account's group id). `region`: the workspace's default phone region."""
    if kind == DuplicateCandidate.Kind.ACCOUNT:
        rows = Account.objects.filter(workspace_id=workspace_id, merged_into__isnull=True)
        keys = {}
        items = []
        for pk, group_id, name, traits in rows.values_list(
            "id", "group_id", "name", "traits"
        ).iterator(chunk_size=5000):
            keys[str(pk)] = group_id
            items.append((pk, {"name": name, **(traits or {})}))
        records, labels = duplicates.records_build(items, fields, default_region=region)
        return records, labels, keys
    live = Profile.objects.filter(workspace_id=workspace_id, merged_into__isnull=True)
    records, labels = duplicates.records_build(
        live.values_list("id", "traits").iterator(chunk_size=5000), fields, default_region=region
    )
    keys: dict[str, str] = {}
    for profile_id, value in (
        Identifier.objects.filter(workspace_id=workspace_id, kind="user_id")
        .order_by("created_at")
        .values_list("profile_id", "value")
        .iterator(chunk_size=5000)
    ):
        keys.setdefault(str(profile_id), value)
    return records, labels, keys


def duplicates_find(
    *, workspace_id: Any, kind: str = "profile", min_probability: float | None = None
) -> list[dict[str, Any]]:
    """Pairs of live profiles (or accounts) that look like one customer, most probable
    first, leaving out pairs a person already dismissed. Profiles:
    {profile_a, profile_b, user_id_a, user_id_b, probability, agreeing_fields};
    accounts: {account_a, account_b, group_id_a, group_id_b, ...}."""
    if kind not in DuplicateCandidate.Kind.values:
        raise InvalidInputError(gettext("kind must be profile or account"), field="kind")
    rules = identity_rules_get(workspace_id=workspace_id)
    if min_probability is None:
        min_probability = rules.duplicate_min_probability
    if not 0 <= min_probability <= 1:
        raise InvalidInputError(gettext("must be between 0 and 1"), field="min_probability")
    fields = _duplicate_fields(kind, rules)
    records, labels, keys = _duplicate_records(
        workspace_id, kind, fields, rules.default_phone_region or None
    )
    pairs = duplicates.pairs_score(records, fields, min_probability=min_probability)
    dismissed = set(
        DuplicateCandidate.objects.filter(
            workspace_id=workspace_id, kind=kind, status=DuplicateCandidate.Status.DISMISSED
        ).values_list("record_a", "record_b")
    )
    record, key = ("profile", "user_id") if kind == "profile" else ("account", "group_id")
    found = []
    for pair in pairs:
        if (uuid.UUID(pair.a), uuid.UUID(pair.b)) in dismissed:
            continue
        found.append(
            {
                f"{record}_a": pair.a,
                f"{record}_b": pair.b,
                f"{key}_a": keys.get(pair.a),
                f"{key}_b": keys.get(pair.b),
                # Not rounded: Splink's probabilities crowd just under 1, and six
                # digits made every close pair exactly 1.0 ("100%" on review).
                "probability": pair.probability,
                "agreeing_fields": [labels.get(name, name) for name in pair.agreeing_fields],
            }
        )
    return found


def duplicate_candidates_refresh(
    *, workspace: Workspace, kind: str, actor: Actor, found: list[dict] | None = None
) -> dict:
    """Find duplicates again and keep them for review: new pairs open, pairs no longer
    found (or no longer live) closed, reviewed pairs untouched. Profiles above the
    workspace's auto-merge probability are merged, unless both hold a user id."""
    if found is None:
        found = duplicates_find(workspace_id=workspace.pk, kind=kind)
    record = "profile" if kind == "profile" else "account"
    key = "user_id" if kind == "profile" else "group_id"
    rules = identity_rules_get(workspace_id=workspace.pk)
    now = timezone.now()
    with transaction.atomic():
        existing = {
            (c.record_a, c.record_b): c
            for c in DuplicateCandidate.objects.select_for_update().filter(
                workspace=workspace, kind=kind
            )
        }
        seen = set()
        created = updated = 0
        for pair in found:
            ids = (uuid.UUID(pair[f"{record}_a"]), uuid.UUID(pair[f"{record}_b"]))
            seen.add(ids)
            candidate = existing.get(ids)
            if candidate is None:
                existing[ids] = DuplicateCandidate.objects.create(
                    workspace=workspace,
                    kind=kind,
                    record_a=ids[0],
                    record_b=ids[1],
                    probability=pair["probability"],
                    agreeing_fields=pair["agreeing_fields"],
                )
                created += 1
            elif candidate.status == DuplicateCandidate.Status.OPEN:
                candidate.probability = pair["probability"]
                candidate.agreeing_fields = pair["agreeing_fields"]
                candidate.save(update_fields=["probability", "agreeing_fields", "updated_at"])
                updated += 1
        stale = [
            c.pk
            for ids, c in existing.items()
            if ids not in seen and c.status == DuplicateCandidate.Status.OPEN
        ]
        DuplicateCandidate.objects.filter(pk__in=stale).delete()
        audit_log_record(
            workspace=workspace,
            actor=actor,
            action="identity.duplicates.refresh",
            target=rules,
            details={"kind": kind, "found": len(found), "new": created, "closed": len(stale)},
        )
    merged = 0
    threshold = rules.duplicate_auto_merge_probability
    if kind == "profile" and threshold is not None:
        for pair in found:
            if pair["probability"] < threshold:
                break
            if pair[f"{key}_a"] and pair[f"{key}_b"] and pair[f"{key}_a"] != pair[f"{key}_b"]:
                continue  # two known user ids: a person decides
            candidate = existing[(uuid.UUID(pair["profile_a"]), uuid.UUID(pair["profile_b"]))]
            try:
                duplicate_candidate_merge(
                    candidate=candidate,
                    reason=f"probable duplicate ({pair['probability']:.4f}), merged automatically",
                    actor=Actor.system("duplicate detection"),
                    follow_merges=False,
                )
                merged += 1
            except (ConflictError, NotFoundError):
                continue  # one of them was merged meanwhile; the next refresh sees anew
    return {
        "found": len(found),
        "new": created,
        "updated": updated,
        "closed": len(stale),
        "merged": merged,
        "at": now.isoformat(),
    }


def _review_close(candidate: DuplicateCandidate, status: str, *, reason: str, actor: Actor) -> None:
    candidate.status = status
    candidate.reviewed_by = actor.label
    candidate.reviewed_at = timezone.now()
    candidate.review_reason = (reason or "").strip()[:2000]
    candidate.save()


def duplicate_candidate_merge(
    *,
    candidate: DuplicateCandidate,
    reason: str,
    actor: Actor,
    survivor: str = "a",
    follow_merges: bool = True,
) -> DuplicateCandidate:
    """Merge the pair (into record `a` unless `survivor` is "b") and close it. A person
    reviewing a pair whose record was merged since the scan merges the record it went
    into; automatic merges (`follow_merges=False`) refuse, since the evidence was about
    the records as scanned."""

    if candidate.status != DuplicateCandidate.Status.OPEN:
        raise ConflictError(
            gettext("This pair was already %(status)s") % {"status": candidate.status},
            code="already_reviewed",
        )
    if survivor not in ("a", "b"):
        raise InvalidInputError(gettext('must be "a" or "b"'), field="survivor")
    keep, drop = (
        (candidate.record_a, candidate.record_b)
        if survivor == "a"
        else (candidate.record_b, candidate.record_a)
    )
    model = Profile if candidate.kind == DuplicateCandidate.Kind.PROFILE else Account
    # A record merged since the scan stands for the one it went into.
    survivor_record, merged_record = (
        record_live(model.objects.filter(workspace_id=candidate.workspace_id, pk=pk).first())
        for pk in (keep, drop)
    )
    if survivor_record is None or merged_record is None:
        raise NotFoundError(
            gettext("One of these %(kind)ss no longer exists") % {"kind": candidate.kind}
        )
    if not follow_merges and {survivor_record.pk, merged_record.pk} != {keep, drop}:
        raise ConflictError(
            gettext("One of these %(kind)ss was merged since the scan") % {"kind": candidate.kind},
            code="already_merged",
        )
    with transaction.atomic():
        if survivor_record.pk == merged_record.pk:
            pass  # already one record: nothing left to merge, the pair is done
        elif model is Profile:
            profile_merge(
                survivor=survivor_record, merged=merged_record, reason=reason, actor=actor
            )
        else:
            account_merge(
                survivor=survivor_record, merged=merged_record, reason=reason, actor=actor
            )
        _review_close(candidate, DuplicateCandidate.Status.MERGED, reason=reason, actor=actor)
    return candidate


@dataclass(frozen=True)
class PairMerged:
    """What became of one pair of a bulk merge: "merged", "already" (merged before,
    by this request sent twice or by someone else) or "failed" with the reason."""

    candidate_id: uuid.UUID
    outcome: str
    code: str = ""
    message: str = ""


def duplicate_candidates_merge(
    *, workspace: Workspace, candidate_ids: list[uuid.UUID], reason: str, actor: Actor
) -> list[PairMerged]:
    """Merge several reviewed pairs, each through `duplicate_candidate_merge` in its
    own transaction (each audit-logged as a merge): one pair failing leaves the
    others merged and is reported with its reason. Sent again, pairs merged already
    are reported as such and nothing changes."""
    if not reason.strip():
        raise InvalidInputError(gettext("say why these are the same customers"), field="reason")
    if not candidate_ids:
        raise InvalidInputError(gettext("choose at least one pair"), field="candidates")
    found = {
        c.pk: c
        for c in DuplicateCandidate.objects.filter(workspace=workspace, pk__in=candidate_ids)
    }
    results = []
    for candidate_id in dict.fromkeys(candidate_ids):
        candidate = found.get(candidate_id)
        if candidate is None:
            results.append(PairMerged(candidate_id, "failed", "not_found", "no such pair here"))
            continue
        if candidate.status == DuplicateCandidate.Status.MERGED:
            results.append(PairMerged(candidate_id, "already"))
            continue
        try:
            duplicate_candidate_merge(candidate=candidate, reason=reason, actor=actor)
        except RapportError as error:
            results.append(PairMerged(candidate_id, "failed", error.code, error.message))
        else:
            results.append(PairMerged(candidate_id, "merged"))
    return results


def duplicate_candidate_dismiss(
    *, candidate: DuplicateCandidate, reason: str, actor: Actor
) -> DuplicateCandidate:
    """Not the same customer: the pair is closed and not proposed again."""
    if candidate.status != DuplicateCandidate.Status.OPEN:
        raise ConflictError(
            gettext("This pair was already %(status)s") % {"status": candidate.status},
            code="already_reviewed",
        )
    with transaction.atomic():
        _review_close(candidate, DuplicateCandidate.Status.DISMISSED, reason=reason, actor=actor)
        audit_log_record(
            workspace=candidate.workspace,
            actor=actor,
            action="identity.duplicate.dismiss",
            target=candidate,
            details={"a": str(candidate.record_a), "b": str(candidate.record_b)},
        )
    return candidate
