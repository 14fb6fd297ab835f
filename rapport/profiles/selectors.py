import base64
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Lower
from django.utils import timezone
from django.utils.translation import gettext

from rapport.core.errors import InvalidInputError
from rapport.core.selectors import object_get
from rapport.ingest.models import Event, EventType
from rapport.profiles.models import (
    Account,
    AccountMember,
    AccountMerge,
    ConsentChange,
    ConsentChannel,
    ConsentPurpose,
    ConsentStatus,
    Profile,
    SavedView,
    SavedViewDefault,
    TraitEdit,
)
from rapport.tenancy.models import Source, Workspace


def profile_list(*, workspace: Workspace, include_merged: bool = False) -> QuerySet[Profile]:
    profiles = Profile.objects.filter(workspace=workspace)
    if not include_merged:
        profiles = profiles.filter(merged_into__isnull=True)
    return profiles.order_by("-last_seen_at", "-id")


# Identity resolution (which writes profiles) adds to what a profile is found by and
# what its timeline shows, from its AppConfig.ready: profiles imports no app above it.
ProfileFinder = Callable[[Workspace, str], QuerySet]
_FINDERS: list[ProfileFinder] = []


def profile_finder_register(finder: ProfileFinder) -> None:
    """`finder(workspace, text)`: the ids (a flat `values_list` of profile ids) of the
    profiles that hold `text`, e.g. as an identifier."""
    if finder not in _FINDERS:
        _FINDERS.append(finder)


def _identifier_holders(workspace: Workspace, text: str) -> list[QuerySet]:
    """What each registered finder finds for `text` (profile ids)."""
    return [finder(workspace, text) for finder in _FINDERS]


def profile_search(
    *, workspace: Workspace, q: str | None = None, trait: str | None = None
) -> QuerySet[Profile]:
    """Profiles holding an identifier equal to `q` (as typed, or normalised as an email
    or a phone number), and/or whose trait has a value (`trait` = "name:value")."""
    profiles = profile_list(workspace=workspace)
    if q:
        found = Q(pk__in=[])
        for holders in _identifier_holders(workspace, q.strip()):
            found |= Q(pk__in=holders)
        profiles = profiles.filter(found)
    if trait:
        name, sep, value = trait.partition(":")
        if not sep:
            raise InvalidInputError(gettext("trait must be written name:value"), field="trait")
        if not name.strip():
            # A blank name is a trait no one has (the API's pattern lets it through).
            return profiles.none()
        # A literal key: a name like "plan__icontains" is a trait name, not a lookup.
        profiles = profiles.annotate(
            _trait=Cast(KeyTextTransform(name.strip(), "traits"), TextField())
        ).filter(_trait=value.strip())
    return profiles


@dataclass(frozen=True)
class ProfilePage:
    items: list[Profile]
    next_cursor: str | None


PROFILE_PAGE_SORTS = ("recent", "oldest")
PROFILE_PAGE_MAX_LIMIT = 200
# A name search lists at most this many customers (the first by name): a prefix as short
# as "a" in a million customers asks for a longer one, not for a scan.
SEARCH_MAX_NAME_MATCHES = 1000


def _profile_cursor_encode(profile: Profile) -> str:
    seen = profile.last_seen_at.isoformat() if profile.last_seen_at else ""
    return _cursor_pack(seen, str(profile.pk))


def _profile_cursor_decode(cursor: str) -> tuple[datetime | None, uuid.UUID]:
    try:
        seen, profile_id = _cursor_unpack(cursor, 2)
        moment = datetime.fromisoformat(seen) if seen else None
        if moment is not None and moment.tzinfo is None:
            raise ValueError(seen)
        return moment, uuid.UUID(profile_id)
    except ValueError:  # binascii and Unicode errors included
        raise InvalidInputError(
            gettext("not a cursor this page gave out"), field="cursor"
        ) from None


