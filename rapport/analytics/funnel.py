"""The end-to-end funnel: ordered steps, each an event, a page view, a trait being set
or a lifecycle stage being entered; a customer reaches a step when it happens after
the step before (the first step inside the period, the rest before the period ends, or
within the conversion window of the first step when one is set).

Steps are matched per customer in NumPy: each step's occurrences are read once as
(customer, time) columns, and "the first occurrence after the previous step" is a
binary search over them.
"""

from __future__ import annotations

import time
import uuid
from datetime import date, datetime, timedelta
from typing import Any, Literal

import numpy as np
from django.db.models import F, Q
from django.utils.translation import gettext
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from rapport.analytics.kpis import Definitions, Scope, events_in
from rapport.analytics.periods import Period
from rapport.core.columns import columns_read
from rapport.core.jsonkeys import json_text
from rapport.ingest.models import EventType
from rapport.profiles.models import Profile
from rapport.segments.models import LifecycleChange, SegmentMembership

BREAKDOWNS = ("utm_source", "utm_medium", "utm_campaign", "segment")
# Where the Segment spec keeps the UTM parameters: `context.campaign`, with utm_campaign
# as its `name`.
CAMPAIGN_FIELDS = {"utm_source": "source", "utm_medium": "medium", "utm_campaign": "name"}
MAX_GROUPS = 20


def errors_at_field(value: Any, handler: Any) -> Any:
    """A wrap validator: an error inside a nested value is reported at the field itself
    (with the inner path in the message), so that the API's error names the field."""
    try:
        return handler(value)
    except ValidationError as error:
        first = error.errors()[0]
        inner = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"{inner}: {first['msg']}" if inner else first["msg"]) from None


class Step(BaseModel):
    """One of: `event` (a track call's name), `page` (a page or screen name, or `*` for
    any), `trait` (set to `value`, or to anything), `stage` (a lifecycle stage key)."""

    model_config = ConfigDict(extra="forbid")

    event: str | None = Field(None, min_length=1, max_length=255)
    page: str | None = Field(None, min_length=1, max_length=255)
    trait: str | None = Field(None, min_length=1, max_length=200, pattern=r'^[^"\\]+$')
    value: str | int | float | bool | None = None
    stage: str | None = Field(None, min_length=1, max_length=60)
    label: str | None = Field(None, max_length=100)

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        kinds = [k for k in ("event", "page", "trait", "stage") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(gettext("a step is exactly one of event, page, trait or stage"))
        if self.value is not None and self.trait is None:
            raise ValueError(gettext("value goes with trait"))
        return self

    @property
    def title(self) -> str:
        if self.label:
            return self.label
        if self.event:
            return self.event
        if self.page:
            if self.page == "*":
                return gettext("Any page view")
            return gettext("Viewed %(page)s") % {"page": self.page}
        if self.trait:
            if self.value is not None:
                return f"{self.trait} = {self.value}"
            return gettext("Has %(trait)s") % {"trait": self.trait}
        return gettext("Stage: %(stage)s") % {"stage": self.stage}


class FunnelQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: list[Step] = Field(min_length=2, max_length=8)
    start: date
    end: date
    # Each later step within this many days of the first; default: until the period ends.
    conversion_days: int | None = Field(None, ge=1, le=365, strict=True)
    segment: uuid.UUID | None = None
    breakdown: Literal["utm_source", "utm_medium", "utm_campaign", "segment"] | None = None
    # The segments to break down by (breakdown "segment").
    segments: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_GROUPS)

    _whole = field_validator("steps", "segments", mode="wrap")(errors_at_field)

    @model_validator(mode="after")
    def _breakdown(self) -> FunnelQuery:
        if self.breakdown == "segment" and not self.segments:
            raise ValueError(gettext("a breakdown by segment names the segments"))
        if self.breakdown and self.breakdown.startswith("utm") and self.steps[0].trait:
            raise ValueError(gettext("a breakdown by campaign needs an event or page first step"))
        if self.breakdown and self.breakdown.startswith("utm") and self.steps[0].stage:
            raise ValueError(gettext("a breakdown by campaign needs an event or page first step"))
        return self


