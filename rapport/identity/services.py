"""Identity resolution of stored events: each event gets its profile, new identifiers
attach, profiles that turn out to be one person are merged (and the merge recorded),
identifiers that would break a limit are dropped and the case recorded.

A batch is resolved in memory (`graph.Graph`) and written back in a few bulk
statements, under a per-workspace lock so that two workers never resolve the same
workspace at once.
"""

import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from uuid_utils.compat import uuid7

from rapport.identity.graph import DEFAULT_LIMITS, DEFAULT_PRIORITIES, Graph, Rules
from rapport.identity.models import Identifier, IdentityCase, IdentityRules, ProfileMerge
from rapport.identity.normalize import DEFAULT_BLOCKED_VALUES, Identity, identities_of
from rapport.ingest.models import Event
from rapport.profiles.models import Profile


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


def _workspace_lock(workspace_id: Any) -> None:
    """Serialise resolution per workspace (PostgreSQL; SQLite has one writer anyway)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                [f"identity:{workspace_id}"],
            )


def _event_identities(event: Event, rules: IdentityRules) -> list[Identity]:
    return identities_of(
        {
            "user_id": event.user_id,
            "anonymous_id": event.anonymous_id,
            "previous_id": event.previous_id,
            "traits": event.traits,
            "context": event.context,
        },
        external_kinds=rules.external_kinds,
        blocked=rules.blocked_values,
        default_region=rules.default_phone_region or None,
    )


def _load_graph(workspace_id: Any, wanted: set[Identity], rules: IdentityRules) -> Graph:
    owner: dict[Identity, uuid.UUID] = {}
    values = {identity.value for identity in wanted}
    for kind, value, profile_id in Identifier.objects.filter(
        workspace_id=workspace_id, value__in=values
    ).values_list("kind", "value", "profile_id"):
        identity = Identity(kind, value)
        if identity in wanted:
            owner[identity] = profile_id
    held: dict[uuid.UUID, set[Identity]] = defaultdict(set)
    for kind, value, profile_id in Identifier.objects.filter(
        workspace_id=workspace_id, profile_id__in=set(owner.values())
    ).values_list("kind", "value", "profile_id"):
        identity = Identity(kind, value)
        held[profile_id].add(identity)
        owner[identity] = profile_id
    return Graph(
        rules=Rules(priorities=rules.priorities or {}, limits=rules.limits or {}),
        owner=owner,
        held=dict(held),
        new_profile_id=uuid7,
    )


def _newer(source: dict | None, at: datetime) -> bool:
    return source is None or source.get("at", "") <= at.isoformat()


def _apply_traits(profile: Profile, event: Event) -> bool:
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


def _combine_traits(survivor: Profile, merged: Profile) -> None:
    for name, source in merged.trait_sources.items():
        if _newer(survivor.trait_sources.get(name), datetime.fromisoformat(source["at"])):
            survivor.traits[name] = merged.traits.get(name)
            survivor.trait_sources[name] = source


def events_resolve(workspace_id: Any, events: Iterable[Event]) -> int:
    """Resolve stored events to profiles (the `events_dispatch` consumer). Returns how
    many got a profile. Safe to run again on the same events."""
    events = sorted(events, key=lambda e: (e.timestamp, e.id))
    if not events:
        return 0
    with transaction.atomic():
        _workspace_lock(workspace_id)
        rules = identity_rules_get(workspace_id=workspace_id)
        carried = {event.id: _event_identities(event, rules) for event in events}
        wanted = {identity for identities in carried.values() for identity in identities}
        graph = _load_graph(workspace_id, wanted, rules)
        resolved = {
            event.id: graph.resolve(carried[event.id], event_key=event.message_id)
            for event in events
        }
        final = {event_id: graph.live(p) for event_id, p in resolved.items() if p is not None}

        seen: dict[uuid.UUID, list[datetime]] = defaultdict(list)
        for event in events:
            if event.id in final:
                seen[final[event.id]].append(event.timestamp)
        # New profiles are created bare; first and last seen are set below like any other's.
        Profile.objects.bulk_create(
            [Profile(id=profile_id, workspace_id=workspace_id) for profile_id in graph.created]
        )
        Identifier.objects.bulk_create(
            [
                Identifier(
                    workspace_id=workspace_id,
                    profile_id=graph.live(profile_id),
                    kind=identity.kind,
                    value=identity.value,
                )
                for identity, profile_id in graph.attached.items()
            ]
        )
        touched = set(final.values()) | {graph.live(m.survivor) for m in graph.merges}
        profiles = {
            p.pk: p
            for p in Profile.objects.filter(pk__in=touched | {m.merged for m in graph.merges})
        }
        for merge in graph.merges:
            survivor, merged = profiles[merge.survivor], profiles[merge.merged]
            Identifier.objects.filter(profile_id=merge.merged).update(profile_id=merge.survivor)
            Event.objects.filter(profile_id=merge.merged).update(profile_id=merge.survivor)
            _combine_traits(survivor, merged)
            if merged.first_seen_at and (
                survivor.first_seen_at is None or merged.first_seen_at < survivor.first_seen_at
            ):
                survivor.first_seen_at = merged.first_seen_at
            if merged.last_seen_at and (
                survivor.last_seen_at is None or merged.last_seen_at > survivor.last_seen_at
            ):
                survivor.last_seen_at = merged.last_seen_at
            merged.merged_into_id = merge.survivor
            ProfileMerge.objects.create(
                workspace_id=workspace_id,
                survivor_id=merge.survivor,
                merged_id=merge.merged,
                identifiers=[[i.kind, i.value] for i in merge.identities],
                automatic=True,
                reason="shared identifier",
                actor_label="identity resolution",
                message_id=merge.event_key,
            )
        by_profile: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
        for event_id, profile_id in final.items():
            by_profile[profile_id].append(event_id)
        for profile_id, event_ids in by_profile.items():
            Event.objects.filter(pk__in=event_ids).update(profile_id=profile_id)
        for event in events:
            profile = profiles.get(final.get(event.id))
            if profile is not None and event.traits:
                _apply_traits(profile, event)
        for profile_id, times in seen.items():
            profile = profiles[profile_id]
            first, last = min(times), max(times)
            if profile.first_seen_at is None or first < profile.first_seen_at:
                profile.first_seen_at = first
            if profile.last_seen_at is None or last > profile.last_seen_at:
                profile.last_seen_at = last
        now = timezone.now()
        for profile in profiles.values():
            profile.updated_at = now
        Profile.objects.bulk_update(
            list(profiles.values()),
            [
                "traits",
                "trait_sources",
                "first_seen_at",
                "last_seen_at",
                "merged_into",
                "updated_at",
            ],
        )
        IdentityCase.objects.bulk_create(
            [
                IdentityCase(
                    workspace_id=workspace_id,
                    message_id=dropped.event_key,
                    kind=dropped.identity.kind,
                    value=dropped.identity.value,
                    profile_id=graph.live(dropped.profile) if dropped.profile else None,
                    reason=dropped.reason,
                )
                for dropped in graph.dropped
            ]
        )
    return len(final)
