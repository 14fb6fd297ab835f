"""The triggers that enrol customers because something about them changed or a time came,
rather than because of an event (`event`, the pipeline consumer) or a person (`manual`):

- `segment_entered` / `segment_left`: heard from segments (rapport/segments/listeners.py)
  in the transaction that changed the membership, whoever changed it (the refresh after
  events, the scheduled refresh, a static list edited). The stays that began (or ended)
  at that moment are the ones enrolled, in batches: each entry enrols once, because the
  entry happens once and the enrolment commits with it.
- `lifecycle_changed`: heard the same way, with the moves the lifecycle refresh wrote
  (LifecycleChange rows): a customer arriving at the stage (or at the sub-stage, when
  one is named) from anywhere else, the first placement included.
- `prediction`: a watcher around the scoring's rewrite of the scores
  (rapport/predictions/listeners.py): who met the condition before is kept in a
  temporary table, and only those who meet it after and did not before are enrolled.
  A rescore that leaves a customer above the threshold enrols nobody; nor does starting
  a journey enrol those already above it: they have to cross.
- `date_trait` and `schedule`: a periodic job (`time_triggers_run`, every minute) for
  each workspace. Both read the customer's zone as the `wait_until` step does: the
  `timezone` trait (IANA), else the workspace's contact policy zone.

  `date_trait` enrols customers whose date trait (an ISO date, `1990-05-17`; a
  timestamp's date part is read as written), moved by `offset_days`, is today in their
  zone and whose local time has passed `time`, once per occurrence: a `TriggerMark` per
  customer and day. The candidates come from SQL: the trait's month-day (or full date
  when not `yearly`) among the two or three dates that are "today" somewhere on Earth,
  the customers already marked left out; only those few are checked in Python against
  their zone. A 29 February date fires on 28 February in other years. The profiles are
  read only at the first run after some zone's clock reaches `time` (every 15 to 60
  minutes somewhere on Earth, marked too), not every minute: a date written after the
  customer's own `time` is picked up at the next such moment, still on their day.

  `schedule` enrols the members of its segment at each occurrence of its cron
  expression in their zone, once per occurrence: an occurrence is a moment in UTC (9:00
  in Paris and 9:00 in Berlin are the same moment, one mark), marked when enrolled, and
  the members whose zone puts the occurrence at that moment are enrolled. Only the
  latest occurrence of each zone counts, no earlier than the journey's start and at most
  a day late (a worker down for a week does not fire seven days at once).

Each journey is locked while its time trigger runs, and its marks are UNIQUE, so two
workers running the job at once enrol each customer once.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, date, datetime, time, timedelta
from datetime import timezone as fixed_zone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import croniter
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Substr
from django.utils import timezone
from django.utils.translation import gettext
from django_tasks import task

from rapport.channels.rules import policy_of
from rapport.core.bulk import ids_temp_table, rows_in_table
from rapport.core.schedule import schedule_register
from rapport.journeys.models import Journey, TriggerMark
from rapport.journeys.services import enrolments_create_many
from rapport.predictions import models as prediction_models
from rapport.predictions.listeners import scores_watcher_register
from rapport.profiles.models import Profile
from rapport.segments.listeners import lifecycle_listener_register, membership_listener_register
from rapport.segments.models import (
    LifecycleStage,
    LifecycleState,
    Segment,
    SegmentMembership,
)

# Customers enrolled per call of the engine.
BATCH = 5000
# The date trait, schedule: how late an occurrence may still fire.
LATE_AT_MOST = timedelta(days=1)
SEGMENT_TYPES = ("segment_entered", "segment_left")
TIME_TYPES = ("date_trait", "schedule")


def triggers_register() -> None:
    """Called from the journeys app's ready(): the listeners and the periodic job."""
    membership_listener_register(name="journeys", listener=segment_membership_heard)
    lifecycle_listener_register(name="journeys", listener=lifecycle_changes_heard)
    scores_watcher_register(name="journeys", watcher=scores_crossings_watch)
    schedule_register(
        "journeys.time_triggers",
        every_seconds=lambda: getattr(settings, "RAPPORT_JOURNEYS_TRIGGERS_SECONDS", 60),
        enqueue=_time_triggers_enqueue,
    )


