"""Identity resolution of stored events: each event gets its profile, new identifiers
attach, profiles that turn out to be one person are merged (and the merge recorded),
identifiers that would break a limit are dropped and the case recorded.

A batch is resolved in memory (`graph.Graph`) and written back in a few bulk
statements, under a per-workspace lock so that two workers never resolve the same
workspace at once.
"""

import hashlib
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import phonenumbers
from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone
from uuid_utils.compat import uuid7

from rapport.core.bulk import rows_insert, rows_update
from rapport.core.errors import ConflictError, InvalidInputError, NotFoundError
from rapport.identity.graph import DEFAULT_LIMITS, DEFAULT_PRIORITIES, Graph, Rules
from rapport.identity.models import (
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
    identities_of,
)
from rapport.ingest.models import Event
from rapport.profiles.models import Profile
from rapport.profiles.services import (
    account_members_move,
    account_members_recompute,
    consents_move,
    consents_restore,
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
) -> IdentityRules:
    """Change what is given; the rest stays. New rules apply to events resolved from
    now on; profiles already merged stay merged."""
    rules = identity_rules_get(workspace_id=workspace.pk)
    changes: dict[str, Any] = {}
    if external_kinds is not None:
        for kind in external_kinds:
            if not KIND_PATTERN.match(kind) or kind in BUILT_IN_KINDS:
                raise InvalidInputError(
                    f"{kind!r} is not a usable identifier kind (lower-case letters, digits and _; "
                    f"not one of {', '.join(BUILT_IN_KINDS)})",
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
                raise InvalidInputError(f"unknown identifier kind {kind!r}", field=name)
            if not low <= number <= high:
                raise InvalidInputError(f"{name} of {kind} must be {low} to {high}", field=name)
        changes[name] = {**getattr(rules, name), **mapping}
    if blocked_values is not None:
        changes["blocked_values"] = sorted({v.strip().lower() for v in blocked_values})
    if default_phone_region is not None:
        region = default_phone_region.strip().upper()
        if region and region not in phonenumbers.SUPPORTED_REGIONS:
            raise InvalidInputError(
                f"{default_phone_region!r} is not a region code like GB or US",
                field="default_phone_region",
            )
        changes["default_phone_region"] = region
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


PROFILE_FIELDS = [
    "traits",
    "trait_sources",
    "first_seen_at",
    "last_seen_at",
    "merged_into_id",
    "updated_at",
]


def _profiles_save(profiles: Iterable[Profile]) -> None:
    """Save what resolution, merges and unmerges change, in one statement."""
    now = timezone.now()
    rows_update(
        Profile,
        [
            {"id": p.pk, **{f: getattr(p, f) for f in PROFILE_FIELDS}, "updated_at": now}
            for p in profiles
        ],
        fields=PROFILE_FIELDS,
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
        event_profiles = {event.id: event.profile_id for event in events}
        suppressed = _suppressed(workspace_id, carried.values())
        if suppressed:
            # An erased person's identifiers: their events are dropped, not resolved.
            dropped = [e.id for e in events if suppressed.intersection(carried[e.id])]
            Event.objects.filter(pk__in=dropped).delete()
            events = [e for e in events if e.id not in set(dropped)]
            carried = {e.id: carried[e.id] for e in events}
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
        now = timezone.now()
        rows_insert(
            Profile,
            [
                {
                    "id": profile_id,
                    "workspace_id": workspace_id,
                    "created_at": now,
                    "updated_at": now,
                }
                for profile_id in graph.created
            ],
            conflict=["id"],
        )
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
        touched = set(final.values()) | {graph.live(m.survivor) for m in graph.merges}
        profiles = {
            p.pk: p
            for p in Profile.objects.filter(pk__in=touched | {m.merged for m in graph.merges})
        }
        for merge in graph.merges:
            _merge_rows(
                survivor=profiles[merge.survivor],
                merged=profiles[merge.merged],
                identities=[[i.kind, i.value] for i in merge.identities],
                automatic=True,
                reason="shared identifier",
                actor_label="identity resolution",
                message_id=merge.event_key,
            )
        rows_update(
            Event,
            [
                {"id": event_id, "profile_id": profile_id}
                for event_id, profile_id in final.items()
                if event_profiles.get(event_id) != profile_id
            ],
            fields=["profile_id"],
        )
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
        _profiles_save(profiles.values())
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


def profile_merge(*, survivor: Profile, merged: Profile, reason: str, actor: Actor) -> ProfileMerge:
    """A person's merge of two profiles they know to be one customer. Unlike automatic
    merges it may join profiles with different user ids. Undo with `profile_unmerge`."""
    if survivor.workspace_id != merged.workspace_id:
        raise NotFoundError("No such profile in this workspace")
    if survivor.pk == merged.pk:
        raise InvalidInputError("A profile cannot be merged with itself", field="other")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInputError("Say why these are the same customer", field="reason")
    with transaction.atomic():
        _workspace_lock(survivor.workspace_id)
        survivor = Profile.objects.select_for_update().get(pk=survivor.pk)
        merged = Profile.objects.select_for_update().get(pk=merged.pk)
        for profile in (survivor, merged):
            if profile.merged_into_id is not None:
                raise ConflictError(
                    f"Profile {profile.pk} was merged into {profile.merged_into_id}; "
                    "merge that one instead",
                    code="already_merged",
                )
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
    for event in events.exclude(traits={}).order_by("timestamp", "id").iterator():
        _apply_traits(profile, event)


def profile_unmerge(*, merge: ProfileMerge, actor: Actor) -> ProfileMerge:
    """Undo a merge: the merged profile gets back the identifiers it brought and the
    events they identify; both profiles' traits and first/last seen are recomputed from
    their events. Events and identifiers that arrived since follow the same rule."""
    with transaction.atomic():
        _workspace_lock(merge.workspace_id)
        merge = ProfileMerge.objects.select_for_update().get(pk=merge.pk)
        if merge.unmerged_at is not None:
            raise ConflictError("This merge was already undone", code="already_unmerged")
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
        back = []
        for event in Event.objects.filter(
            workspace_id=merge.workspace_id, profile_id__in=holder_ids
        ).iterator():
            identities = sorted(
                _event_identities(event, rules),
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


def _suppressed(workspace_id: Any, carried: Iterable[list[Identity]]) -> set[Identity]:
    by_hash = {_value_hash(i): i for identities in carried for i in identities}
    if not by_hash:
        return set()
    hits = Suppression.objects.filter(
        workspace_id=workspace_id, value_hash__in=list(by_hash)
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


def profile_erase(*, profile: Profile, actor: Actor) -> dict[str, int]:
    """Erase a person: traits, identifiers and events removed, the identifiers
    suppressed so that later events carrying them are dropped. The audit entry keeps
    counts, never the data."""
    with transaction.atomic():
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
        events, _ = Event.objects.filter(
            workspace_id=profile.workspace_id, profile_id__in=family
        ).delete()
        IdentityCase.objects.filter(
            workspace_id=profile.workspace_id, value__in=[i.value for i in identities]
        ).delete()
        ProfileMerge.objects.filter(survivor_id__in=family).delete()
        ProfileMerge.objects.filter(merged_id__in=family).delete()
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
