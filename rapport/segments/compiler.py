"""A parsed rule (rapport/segments/rules.py) as a condition on profiles, for SQLite and
PostgreSQL alike. Everything a person typed reaches the database as a bound parameter.

Conditions over other tables become `id IN (SELECT profile_id ...)` (or `NOT IN` when a
customer with no rows matches, as "did X fewer than 3 times" does): for a whole
workspace the database reads each table once through its index and hashes the ids.
Given `profile_ids` (the customers one batch of events touched), each subquery is
narrowed to them, so that re-checking a batch reads only their rows.

Each condition's own query lives with its definition (`rapport/segments/conditions.py`,
and the conditions other apps register); here are the groups and the comparisons they
share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import ExpressionWrapper, Q, QuerySet, TextField
from django.db.models.functions import Lower, Substr

from rapport.core.jsonkeys import JsonNumber, JsonPresent, KeyText, json_key
from rapport.core.lookups import ValuesArray
from rapport.profiles.models import Profile
from rapport.segments import rules as r

ALWAYS = Q(pk__isnull=False)
NEVER = Q(pk__isnull=True)


@dataclass(frozen=True)
class Context:
    workspace_id: Any
    now: datetime
    # Narrow every subquery to these customers (None: the whole workspace). Kept as one
    # `ValuesArray`, which every subquery shares.
    profile_ids: Sequence[Any] | None = None
    # What money conditions found while the rule was built: the workspace's commerce
    # settings and rates (read once per rule), and the purchases each converted, so that
    # a preview or a refresh can say what was left out (`rapport.segments.money`).
    money: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        if self.profile_ids is not None and not isinstance(self.profile_ids, ValuesArray):
            object.__setattr__(self, "profile_ids", ValuesArray(self.profile_ids))


def days_ago(ctx: Context, days: int) -> datetime:
    return ctx.now - timedelta(days=days)


def _stamp(value: str) -> tuple[str, int]:
    """A rule's date as text to compare with a stored ISO date or time, and how many
    leading characters to compare (a day, or a time to the second)."""
    when = r.parse_when(value)
    if len(value) == 10:
        return when.date().isoformat(), 10
    return when.astimezone(when.tzinfo).strftime("%Y-%m-%dT%H:%M:%S"), 19


_ORDER = {"gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte"}


def json_compare(column: str, name: str, op: str, value: Any, ctx: Context) -> Q:
    """A comparison on a key of a JSON column. Strings compare without regard to case;
    numbers compare as numbers (a value stored as text is not a number)."""
    node = json_key(column, name)
    text = json_key(column, name, KeyText)
    present = Q(JsonPresent(node))

    def equal(item: Any) -> Q:
        if isinstance(item, bool):
            # Both databases read a JSON boolean as the text true / false.
            return Q(_lookup(text, "exact", "true" if item else "false"))
        if isinstance(item, int | float):
            return Q(_lookup(JsonNumber(node), "exact", item))
        return Q(_lookup(Lower(text), "exact", item.lower()))

    if op == "exists":
        return present
    if op == "not_exists":
        return ~present
    if op == "eq":
        return present & equal(value)
    if op == "ne":
        return ~(present & equal(value))
    if op in ("in", "not_in"):
        matched = any_of([equal(item) for item in value])
        return present & matched if op == "in" else ~(present & matched)
    if op in _ORDER:
        if isinstance(value, int | float):
            return Q(_lookup(JsonNumber(node), _ORDER[op], value))
        # As plain text: Django's key lookups would read the value as JSON.
        as_text = ExpressionWrapper(text, output_field=TextField())
        return Q(_lookup(as_text, _ORDER[op], value))
    if op == "contains":
        return Q(_lookup(text, "icontains", value))
    if op == "not_contains":
        return ~(present & Q(_lookup(text, "icontains", value)))
    if op == "starts_with":
        return Q(_lookup(text, "istartswith", value))
    if op in ("before", "after"):
        stamp, width = _stamp(value)
        return Q(_lookup(Substr(text, 1, width), "lt" if op == "before" else "gt", stamp))
    if op in ("within_last_days", "older_than_days"):
        since = days_ago(ctx, value).strftime("%Y-%m-%dT%H:%M:%S")
        head = Substr(text, 1, 19)
        if op == "older_than_days":
            return Q(_lookup(head, "lt", since))
        until = ctx.now.strftime("%Y-%m-%dT%H:%M:%S")
        return Q(_lookup(head, "gte", since)) & Q(_lookup(head, "lte", until))
    raise ValueError(op)


def _lookup(expression: Any, name: str, value: Any):
    lookup = expression.get_lookup(name)
    return lookup(expression, value)


def any_of(parts: list[Q]) -> Q:
    result = NEVER
    for part in parts:
        result = part if result is NEVER else result | part
    return result


def all_of(parts: list[Q]) -> Q:
    result = ALWAYS
    for part in parts:
        result = part if result is ALWAYS else result & part
    return result


_COLUMN_LOOKUPS = {
    "eq": "exact",
    "gt": "gt",
    "gte": "gte",
    "lt": "lt",
    "lte": "lte",
    "contains": "icontains",
    "starts_with": "istartswith",
    "in": "in",
    "before": "lt",
    "after": "gt",
}


def column_compare(field: str, op: str, value: Any, ctx: Context) -> Q:
    """A comparison on a plain column (a time, a score, a stage)."""
    if op in ("exists", "not_exists"):
        return Q(**{f"{field}__isnull": op == "not_exists"})
    if op == "ne":
        return ~Q(**{field: value})
    if op == "not_in":
        return ~Q(**{f"{field}__in": value})
    if op == "not_contains":
        return ~Q(**{f"{field}__icontains": value})
    if op in ("before", "after"):
        return Q(**{f"{field}__{_COLUMN_LOOKUPS[op]}": r.parse_when(value)})
    if op == "within_last_days":
        return Q(**{f"{field}__gte": days_ago(ctx, value), f"{field}__lte": ctx.now})
    if op == "older_than_days":
        return Q(**{f"{field}__lt": days_ago(ctx, value)})
    return Q(**{f"{field}__{_COLUMN_LOOKUPS[op]}": value})


def narrow(queryset: QuerySet, ctx: Context, field: str = "profile_id") -> QuerySet:
    if ctx.profile_ids is not None:
        return queryset.filter(**{f"{field}__any": ctx.profile_ids})
    return queryset


NEGATED = {"ne": "eq", "not_in": "in", "not_contains": "contains", "not_exists": "exists"}


def attribute_q(model, field: str, op: str, value: Any, ctx: Context) -> Q:
    """A condition on a computed attribute kept in its own table (RFM, lifecycle).
    Customers without a row (never bought: no RFM) match only the negative operators."""
    rows = narrow(model.objects.filter(workspace_id=ctx.workspace_id), ctx)
    if op in NEGATED:
        if op == "not_exists":
            return ~Q(pk__in=rows.values("profile_id"))
        inner = column_compare(field, NEGATED[op], value, ctx)
        return ~Q(pk__in=rows.filter(inner).values("profile_id"))
    if op == "exists":
        return Q(pk__in=rows.values("profile_id"))
    return Q(pk__in=rows.filter(column_compare(field, op, value, ctx)).values("profile_id"))


def rule_q(rule: r.Rule, ctx: Context) -> Q:
    """The rule as a condition on `Profile`."""
    if isinstance(rule, r.All):
        return all_of([rule_q(child, ctx) for child in rule.all])
    if isinstance(rule, r.Any_):
        return any_of([rule_q(child, ctx) for child in rule.any])
    if isinstance(rule, r.Not):
        return ~rule_q(rule.not_, ctx)
    return r.condition_of(rule).query(rule, ctx)


def rule_profiles(rule: r.Rule, ctx: Context) -> QuerySet:
    """The live (not merged-away) customers of the workspace that match."""
    profiles = Profile.objects.filter(workspace_id=ctx.workspace_id, merged_into__isnull=True)
    if ctx.profile_ids is not None:
        profiles = profiles.filter(pk__any=ctx.profile_ids)
    return profiles.filter(rule_q(rule, ctx))