def _time_triggers_enqueue(workspace_id: str) -> None:
    # A workspace without a running date or schedule journey costs a query, not a task.
    if _active(workspace_id, TIME_TYPES).exists():
        time_triggers_due.enqueue(workspace_id=workspace_id)


# --- enrolling ------------------------------------------------------------------------


def _active(workspace_id: Any, types: Sequence[str]) -> QuerySet:
    # The partial index on (workspace, trigger_type, ...) of the active journeys.
    return Journey.objects.filter(
        workspace_id=workspace_id, status=Journey.Status.ACTIVE, trigger_type__in=list(types)
    )


def _chunks(ids: Iterable[Any], size: int = BATCH) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for pk in ids:
        chunk.append(pk)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _enrol(journey: Any, profile_ids: Iterable[Any], now: datetime) -> int:
    """Enrol in batches; the engine applies the re-entry rule and the holdout."""
    enrolled = 0
    for chunk in _chunks(profile_ids):
        enrolled += len(enrolments_create_many(journey=journey, profile_ids=chunk, now=now))
    return enrolled


# --- segment_entered / segment_left ---------------------------------------------------


def segment_membership_heard(*, segment: Any, now: datetime, entered: int, left: int) -> None:
    """Customers entered or left `segment` at `now` (in that change's transaction)."""
    types = [t for t, n in zip(SEGMENT_TYPES, (entered, left), strict=True) if n]
    journeys = _active(segment.workspace_id, types).filter(trigger__segment_id=str(segment.pk))
    for journey in journeys:
        stays = SegmentMembership.objects.filter(segment=segment)
        if journey.trigger_type == "segment_entered":
            stays = stays.filter(entered_at=now, left_at__isnull=True)
        else:
            stays = stays.filter(left_at=now)
        ids = stays.order_by("profile_id").values_list("profile_id", flat=True)
        _enrol(journey, ids.iterator(chunk_size=BATCH), now)


# --- lifecycle_changed ----------------------------------------------------------------


def lifecycle_changes_heard(*, workspace_id: Any, moves: Sequence[tuple], now: datetime) -> None:
    """`moves`: (profile_id, from_stage, from_sub_stage, to_stage, to_sub_stage)."""
    for journey in _active(workspace_id, ["lifecycle_changed"]):
        stage = journey.trigger.get("stage")
        sub = journey.trigger.get("sub_stage")
        if sub:
            ids = [
                m[0] for m in moves if (m[3], m[4]) == (stage, sub) and (m[1], m[2]) != (stage, sub)
            ]
        else:
            ids = [m[0] for m in moves if m[3] == stage and m[1] != stage]
        if ids:
            _enrol(journey, ids, now)


# --- prediction -----------------------------------------------------------------------

# model -> field -> (score model's name in rapport.predictions.models, its column).
SCORE_FIELDS: dict[str, dict[str, tuple[str, str]]] = {
    "churn": {"risk": ("ChurnScore", "probability"), "probability": ("ChurnScore", "probability")},
    "clv": {
        "clv": ("ClvScore", "clv"),
        "p_alive": ("ClvScore", "p_alive"),
        "expected_purchases_30": ("ClvScore", "expected_purchases_30"),
        "expected_purchases_90": ("ClvScore", "expected_purchases_90"),
        "expected_purchases_365": ("ClvScore", "expected_purchases_365"),
        "expected_order_value": ("ClvScore", "expected_order_value"),
    },
}
OPS = ("gt", "gte", "lt", "lte")


def _score_condition(trigger: dict) -> tuple[Any, Q] | None:
    """(the score model, the condition on it) a prediction trigger names, or None."""
    found = SCORE_FIELDS.get(trigger.get("model", ""), {}).get(trigger.get("field", ""))
    op, value = trigger.get("op"), trigger.get("value")
    if found is None or op not in OPS or not isinstance(value, int | float):
        return None
    model_name, column = found
    return getattr(prediction_models, model_name), Q(**{f"{column}__{op}": value})


