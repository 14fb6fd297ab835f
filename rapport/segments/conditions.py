"""The conditions segments bring to the rule language (rapport/segments/rules.py), each
defined once: its model, its query, its words and its builder fields. Registered when
the segments app is ready; predictions registers its scores the same way."""

from __future__ import annotations

import operator
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Literal

from django.db.models import Avg, Count, Exists, F, Max, Min, OuterRef, Q, QuerySet, Subquery, Sum
from django.utils.translation import gettext, gettext_lazy
from django.utils.translation import gettext as _
from pydantic import Field, model_validator

from rapport.core.jsonkeys import json_number
from rapport.core.money import currency_name, money_format
from rapport.ingest.models import Event as EventRow
from rapport.profiles.models import AccountMember, ConsentChange
from rapport.segments import money
from rapport.segments import rules as r
from rapport.segments.compiler import (
    NEGATED,
    NEVER,
    Context,
    attribute_q,
    column_compare,
    days_ago,
    json_compare,
    narrow,
)
from rapport.segments.models import LifecycleState, RfmScore, Segment, SegmentMembership
from rapport.tenancy.pii import personal_key

# --- shared by several conditions -------------------------------------------------


def _compare_fields(name_label, ops=r.VALUE_OPS, default_op="eq", default_value="") -> list:
    return [
        {
            "name": "op",
            "widget": "select",
            "label": _("Operator"),
            "default": default_op,
            "choices": r.operator_choices(ops),
        },
        {"name": "value", "widget": "value", "label": _("Value"), "default": default_value},
    ]


def _personal_compare(condition: Any, name: str, path: str) -> list[tuple[str, str]]:
    # Whether a value is there discloses no more than the masked value does.
    if condition.op in r.PRESENCE or not personal_key(name):
        return []
    return [(path, name)]


def _age_timed(condition: Any) -> bool:
    return condition.op in r.AGES


# --- trait ------------------------------------------------------------------------


class Trait(r.Compare):
    """A trait of the customer; dotted names reach into objects (`address.city`)."""

    trait: r.KeyName


r.condition_register(
    r.Condition(
        key="trait",
        model=Trait,
        query=lambda c, ctx: json_compare("traits", c.trait, c.op, c.value, ctx),
        describe=lambda c: (
            _("%(name)s %(comparison)s")
            % {"name": c.trait, "comparison": r.compared(c.op, c.value)}
        ),
        label=gettext_lazy("Trait"),
        fields=lambda o: [
            {"name": "trait", "widget": "text", "label": _("Trait name"), "default": ""},
            *_compare_fields(_("Trait name")),
        ],
        examples=(
            {"trait": "plan", "op": "eq", "value": "pro"},
            {"trait": "address.city", "op": "in", "value": ["Paris", "Lyon"]},
            {"trait": "signed_up_at", "op": "within_last_days", "value": 30},
        ),
        timed=_age_timed,
        personal=lambda c: _personal_compare(c, c.trait, "trait"),
    )
)


# --- first / last seen --------------------------------------------------------------


class ProfileTime(r.Strict):
    """When the customer was first or last seen."""

    profile: Literal["first_seen_at", "last_seen_at"]
    op: Literal["before", "after", "within_last_days", "older_than_days"]
    value: str | int

    @model_validator(mode="after")
    def _value_fits(self):
        r.check_value(self.op, self.value)
        return self


_SEEN = {"first_seen_at": gettext_lazy("first seen"), "last_seen_at": gettext_lazy("last seen")}

r.condition_register(
    r.Condition(
        key="profile",
        model=ProfileTime,
        query=lambda c, ctx: column_compare(c.profile, c.op, c.value, ctx),
        describe=lambda c: (
            _("%(when)s %(comparison)s")
            % {"when": _SEEN[c.profile], "comparison": r.compared(c.op, c.value)}
        ),
        label=gettext_lazy("First / last seen"),
        fields=lambda o: [
            {
                "name": "profile",
                "widget": "select",
                "label": _("When"),
                "default": "last_seen_at",
                "choices": [[k, str(v)] for k, v in _SEEN.items()],
            },
            *_compare_fields(
                None, ops=(*r.AGES, *r.DATES), default_op="within_last_days", default_value=30
            ),
        ],
        examples=(
            {"profile": "last_seen_at", "op": "within_last_days", "value": 30},
            {"profile": "first_seen_at", "op": "before", "value": "2026-01-31"},
        ),
        timed=_age_timed,
    )
)


