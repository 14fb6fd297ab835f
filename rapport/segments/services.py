"""Segments (dynamic and static) and their membership history, RFM scores and the
lifecycle stage of every customer.

Membership is kept fresh two ways: `segments_from_events` re-checks every dynamic
segment, and the lifecycle, for the customers a batch of events touched (the worker
runs it seconds after the events are committed), and `segments_refresh` re-checks
whole segments on a schedule for what time alone changes ("in the last 90 days")."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import (
    Case,
    Count,
    DateTimeField,
    IntegerField,
    Max,
    QuerySet,
    Sum,
    UUIDField,
    Value,
    When,
)
from django.utils import timezone
from django.utils.translation import gettext

from rapport.core.analytic import analytic_session
from rapport.core.bulk import (
    ids_temp_table,
    rows_in_table,
    rows_insert,
    rows_insert_select,
    tables_analyze,
)
from rapport.core.errors import ConflictError, InvalidInputError, PermissionDeniedError
from rapport.core.lookups import ValuesArray
from rapport.core.money import unconverted_read
from rapport.core.purchases import DEFAULT_VALUE_PROPERTIES, purchase_value
from rapport.identity.models import Identifier
from rapport.identity.normalize import normalize_email, normalize_phone
from rapport.identity.services import events_profiles_resolved
from rapport.ingest.models import Event
from rapport.profiles.models import Profile
from rapport.segments import rfm
from rapport.segments import rules as r
from rapport.segments.compiler import Context, rule_profiles, rule_q
from rapport.segments.conditions import Lifecycle
from rapport.segments.export import segment_export as segment_export  # callers use services
from rapport.segments.lifecycle import default_stages
from rapport.segments.listeners import lifecycle_changed, membership_changed
from rapport.segments.models import (
    LifecycleChange,
    LifecycleStage,
    LifecycleState,
    RfmScore,
    Segment,
    SegmentMembership,
)
from rapport.segments.money import rule_no_rate_today, rule_unconverted
from rapport.tenancy.commerce import (
    commerce_settings_get,
    commerce_settings_lock,
    money_rates_get,
)
from rapport.tenancy.models import Workspace
from rapport.tenancy.permissions import PII_READ
from rapport.tenancy.services import Actor, audit_log_record

WRITE_CHUNK = 10_000
# Planner statistics are refreshed after a write of this many rows or more.
ANALYZE_AFTER_ROWS = 10_000


# --- Rules ----------------------------------------------------------------------------


def segment_rule_check(
    *,
    workspace: Workspace,
    rule: Any,
    segment: Segment | None = None,
    field: str = "rule",
    can_see_pii: bool = True,
) -> r.Rule:
    """Parse the rule and check what it refers to: segments of this workspace, and no
    cycle back to `segment`. Without `can_see_pii` (the caller's role lacks `pii.read`),
    a condition on an email, a phone or an identifier is refused: its counts and
    samples would reveal, one `starts_with` at a time, the value masking hides."""
    parsed = r.rule_parse(rule, field=field)
    if not can_see_pii:
        rule_personal_refuse(parsed, field=field)
    refs = r.rule_segments(parsed)
    known: dict[str, Segment] = {}
    for ref in refs:
        try:
            ref_id = uuid.UUID(ref)
        except ValueError:
            raise InvalidInputError(
                gettext("segment %(ref)r is not a segment id") % {"ref": ref},
                field=f"{field}.segment",
            ) from None
        found = Segment.objects.filter(workspace=workspace, pk=ref_id).first()
        if found is None:
            raise InvalidInputError(
                gettext("there is no segment %(ref)s in this workspace") % {"ref": ref},
                field=f"{field}.segment",
            )
        known[ref] = found
    if segment is not None:
        for ref, found in known.items():
            path = _reaches(found, segment.pk)
            if path is not None:
                names = " -> ".join([segment.name, *path])
                raise InvalidInputError(
                    gettext("segment %(ref)s refers back to this one (%(names)s)")
                    % {"ref": ref, "names": names},
                    field=f"{field}.segment",
                )
    return parsed


def rule_personal_refuse(parsed: r.Rule, *, field: str = "rule") -> None:
    """PermissionDeniedError naming the first condition on personal data, if any."""
    found = r.rule_personal(parsed, field=field)
    if found:
        path, name = found[0]
        message = gettext(
            "%(path)s: a condition on %(name)r (personal data) needs the 'pii.read' "
            "permission; 'exists' and 'not_exists' are allowed"
        ) % {"path": path, "name": name}
        raise PermissionDeniedError(
            message,
            code="pii_condition",
            details=[
                {
                    "field": p,
                    "message": gettext("%(name)r holds personal data") % {"name": n},
                    "permission": PII_READ,
                }
                for p, n in found
            ],
        )


def _reaches(start: Segment, target: Any) -> list[str] | None:
    """The names on a chain of references from `start` to `target`, if there is one."""
    stack, seen = [(start, [start.name])], set()
    while stack:
        node, path = stack.pop()
        if node.pk == target:
            return path
        if node.pk in seen:
            continue
        seen.add(node.pk)
        for ref in node.depends_on:
            child = Segment.objects.filter(pk=ref).first()
            if child is not None:
                stack.append((child, [*path, child.name]))
    return None


# --- Segments -------------------------------------------------------------------------


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise InvalidInputError(gettext("name must be 1 to 200 characters"), field="name")
    return name


def _name_free(workspace: Workspace, name: str, exclude: Any = None) -> None:
    taken = Segment.objects.filter(workspace=workspace, name=name).exclude(pk=exclude).exists()
    if taken:
        raise ConflictError(
            gettext("a segment named %(name)r already exists") % {"name": name}, code="name_taken"
        )


def segment_create(
    *,
    workspace: Workspace,
    name: str,
    kind: str = Segment.Kind.DYNAMIC,
    rule: Any = None,
    description: str = "",
    actor: Actor,
    refresh: str = "queue",
    can_see_pii: bool = True,
) -> Segment:
    """A new segment. A dynamic one is filled by a worker (`refresh="queue"`), or at once
    (`"now"`, for the CLI and tests). `can_see_pii`: as `segment_rule_check`."""
    name = _clean_name(name)
    if kind not in Segment.Kind.values:
        raise InvalidInputError(gettext("kind must be dynamic or static"), field="kind")
    if len(description or "") > 5000:
        raise InvalidInputError(
            gettext("description is at most 5000 characters"), field="description"
        )
    parsed = None
    if kind == Segment.Kind.DYNAMIC:
        if rule is None:
            raise InvalidInputError(gettext("a dynamic segment needs a rule"), field="rule")
        parsed = segment_rule_check(workspace=workspace, rule=rule, can_see_pii=can_see_pii)
    elif rule not in (None, {}):
        raise InvalidInputError(gettext("a static segment has no rule"), field="rule")
    with transaction.atomic():
        _name_free(workspace, name)
        try:
            # A concurrent create of the same name loses on the unique constraint.
            with transaction.atomic():
                segment = Segment.objects.create(
                    workspace=workspace,
                    name=name,
                    description=description or "",
                    kind=kind,
                    rule=parsed.model_dump(by_alias=True, exclude_defaults=True) if parsed else {},
                    depends_on=r.rule_segments(parsed) if parsed else [],
                    timed=r.rule_timed(parsed) if parsed else False,
                    created_by=actor.label,
                )
        except IntegrityError:
            raise ConflictError(
                gettext("a segment named %(name)r already exists") % {"name": name},
                code="name_taken",
            ) from None
        audit_log_record(
            workspace=workspace,
            actor=actor,
            action="segment.create",
            target=segment,
            details={"name": name, "kind": kind},
        )
        if parsed is not None:
            _refresh_later(segment, refresh)
    return segment


def _refresh_later(segment: Segment, refresh: str) -> None:
    if refresh == "now":
        segment_refresh(segment=segment)
    elif refresh == "queue":
        from rapport.segments.tasks import segment_refresh as refresh_task

        refresh_task.enqueue(segment_id=str(segment.pk))


def segment_update(
    *,
    segment: Segment,
    actor: Actor,
    name: str | None = None,
    description: str | None = None,
    rule: Any = None,
    refresh: str = "queue",
    can_see_pii: bool = True,
) -> Segment:
    workspace = segment.workspace
    changes: dict[str, Any] = {}
    if name is not None:
        name = _clean_name(name)
        _name_free(workspace, name, exclude=segment.pk)
        changes["name"] = name
    if description is not None:
        if len(description) > 5000:
            raise InvalidInputError(
                gettext("description is at most 5000 characters"), field="description"
            )
        changes["description"] = description
    parsed = None
    if rule is not None:
        if segment.kind != Segment.Kind.DYNAMIC:
            raise InvalidInputError(gettext("a static segment has no rule"), field="rule")
        parsed = segment_rule_check(
            workspace=workspace, rule=rule, segment=segment, can_see_pii=can_see_pii
        )
        changes["rule"] = parsed.model_dump(by_alias=True, exclude_defaults=True)
        changes["depends_on"] = r.rule_segments(parsed)
        changes["timed"] = r.rule_timed(parsed)
    with transaction.atomic():
        for key, value in changes.items():
            setattr(segment, key, value)
        segment.save()
        audit_log_record(
            workspace=workspace,
            actor=actor,
            action="segment.update",
            target=segment,
            details={"changed": sorted(changes)},
        )
        if parsed is not None:
            _refresh_later(segment, refresh)
    return segment


def segment_delete(*, segment: Segment, actor: Actor) -> None:
    users = [
        s.name
        for s in Segment.objects.filter(workspace_id=segment.workspace_id).exclude(pk=segment.pk)
        if str(segment.pk) in s.depends_on
    ]
    stages = [
        s.name
        for s in LifecycleStage.objects.filter(workspace_id=segment.workspace_id)
        if str(segment.pk) in r.rule_segments(r.rule_parse(s.rule or {"all": []}))
    ]
    if users or stages:
        raise ConflictError(
            gettext("segment %(name)r is used by: %(users)s")
            % {"name": segment.name, "users": ", ".join(users + stages)},
            code="segment_in_use",
        )
    with transaction.atomic():
        audit_log_record(
            workspace=segment.workspace,
            actor=actor,
            action="segment.delete",
            target=segment,
            details={"name": segment.name, "size": segment.size},
        )
        SegmentMembership.objects.filter(segment=segment).delete()
        segment.delete()


def _membership_apply(
    segment: Segment, matching: QuerySet, now: datetime, profile_ids: Sequence[Any] | None
) -> tuple[int, int]:
    """Customers in `matching` and not in the segment enter it; members not in
    `matching` leave. The rule is evaluated once, into a temporary table that both
    changes read. Returns (entered, left)."""
    current = SegmentMembership.objects.filter(segment=segment, left_at__isnull=True)
    scope = current if profile_ids is None else current.filter(profile_id__any=profile_ids)
    with ids_temp_table(matching) as matched:
        left = rows_in_table(scope, "profile", matched, present=False).update(left_at=now)
        entering = (
            rows_in_table(Profile.objects.all(), "id", matched)
            .exclude(pk__in=current.values("profile_id"))
            .annotate(
                m_workspace=Value(segment.workspace_id, output_field=UUIDField()),
                m_segment=Value(segment.pk, output_field=UUIDField()),
                m_entered=Value(now, output_field=DateTimeField()),
            )
            .values_list("m_workspace", "m_segment", "pk", "m_entered")
        )
        entered = rows_insert_select(
            SegmentMembership, ["workspace", "segment", "profile", "entered_at"], entering
        )
    if entered + left >= ANALYZE_AFTER_ROWS:
        tables_analyze(SegmentMembership)
    return entered, left


def segment_refresh(
    *, segment: Segment, now: datetime | None = None, profile_ids: Sequence[Any] | None = None
) -> dict[str, Any]:
    """Bring a dynamic segment's membership up to date, for everyone or for the given
    customers. Concurrent refreshes of one segment queue behind each other."""
    if segment.kind != Segment.Kind.DYNAMIC:
        return {"entered": 0, "left": 0, "size": segment.size}
    now = now or timezone.now()
    started = time.perf_counter()
    parsed = r.rule_parse(segment.rule)
    with transaction.atomic():
        Segment.objects.select_for_update().filter(pk=segment.pk).exists()
        analytic_session()
        ctx = Context(workspace_id=segment.workspace_id, now=now, profile_ids=profile_ids)
        entered, left = _membership_apply(segment, rule_profiles(parsed, ctx), now, ctx.profile_ids)
        membership_changed(segment=segment, now=now, entered=entered, left=left)
        if profile_ids is None:
            segment.size = SegmentMembership.objects.filter(
                segment=segment, left_at__isnull=True
            ).count()
            segment.refreshed_at = now
            segment.refresh_seconds = time.perf_counter() - started
            fields = ["size", "refreshed_at", "refresh_seconds", "updated_at"]
        else:
            segment.size = max(0, segment.size + entered - left)
            fields = ["size", "updated_at"]
        if entered or left or profile_ids is None:
            segment.save(update_fields=fields)
        # A full refresh says what its money conditions left out (a batch does not ask).
        unconverted = rule_unconverted(ctx) if profile_ids is None else []
    result: dict[str, Any] = {"entered": entered, "left": left, "size": segment.size}
    if unconverted or rule_no_rate_today(ctx):
        result["unconverted"] = [u.to_json() for u in unconverted]
        result["no_rate_today"] = rule_no_rate_today(ctx)
    return result


def _dependency_order(segments: list[Segment]) -> list[Segment]:
    by_id = {str(s.pk): s for s in segments}
    ordered: list[Segment] = []
    done: set[str] = set()

    def visit(segment: Segment, trail: frozenset) -> None:
        key = str(segment.pk)
        if key in done or key in trail:
            return
        for ref in segment.depends_on:
            if ref in by_id:
                visit(by_id[ref], trail | {key})
        done.add(key)
        ordered.append(segment)

    for segment in segments:
        visit(segment, frozenset())
    return ordered


def segments_refresh(
    *,
    workspace_id: Any,
    now: datetime | None = None,
    profile_ids: Sequence[Any] | None = None,
    timed_only: bool = False,
) -> dict[str, dict]:
    """Every dynamic segment of the workspace, those it refers to first."""
    segments = list(Segment.objects.filter(workspace_id=workspace_id, kind=Segment.Kind.DYNAMIC))
    if timed_only:
        segments = [s for s in segments if s.timed]
    now = now or timezone.now()
    return {
        str(s.pk): segment_refresh(segment=s, now=now, profile_ids=profile_ids)
        for s in _dependency_order(segments)
    }


def segments_from_events(workspace_id: Any, events: Iterable[Any]) -> int:
    """The `events_dispatch` consumer: re-check the lifecycle stage and every dynamic
    segment for the customers these events belong to (as resolution left them)."""
    events = list(events)
    ids = [e.id for e in events]
    if not ids:
        return 0
    has_segments = Segment.objects.filter(
        workspace_id=workspace_id, kind=Segment.Kind.DYNAMIC
    ).exists()
    # Resolution in this run (the usual case) says where the events went; else (a run
    # of this consumer alone: a retry, a replay) the events do.
    resolved = events_profiles_resolved(ids)
    if resolved is not None:
        # Events stored with their customer already known and no identifier (a message's
        # events, rapport/channels/events.py) are not resolution's: their own profile.
        profile_ids = sorted(
            set(resolved.values())
            | {e.profile_id for e in events if e.id not in resolved and e.profile_id}
        )
    else:
        profile_ids = sorted(
            set(
                Event.objects.filter(pk__any=ids, profile_id__isnull=False).values_list(
                    "profile_id", flat=True
                )
            )
        )
    if not profile_ids:
        return 0
    # Profiles these customers absorbed leave every segment and stage with them.
    profile_ids += list(
        Profile.objects.filter(
            workspace_id=workspace_id, merged_into_id__any=profile_ids
        ).values_list("pk", flat=True)
    )
    # One array for every query that names them.
    profile_ids = ValuesArray(profile_ids)
    now = timezone.now()
    lifecycle_refresh(workspace_id=workspace_id, now=now, profile_ids=profile_ids)
    if has_segments:
        segments_refresh(workspace_id=workspace_id, now=now, profile_ids=profile_ids)
    return len(profile_ids)


def _profiles_by_identifier(workspace: Workspace, values: list[str]) -> tuple[set, list[str]]:
    """Customers named by profile id, user id, email or phone; and the values that named
    nobody."""
    found: set = set()
    unknown: list[str] = []
    ids = {}
    for value in values:
        try:
            ids[value] = uuid.UUID(value)
        except ValueError:
            continue
    live = Profile.objects.filter(workspace=workspace, merged_into__isnull=True)
    by_pk = set(live.filter(pk__in=list(ids.values())).values_list("pk", flat=True))
    keys: dict[str, list[str]] = {}
    for value in values:
        if ids.get(value) in by_pk:
            found.add(ids[value])
            continue
        for candidate in {value, normalize_email(value) or "", normalize_phone(value) or ""}:
            if candidate:
                keys.setdefault(candidate, []).append(value)
    named = set()
    for start in range(0, len(keys), WRITE_CHUNK):
        chunk = list(keys)[start : start + WRITE_CHUNK]
        for profile_id, key in Identifier.objects.filter(
            workspace=workspace, value__in=chunk, kind__in=["user_id", "email", "phone"]
        ).values_list("profile_id", "value"):
            found.add(profile_id)
            named.update(keys[key])
    unknown = [v for v in values if v not in named and ids.get(v) not in by_pk]
    return found, unknown


MAX_UPLOAD_VALUES = 1_000_000


def segment_members_add(*, segment: Segment, values: list[str], actor: Actor) -> dict[str, Any]:
    """Add customers to a static segment by profile id, user id, email or phone."""
    if segment.kind != Segment.Kind.STATIC:
        raise InvalidInputError(gettext("only a static segment takes a list"), field="segment")
    values = [v.strip() for v in values if isinstance(v, str) and v.strip()]
    if not values:
        raise InvalidInputError(gettext("the list holds no identifiers"), field="file")
    if len(values) > MAX_UPLOAD_VALUES:
        raise InvalidInputError(
            gettext("a list holds at most %(n)s identifiers") % {"n": MAX_UPLOAD_VALUES},
            field="file",
        )
    found, unknown = _profiles_by_identifier(segment.workspace, values)
    now = timezone.now()
    current = SegmentMembership.objects.filter(segment=segment, left_at__isnull=True)
    with transaction.atomic():
        Segment.objects.select_for_update().filter(pk=segment.pk).exists()
        before = current.count()
        ordered = sorted(found)
        for start in range(0, len(ordered), WRITE_CHUNK):
            # Those already in the list collide with the one-current-stay index: skipped.
            SegmentMembership.objects.bulk_create(
                [
                    SegmentMembership(
                        workspace_id=segment.workspace_id,
                        segment=segment,
                        profile_id=pk,
                        entered_at=now,
                    )
                    for pk in ordered[start : start + WRITE_CHUNK]
                ],
                ignore_conflicts=True,
            )
        segment.size = current.count()
        segment.refreshed_at = now
        segment.save(update_fields=["size", "refreshed_at", "updated_at"])
        added = segment.size - before
        membership_changed(segment=segment, now=now, entered=added, left=0)
        audit_log_record(
            workspace=segment.workspace,
            actor=actor,
            action="segment.members.add",
            target=segment,
            details={"added": added, "unknown": len(unknown)},
        )
    return {
        "added": added,
        "already": len(found) - added,
        "unknown": unknown[:100],
        "unknown_count": len(unknown),
        "size": segment.size,
    }


def segment_members_remove(
    *, segment: Segment, profile_ids: Sequence[Any], actor: Actor
) -> dict[str, Any]:
    """Take customers (by profile id) out of a static segment: their stay ends now (the
    history keeps it). Ids that are not current members are counted, not an error."""
    if segment.kind != Segment.Kind.STATIC:
        raise InvalidInputError(
            gettext("only a static segment's members are removed by hand"), field="segment"
        )
    wanted = list(dict.fromkeys(profile_ids))
    if not wanted:
        raise InvalidInputError(gettext("tick at least one customer"), field="ids")
    if len(wanted) > MAX_UPLOAD_VALUES:
        raise InvalidInputError(
            gettext("a list holds at most %(n)s identifiers") % {"n": MAX_UPLOAD_VALUES},
            field="ids",
        )
    now = timezone.now()
    current = SegmentMembership.objects.filter(segment=segment, left_at__isnull=True)
    with transaction.atomic():
        Segment.objects.select_for_update().filter(pk=segment.pk).exists()
        removed = 0
        for start in range(0, len(wanted), WRITE_CHUNK):
            removed += current.filter(profile_id__in=wanted[start : start + WRITE_CHUNK]).update(
                left_at=now
            )
        membership_changed(segment=segment, now=now, entered=0, left=removed)
        segment.size = current.count()
        segment.refreshed_at = now
        segment.save(update_fields=["size", "refreshed_at", "updated_at"])
        audit_log_record(
            workspace=segment.workspace,
            actor=actor,
            action="segment.members.remove",
            target=segment,
            details={"removed": removed, "not_members": len(wanted) - removed},
        )
    return {"removed": removed, "not_members": len(wanted) - removed, "size": segment.size}


def segment_snapshot(*, segment: Segment, name: str, actor: Actor) -> Segment:
    """A static segment holding the segment's current members."""
    snapshot = segment_create(
        workspace=segment.workspace,
        name=name,
        kind=Segment.Kind.STATIC,
        description=f"Snapshot of {segment.name} taken {timezone.now():%Y-%m-%d %H:%M} UTC",
        actor=actor,
    )
    now = timezone.now()
    with transaction.atomic():
        members = (
            SegmentMembership.objects.filter(segment=segment, left_at__isnull=True)
            .annotate(
                m_workspace=Value(segment.workspace_id, output_field=UUIDField()),
                m_segment=Value(snapshot.pk, output_field=UUIDField()),
                m_entered=Value(now, output_field=DateTimeField()),
            )
            .values_list("m_workspace", "m_segment", "profile_id", "m_entered")
        )
        rows_insert_select(
            SegmentMembership, ["workspace", "segment", "profile", "entered_at"], members
        )
        snapshot.size = SegmentMembership.objects.filter(
            segment=snapshot, left_at__isnull=True
        ).count()
        snapshot.refreshed_at = now
        snapshot.save(update_fields=["size", "refreshed_at", "updated_at"])
    return snapshot


MAX_STATIC_MEMBERS = 2_000_000


def segment_from_profiles(
    *,
    workspace: Workspace,
    name: str,
    profile_ids: Sequence[Any],
    description: str = "",
    actor: Actor,
) -> Segment:
    """A static segment of these customers (the live ones of the workspace among them),
    created with its members in one transaction: the customers behind a number on a
    dashboard, saved to act on."""
    if len(profile_ids) > MAX_STATIC_MEMBERS:
        raise InvalidInputError(
            gettext("a static segment holds at most %(max_static_members)s customers")
            % {"max_static_members": MAX_STATIC_MEMBERS},
            field="profile_ids",
        )
    ids = []
    for value in profile_ids:
        try:
            ids.append(uuid.UUID(str(value)))
        except ValueError:
            raise InvalidInputError(
                gettext("%(value)r is not a customer id") % {"value": str(value)[:60]},
                field="profile_ids",
            ) from None
    now = timezone.now()
    with transaction.atomic():
        segment = segment_create(
            workspace=workspace,
            name=name,
            kind=Segment.Kind.STATIC,
            description=description,
            actor=actor,
        )
        live = Profile.objects.filter(
            workspace=workspace, merged_into__isnull=True, pk__any=ids
        ).values_list("pk", flat=True)
        SegmentMembership.objects.bulk_create(
            [
                SegmentMembership(
                    workspace=workspace, segment=segment, profile_id=pk, entered_at=now
                )
                for pk in live.iterator(chunk_size=10_000)
            ],
            batch_size=5000,
        )
        segment.size = SegmentMembership.objects.filter(segment=segment).count()
        segment.refreshed_at = now
        segment.save(update_fields=["size", "refreshed_at", "updated_at"])
    return segment


# --- RFM ------------------------------------------------------------------------------


def rfm_refresh(*, workspace_id: Any, now: datetime | None = None) -> dict[str, Any]:
    """Recompute every buyer's RFM scores and cell from the workspace's purchase
    events: recency from the last purchase, frequency the number of purchases, monetary
    their summed value (the first numeric value property of each) in the reporting
    currency. A purchase in a currency without a rate on its day counts for recency and
    frequency but adds nothing to monetary; the answer's `unconverted` says how many."""
    now = now or timezone.now()
    started = time.perf_counter()
    workspace = Workspace.objects.get(pk=workspace_id)
    config = commerce_settings_get(workspace=workspace)
    rates = money_rates_get(workspace=workspace)
    value = purchase_value(config.value_properties or DEFAULT_VALUE_PROPERTIES)
    converted = rates.converted(value)

    with transaction.atomic():
        commerce_settings_lock(workspace=workspace)
        purchases = Event.objects.filter(
            workspace_id=workspace_id,
            event=config.purchase_event,
            profile_id__isnull=False,
            timestamp__lte=now,
        )
        rows = list(
            purchases.annotate(_converted=converted)
            .values("profile_id")
            .annotate(
                last=Max("timestamp"),
                n=Count("id"),
                total=Sum("_converted"),
                # Purchases with a value in the reporting currency: fewer than n when
                # some had no number or no exchange rate.
                valued=Count("_converted"),
            )
            .values_list("profile_id", "last", "n", "total", "valued")
        )
        unconverted = []
        if any(row[4] < row[2] for row in rows):
            unconverted = unconverted_read(purchases, value, rates)
        RfmScore.objects.filter(workspace_id=workspace_id).delete()
        if rows:
            recency = np.array([(now - row[1]).total_seconds() / 86400 for row in rows])
            frequency = np.array([row[2] for row in rows], dtype=float)
            monetary = np.array([float(row[3] or 0) for row in rows])
            scores_r, scores_f, scores_m, cells = rfm.rfm_score(recency, frequency, monetary)
            for start in range(0, len(rows), WRITE_CHUNK):
                rows_insert(
                    RfmScore,
                    [
                        {
                            "profile_id": rows[i][0],
                            "workspace_id": workspace_id,
                            "last_purchase_at": rows[i][1],
                            "recency_days": int(recency[i]),
                            "frequency": int(frequency[i]),
                            "monetary": Decimal(str(round(monetary[i], 2))),
                            "currency": rates.reporting,
                            "r": int(scores_r[i]),
                            "f": int(scores_f[i]),
                            "m": int(scores_m[i]),
                            "cell": cells[i],
                            "computed_at": now,
                        }
                        for i in range(start, min(start + WRITE_CHUNK, len(rows)))
                    ],
                    conflict=["profile_id"],
                )
        tables_analyze(RfmScore)
    report = [u.to_json() for u in unconverted]
    # Kept where every process reads it (the cache, as the analytics' data version is).
    cache.set(f"segments:rfm:unconverted:{workspace_id}", report, timeout=None)
    return {
        "buyers": len(rows),
        "currency": rates.reporting,
        "unconverted": report,
        "seconds": round(time.perf_counter() - started, 3),
    }


def rfm_unconverted(*, workspace: Workspace) -> list[dict[str, Any]]:
    """What the last RFM refresh left out of monetary values (purchases in a currency
    without a rate on their day), by currency, for the RFM page's warning."""
    return cache.get(f"segments:rfm:unconverted:{workspace.pk}") or []


# --- Lifecycle ------------------------------------------------------------------------


def lifecycle_stages_ensure(*, workspace_id: Any) -> list[LifecycleStage]:
    """The workspace's stages in order, the default set written on first use."""
    stages = list(LifecycleStage.objects.filter(workspace_id=workspace_id).order_by("position"))
    if stages:
        return stages
    from rapport.segments.lifecycle import default_sub_stages

    workspace = Workspace.objects.get(pk=workspace_id)
    config = commerce_settings_get(workspace=workspace)
    with transaction.atomic():
        tops = {}
        for position, stage in enumerate(default_stages(config.purchase_event)):
            tops[stage["key"]], _ = LifecycleStage.objects.get_or_create(
                workspace_id=workspace_id,
                key=stage["key"],
                defaults={
                    "name": stage["name"],
                    "description": stage["description"],
                    "position": position * 10,
                    "rule": stage["rule"],
                },
            )
        subs = default_sub_stages(config.purchase_event, config.key_event)
        for parent_key, children in subs.items():
            for position, child in enumerate(children):
                LifecycleStage.objects.get_or_create(
                    workspace_id=workspace_id,
                    key=child["key"],
                    defaults={
                        "name": child["name"],
                        "description": child["description"],
                        "parent": tops[parent_key],
                        "position": position,
                        "rule": child["rule"],
                    },
                )
    return list(LifecycleStage.objects.filter(workspace_id=workspace_id).order_by("position"))


def _stage_rule_check(
    workspace: Workspace, rule: Any, field: str = "rule", can_see_pii: bool = True
) -> r.Rule:
    parsed = segment_rule_check(
        workspace=workspace, rule=rule, field=field, can_see_pii=can_see_pii
    )
    if any(isinstance(c, Lifecycle) for c in r.rule_walk(parsed)):
        raise InvalidInputError(
            gettext("a lifecycle stage cannot depend on the lifecycle stage"), field=field
        )
    return parsed


def lifecycle_stage_update(
    *,
    stage: LifecycleStage,
    actor: Actor,
    name: str | None = None,
    description: str | None = None,
    rule: Any = None,
    can_see_pii: bool = True,
) -> LifecycleStage:
    if name is not None:
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidInputError(gettext("name must be 1 to 100 characters"), field="name")
        stage.name = name
    if description is not None:
        stage.description = description[:5000]
    if rule is not None:
        parsed = _stage_rule_check(stage.workspace, rule, can_see_pii=can_see_pii)
        stage.rule = parsed.model_dump(by_alias=True, exclude_defaults=True)
    with transaction.atomic():
        stage.save()
        audit_log_record(
            workspace=stage.workspace,
            actor=actor,
            action="lifecycle.stage.update",
            target=stage,
            details={"key": stage.key, "name": stage.name},
        )
    return stage


def lifecycle_sub_stage_create(
    *,
    parent: LifecycleStage,
    key: str,
    name: str,
    rule: Any,
    actor: Actor,
    can_see_pii: bool = True,
) -> LifecycleStage:
    """A sub-stage of a stage: checked, in order of creation, before its stage."""
    from django.utils.text import slugify

    if parent.parent_id is not None:
        raise InvalidInputError(gettext("a sub-stage has no sub-stages"), field="parent")
    key = slugify(key or name).replace("-", "_")[:60]
    if not key:
        raise InvalidInputError(gettext("key must hold letters or digits"), field="key")
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidInputError(gettext("name must be 1 to 100 characters"), field="name")
    if LifecycleStage.objects.filter(workspace_id=parent.workspace_id, key=key).exists():
        raise ConflictError(
            gettext("a stage with key %(key)r already exists") % {"key": key}, code="key_taken"
        )
    parsed = _stage_rule_check(parent.workspace, rule, can_see_pii=can_see_pii)
    with transaction.atomic():
        last = parent.children.order_by("-position").first()
        stage = LifecycleStage.objects.create(
            workspace_id=parent.workspace_id,
            key=key,
            name=name,
            parent=parent,
            position=(last.position + 1) if last else 0,
            rule=parsed.model_dump(by_alias=True, exclude_defaults=True),
        )
        audit_log_record(
            workspace=parent.workspace,
            actor=actor,
            action="lifecycle.stage.create",
            target=stage,
            details={"key": key, "parent": parent.key},
        )
    return stage


def lifecycle_stage_delete(*, stage: LifecycleStage, actor: Actor) -> None:
    if stage.parent_id is None:
        raise InvalidInputError(
            gettext("only sub-stages can be deleted; rename a stage"), field="stage"
        )
    with transaction.atomic():
        audit_log_record(
            workspace=stage.workspace,
            actor=actor,
            action="lifecycle.stage.delete",
            target=stage,
            details={"key": stage.key},
        )
        stage.delete()


def _lifecycle_order(
    workspace_id: Any,
) -> tuple[list[tuple[str, str]], list[tuple[r.Rule, list[tuple[r.Rule, int]], int]]]:
    """The places a customer can be, (stage, sub-stage), each known by its index; and
    the stages in the order they are tried, each as (rule, [(sub-stage rule, index)],
    index of the stage without a sub-stage)."""
    stages = lifecycle_stages_ensure(workspace_id=workspace_id)
    tops = [s for s in stages if s.parent_id is None]
    children: dict[Any, list[LifecycleStage]] = {}
    for s in stages:
        if s.parent_id is not None:
            children.setdefault(s.parent_id, []).append(s)
    places: list[tuple[str, str]] = []
    plan = []
    for top in tops:
        subs = []
        for child in sorted(children.get(top.pk, []), key=lambda c: c.position):
            subs.append((r.rule_parse(child.rule or {"all": []}), len(places)))
            places.append((top.key, child.key))
        plan.append((r.rule_parse(top.rule or {"all": []}), subs, len(places)))
        places.append((top.key, ""))
    return places, plan


def _lifecycle_code(plan: list, ctx: Context) -> Case | Value:
    """The index of the customer's place: their stage is the first whose rule matches
    (the last takes the rest), and within it the first sub-stage that matches. Nested,
    so that a stage's rule is computed once, not again for each of its sub-stages."""

    def within(subs: list[tuple[r.Rule, int]], code: int) -> Case | Value:
        if not subs:
            return Value(code)
        whens = [When(rule_q(rule, ctx), then=Value(i)) for rule, i in subs]
        return Case(*whens, default=Value(code), output_field=IntegerField())

    *tried, (_, last_subs, last_code) = plan
    whens = [When(rule_q(rule, ctx), then=within(subs, code)) for rule, subs, code in tried]
    return Case(*whens, default=within(last_subs, last_code), output_field=IntegerField())


def lifecycle_refresh(
    *, workspace_id: Any, now: datetime | None = None, profile_ids: Sequence[Any] | None = None
) -> dict[str, Any]:
    """Place every customer (or the given ones) in the first stage whose rule matches
    (the last stage takes the rest) and the first of its sub-stages that matches,
    recording each change of stage or sub-stage."""
    now = now or timezone.now()
    started = time.perf_counter()
    places, plan = _lifecycle_order(workspace_id)
    workspace = Workspace.objects.get(pk=workspace_id)
    ctx = Context(workspace_id=workspace_id, now=now, profile_ids=profile_ids)
    profile_ids = ctx.profile_ids
    code = _lifecycle_code(plan, ctx)
    changed = 0
    with transaction.atomic():
        commerce_settings_lock(workspace=workspace)
        analytic_session()
        profiles = Profile.objects.filter(workspace_id=workspace_id, merged_into__isnull=True)
        states = LifecycleState.objects.filter(workspace_id=workspace_id)
        if profile_ids is not None:
            profiles = profiles.filter(pk__any=profile_ids)
            states = states.filter(profile_id__any=profile_ids)
        # A profile merged into another has no stage of its own.
        states.filter(profile__merged_into__isnull=False).delete()
        coded = profiles.annotate(code=code).order_by("pk").values_list("pk", "code")
        current = states.order_by("profile_id").values_list("profile_id", "stage", "sub_stage")
        moves: list[tuple[Any, str, str, str, str]] = []
        for pk, old, new in _merge_join(coded.iterator(5000), current.iterator(5000)):
            target = places[new] if new is not None else None
            if target is None:
                continue
            if old is None or (old[0], old[1]) != target:
                moves.append((pk, *(old or ("", "")), *target))
            if len(moves) >= WRITE_CHUNK:
                changed += _lifecycle_write(workspace_id, moves, now)
                moves = []
        changed += _lifecycle_write(workspace_id, moves, now)
        if changed >= ANALYZE_AFTER_ROWS:
            tables_analyze(LifecycleState, LifecycleChange)
    return {"changed": changed, "seconds": round(time.perf_counter() - started, 3)}


def _merge_join(left: Iterator[tuple], right: Iterator[tuple]) -> Iterator[tuple]:
    """(pk, (stage, sub) now or None, new code) for each profile in `left`, both
    sorted by pk."""
    right_row = next(right, None)
    for pk, code in left:
        while right_row is not None and str(right_row[0]) < str(pk):
            right_row = next(right, None)
        if right_row is not None and right_row[0] == pk:
            yield pk, (right_row[1], right_row[2]), code
        else:
            yield pk, None, code


def _lifecycle_write(workspace_id: Any, moves: list[tuple], now: datetime) -> int:
    if not moves:
        return 0
    ids = [m[0] for m in moves]
    LifecycleState.objects.filter(profile_id__any=ids).delete()
    rows_insert(
        LifecycleState,
        [
            {
                "profile_id": pk,
                "workspace_id": workspace_id,
                "stage": to_stage,
                "sub_stage": to_sub,
                "since": now,
            }
            for pk, _, _, to_stage, to_sub in moves
        ],
        conflict=["profile_id"],
    )
    rows_insert(
        LifecycleChange,
        [
            {
                "workspace_id": workspace_id,
                "profile_id": pk,
                "from_stage": from_stage,
                "from_sub_stage": from_sub,
                "to_stage": to_stage,
                "to_sub_stage": to_sub,
                "at": now,
            }
            for pk, from_stage, from_sub, to_stage, to_sub in moves
        ],
        conflict=["id"],
    )
    lifecycle_changed(workspace_id=workspace_id, moves=moves, now=now)
    return len(moves)
