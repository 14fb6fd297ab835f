"""A parsed rule (rapport/segments/rules.py) as a condition on profiles, for SQLite and
PostgreSQL alike. Everything a person typed reaches the database as a bound parameter.

Conditions over other tables become `id IN (SELECT profile_id ...)` (or `NOT IN` when a
customer with no rows matches, as "did X fewer than 3 times" does): for a whole
workspace the database reads each table once through its index and hashes the ids.
Given `profile_ids` (the customers one batch of events touched), each subquery is
narrowed to them, so that re-checking a batch reads only their rows."""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import (
    Avg,
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    TextField,
)
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Coalesce, Lower, Substr

from rapport.ingest.models import Event
from rapport.profiles.models import AccountMember, ConsentChange, Profile
from rapport.segments import rules as r
from rapport.segments.models import LifecycleState, RfmScore, SegmentMembership

ALWAYS = Q(pk__isnull=False)
NEVER = Q(pk__isnull=True)


@dataclass(frozen=True)
class Context:
    workspace_id: Any
    now: datetime
    # Narrow every subquery to these customers (None: the whole workspace).
    profile_ids: Sequence[Any] | None = None


def _sqlite_paths(keys: list[str]) -> tuple[str, str]:
    """SQLite matches a path's labels against the document's text as stored, and a
    document holds non-ASCII keys either as written (orjson) or as \\u escapes (Django's
    encoder): the path in both spellings."""
    raw = "$" + "".join("." + json.dumps(k, ensure_ascii=False) for k in keys)
    escaped = "$" + "".join("." + json.dumps(k) for k in keys)
    return raw, escaped


def _sqlite_value(function: str, lhs: str, params, keys) -> tuple[str, tuple]:
    raw, escaped = _sqlite_paths(keys)
    if raw == escaped:
        return f"{function}({lhs}, %s)", (*params, raw)
    return (
        f"COALESCE({function}({lhs}, %s), {function}({lhs}, %s))",
        (*params, raw, *params, escaped),
    )


class _SqliteKeys:
    def as_sqlite(self, compiler, connection):
        lhs, params, keys = self.preprocess_lhs(compiler, connection)
        kind, kind_params = _sqlite_value("JSON_TYPE", lhs, params, keys)
        value, value_params = _sqlite_value("JSON_EXTRACT", lhs, params, keys)
        # JSON true / false / null read as the words, as PostgreSQL's ->> gives them.
        return (
            f"(CASE WHEN {kind} IN ('true', 'false', 'null') THEN {kind} ELSE {value} END)",
            (*kind_params, *kind_params, *value_params),
        )


class Key(_SqliteKeys, KeyTransform):
    pass


class KeyText(_SqliteKeys, KeyTextTransform):
    pass


class _JsonKeyFunc(Func):
    """SQL over one key of a JSON column, written per database by `key_sql`."""

    def __init__(self, transform: KeyTransform) -> None:
        super().__init__(transform)

    def as_sql(self, compiler, connection, **extra):
        transform = self.get_source_expressions()[0]
        lhs, params, keys = transform.preprocess_lhs(compiler, connection)
        return self.key_sql(connection.vendor, lhs, tuple(params), keys)

    def key_sql(self, vendor: str, lhs: str, params: tuple, keys: list[str]):
        raise NotImplementedError


class JsonPresent(_JsonKeyFunc):
    """The key is there and not JSON null."""

    output_field = BooleanField()

    def key_sql(self, vendor, lhs, params, keys):
        if vendor == "postgresql":
            return f"COALESCE(jsonb_typeof({lhs} #> %s) <> 'null', false)", (*params, keys)
        kind, kind_params = _sqlite_value("JSON_TYPE", lhs, params, keys)
        return f"COALESCE({kind} <> 'null', 0)", kind_params