def profile_page(
    *,
    workspace: Workspace,
    q: str | None = None,
    account_id: uuid.UUID | None = None,
    consent: str | None = None,
    sort: str = "recent",
    cursor: str | None = None,
    limit: int = 50,
    within: Q | None = None,
) -> ProfilePage:
    """The customer list: found by any identifier (email, phone, user id, external id,
    as typed or normalised) or by the start of their name; narrowed to an account's
    people or to those who granted a channel ("email", "sms"...); most recently seen
    first ("recent") or last ("oldest"), keyset-paged so that page 1,000 of a million
    customers costs what page 1 does. `within` narrows further by a condition another
    app supplies (a segment, a lifecycle stage, an RFM cell)."""
    if sort not in PROFILE_PAGE_SORTS:
        raise InvalidInputError(
            gettext("must be one of %(choices)s") % {"choices": ", ".join(PROFILE_PAGE_SORTS)},
            field="sort",
        )
    if not 1 <= limit <= PROFILE_PAGE_MAX_LIMIT:
        raise InvalidInputError(
            gettext("must be 1 to %(profile_page_max_limit)s")
            % {"profile_page_max_limit": PROFILE_PAGE_MAX_LIMIT},
            field="limit",
        )
    profiles = profiles_filtered(
        workspace=workspace, q=q, account_id=account_id, consent=consent, within=within
    )
    rows = _profile_keyset(profiles, sort=sort, cursor=cursor, limit=limit + 1)
    items = rows[:limit]
    more = len(rows) > limit
    return ProfilePage(items=items, next_cursor=_profile_cursor_encode(items[-1]) if more else None)


def profiles_filtered(
    *,
    workspace: Workspace,
    q: str | None = None,
    account_id: uuid.UUID | None = None,
    consent: str | None = None,
    within: Q | None = None,
    traits: list[str] | None = None,
) -> QuerySet[Profile]:
    """The live profiles the customer list's filters keep (unordered): found by any
    identifier or the start of their name, in an account, granting a channel, within
    another app's condition, holding trait values (`name:value`, compared as text)."""
    profiles = Profile.objects.filter(workspace=workspace, merged_into__isnull=True)
    text = (q or "").strip()
    if text:
        if len(text) > 255:
            raise InvalidInputError(gettext("at most 255 characters"), field="q")
        # Two index look-ups, then the list's own order over what they found: one query
        # with an OR between them would walk the whole last-seen index instead.
        prefix = text.lower()
        named = (
            profiles.annotate(_name=Lower(KeyTextTransform("name", "traits")))
            .filter(_name__gte=prefix, _name__lt=prefix + "\U0010ffff")
            .order_by("_name")
            .values_list("pk", flat=True)[:SEARCH_MAX_NAME_MATCHES]
        )
        holders = [pk for found in _identifier_holders(workspace, text) for pk in found]
        profiles = profiles.filter(pk__in={*holders, *named})
    if account_id is not None:
        account = account_get(workspace=workspace, account_id=account_id)
        profiles = profiles.filter(account_links__account=account)
    if consent:
        if consent not in ConsentChannel.values:
            raise InvalidInputError(
                gettext("must be one of %(choices)s")
                % {"choices": ", ".join(ConsentChannel.values)},
                field="consent",
            )
        granted = _consent_granted(workspace, consent)
        profiles = profiles.filter(pk__in=granted)
    if within is not None:
        profiles = profiles.filter(within)
    for n, trait in enumerate(traits or ()):
        # A literal key: a name like "plan__icontains" is a trait name, not a lookup.
        name, _, value = trait.partition(":")
        text = Cast(KeyTextTransform(name.strip(), "traits"), TextField())
        profiles = profiles.annotate(**{f"_trait{n}": text}).filter(**{f"_trait{n}": value.strip()})
    return profiles