def _occurrences(
    step: Step, scope: Scope, start: datetime, end: datetime, *, campaign: str | None = None
) -> list[np.ndarray]:
    """(customer key, epoch seconds[, campaign field]) of every occurrence."""
    if step.event is not None or step.page is not None:
        events = events_in(scope, start, end, end)
        if step.event is not None:
            events = events.filter(type=EventType.TRACK, event=step.event)
        else:
            events = events.filter(type__in=[EventType.PAGE, EventType.SCREEN])
            if step.page != "*":
                events = events.filter(event=step.page)
        columns = ["profile_id", "timestamp"]
        if campaign:
            events = events.annotate(utm=json_text("context", f"campaign.{campaign}"))
            columns.append("utm")
        return columns_read(
            events.values_list(*columns), texts=(2,) if campaign else (), epochs=(1,), keys=(0,)
        )
    if step.stage is not None:
        changes = LifecycleChange.objects.filter(
            workspace_id=scope.workspace_id, at__gte=start, at__lt=end
        ).filter(Q(to_stage=step.stage) | Q(to_sub_stage=step.stage))
        members = scope.profile_ids(end)
        if members is not None:
            changes = changes.filter(profile_id__in=members)
        return columns_read(
            changes.values_list("profile_id", "at"), texts=(), epochs=(1,), keys=(0,)
        )
    # A trait: when it was last set (its source), if it holds the value.
    profiles = Profile.objects.filter(
        workspace_id=scope.workspace_id, merged_into__isnull=True, traits__has_key=step.trait
    )
    members = scope.profile_ids(end)
    if members is not None:
        profiles = profiles.filter(pk__in=members)
    if step.value is not None:
        profiles = profiles.filter(**{f"traits__{step.trait}": step.value})
    keys, stamps = columns_read(
        profiles.annotate(at=json_text("trait_sources", f"{step.trait}.at")).values_list(
            "pk", "at"
        ),
        texts=(1,),
        keys=(0,),
    )
    seconds = np.array(
        [datetime.fromisoformat(s).timestamp() if s else np.nan for s in stamps], dtype=float
    )
    keep = (seconds >= start.timestamp()) & (seconds < end.timestamp())
    return [keys[keep], seconds[keep]]