class JsonNumber(_JsonKeyFunc):
    """A JSON value as a number when it is one, else NULL (a string such as "abc" in a
    property must not fail the whole query, as a cast would on PostgreSQL)."""

    output_field = FloatField()

    def key_sql(self, vendor, lhs, params, keys):
        if vendor == "postgresql":
            sql = (
                f"(CASE WHEN jsonb_typeof({lhs} #> %s) = 'number' THEN ({lhs} #>> %s)::float8 END)"
            )
            return sql, (*params, keys, *params, keys)
        kind, kind_params = _sqlite_value("JSON_TYPE", lhs, params, keys)
        value, value_params = _sqlite_value("JSON_EXTRACT", lhs, params, keys)
        sql = f"(CASE WHEN {kind} IN ('integer', 'real') THEN {value} END)"
        return sql, (*kind_params, *value_params)


def analytic_session() -> None:
    """PostgreSQL hashes an `IN (subquery)` under OR, NOT or CASE only when the ids fit
    in work_mem; past that it re-reads the subquery for every customer. A rule over a
    million customers needs more than the 4 MB default, for this transaction only. JIT
    compilation is off: measured on a three-condition rule over 20M events, it spent 1.2 s
    compiling a query that ran in 1.7 s without it."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL work_mem = %s", [settings.RAPPORT_SEGMENT_WORK_MEM])
            cursor.execute("SET LOCAL jit = off")


def json_number(column: str, name: str) -> JsonNumber:
    """A key of a JSON column (dotted for nested keys) as a number, or NULL."""
    return JsonNumber(_key(column, name))


def purchase_value(properties: Sequence[str]):
    """A purchase's value: the first of the value properties that holds a number."""
    if len(properties) == 1:
        return json_number("properties", properties[0])
    return Coalesce(*(json_number("properties", p) for p in properties))


def json_text(column: str, name: str) -> KeyText:
    """A key of a JSON column as text (true / false as the words), or NULL."""
    return _key(column, name, KeyText)


def _key(column: str, name: str, cls=None) -> KeyTransform:
    """`traits` + "address.city" -> traits -> address -> city."""
    expression: Any = column
    parts = name.split(".")
    for part in parts[:-1]:
        expression = Key(part, expression)
    return (cls or Key)(parts[-1], expression)


def _days_ago(ctx: Context, days: int) -> datetime:
    return ctx.now - timedelta(days=days)


def _stamp(value: str) -> tuple[str, int]:
    """A rule's date as text to compare with a stored ISO date or time, and how many
    leading characters to compare (a day, or a time to the second)."""
    when = r.parse_when(value)
    if len(value) == 10:
        return when.date().isoformat(), 10
    return when.astimezone(when.tzinfo).strftime("%Y-%m-%dT%H:%M:%S"), 19


_ORDER = {"gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte"}


def _json_compare(column: str, name: str, op: str, value: Any, ctx: Context) -> Q:
    """A comparison on a key of a JSON column. Strings compare without regard to case;
    numbers compare as numbers (a value stored as text is not a number)."""
    node = _key(column, name)
    text = _key(column, name, KeyText)
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
        matched = _any_of([equal(item) for item in value])
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
        since = _days_ago(ctx, value).strftime("%Y-%m-%dT%H:%M:%S")
        head = Substr(text, 1, 19)
        if op == "older_than_days":
            return Q(_lookup(head, "lt", since))
        until = ctx.now.strftime("%Y-%m-%dT%H:%M:%S")
        return Q(_lookup(head, "gte", since)) & Q(_lookup(head, "lte", until))
    raise ValueError(op)


def _lookup(expression: Any, name: str, value: Any):
    lookup = expression.get_lookup(name)
    return lookup(expression, value)


def _any_of(parts: list[Q]) -> Q:
    result = NEVER
    for part in parts:
        result = part if result is NEVER else result | part
    return result


def _all_of(parts: list[Q]) -> Q:
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


def _column_compare(field: str, op: str, value: Any, ctx: Context) -> Q:
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
        return Q(**{f"{field}__gte": _days_ago(ctx, value), f"{field}__lte": ctx.now})
    if op == "older_than_days":
        return Q(**{f"{field}__lt": _days_ago(ctx, value)})
    return Q(**{f"{field}__{_COLUMN_LOOKUPS[op]}": value})