@dataclass(frozen=True)
class ProfileTable:
    """A page of the customer list in any order, with how many match (`count`, read as
    `count_kind` says). `sort_refused` when the order asked
    for sorts only a smaller set (the page then comes in last-seen order)."""

    items: list[Profile]
    count: int
    # "exact", "more" (more than `count`) or "estimate" (about `count`)
    count_kind: str
    next_cursor: str | None = None
    next_page: int | None = None
    sort_refused: bool = False


PROFILE_TABLE_MAX_PAGE = 200


# On PostgreSQL a filter the planner expects to keep more than this many times the cap
# is not counted at all: its estimate is shown ("about 300,000"). Counting even the
# first 10,001 of 300,000 matches walked two primary keys in step (1 s at 1,000,000
# profiles on a cold cache), while the plan costs a few milliseconds.
ESTIMATE_BEYOND = 3


def planner_rows(queryset) -> int | None:
    """PostgreSQL's estimate of the rows a query returns (None on another database)."""
    if connection.vendor != "postgresql":
        return None
    # Run directly: Django's explain() joins what the driver returns as text, and
    # psycopg hands FORMAT JSON back already decoded (a list), not always as JSON text.
    try:
        sql, params = queryset.order_by().query.sql_with_params()
    except EmptyResultSet:  # a filter that can match nothing (an empty id list)
        return 0
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str | bytes):
        plan = json.loads(plan)
    try:
        return int(plan[0]["Plan"]["Plan Rows"])
    except (LookupError, TypeError, ValueError):
        return None


def capped_count(queryset, cap: int) -> tuple[int, str]:
    """How many rows: ("exact") counted to the end when at most `cap`; ("more") at
    least `cap`, the count stopped there; ("estimate") the planner's estimate, when it
    expects far more than `cap` (a count of a filtered million is a scan of it)."""
    estimate = planner_rows(queryset)
    if estimate is not None and estimate > cap * ESTIMATE_BEYOND:
        return estimate, "estimate"
    n = queryset.order_by()[: cap + 1].count()
    return (n, "exact") if n <= cap else (cap, "more")


def profile_table(
    *,
    workspace: Workspace,
    profiles: QuerySet[Profile],
    order=None,
    descending: bool = True,
    cursor: str | None = None,
    page: int = 1,
    limit: int = 50,
    count_cap: int = 10_000,
) -> ProfileTable:
    """A page of `profiles` (from `profiles_filtered`). Without `order`: by last seen,
    keyset-paged (a cursor) through the index, however many match. With `order` (an
    expression: a trait, a score from another table): only when at most `count_cap`
    profiles match, offset-paged (at most `count_cap` deep, so an offset stays cheap),
    missing values last, the id breaking ties so that the order is stable."""
    if not 1 <= limit <= PROFILE_PAGE_MAX_LIMIT:
        raise InvalidInputError(
            gettext("must be 1 to %(profile_page_max_limit)s")
            % {"profile_page_max_limit": PROFILE_PAGE_MAX_LIMIT},
            field="limit",
        )
    if not 1 <= page <= PROFILE_TABLE_MAX_PAGE or (page - 1) * limit > count_cap:
        raise InvalidInputError(gettext("beyond the last page"), field="page")
    count, count_kind = capped_count(profiles, count_cap)
    refused = order is not None and count_kind != "exact"
    if order is None or refused:
        rows = _profile_keyset(
            profiles,
            sort="recent" if descending or refused else "oldest",
            cursor=cursor,
            limit=limit + 1,
        )
        more = len(rows) > limit
        items = rows[:limit]
        return ProfileTable(
            items=items,
            count=count,
            count_kind=count_kind,
            next_cursor=_profile_cursor_encode(items[-1]) if more else None,
            sort_refused=refused,
        )
    ordering = (
        (order.desc(nulls_last=True), "-id") if descending else (order.asc(nulls_last=True), "id")
    )
    start = (page - 1) * limit
    rows = list(
        profiles.order_by(*ordering).prefetch_related("identifiers")[start : start + limit + 1]
    )
    more = len(rows) > limit
    return ProfileTable(
        items=rows[:limit],
        count=count,
        count_kind=count_kind,
        next_page=page + 1 if more else None,
    )