# --- events -------------------------------------------------------------------------


class Count_(r.Strict):
    op: r.CountOp = "gte"
    value: int = Field(1, ge=0, le=1_000_000)


class Window(r.Strict):
    """Which of the customer's events count: the last N days, older than N days,
    between two dates, or the first N days after they were first seen (or after their
    first event of `from`, e.g. "Signed Up")."""

    last_days: int | None = Field(None, ge=1, le=r.MAX_DAYS)
    older_than_days: int | None = Field(None, ge=1, le=r.MAX_DAYS)
    after: str | None = None
    before: str | None = None
    first_days: int | None = Field(None, ge=1, le=r.MAX_DAYS)
    from_: r.Name | None = Field(None, alias="from")

    @model_validator(mode="after")
    def _one_kind(self):
        kinds = [
            self.last_days is not None,
            self.older_than_days is not None,
            self.after is not None or self.before is not None,
            self.first_days is not None,
        ]
        if sum(kinds) != 1:
            raise ValueError(
                gettext("give exactly one of last_days, older_than_days, after/before, first_days")
            )
        if self.from_ is not None and self.first_days is None:
            raise ValueError(gettext("'from' goes with first_days"))
        for value in (self.after, self.before):
            if value is not None:
                r.parse_when(value)
        return self

    @property
    def timed(self) -> bool:
        """Whether time passing alone changes what the window holds."""
        return self.last_days is not None or self.older_than_days is not None


class Event(r.Strict):
    """Did (or did not: count 0) an event, how often, when, with which properties."""

    event: r.Name
    count: Count_ = Count_()
    window: Window | None = None
    where: list[r.PropertyCondition] = Field(default_factory=list, max_length=20)


class Aggregate(r.Strict):
    """sum / avg / min / max of a numeric event property, compared with a number.
    A customer without such events has no value and does not match."""

    aggregate: Literal["sum", "avg", "min", "max"]
    event: r.Name
    property: r.KeyName
    op: r.CountOp
    value: int | float
    window: Window | None = None
    where: list[r.PropertyCondition] = Field(default_factory=list, max_length=20)
    # Money: `value` is in this currency (ISO 4217), and each event's amount is in its
    # own `properties.currency`, converted before it is added (`rapport.segments.money`).
    # Without it, the purchase event's value properties are money all the same, in the
    # reporting currency.
    currency: money.Currency = None