@contextmanager
def scores_crossings_watch(*, workspace_id: Any, kind: str, now: datetime) -> Iterator[None]:
    """Around a rewrite of the workspace's `kind` scores: enrol who crossed into each
    active prediction journey's condition."""
    journeys = []
    for journey in _active(workspace_id, ["prediction"]):
        if journey.trigger.get("model") == kind:
            found = _score_condition(journey.trigger)
            if found is not None:
                journeys.append((journey, *found))
    if not journeys:
        yield
        return
    with ExitStack() as stack:
        before: dict[str, str] = {}
        for _, model, condition in journeys:
            key = str(condition)
            if key not in before:
                scores = model.objects.filter(workspace_id=workspace_id).filter(condition)
                before[key] = stack.enter_context(ids_temp_table(scores))
        yield
        for journey, model, condition in journeys:
            scores = model.objects.filter(workspace_id=workspace_id).filter(condition)
            crossed = rows_in_table(scores, "profile", before[str(condition)], present=False)
            ids = crossed.order_by("profile_id").values_list("profile_id", flat=True)
            _enrol(journey, list(ids), now)


# --- time: date_trait and schedule ----------------------------------------------------


def _zone(name: object) -> ZoneInfo | None:
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return None
    return None


def _fallback_zone(workspace_id: Any) -> ZoneInfo:
    """The workspace's contact policy zone (as quiet hours and `wait_until` read it)."""
    return _zone(policy_of(workspace_id).timezone) or ZoneInfo("UTC")


@lru_cache(maxsize=1)
def _zone_names() -> tuple[str, ...]:
    return tuple(sorted(available_timezones()))


def _hhmm(value: Any) -> time:
    hours, minutes = str(value or "09:00").split(":")
    return time(int(hours), int(minutes))


def _trait_date_for(day: date, offset_days: int) -> date:
    """The trait's date that fires on `day` (offset -14: 14 days before the date)."""
    return day - timedelta(days=offset_days)


def _month_days(target: date) -> list[str]:
    """What a yearly trait's "MM-DD" is to fire for `target`: 29 February fires on
    28 February in the years without one."""
    found = [f"{target:%m-%d}"]
    if target.month == 2 and target.day == 28 and not calendar.isleap(target.year):
        found.append("02-29")
    return found


def _marks_prune(journey: Any, now: datetime) -> None:
    """Marks only matter while their occurrence could still fire (a day late at most,
    a local day ahead or behind UTC): older ones go."""
    TriggerMark.objects.filter(journey=journey, at__lt=now - 3 * LATE_AT_MOST).delete()


def _date_trait_run(journey: Any, now: datetime, fallback: ZoneInfo) -> int:
    trigger = journey.trigger
    trait = trigger["trait"]
    offset = int(trigger.get("offset_days") or 0)
    at = _hhmm(trigger.get("time"))
    yearly = trigger.get("yearly", True)
    # Someone becomes due only when, somewhere, the clock reaches `time`: the profiles
    # are read at the first run after each such moment, not every minute.
    moments = _previous_occurrences(f"{at.minute} {at.hour} * * *", now, now - LATE_AT_MOST)
    scans = {f"scan:{moment.isoformat()}" for moment in moments}
    scanned = TriggerMark.objects.filter(journey=journey, profile__isnull=True)
    if not scans - set(scanned.filter(key__in=scans).values_list("key", flat=True)):
        return 0
    _marks_prune(journey, now)
    TriggerMark.objects.bulk_create(
        [
            TriggerMark(workspace_id=journey.workspace_id, journey=journey, key=key, at=now)
            for key in sorted(scans)
        ],
        ignore_conflicts=True,
    )
    utc_today = now.astimezone(UTC).date()
    # Somewhere on Earth (UTC-12 to UTC+14) it is one of these days.
    days = [utc_today + timedelta(days=d) for d in (-1, 0, 1)]
    targets = {day: _trait_date_for(day, offset) for day in days}
    value = Substr(Cast(KeyTextTransform(trait, "traits"), TextField()), 1, 10)
    if yearly:
        wanted = {md for target in targets.values() for md in _month_days(target)}
        match = Q(_md__in=sorted(wanted))
    else:
        match = Q(_value__in=sorted(t.isoformat() for t in targets.values()))
    marked = TriggerMark.objects.filter(
        journey=journey, profile=OuterRef("pk"), key__in=[d.isoformat() for d in days]
    )
    candidates = (
        Profile.objects.filter(workspace_id=journey.workspace_id, merged_into__isnull=True)
        .annotate(_value=value, _md=Substr(value, 6, 5))
        .filter(match)
        .exclude(Exists(marked))
        .values_list("pk", KeyTextTransform("timezone", "traits"), "_value")
    )
    due: dict[Any, str] = {}
    for pk, zone_name, trait_value in candidates.iterator(chunk_size=BATCH):
        local = now.astimezone(_zone(zone_name) or fallback)
        day = local.date()
        target = targets.get(day)
        if target is None or local.time() < at:
            continue
        fires = (
            trait_value[5:10] in _month_days(target)
            if yearly
            else trait_value == target.isoformat()
        )
        if fires:
            due[pk] = day.isoformat()
    if not due:
        return 0
    TriggerMark.objects.bulk_create(
        [
            TriggerMark(
                workspace_id=journey.workspace_id, journey=journey, profile_id=pk, key=key, at=now
            )
            for pk, key in due.items()
        ],
        batch_size=BATCH,
        ignore_conflicts=True,
    )
    return _enrol(journey, sorted(due), now)