def _profile_keyset(profiles, *, sort: str, cursor: str | None, limit: int) -> list[Profile]:
    """Up to `limit` profiles after the cursor. Seen and never-seen profiles are read as
    two ranges (never-seen last when most recent comes first), each an index range scan
    on (last seen, id) on either database, with no NULLS FIRST/LAST in the way."""
    seen, after_id = _profile_cursor_decode(cursor) if cursor else (None, None)
    recent = sort == "recent"
    phases = ("seen", "never") if recent else ("never", "seen")
    if cursor and seen is not None and not recent:
        phases = ("seen",)
    if cursor and seen is None:
        phases = phases[phases.index("never") :]
    rows: list[Profile] = []
    for phase in phases:
        if phase == "seen":
            part = profiles.filter(last_seen_at__isnull=False)
            if seen is not None:
                part = part.filter(
                    Q(last_seen_at__lt=seen) | Q(last_seen_at=seen, id__lt=after_id)
                    if recent
                    else Q(last_seen_at__gt=seen) | Q(last_seen_at=seen, id__gt=after_id)
                )
            order = ("-last_seen_at", "-id") if recent else ("last_seen_at", "id")
        else:
            part = profiles.filter(last_seen_at__isnull=True)
            if cursor and seen is None:
                part = part.filter(id__lt=after_id) if recent else part.filter(id__gt=after_id)
            order = ("-id",) if recent else ("id",)
        rows += list(part.order_by(*order).prefetch_related("identifiers")[: limit - len(rows)])
        if len(rows) >= limit:
            break
    return rows


def _consent_granted(workspace: Workspace, channel: str) -> list[uuid.UUID]:
    """Profiles whose latest statement for the channel (any purpose) grants it."""
    now = timezone.now()
    latest: dict[tuple[uuid.UUID, str], bool] = {}
    for profile_id, purpose, status, expires_at in (
        ConsentChange.objects.filter(workspace=workspace, channel=channel)
        .order_by("-at", "-id")
        .values_list("profile_id", "purpose", "status", "expires_at")
    ):
        granted = status == ConsentStatus.GRANTED and (expires_at is None or expires_at > now)
        latest.setdefault((profile_id, purpose), granted)
    return sorted({p for (p, _), granted in latest.items() if granted})


def consent_granted(*, channels: list[str], purpose: str, now: datetime, profile=None) -> Exists:
    """An expression: the profile (by default the outer query's `profile_id`) has, on
    one of `channels`, a latest statement for `purpose` that grants it and has not
    expired. The latest is by time, then by id (as `consent_current` reads them)."""
    profile = OuterRef("profile_id") if profile is None else profile
    newer = ConsentChange.objects.filter(
        profile_id=OuterRef("profile_id"), channel=OuterRef("channel"), purpose=purpose
    ).filter(Q(at__gt=OuterRef("at")) | Q(at=OuterRef("at"), id__gt=OuterRef("id")))
    return Exists(
        ConsentChange.objects.filter(
            profile_id=profile,
            channel__in=channels,
            purpose=purpose,
            status=ConsentStatus.GRANTED,
        )
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .filter(~Exists(newer))
    )