def _events(condition: Event | Aggregate, ctx: Context) -> QuerySet:
    events = EventRow.objects.filter(
        workspace_id=ctx.workspace_id, event=condition.event, profile_id__isnull=False
    )
    events = narrow(events, ctx)
    window = condition.window
    if window is not None:
        if window.last_days is not None:
            events = events.filter(timestamp__gte=days_ago(ctx, window.last_days))
        elif window.older_than_days is not None:
            events = events.filter(timestamp__lt=days_ago(ctx, window.older_than_days))
        elif window.first_days is not None:
            if window.from_ is None:
                start: Any = F("profile__first_seen_at")
            else:
                start = Subquery(
                    EventRow.objects.filter(
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
            json_compare("properties", where.property, where.op, where.value, ctx)
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


def _event_q(condition: Event, ctx: Context) -> Q:
    events = _events(condition, ctx)
    op, value = condition.count.op, condition.count.value
    if not _COUNT_TEST[op](0, value):
        return Q(pk__in=_having(events, op, value))
    # Customers with no such event match: exclude those whose count fails the test.
    return ~Q(pk__in=_having(events, _COUNT_NEGATION[op], value))


_AGGREGATES = {"sum": Sum, "avg": Avg, "min": Min, "max": Max}


def _aggregate_q(condition: Aggregate, ctx: Context) -> Q:
    events = _events(condition, ctx)
    function = _AGGREGATES[condition.aggregate]
    value_of: Any = json_number("properties", condition.property)
    threshold: float | None = condition.value
    if money.is_money(condition, ctx):
        # Two currencies are never added: each amount in the reporting currency at its
        # day's rate, NULL (left out, and reported) without one.
        value_of, threshold = money.converted(condition, events, value_of, ctx)
        if threshold is None:
            return NEVER
    lookup = "exact" if condition.op == "eq" else condition.op
    grouped = events.values("profile_id").annotate(v=function(value_of))
    if condition.op == "ne":
        grouped = grouped.filter(v__isnull=False).exclude(v=threshold)
    else:
        grouped = grouped.filter(**{f"v__{lookup}": threshold})
    return Q(pk__in=grouped.values("profile_id"))


def _window_words(window: Window | None) -> str:
    if window is None:
        return ""
    if window.last_days:
        return _(" in the last %(days)s days") % {"days": window.last_days}
    if window.older_than_days:
        return _(" more than %(days)s days ago") % {"days": window.older_than_days}
    if window.first_days:
        anchor = window.from_ or _("first seen")
        return _(" in the first %(days)s days after %(anchor)s") % {
            "days": window.first_days,
            "anchor": anchor,
        }
    parts = []
    if window.after:
        parts.append(_("from %(date)s") % {"date": window.after})
    if window.before:
        parts.append(_("before %(date)s") % {"date": window.before})
    return " " + " ".join(parts)


def _where_words(where: list[r.PropertyCondition]) -> str:
    return "".join(
        _(" where %(property)s %(comparison)s")
        % {"property": w.property, "comparison": r.compared(w.op, w.value)}
        for w in where
    )


def _event_words(c: Event) -> str:
    count = c.count
    if (count.op, count.value) == ("gte", 1):
        how = _("did %(event)s") % {"event": c.event}
    elif (count.op, count.value) == ("eq", 0):
        how = _("did not do %(event)s") % {"event": c.event}
    else:
        how = _("did %(event)s %(comparison)s times") % {
            "event": c.event,
            "comparison": r.compared(count.op, count.value),
        }
    return f"{how}{_where_words(c.where)}{_window_words(c.window)}"


def _window_timed(c: Event | Aggregate) -> bool:
    return (c.window is not None and c.window.timed) or any(w.op in r.AGES for w in c.where)


def _where_personal(c: Event | Aggregate) -> list[tuple[str, str]]:
    return [
        pair
        for i, w in enumerate(c.where)
        for pair in _personal_compare(w, w.property, f"where.{i}.property")
    ]


def _event_fields(o: r.BuilderOptions) -> list[dict]:
    return [
        {"name": "event", "widget": "text", "label": _("Event"), "default": o.purchase_event},
        {
            "name": "count",
            "widget": "count",
            "label": _("Times"),
            "after": _(" times "),
            "choices": r.operator_choices(r.COUNT_OPS),
        },
        *_where_and_window(),
    ]


def _where_and_window() -> list[dict]:
    return [
        {
            "name": "where",
            "widget": "where",
            "label": _("Where property"),
            "op_label": _("Where operator"),
            "value_label": _("Where value"),
            "choices": r.operator_choices(r.VALUE_OPS),
        },
        {
            "name": "window",
            "widget": "window",
            "label": _("When"),
            "days_label": _("Days"),
            "choices": [
                ["", _("at any time")],
                ["last_days", _("in the last N days")],
                ["older_than_days", _("more than N days ago")],
                ["first_days", _("in the first N days after first seen")],
            ],
        },
    ]


r.condition_register(
    r.Condition(
        key="event",
        model=Event,
        query=_event_q,
        describe=_event_words,
        label=gettext_lazy("Did an event"),
        fields=_event_fields,
        examples=(
            {"event": "Order Completed"},
            {
                "event": "Order Completed",
                "count": {"op": "gte", "value": 3},
                "window": {"last_days": 90},
                "where": [{"property": "total", "op": "gt", "value": 50}],
            },
            {
                "event": "Feature Used",
                "count": {"op": "eq", "value": 0},
                "window": {"first_days": 30, "from": "Signed Up"},
            },
            {"event": "Order Completed", "window": {"after": "2026-01-01", "before": "2026-02-01"}},
        ),
        timed=_window_timed,
        personal=_where_personal,
    )
)

_FUNCTIONS = {
    "sum": gettext_lazy("sum"),
    "avg": gettext_lazy("average"),
    "min": gettext_lazy("minimum"),
    "max": gettext_lazy("maximum"),
}


def _aggregate_words(c: Aggregate) -> str:
    # Money is named with its currency ("≥ £100.00"), in the person's language.
    value = c.value if c.currency is None else money_format(c.value, c.currency)
    words = _("%(function)s of %(property)s of %(event)s%(where)s%(window)s %(comparison)s") % {
        "function": _FUNCTIONS[c.aggregate],
        "property": c.property,
        "event": c.event,
        "where": _where_words(c.where),
        "window": _window_words(c.window),
        "comparison": r.compared(c.op, value),
    }
    if c.currency is not None:
        words += _(" (purchases converted to %(currency)s at the rate of their day)") % {
            "currency": c.currency
        }
    return words


r.condition_register(
    r.Condition(
        key="aggregate",
        model=Aggregate,
        query=_aggregate_q,
        describe=_aggregate_words,
        label=gettext_lazy("Sum / average of a property"),
        fields=lambda o: [
            {
                "name": "aggregate",
                "widget": "select",
                "label": _("Function"),
                "default": "sum",
                "choices": [[k, str(v)] for k, v in _FUNCTIONS.items()],
            },
            {
                "name": "property",
                "widget": "text",
                "label": _("Property"),
                "default": "revenue",
                "after": _(" of "),
            },
            {"name": "event", "widget": "text", "label": _("Event"), "default": o.purchase_event},
            *_where_and_window(),
            {
                "name": "op",
                "widget": "select",
                "label": _("Operator"),
                "default": "gte",
                "choices": r.operator_choices(r.COUNT_OPS),
            },
            {"name": "value", "widget": "number", "label": _("Value"), "default": 0},
            {
                "name": "currency",
                "widget": "select",
                "label": _("Currency"),
                "default": o.currency,
                "choices": [[o.currency, currency_name(o.currency)], ["", _("not money")]],
            },
        ],
        examples=(
            {
                "aggregate": "sum",
                "event": "Order Completed",
                "property": "total",
                "op": "gte",
                "value": 100,
                "window": {"last_days": 365},
            },
            {
                "aggregate": "sum",
                "event": "Order Completed",
                "property": "revenue",
                "op": "gte",
                "value": 250,
                "currency": "GBP",
            },
            {
                "aggregate": "avg",
                "event": "Order Completed",
                "property": "total",
                "op": "lt",
                "value": 20,
            },
        ),
        timed=_window_timed,
        personal=lambda c: [
            *([("property", c.property)] if personal_key(c.property) else []),
            *_where_personal(c),
        ],
    )
)


# --- consent ------------------------------------------------------------------------


class Consent(r.Strict):
    """The latest consent statement for a channel and purpose."""

    consent: Literal["email", "sms", "push", "phone", "direct_mail"]
    purpose: Literal["marketing", "transactional"] = "marketing"
    status: Literal["granted", "denied"] = "granted"


_CHANNELS = {
    "email": gettext_lazy("email"),
    "sms": gettext_lazy("SMS"),
    "push": gettext_lazy("push"),
    "phone": gettext_lazy("phone"),
    "direct_mail": gettext_lazy("direct mail"),
}
_PURPOSES = {"marketing": gettext_lazy("marketing"), "transactional": gettext_lazy("transactional")}
_STATUSES = {"granted": gettext_lazy("granted"), "denied": gettext_lazy("denied")}


def _consent_q(condition: Consent, ctx: Context) -> Q:
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
    return Q(pk__in=narrow(latest, ctx).values("profile_id"))


def _choices(labels: dict) -> list[list[str]]:
    return [[k, str(v)] for k, v in labels.items()]


r.condition_register(
    r.Condition(
        key="consent",
        model=Consent,
        query=_consent_q,
        describe=lambda c: (
            _("%(channel)s %(purpose)s consent %(status)s")
            % {
                "channel": _CHANNELS[c.consent],
                "purpose": _PURPOSES[c.purpose],
                "status": _STATUSES[c.status],
            }
        ),
        label=gettext_lazy("Consent"),
        fields=lambda o: [
            {
                "name": "consent",
                "widget": "select",
                "label": _("Channel"),
                "default": "email",
                "choices": _choices(_CHANNELS),
            },
            {
                "name": "purpose",
                "widget": "select",
                "label": _("Purpose"),
                "default": "marketing",
                "choices": _choices(_PURPOSES),
            },
            {
                "name": "status",
                "widget": "select",
                "label": _("Status"),
                "default": "granted",
                "choices": _choices(_STATUSES),
            },
        ],
        examples=(
            {"consent": "email"},
            {"consent": "sms", "purpose": "transactional", "status": "denied"},
        ),
    )
)


# --- account trait ------------------------------------------------------------------


class AccountTrait(r.Compare):
    """A trait of any account (company) the customer belongs to."""

    account_trait: r.KeyName


def _account_q(condition: AccountTrait, ctx: Context) -> Q:
    members = narrow(AccountMember.objects.filter(workspace_id=ctx.workspace_id), ctx)
    op = condition.op
    if op in NEGATED:
        # "No account with industry = x": customers outside the accounts that have it.
        op = NEGATED[op]
    matching = members.filter(
        json_compare("account__traits", condition.account_trait, op, condition.value, ctx)
    )
    if op != condition.op:
        return ~Q(pk__in=matching.values("profile_id"))
    return Q(pk__in=matching.values("profile_id"))


r.condition_register(
    r.Condition(
        key="account_trait",
        model=AccountTrait,
        query=_account_q,
        describe=lambda c: (
            _("account %(name)s %(comparison)s")
            % {"name": c.account_trait, "comparison": r.compared(c.op, c.value)}
        ),
        label=gettext_lazy("Account trait"),
        fields=lambda o: [
            {
                "name": "account_trait",
                "widget": "text",
                "label": _("Account trait name"),
                "default": "",
            },
            *_compare_fields(None),
        ],
        examples=(
            {"account_trait": "industry", "op": "eq", "value": "retail"},
            {"account_trait": "employees", "op": "gte", "value": 50},
        ),
        timed=_age_timed,
        personal=lambda c: _personal_compare(c, c.account_trait, "account_trait"),
    )
)


# --- another segment ----------------------------------------------------------------


class SegmentRef(r.Strict):
    """Currently a member of another segment of the workspace (`not` for outside it)."""

    segment: str = Field(min_length=1, max_length=64)


def _segment_q(condition: SegmentRef, ctx: Context) -> Q:
    members = SegmentMembership.objects.filter(
        workspace_id=ctx.workspace_id, segment_id=condition.segment, left_at__isnull=True
    )
    return Q(pk__in=narrow(members, ctx).values("profile_id"))


def _segment_words(c: SegmentRef) -> str:
    try:
        name = Segment.objects.filter(pk=uuid.UUID(c.segment)).values_list("name", flat=True)
        name = name.first()
    except ValueError:
        name = None
    return _("in segment %(name)s") % {"name": name or c.segment}


r.condition_register(
    r.Condition(
        key="segment",
        model=SegmentRef,
        query=_segment_q,
        describe=_segment_words,
        label=gettext_lazy("In segment"),
        fields=lambda o: [
            {
                "name": "segment",
                "widget": "select",
                "label": _("Segment"),
                "choices": [[s["id"], s["name"]] for s in o.segments],
            },
        ],
        examples=({"segment": "00000000-0000-0000-0000-000000000000"},),
        segments=lambda c: [c.segment],
    )
)


# --- RFM and lifecycle --------------------------------------------------------------


class Rfm(r.Compare):
    """A computed RFM attribute: cell (a name), r / f / m (1-5), or the raw
    recency_days, frequency, monetary."""

    rfm: Literal["cell", "r", "f", "m", "recency_days", "frequency", "monetary"]


_RFM = {
    "cell": gettext_lazy("cell"),
    "r": gettext_lazy("recency score (R)"),
    "f": gettext_lazy("frequency score (F)"),
    "m": gettext_lazy("monetary score (M)"),
    "recency_days": gettext_lazy("days since the last purchase"),
    "frequency": gettext_lazy("purchases"),
    "monetary": gettext_lazy("money spent"),
}


def _rfm_cells_named(c: Rfm):
    """A cell condition's value with the cells' names in the person's language."""
    from rapport.segments.rfm import cell_label

    if c.rfm != "cell":
        return c.value
    return [cell_label(v) for v in c.value] if isinstance(c.value, list) else cell_label(c.value)


def _rfm_fields(o: r.BuilderOptions) -> list[dict]:
    from rapport.segments import rfm

    fields = _compare_fields(
        None,
        ops=("in", "not_in", "eq", "ne", "gte", "lte"),
        default_op="in",
        default_value="Champions",
    )
    fields[1]["suggest"] = list(rfm.CELLS)
    return [
        {
            "name": "rfm",
            "widget": "select",
            "label": _("RFM"),
            "default": "cell",
            "choices": _choices(_RFM),
        },
        *fields,
    ]


r.condition_register(
    r.Condition(
        key="rfm",
        model=Rfm,
        query=lambda c, ctx: attribute_q(RfmScore, c.rfm, c.op, c.value, ctx),
        describe=lambda c: (
            _("RFM %(attribute)s %(comparison)s")
            % {"attribute": _RFM[c.rfm], "comparison": r.compared(c.op, _rfm_cells_named(c))}
        ),
        label=gettext_lazy("RFM cell or score"),
        fields=_rfm_fields,
        examples=(
            {"rfm": "cell", "op": "in", "value": ["Champions", "Loyal"]},
            {"rfm": "r", "op": "gte", "value": 4},
        ),
    )
)


class Lifecycle(r.Compare):
    """The customer's current lifecycle stage or sub-stage (by key)."""

    lifecycle: Literal["stage", "sub_stage"]


_LIFECYCLE = {"stage": gettext_lazy("stage"), "sub_stage": gettext_lazy("sub-stage")}

r.condition_register(
    r.Condition(
        key="lifecycle",
        model=Lifecycle,
        query=lambda c, ctx: attribute_q(LifecycleState, c.lifecycle, c.op, c.value, ctx),
        describe=lambda c: (
            _("lifecycle %(attribute)s %(comparison)s")
            % {"attribute": _LIFECYCLE[c.lifecycle], "comparison": r.compared(c.op, c.value)}
        ),
        label=gettext_lazy("Lifecycle stage"),
        fields=lambda o: [
            {
                "name": "lifecycle",
                "widget": "select",
                "label": _("Stage or sub-stage"),
                "default": "stage",
                "choices": _choices(_LIFECYCLE),
            },
            {
                "name": "op",
                "widget": "select",
                "label": _("Operator"),
                "default": "eq",
                "choices": r.operator_choices(("eq", "ne")),
            },
            {
                "name": "value",
                "widget": "select",
                "label": _("Stage"),
                "choices": [[s["key"], s["name"]] for s in o.stages],
            },
        ],
        examples=(
            {"lifecycle": "stage", "op": "eq", "value": "customer"},
            {"lifecycle": "sub_stage", "op": "in", "value": ["at_risk", "lapsed"]},
        ),
    )
)