def _previous_occurrences(cron: str, now: datetime, since: datetime) -> dict[datetime, list[str]]:
    """The latest occurrence of `cron` in each zone, as a UTC moment, for those at or
    after `since`: {moment: [zone names]}. Zones whose offset stayed the same over the
    last day share one computation (a fixed offset); the few that changed (a daylight
    saving switch) are computed alone."""
    then = now - LATE_AT_MOST - timedelta(hours=1)
    groups: dict[tuple, list[str]] = {}
    for name in _zone_names():
        zone = ZoneInfo(name)
        offsets = (now.astimezone(zone).utcoffset(), then.astimezone(zone).utcoffset())
        key = offsets if offsets[0] == offsets[1] else (name,)
        groups.setdefault(key, []).append(name)
    found: dict[datetime, list[str]] = {}
    for key, names in groups.items():
        zone = fixed_zone(key[0]) if len(key) == 2 else ZoneInfo(names[0])
        # From a second on: an occurrence at `now` itself is due now.
        start = (now + timedelta(seconds=1)).astimezone(zone)
        previous = croniter(cron, start).get_prev(datetime).astimezone(UTC)
        if since <= previous <= now:
            found.setdefault(previous, []).extend(names)
    return found


def _schedule_run(journey: Any, now: datetime, fallback: ZoneInfo) -> int:
    trigger = journey.trigger
    segment = Segment.objects.filter(
        workspace_id=journey.workspace_id, pk=trigger.get("segment_id")
    ).first()
    if segment is None:
        return 0
    since = max(journey.started_at or now, now - LATE_AT_MOST)
    occurrences = _previous_occurrences(trigger["cron"], now, since)
    if not occurrences:
        return 0
    keys = {moment: moment.isoformat() for moment in occurrences}
    done = set(
        TriggerMark.objects.filter(
            journey=journey, profile__isnull=True, key__in=list(keys.values())
        ).values_list("key", flat=True)
    )
    members = Profile.objects.filter(
        workspace_id=journey.workspace_id,
        merged_into__isnull=True,
        pk__in=SegmentMembership.objects.filter(segment=segment, left_at__isnull=True).values(
            "profile_id"
        ),
    ).annotate(_zone=Cast(KeyTextTransform("timezone", "traits"), TextField()))
    enrolled = 0
    if set(keys.values()) - done:
        _marks_prune(journey, now)
    for moment, names in sorted(occurrences.items()):
        if keys[moment] in done:
            continue
        try:
            with transaction.atomic():
                TriggerMark.objects.create(
                    workspace_id=journey.workspace_id, journey=journey, key=keys[moment], at=now
                )
        except IntegrityError:
            continue  # another run took this occurrence
        here = Q(_zone__in=names)
        if fallback.key in names:
            # No zone of their own (or one that is not a zone): the workspace's.
            here |= Q(_zone__isnull=True) | ~Q(_zone__in=_zone_names())
        ids = members.filter(here).order_by("pk").values_list("pk", flat=True)
        enrolled += _enrol(journey, ids.iterator(chunk_size=BATCH), now)
    return enrolled


def time_triggers_run(*, workspace_id: Any, now: datetime | None = None) -> dict[str, int]:
    """The workspace's active `date_trait` and `schedule` journeys: enrol whoever is due.
    Returns {journey id: enrolled}."""
    now = now or timezone.now()
    journeys = list(_active(workspace_id, TIME_TYPES).values_list("pk", flat=True))
    if not journeys:
        return {}
    fallback = _fallback_zone(workspace_id)
    result = {}
    for pk in journeys:
        with transaction.atomic():
            # One run per journey at a time; a journey stopped meanwhile is left.
            journey = (
                Journey.objects.select_for_update()
                .filter(pk=pk, status=Journey.Status.ACTIVE)
                .first()
            )
            if journey is None:
                continue
            if journey.trigger_type == "date_trait":
                result[str(pk)] = _date_trait_run(journey, now, fallback)
            else:
                result[str(pk)] = _schedule_run(journey, now, fallback)
    return result