def consent_granted_channels(
    *, workspace: Workspace, profile_ids: list, channels: list[str], purpose: str, now: datetime
) -> set[tuple[uuid.UUID, str]]:
    """(profile, channel) pairs among `profile_ids` whose latest statement for `purpose`
    grants it and has not expired: `consent_granted` for a batch of known profiles, read
    in one indexed query rather than a join over every statement."""
    latest: dict[tuple[uuid.UUID, str], bool] = {}
    for profile_id, channel, status, expires_at in (
        ConsentChange.objects.filter(
            workspace=workspace, profile_id__in=profile_ids, channel__in=channels, purpose=purpose
        )
        .order_by("-at", "-id")
        .values_list("profile_id", "channel", "status", "expires_at")
    ):
        granted = status == ConsentStatus.GRANTED and (expires_at is None or expires_at > now)
        latest.setdefault((profile_id, channel), granted)
    return {key for key, granted in latest.items() if granted}


def consent_status(*, profile_id: uuid.UUID, channel: str, purpose: str, now: datetime) -> str:
    """The customer's current consent for one channel and purpose, in one indexed
    read (the send path asks it for every message): the latest statement's status, or
    unknown (none, or a grant past its expiry)."""
    latest = (
        ConsentChange.objects.filter(profile_id=profile_id, channel=channel, purpose=purpose)
        .order_by("-at", "-id")
        .values_list("status", "expires_at")
        .first()
    )
    if latest is None:
        return ConsentStatus.UNKNOWN
    status, expires_at = latest
    if status == ConsentStatus.GRANTED and expires_at is not None and expires_at <= now:
        return ConsentStatus.UNKNOWN
    return status


def consent_statuses(
    *, profile_ids, channel: str, purpose: str, now: datetime
) -> dict[uuid.UUID, str]:
    """`consent_status` for many customers in one read (a batch of sends):
    {profile_id: status} for every id given, with the same answer consent_status gives
    each (the latest statement; unknown when none, or a grant past its expiry)."""
    wanted = set(profile_ids)
    found: dict[uuid.UUID, str] = dict.fromkeys(wanted, ConsentStatus.UNKNOWN)
    if not wanted:
        return found
    rows = ConsentChange.objects.filter(
        profile_id__any=list(wanted), channel=channel, purpose=purpose
    ).order_by("profile_id", "-at", "-id")
    if connection.vendor == "postgresql":
        # The latest per customer only (DISTINCT ON), read off profiles_consent_latest.
        rows = rows.distinct("profile_id")
    seen: set = set()
    for profile_id, status, expires_at in rows.values_list("profile_id", "status", "expires_at"):
        if profile_id in seen:
            continue
        seen.add(profile_id)
        if status == ConsentStatus.GRANTED and expires_at is not None and expires_at <= now:
            status = ConsentStatus.UNKNOWN
        found[profile_id] = status
    return found


def profile_get(*, workspace: Workspace, profile_id: uuid.UUID) -> Profile:
    return object_get(
        Profile.objects.filter(workspace=workspace).prefetch_related("identifiers"),
        message=gettext("No profile with id %(pk)s in this workspace"),
        pk=profile_id,
    )


def profile_family_ids(*, profile_id: uuid.UUID) -> list[uuid.UUID]:
    """The profile and every profile merged into it, directly or through others."""
    family, frontier = [profile_id], [profile_id]
    while frontier:
        frontier = list(
            Profile.objects.filter(merged_into_id__in=frontier).values_list("pk", flat=True)
        )
        family += frontier
    return family


TIMELINE_KINDS = ("event", "trait_change", "merge", "unmerge", "consent")
TIMELINE_MAX_LIMIT = 200


@dataclass(frozen=True)
class TimelineEntry:
    """One thing known about the customer: `kind` says what it is, `at` when it was,
    `channel` through what (a source kind for events, a consent channel), `data` the
    details (the event, the traits set, the merge or the consent statement)."""

    kind: str
    id: uuid.UUID
    at: datetime
    channel: str
    title: str
    data: dict

    @property
    def key(self) -> tuple:
        return (self.at, self.id, self.kind)