def _reached_after(
    codes: np.ndarray,
    seconds: np.ndarray,
    who: np.ndarray,
    after: np.ndarray,
    deadline: np.ndarray,
    base: float,
    span_ms: int,
) -> np.ndarray:
    """For customers `who` (codes) each at time `after`: the time of their first
    occurrence strictly later and no later than their `deadline`, or NaN. One sorted key
    per occurrence (customer, then milliseconds since `base`) and one binary search per
    customer, all vectorised."""
    found = np.full(len(who), np.nan)
    if not len(codes) or not len(who):
        return found

    def key(customer: np.ndarray, at: np.ndarray) -> np.ndarray:
        return customer.astype(np.int64) * span_ms + np.round((at - base) * 1000).astype(np.int64)

    keys = np.sort(key(codes, seconds))
    wanted = key(who, after)
    position = np.searchsorted(keys, wanted, side="right")
    inside = position < len(keys)
    candidate = keys[np.minimum(position, len(keys) - 1)]
    same = inside & (candidate // span_ms == who)
    at = (candidate % span_ms) / 1000 + base
    ok = same & (at <= deadline)
    found[ok] = at[ok]
    return found


def _codes(entrants: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The entrant index of each key, and which keys are entrants at all."""
    if not len(entrants):
        return np.zeros(len(keys), dtype=np.int64), np.zeros(len(keys), dtype=bool)
    position = np.minimum(np.searchsorted(entrants, keys), len(entrants) - 1)
    return position, entrants[position] == keys


def funnel_compute(*, query: FunnelQuery, period: Period, scope: Scope, definitions: Definitions):
    """Customers reaching each step, conversion from the step before and from the
    first, and the median time from the step before; per group if broken down. Also
    the customers at each step (`_members`), for the drill-down."""
    began = time.perf_counter()
    start, end = period.start, period.end
    horizon = end
    if query.conversion_days:
        horizon = end + timedelta(days=query.conversion_days)
    campaign = None
    if query.breakdown and query.breakdown.startswith("utm"):
        campaign = CAMPAIGN_FIELDS[query.breakdown]
    first = _occurrences(query.steps[0], scope, start, end, campaign=campaign)
    keys, seconds = first[0], first[1]
    # The first occurrence per customer enters the funnel.
    order = np.lexsort((seconds, keys))
    sorted_keys = keys[order]
    firsts = np.ones(len(sorted_keys), dtype=bool)
    firsts[1:] = sorted_keys[1:] != sorted_keys[:-1]
    entrants = sorted_keys[firsts]
    entered_at = seconds[order][firsts]
    groups_of = None
    if campaign:
        utm = first[2][order][firsts]
        groups_of = np.array([u if u else "(none)" for u in utm], dtype=object)
    deadline = (
        entered_at + query.conversion_days * 86400
        if query.conversion_days
        else np.full(len(entrants), horizon.timestamp())
    )
    times = [entered_at]
    base = start.timestamp()
    span_ms = int((horizon - start).total_seconds() * 1000) + 2
    for step in query.steps[1:]:
        occurrence_keys, occurrence_seconds = _occurrences(step, scope, start, horizon)[:2]
        codes, known = _codes(entrants, occurrence_keys)
        previous = times[-1]
        alive = np.nonzero(~np.isnan(previous))[0]
        found = np.full(len(entrants), np.nan)
        found[alive] = _reached_after(
            codes[known],
            occurrence_seconds[known],
            alive,
            previous[alive],
            deadline[alive],
            base,
            span_ms,
        )
        times.append(found)
    steps = _summary(query, times)
    result: dict[str, Any] = {"period": period.as_dict(), "steps": steps, "groups": []}
    if query.breakdown == "segment":
        for segment_id in query.segments:
            members = SegmentMembership.objects.filter(
                segment_id=segment_id, entered_at__lt=end
            ).filter(Q(left_at__isnull=True) | Q(left_at__gte=end))
            member_keys = columns_read(members.values_list("profile_id"), texts=(), keys=(0,))[0]
            mask = np.isin(entrants, member_keys)
            result["groups"].append(
                {"value": str(segment_id), "steps": _summary(query, [t[mask] for t in times])}
            )
    elif groups_of is not None:
        values, counts = np.unique(groups_of.astype(str), return_counts=True)
        for value in values[np.argsort(-counts, kind="stable")][:MAX_GROUPS]:
            mask = groups_of == value
            result["groups"].append(
                {"value": value, "steps": _summary(query, [t[mask] for t in times])}
            )
    result["seconds"] = round(time.perf_counter() - began, 3)
    result["_members"] = (entrants, times, groups_of)
    return result


def _summary(query: FunnelQuery, times: list[np.ndarray]) -> list[dict[str, Any]]:
    out = []
    entered = int(np.count_nonzero(~np.isnan(times[0]))) if times else 0
    for k, step in enumerate(query.steps):
        reached = ~np.isnan(times[k])
        count = int(np.count_nonzero(reached))
        row: dict[str, Any] = {
            "step": k + 1,
            "label": step.title,
            "customers": count,
            "conversion_from_start": (count / entered) if entered else None,
            "conversion_from_previous": None,
            "median_seconds_from_previous": None,
        }
        if k:
            before = int(np.count_nonzero(~np.isnan(times[k - 1])))
            row["conversion_from_previous"] = (count / before) if before else None
            if count:
                row["median_seconds_from_previous"] = float(
                    np.median(times[k][reached] - times[k - 1][reached])
                )
        out.append(row)
    return out


def funnel_members(
    members: tuple, *, workspace_id: Any, step: int, outcome: str = "reached", group=None
) -> list[str]:
    """Profile ids of the customers who reached step `step` (1-based), or reached it and
    went no further ("dropped"), optionally in one group of the breakdown."""
    entrants, times, groups_of = members
    mask = ~np.isnan(times[step - 1])
    if outcome == "dropped" and step < len(times):
        mask &= np.isnan(times[step])
    if group is not None and groups_of is not None:
        mask &= groups_of == group
    wanted = entrants[mask]
    if not len(wanted):
        return []
    live = Profile.objects.filter(workspace_id=workspace_id, merged_into__isnull=True)
    ids, keys = columns_read(live.annotate(k=F("id")).values_list("id", "k"), texts=(0,), keys=(1,))
    return sorted(str(pk) for pk in ids[np.isin(keys, wanted)])
