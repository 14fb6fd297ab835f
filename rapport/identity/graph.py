"""Deterministic identity resolution, in memory, for one batch of events.

The caller loads the part of the identity graph the batch touches (who owns each
identifier, and every identifier of those owners), resolves the events in time order
here, and writes back what changed. No database access in this module.

The rule, as in Segment Unify: an event's identifiers, strongest kind first, point to
profiles. If they point to none, a new profile is made; to one, the event joins it; to
several, they are merged into the one found by the strongest identifier. Nothing may
break a limit (how many values of a kind one profile may hold): if joining or merging
would, the event's weakest identifier is dropped, the case recorded, and the rest tried
again. So two profiles with different user ids are never merged (user_id's limit is 1),
and an anonymous id shared by two people stays with the first.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from rapport.identity.normalize import ANONYMOUS_ID, EMAIL, PHONE, USER_ID, Identity

DEFAULT_PRIORITIES = {USER_ID: 1, EMAIL: 2, PHONE: 3, ANONYMOUS_ID: 9}
DEFAULT_LIMITS = {USER_ID: 1}
DEFAULT_LIMIT = 5
EXTERNAL_PRIORITY = 4


@dataclass(frozen=True)
class Rules:
    """Which kinds merge profiles, in what order, and how many values a profile may
    hold of each."""

    priorities: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PRIORITIES))
    limits: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_LIMITS))

    def priority(self, kind: str) -> int:
        return self.priorities.get(kind, EXTERNAL_PRIORITY)

    def limit(self, kind: str) -> int:
        return self.limits.get(kind, DEFAULT_LIMIT)


@dataclass(frozen=True)
class Merge:
    survivor: uuid.UUID
    merged: uuid.UUID
    identities: tuple[Identity, ...]
    event_key: str


@dataclass(frozen=True)
class Dropped:
    """An identifier an event carried but that could not be attached."""

    event_key: str
    identity: Identity
    profile: uuid.UUID | None
    reason: str


@dataclass
class Graph:
    rules: Rules
    # identifier -> the (live) profile that holds it
    owner: dict[Identity, uuid.UUID]
    # profile -> every identifier it holds
    held: dict[uuid.UUID, set[Identity]]
    new_profile_id: Callable[[], uuid.UUID] = uuid.uuid4

    created: list[uuid.UUID] = field(default_factory=list)
    attached: dict[Identity, uuid.UUID] = field(default_factory=dict)
    merges: list[Merge] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    # a merged profile -> the one it went into
    redirect: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)

    def live(self, profile: uuid.UUID) -> uuid.UUID:
        while profile in self.redirect:
            profile = self.redirect[profile]
        return profile

    def _violation(self, profiles: list[uuid.UUID], identities: list[Identity]) -> str | None:
        """Why these profiles and identifiers cannot be one profile, or None if they can.

        A limit stops growth only: a profile a person merged by hand may already hold
        more than the limit, and an event naming only what it holds still joins it."""
        union: dict[str, set[str]] = {}
        for profile in profiles:
            for identity in self.held[profile]:
                union.setdefault(identity.kind, set()).add(identity.value)
        grows: set[str] = set()
        for identity in identities:
            values = union.setdefault(identity.kind, set())
            if identity.value not in values:
                grows.add(identity.kind)
                values.add(identity.value)
        if len(profiles) > 1:
            grows = set(union)
        for kind in sorted(grows):
            limit = self.rules.limit(kind)
            if len(union[kind]) > limit:
                return (
                    f"one profile would hold {len(union[kind])} {kind} values; the limit is {limit}"
                )
        return None

    def resolve(self, identities: list[Identity], *, event_key: str) -> uuid.UUID | None:
        """The profile this event belongs to (None if it carries no usable identifier)."""
        # Most events name only identifiers one profile already holds: nothing can grow.
        owners = {self.owner.get(identity) for identity in identities}
        if len(owners) == 1 and None not in owners:
            return owners.pop()
        ids = sorted(identities, key=lambda i: (self.rules.priority(i.kind), i.kind, i.value))
        removed: list[tuple[Identity, str]] = []
        while ids:
            found: list[uuid.UUID] = []
            for identity in ids:
                owner = self.owner.get(identity)
                if owner is not None and owner not in found:
                    found.append(owner)
            violation = self._violation(found, ids)
            if violation is None:
                profile = self._join(found, ids, event_key=event_key)
                self.dropped += [
                    Dropped(event_key=event_key, identity=identity, profile=profile, reason=reason)
                    for identity, reason in removed
                ]
                return profile
            removed.append((ids.pop(), violation))
        self.dropped += [
            Dropped(event_key=event_key, identity=identity, profile=None, reason=reason)
            for identity, reason in removed
        ]
        return None

    def _join(self, found: list[uuid.UUID], ids: list[Identity], *, event_key: str) -> uuid.UUID:
        if found:
            survivor = found[0]
        else:
            survivor = self.new_profile_id()
            self.created.append(survivor)
            self.held[survivor] = set()
        for other in found[1:]:
            moved = tuple(sorted(self.held.pop(other, set())))
            for identity in moved:
                self.owner[identity] = survivor
            self.held[survivor].update(moved)
            self.redirect[other] = survivor
            self.merges.append(
                Merge(survivor=survivor, merged=other, identities=moved, event_key=event_key)
            )
        for identity in ids:
            if identity not in self.owner:
                self.owner[identity] = survivor
                self.attached[identity] = survivor
                self.held[survivor].add(identity)
        return survivor