# `entries(workspace, profile, wanted, channel)`: a source's entries of the kinds in
# `wanted` (all of them: the timeline pages them), e.g. identity's merges.
TimelineSource = Callable[[Workspace, Profile, set, str | None], list[TimelineEntry]]
# By (kinds, the source's dotted name): several apps may keep entries of one kind.
_TIMELINE_SOURCES: dict[tuple[tuple[str, ...], str], TimelineSource] = {}


def timeline_source_register(*, kinds: tuple[str, ...], entries: TimelineSource) -> None:
    """Entries of `kinds` (some of TIMELINE_KINDS) that another app keeps."""
    unknown = set(kinds) - set(TIMELINE_KINDS)
    if unknown:
        raise ValueError(f"timeline kinds {sorted(unknown)} are not in TIMELINE_KINDS")
    _TIMELINE_SOURCES[(kinds, f"{entries.__module__}.{entries.__qualname__}")] = entries


@dataclass(frozen=True)
class TimelinePage:
    items: list[TimelineEntry]
    next_cursor: str | None


def _cursor_pack(*parts: str) -> str:
    """A keyset position as an opaque token."""
    return base64.urlsafe_b64encode("|".join(parts).encode()).decode().rstrip("=")


def _cursor_unpack(cursor: str, count: int) -> list[str]:
    """The parts of a token `_cursor_pack` made (ValueError for anything else)."""
    parts = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split("|")
    if len(parts) != count:
        raise ValueError(cursor)
    return parts


def _cursor_encode(entry: TimelineEntry) -> str:
    return _cursor_pack(entry.at.isoformat(), str(entry.id), entry.kind)


def _cursor_decode(cursor: str) -> tuple[datetime, uuid.UUID, str]:
    try:
        at, entry_id, kind = _cursor_unpack(cursor, 3)
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None or kind not in TIMELINE_KINDS:
            raise ValueError(kind)
        return moment, uuid.UUID(entry_id), kind
    except ValueError:  # binascii and Unicode errors included
        raise InvalidInputError(
            gettext("not a cursor this endpoint gave out"), field="cursor"
        ) from None


def _before(queryset, at_field: str, cursor):
    """Rows strictly older than the cursor, in (at, id) order."""
    if cursor is None:
        return queryset
    at, entry_id, _ = cursor
    return queryset.filter(Q(**{f"{at_field}__lt": at}) | Q(**{at_field: at, "id__lt": entry_id}))


def _choice_label(choices, value: str) -> str:
    try:
        return str(choices(value).label)
    except ValueError:
        return value


def _event_entry(event: Event, channels: dict) -> TimelineEntry:
    has_traits = event.type == EventType.IDENTIFY and bool(event.traits)
    if has_traits:
        title = gettext("Traits set: %(names)s") % {"names": ", ".join(sorted(event.traits)[:10])}
    elif event.type == EventType.TRACK:
        title = event.event
    elif event.type in (EventType.PAGE, EventType.SCREEN):
        page = event.event or event.properties.get("path") or event.type
        title = gettext("Viewed %(page)s") % {"page": page}
    else:
        title = event.type.capitalize()
    return TimelineEntry(
        kind="trait_change" if has_traits else "event",
        id=event.pk,
        at=event.timestamp,
        channel=channels.get(event.source_id, ""),
        title=str(title)[:300],
        data={"event": event},
    )