@task()
def time_triggers_due(*, workspace_id: str) -> dict:
    """Every minute per workspace (the schedule): `time_triggers_run`."""
    return time_triggers_run(workspace_id=workspace_id)


# --- who meets a trigger now --------------------------------------------------------


def trigger_profiles_now(*, journey: Any) -> QuerySet | None:
    """The ids of the customers who meet the journey's trigger condition now, for a
    journey that should also take those already there when it starts (the demo's,
    a backfill through `enrolments_create_many`): a segment's members, a stage's
    customers, the scores meeting a prediction's condition. None for the triggers that
    are moments, not states (leaving a segment, a date, a schedule, an event)."""
    trigger, kind = journey.trigger, journey.trigger_type
    if kind == "segment_entered":
        segment = Segment.objects.filter(
            workspace_id=journey.workspace_id, pk=trigger.get("segment_id")
        ).first()
        if segment is None:
            return Profile.objects.none().values_list("pk", flat=True)
        stays = SegmentMembership.objects.filter(segment=segment, left_at__isnull=True)
        return stays.values_list("profile_id", flat=True)
    if kind == "lifecycle_changed":
        states = LifecycleState.objects.filter(
            workspace_id=journey.workspace_id, stage=trigger.get("stage")
        )
        if trigger.get("sub_stage"):
            states = states.filter(sub_stage=trigger["sub_stage"])
        return states.values_list("profile_id", flat=True)
    if kind == "prediction":
        found = _score_condition(trigger)
        if found is None:
            return Profile.objects.none().values_list("pk", flat=True)
        model, condition = found
        scores = model.objects.filter(workspace_id=journey.workspace_id).filter(condition)
        return scores.values_list("profile_id", flat=True)
    return None


# --- checks ---------------------------------------------------------------------------


def trigger_problems(*, workspace: Any, trigger: dict) -> list[dict[str, str]]:
    """What the graph's shape does not say about a trigger and that stops the journey
    from starting: a cron expression that is not one, a prediction nobody scores, a
    lifecycle stage the workspace lacks. [{path, message}]."""
    problems: list[dict[str, str]] = []
    kind = trigger.get("type")
    if kind == "schedule":
        cron = str(trigger.get("cron", ""))
        if len(cron.split()) != 5 or not croniter.is_valid(cron):
            problems.append(
                {
                    "path": "trigger.cron",
                    "message": gettext(
                        "a cron expression of five fields (minute hour day month weekday), "
                        "such as 0 9 * * *"
                    ),
                }
            )
    elif kind == "prediction":
        fields = SCORE_FIELDS.get(trigger.get("model", ""))
        if fields is None:
            problems.append(
                {
                    "path": "trigger.model",
                    "message": gettext("no model %(model)s: use one of %(choices)s")
                    % {"model": trigger.get("model"), "choices": ", ".join(SCORE_FIELDS)},
                }
            )
        elif trigger.get("field") not in fields:
            problems.append(
                {
                    "path": "trigger.field",
                    "message": gettext("no field %(field)s: use one of %(choices)s")
                    % {"field": trigger.get("field"), "choices": ", ".join(fields)},
                }
            )
    elif kind == "lifecycle_changed":
        stages = dict(
            LifecycleStage.objects.filter(workspace=workspace).values_list("key", "parent__key")
        )
        stage, sub = trigger.get("stage"), trigger.get("sub_stage")
        if stages and stage not in stages:
            problems.append(
                {
                    "path": "trigger.stage",
                    "message": gettext("no lifecycle stage %(stage)s in this workspace")
                    % {"stage": stage},
                }
            )
        elif stages and sub and stages.get(sub) != stage:
            problems.append(
                {
                    "path": "trigger.sub_stage",
                    "message": gettext("%(stage)s has no sub-stage %(sub_stage)s")
                    % {"stage": stage, "sub_stage": sub},
                }
            )
    return problems