def _narrow(queryset: QuerySet, ctx: Context, field: str = "profile_id") -> QuerySet:
    if ctx.profile_ids is not None:
        return queryset.filter(**{f"{field}__any": list(ctx.profile_ids)})
    return queryset


def _events(condition: r.Event | r.Aggregate, ctx: Context) -> QuerySet:
    events = Event.objects.filter(
        workspace_id=ctx.workspace_id, event=condition.event, profile_id__isnull=False
    )
    events = _narrow(events, ctx)
    window = condition.window
    if window is not None:
        if window.last_days is not None:
            events = events.filter(timestamp__gte=_days_ago(ctx, window.last_days))
        elif window.older_than_days is not None:
            events = events.filter(timestamp__lt=_days_ago(ctx, window.older_than_days))
        elif window.first_days is not None:
            if window.from_ is None:
                start: Any = F("profile__first_seen_at")
            else:
                start = Subquery(
                    Event.objects.filter(
                        workspace_id=ctx.workspace_id,
                        event=window.from_,
                        profile_id=OuterRef("profile_id"),
                    )
                    .order_by("timestamp")
                    .values("timestamp")[:1]
                )
            events = events.filter(
                timestamp__gte=start, timestamp__lt=start + timedelta(days=window.first_days)
            )
        else:
            if window.after is not None:
                events = events.filter(timestamp__gte=r.parse_when(window.after))
            if window.before is not None:
                events = events.filter(timestamp__lt=r.parse_when(window.before))
    for where in condition.where:
        events = events.filter(
            _json_compare("properties", where.property, where.op, where.value, ctx)
        )
    return events


_COUNT_TEST: dict[str, Callable[[int, int], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
_COUNT_NEGATION = {"eq": "ne", "ne": "eq", "gt": "lte", "gte": "lt", "lt": "gte", "lte": "gt"}


def _having(events: QuerySet, op: str, value: int) -> QuerySet:
    """The customers whose number of these events passes `op value` (never 0 events)."""
    if (op, value) in (("gte", 1), ("gt", 0), ("ne", 0)):
        return events.values("profile_id")
    if op == "ne":
        # ne N holds for 0 too; here only customers with events are asked for.
        return (
            events.values("profile_id").annotate(n=Count("*")).exclude(n=value).values("profile_id")
        )
    return (
        events.values("profile_id")
        .annotate(n=Count("*"))
        .filter(**{f"n__{'exact' if op == 'eq' else op}": value})
        .values("profile_id")
    )


def _event_q(condition: r.Event, ctx: Context) -> Q:
    events = _events(condition, ctx)
    op, value = condition.count.op, condition.count.value
    if not _COUNT_TEST[op](0, value):
        return Q(pk__in=_having(events, op, value))
    # Customers with no such event match: exclude those whose count fails the test.
    return ~Q(pk__in=_having(events, _COUNT_NEGATION[op], value))


_AGGREGATES = {"sum": Sum, "avg": Avg, "min": Min, "max": Max}


def _aggregate_q(condition: r.Aggregate, ctx: Context) -> Q:
    events = _events(condition, ctx)
    function = _AGGREGATES[condition.aggregate]
    value_of = json_number("properties", condition.property)
    lookup = "exact" if condition.op == "eq" else condition.op
    grouped = events.values("profile_id").annotate(v=function(value_of))
    if condition.op == "ne":
        grouped = grouped.filter(v__isnull=False).exclude(v=condition.value)
    else:
        grouped = grouped.filter(**{f"v__{lookup}": condition.value})
    return Q(pk__in=grouped.values("profile_id"))


def _consent_q(condition: r.Consent, ctx: Context) -> Q:
    newer = ConsentChange.objects.filter(
        profile_id=OuterRef("profile_id"),
        channel=condition.consent,
        purpose=condition.purpose,
        at__gt=OuterRef("at"),
    )
    latest = ConsentChange.objects.filter(
        workspace_id=ctx.workspace_id,
        channel=condition.consent,
        purpose=condition.purpose,
        status=condition.status,
    ).filter(~Exists(newer))
    if condition.status == "granted":
        latest = latest.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=ctx.now))
    return Q(pk__in=_narrow(latest, ctx).values("profile_id"))