def profile_timeline(
    *,
    workspace: Workspace,
    profile_id: uuid.UUID,
    kinds: list[str] | None = None,
    channel: str | None = None,
    type: str | None = None,
    event: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
    profile: Profile | None = None,
) -> TimelinePage:
    """Everything known about the customer, newest first: events, trait changes (the
    identify calls that set traits), merges and unmerges, consent changes. Paged by a
    cursor (keyset: each page is one index range scan, however long the history),
    filterable by kind and channel; `type` and `event` narrow the events. `profile`:
    the profile already read (of this workspace), to spare reading it again."""
    if profile is None or profile.workspace_id != workspace.pk or profile.pk != profile_id:
        profile = profile_get(workspace=workspace, profile_id=profile_id)
    for kind in kinds or ():
        if kind not in TIMELINE_KINDS:
            raise InvalidInputError(
                gettext("%(kind)r is not one of %(choices)s")
                % {"kind": kind, "choices": ", ".join(TIMELINE_KINDS)},
                field="kind",
            )
    if not 1 <= limit <= TIMELINE_MAX_LIMIT:
        raise InvalidInputError(
            gettext("must be 1 to %(timeline_max_limit)s")
            % {"timeline_max_limit": TIMELINE_MAX_LIMIT},
            field="limit",
        )
    wanted = set(kinds or TIMELINE_KINDS)
    after = _cursor_decode(cursor) if cursor else None
    channels = dict(Source.objects.filter(workspace=workspace).values_list("id", "kind"))
    candidates: list[TimelineEntry] = []

    if wanted & {"event", "trait_change"}:
        events = Event.objects.filter(workspace=workspace, profile=profile)
        if type:
            events = events.filter(type=type)
        if event:
            events = events.filter(event=event)
        if channel:
            events = events.filter(
                source_id__in=[pk for pk, kind in channels.items() if kind == channel]
            )
        sets_traits = Q(type=EventType.IDENTIFY) & ~Q(traits={})
        if "event" not in wanted:
            events = events.filter(sets_traits)
        elif "trait_change" not in wanted:
            events = events.exclude(sets_traits)
        events = _before(events, "timestamp", after).order_by("-timestamp", "-id")
        candidates += [_event_entry(row, channels) for row in events[: limit + 1]]

    if wanted & {"consent"}:
        consents = ConsentChange.objects.filter(profile=profile)
        if channel:
            consents = consents.filter(channel=channel)
        for change in _before(consents, "at", after).order_by("-at", "-id")[: limit + 1]:
            candidates.append(
                TimelineEntry(
                    kind="consent",
                    id=change.pk,
                    at=change.at,
                    channel=change.channel,
                    title=gettext("%(channel)s, %(purpose)s: %(status)s")
                    % {
                        "channel": _choice_label(ConsentChannel, change.channel),
                        "purpose": _choice_label(ConsentPurpose, change.purpose),
                        "status": _choice_label(ConsentStatus, change.status),
                    },
                    data={"consent": change},
                )
            )

    if "trait_change" in wanted and not channel and not type and not event:
        # People's edits, on this profile and on those merged into it (few: no paging
        # of their own; the cursor cuts them with the rest).
        edits = TraitEdit.objects.filter(profile_id__in=profile_family_ids(profile_id=profile.pk))
        for edit in _before(edits, "at", after).order_by("-at", "-id")[: limit + 1]:
            candidates.append(
                TimelineEntry(
                    kind="trait_change",
                    id=edit.pk,
                    at=edit.at,
                    channel="",
                    title=f"Changed by {edit.actor_label}: " + ", ".join(sorted(edit.changes)),
                    data={"trait_edit": edit},
                )
            )

    for (kinds, _name), entries in _TIMELINE_SOURCES.items():
        if wanted & set(kinds):
            candidates += entries(workspace, profile, wanted, channel)

    if after is not None:
        candidates = [c for c in candidates if c.key < after]
    candidates.sort(key=lambda c: c.key, reverse=True)
    page = candidates[:limit]
    more = len(candidates) > limit
    return TimelinePage(items=page, next_cursor=_cursor_encode(page[-1]) if more else None)


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
        message=gettext("No account with id %(pk)s in this workspace"),
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


def account_timeline_page(
    *, workspace: Workspace, account_id: uuid.UUID, cursor: str | None = None, limit: int = 50
) -> TimelinePage:
    """The account's combined timeline (its people's events and its own group calls),
    newest first, paged by the same cursor as a customer's timeline."""
    if not 1 <= limit <= TIMELINE_MAX_LIMIT:
        raise InvalidInputError(
            gettext("must be 1 to %(timeline_max_limit)s")
            % {"timeline_max_limit": TIMELINE_MAX_LIMIT},
            field="limit",
        )
    after = _cursor_decode(cursor) if cursor else None
    account = account_get(workspace=workspace, account_id=account_id)
    members = AccountMember.objects.filter(account=account).values("profile_id")
    group_ids = [account.group_id, *account_merged_group_ids(account)]
    # Two index range scans (the members' events by profile and time, the group calls
    # by group id and time), each cut at the page, merged here: an OR between them
    # would walk the workspace's whole event index for a quiet account.
    found: dict = {}
    for events in (
        Event.objects.filter(workspace=workspace, profile_id__in=members),
        Event.objects.filter(workspace=workspace, group_id__in=group_ids),
    ):
        for row in _before(events, "timestamp", after).order_by("-timestamp", "-id")[: limit + 1]:
            found[row.pk] = row
    channels = dict(Source.objects.filter(workspace=workspace).values_list("id", "kind"))
    rows = sorted(found.values(), key=lambda e: (e.timestamp, e.pk), reverse=True)[: limit + 1]
    entries = [_event_entry(row, channels) for row in rows]
    page = entries[:limit]
    more = len(entries) > limit
    return TimelinePage(items=page, next_cursor=_cursor_encode(page[-1]) if more else None)


def consent_history(
    *, workspace: Workspace, profile_id: uuid.UUID, profile: Profile | None = None
) -> QuerySet[ConsentChange]:
    if profile is None or profile.workspace_id != workspace.pk or profile.pk != profile_id:
        profile = profile_get(workspace=workspace, profile_id=profile_id)
    return ConsentChange.objects.filter(profile=profile).order_by("-at", "-id")


def consent_current(
    *, workspace: Workspace, profile_id: uuid.UUID, profile: Profile | None = None
) -> list[dict]:
    """Per channel and purpose: the latest statement, or unknown; a granted consent past
    its expiry counts as unknown. `profile`: the profile already read, if any."""
    now = timezone.now()
    latest: dict[tuple[str, str], ConsentChange] = {}
    for change in consent_history(workspace=workspace, profile_id=profile_id, profile=profile):
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
    return object_get(
        account_merge_list(workspace=workspace),
        message=gettext("No account merge with id %(pk)s in this workspace"),
        pk=merge_id,
    )


# --- Saved views ---------------------------------------------------------------------


def saved_view_list(*, workspace: Workspace, user, list_name: str | None = None):
    """The views a person sees: the workspace's shared ones and their own private
    ones (an API token, without a person, sees the shared ones)."""
    views = SavedView.objects.filter(workspace=workspace)
    mine = Q(owner=user, shared=False) if user is not None else Q(pk__in=[])
    views = views.filter(Q(shared=True) | mine)
    if list_name is not None:
        views = views.filter(list=list_name)
    return views.order_by("list", "-shared", "name", "id")


def saved_view_get(*, workspace: Workspace, user, view_id: uuid.UUID) -> SavedView:
    """A view this person sees; another person's private view is not found."""
    return object_get(
        saved_view_list(workspace=workspace, user=user),
        message=gettext("No saved view with id %(pk)s in this workspace"),
        pk=view_id,
    )


def saved_view_default(*, workspace: Workspace, user, list_name: str) -> SavedView | None:
    if user is None:
        return None
    chosen = (
        SavedViewDefault.objects.filter(workspace=workspace, user=user, list=list_name)
        .select_related("view")
        .first()
    )
    if chosen is None or not (chosen.view.shared or chosen.view.owner_id == user.pk):
        return None
    return chosen.view


def saved_view_may_change(view: SavedView, *, user, can_share: bool) -> bool:
    """Its owner changes a private view; a shared one, anyone allowed to share."""
    if view.shared:
        return can_share
    return user is not None and view.owner_id == user.pk