def _account_q(condition: r.AccountTrait, ctx: Context) -> Q:
    members = _narrow(AccountMember.objects.filter(workspace_id=ctx.workspace_id), ctx)
    op = condition.op
    if op in _NEGATED:
        # "No account with industry = x": customers outside the accounts that have it.
        op = _NEGATED[op]
    matching = members.filter(
        _json_compare("account__traits", condition.account_trait, op, condition.value, ctx)
    )
    if op != condition.op:
        return ~Q(pk__in=matching.values("profile_id"))
    return Q(pk__in=matching.values("profile_id"))


_NEGATED = {"ne": "eq", "not_in": "in", "not_contains": "contains", "not_exists": "exists"}


def _attribute_q(model, field: str, op: str, value: Any, ctx: Context) -> Q:
    """A condition on a computed attribute kept in its own table (RFM, lifecycle).
    Customers without a row (never bought: no RFM) match only the negative operators."""
    rows = _narrow(model.objects.filter(workspace_id=ctx.workspace_id), ctx)
    if op in _NEGATED:
        if op == "not_exists":
            return ~Q(pk__in=rows.values("profile_id"))
        inner = _column_compare(field, _NEGATED[op], value, ctx)
        return ~Q(pk__in=rows.filter(inner).values("profile_id"))
    if op == "exists":
        return Q(pk__in=rows.values("profile_id"))
    return Q(pk__in=rows.filter(_column_compare(field, op, value, ctx)).values("profile_id"))


def _prediction_q(rule: r.Prediction, ctx: Context) -> Q:
    from rapport.predictions.models import ChurnScore, ClvScore

    if rule.prediction.startswith("churn_"):
        return _attribute_q(
            ChurnScore, rule.prediction.removeprefix("churn_"), rule.op, rule.value, ctx
        )
    return _attribute_q(ClvScore, rule.prediction, rule.op, rule.value, ctx)


def rule_q(rule: r.Rule, ctx: Context) -> Q:
    """The rule as a condition on `Profile`."""
    if isinstance(rule, r.All):
        return _all_of([rule_q(child, ctx) for child in rule.all])
    if isinstance(rule, r.Any_):
        return _any_of([rule_q(child, ctx) for child in rule.any])
    if isinstance(rule, r.Not):
        return ~rule_q(rule.not_, ctx)
    if isinstance(rule, r.Trait):
        return _json_compare("traits", rule.trait, rule.op, rule.value, ctx)
    if isinstance(rule, r.ProfileTime):
        return _column_compare(rule.profile, rule.op, rule.value, ctx)
    if isinstance(rule, r.Event):
        return _event_q(rule, ctx)
    if isinstance(rule, r.Aggregate):
        return _aggregate_q(rule, ctx)
    if isinstance(rule, r.Consent):
        return _consent_q(rule, ctx)
    if isinstance(rule, r.AccountTrait):
        return _account_q(rule, ctx)
    if isinstance(rule, r.SegmentRef):
        members = SegmentMembership.objects.filter(
            workspace_id=ctx.workspace_id, segment_id=rule.segment, left_at__isnull=True
        )
        return Q(pk__in=_narrow(members, ctx).values("profile_id"))
    if isinstance(rule, r.Rfm):
        return _attribute_q(RfmScore, rule.rfm, rule.op, rule.value, ctx)
    if isinstance(rule, r.Lifecycle):
        return _attribute_q(LifecycleState, rule.lifecycle, rule.op, rule.value, ctx)
    if isinstance(rule, r.Prediction):
        return _prediction_q(rule, ctx)
    raise TypeError(f"unknown condition {type(rule).__name__}")


def rule_profiles(rule: r.Rule, ctx: Context) -> QuerySet:
    """The live (not merged-away) customers of the workspace that match."""
    profiles = Profile.objects.filter(workspace_id=ctx.workspace_id, merged_into__isnull=True)
    if ctx.profile_ids is not None:
        profiles = profiles.filter(pk__any=list(ctx.profile_ids))
    return profiles.filter(rule_q(rule, ctx))
