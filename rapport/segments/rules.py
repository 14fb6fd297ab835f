"""The segment rule language: JSON that nests `all` / `any` / `not` over conditions.
`docs/segments.md` describes it with examples; `rule_schema()` is its JSON Schema (also
at `GET /api/v1/segments/rule-schema`). `rule_parse` checks a rule and says where it is
wrong ("all.1.count.op: ..."); `rapport/segments/compiler.py` turns a parsed rule into
SQL with every user value bound as a parameter.

    {"all": [
      {"trait": "plan", "op": "eq", "value": "pro"},
      {"event": "Order Completed", "count": {"op": "gte", "value": 3},
       "window": {"last_days": 90}, "where": [{"property": "total", "op": "gt", "value": 50}]},
      {"rfm": "cell", "op": "in", "value": ["Champions", "Loyal"]}
    ]}

Each kind of condition is defined once, as a `Condition` registered here: the JSON key
that names it, its pydantic model (validation), its query, its description in words
(translated), the fields the visual builder shows, and examples the registry's tests
run through all of these. Segments registers its own (`rapport/segments/conditions.py`);
another app registers its conditions from its `AppConfig.ready` (predictions does), and
journeys and decisions read rules with the same `rule_parse` and `rule_q`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from django.utils.translation import gettext, gettext_lazy, gettext_noop
from django.utils.translation import gettext as _
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from rapport.core.errors import InvalidInputError

if TYPE_CHECKING:
    from django.db.models import Q

    from rapport.segments.compiler import Context

MAX_DEPTH = 8
MAX_CONDITIONS = 100
MAX_LIST = 1000
MAX_DAYS = 36500
GROUPS = ("all", "any", "not")


def _addressable(name: str) -> str:
    # SQLite cannot address such a key in a JSON path: refused on every database alike.
    if '"' in name or "\\" in name:
        raise ValueError(
            gettext("a trait or property name cannot hold a double quote or a backslash")
        )
    return name


Name = Annotated[str, Field(min_length=1, max_length=255)]
KeyName = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_addressable)]
Scalar = str | int | float | bool

COMPARE = ("eq", "ne", "gt", "gte", "lt", "lte")
TEXT = ("contains", "not_contains", "starts_with")
PRESENCE = ("exists", "not_exists")
LISTS = ("in", "not_in")
DATES = ("before", "after")
AGES = ("within_last_days", "older_than_days")
ValueOp = Literal[
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "contains",
    "not_contains",
    "starts_with",
    "exists",
    "not_exists",
    "in",
    "not_in",
    "before",
    "after",
    "within_last_days",
    "older_than_days",
]
CountOp = Literal["eq", "ne", "gt", "gte", "lt", "lte"]
VALUE_OPS: tuple[str, ...] = ValueOp.__args__
COUNT_OPS: tuple[str, ...] = ("gte", "gt", "eq", "ne", "lt", "lte")


@dataclass(frozen=True)
class Operator:
    """An operator as the builder offers it (`label`) and as a description reads it
    (`words`, with the value as %(value)s)."""

    label: Any
    words: Any


OPERATORS: dict[str, Operator] = {
    "eq": Operator(gettext_lazy("is"), gettext_lazy("is %(value)s")),
    "ne": Operator(gettext_lazy("is not"), gettext_lazy("is not %(value)s")),
    "gt": Operator(">", "> %(value)s"),
    "gte": Operator("≥", "≥ %(value)s"),
    "lt": Operator("<", "< %(value)s"),
    "lte": Operator("≤", "≤ %(value)s"),
    "contains": Operator(gettext_lazy("contains"), gettext_lazy("contains %(value)s")),
    "not_contains": Operator(
        gettext_lazy("does not contain"), gettext_lazy("does not contain %(value)s")
    ),
    "starts_with": Operator(gettext_lazy("starts with"), gettext_lazy("starts with %(value)s")),
    "exists": Operator(gettext_lazy("is known"), gettext_lazy("is known")),
    "not_exists": Operator(gettext_lazy("is unknown"), gettext_lazy("is unknown")),
    "in": Operator(gettext_lazy("is one of"), gettext_lazy("is one of %(value)s")),
    "not_in": Operator(gettext_lazy("is none of"), gettext_lazy("is none of %(value)s")),
    "before": Operator(gettext_lazy("is before"), gettext_lazy("is before %(value)s")),
    "after": Operator(gettext_lazy("is after"), gettext_lazy("is after %(value)s")),
    "within_last_days": Operator(
        gettext_lazy("within the last (days)"), gettext_lazy("is within the last %(value)s days")
    ),
    "older_than_days": Operator(
        gettext_lazy("more than (days) ago"), gettext_lazy("is more than %(value)s days ago")
    ),
}


def compared(op: str, value: Any) -> str:
    """`op value` in words: "is one of a, b", "is within the last 30 days"."""
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    return str(OPERATORS[op].words) % {"value": value}


def operator_choices(ops) -> list[list[str]]:
    """Operators as the builder's select offers them."""
    return [[op, str(OPERATORS[op].label)] for op in ops]


class Strict(BaseModel):
    """The base of every condition's model: unknown keys are refused, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_when(value: Any) -> datetime:
    """A date ("2026-01-31", midnight UTC) or an aware ISO time."""
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError(gettext("must be a date (YYYY-MM-DD) or an ISO 8601 time"))
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(gettext("must be a date (YYYY-MM-DD) or an ISO 8601 time")) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def check_value(op: str, value: Any) -> None:
    """The value each operator takes."""
    if op in PRESENCE:
        if value is not None:
            raise ValueError(gettext("'%(op)s' takes no value") % {"op": op})
        return
    if value is None:
        raise ValueError(gettext("'%(op)s' needs a value") % {"op": op})
    if op in LISTS:
        if not isinstance(value, list) or not value or len(value) > MAX_LIST:
            raise ValueError(
                gettext("'%(op)s' takes a list of 1 to %(max_list)s values")
                % {"op": op, "max_list": MAX_LIST}
            )
        for item in value:
            if not isinstance(item, str | int | float) or isinstance(item, bool):
                raise ValueError(
                    gettext("'%(op)s' takes a list of strings or numbers") % {"op": op}
                )
        return
    if isinstance(value, list | dict):
        raise ValueError(
            gettext("'%(op)s' takes a single value, not a list or object") % {"op": op}
        )
    if op in TEXT and not isinstance(value, str):
        raise ValueError(gettext("'%(op)s' takes a string") % {"op": op})
    if op in DATES:
        parse_when(value)
    if op in AGES and (
        not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_DAYS
    ):
        raise ValueError(
            gettext("'%(op)s' takes a whole number of days from 1 to %(max_days)s")
            % {"op": op, "max_days": MAX_DAYS}
        )
    if op in ("gt", "gte", "lt", "lte") and isinstance(value, bool):
        raise ValueError(gettext("'%(op)s' takes a number or a string") % {"op": op})
    if isinstance(value, str) and len(value) > 1000:
        raise ValueError(gettext("a value is at most 1000 characters"))


class Compare(Strict):
    """An operator and the value it takes; a condition adds what it compares."""

    op: ValueOp
    value: Scalar | list[Scalar] | None = None

    @model_validator(mode="after")
    def _value_fits(self):
        check_value(self.op, self.value)
        return self


class PropertyCondition(Compare):
    """A property of the event: `{"property": "total", "op": "gt", "value": 50}`."""

    property: KeyName


# --- the registry -----------------------------------------------------------------


def _never_personal(condition: Any) -> list[tuple[str, str]]:
    return []


def _always_timed(condition: Any) -> bool:
    return True


def _no_segments(condition: Any) -> list[str]:
    return []


@dataclass(frozen=True)
class Condition:
    """One kind of condition, defined once.

    - `key`: the JSON key that names it ({"trait": ...}).
    - `model`: its pydantic model, which validates it (and gives its JSON Schema).
    - `query(condition, ctx) -> Q`: the customers it selects, as a condition on Profile.
    - `describe(condition) -> str`: it in words, through gettext.
    - `label`: its name in the builder's list of conditions (lazy gettext).
    - `fields(options) -> list[dict]`: what the builder shows for it, read by
      rule-builder.js (see `builder_options`).
    - `examples`: valid conditions, run by the registry's tests through every part.
    - `timed(condition)`: whether time passing alone can change its answer (such
      rules are re-checked on a schedule).
    - `segments(condition)`: the ids of the segments it refers to (checked to be the
      workspace's, and followed for cycles and refresh order).
    - `personal(condition)`: what it asks about personal data (an email, a phone, an
      identifier), as (path, name) pairs such as ("where.0.property", "email"): refused
      to roles without `pii.read`, to whom its answers would reveal a masked value.
    """

    key: str
    model: type[BaseModel]
    query: Callable[[Any, Context], Q]
    describe: Callable[[Any], str]
    label: Any
    fields: Callable[[BuilderOptions], list[dict]]
    examples: tuple[dict, ...]
    timed: Callable[[Any], bool] = _always_timed
    personal: Callable[[Any], list[tuple[str, str]]] = _never_personal
    segments: Callable[[Any], list[str]] = _no_segments


_CONDITIONS: dict[str, Condition] = {}
_BY_MODEL: dict[type, Condition] = {}


def condition_register(condition: Condition) -> None:
    """Add a kind of condition to the language (once per key)."""
    if condition.key in GROUPS:
        raise ValueError(f"{condition.key!r} is a group, not a condition")
    known = _CONDITIONS.get(condition.key)
    if known is not None and known.model is not condition.model:
        raise ValueError(f"condition {condition.key!r} registered twice")
    if not condition.examples:
        raise ValueError(f"condition {condition.key!r} needs at least one example")
    _CONDITIONS[condition.key] = condition
    _BY_MODEL[condition.model] = condition


def conditions_all() -> list[Condition]:
    """Every registered condition, in the order they were registered."""
    return list(_CONDITIONS.values())


def condition_of(node: Any) -> Condition:
    """The registered kind of a parsed condition."""
    return _BY_MODEL[type(node)]


@dataclass(frozen=True)
class BuilderOptions:
    """What the builder's fields may offer in one workspace: its other segments, its
    lifecycle stages, its purchase event."""

    segments: list[dict] = field(default_factory=list)
    stages: list[dict] = field(default_factory=list)
    purchase_event: str = "Order Completed"
    # The reporting currency: a sum of purchases is compared with an amount in it.
    currency: str = "USD"


def builder_options(options: BuilderOptions) -> dict:
    """The JSON rule-builder.js reads: every condition with its fields, the groups'
    and buttons' words, all in the person's language."""
    return {
        "conditions": [
            {"key": c.key, "label": str(c.label), "fields": c.fields(options)}
            for c in conditions_all()
        ],
        "texts": {
            "all": _("Match all of"),
            "any": _("Match any of"),
            "not": _("not"),
            "group": _("Group"),
            "condition": _("Condition"),
            "add_condition": _("+ Condition"),
            "add_group": _("+ Group"),
            "remove": _("Remove"),
            "remove_group": _("Remove group"),
        },
    }


# --- groups -----------------------------------------------------------------------


@dataclass(frozen=True)
class All:
    all: list

    def model_dump(self, **kwargs) -> dict:
        return {"all": [child.model_dump(**kwargs) for child in self.all]}


@dataclass(frozen=True)
class Any_:
    any: list

    def model_dump(self, **kwargs) -> dict:
        return {"any": [child.model_dump(**kwargs) for child in self.any]}


@dataclass(frozen=True)
class Not:
    not_: Any

    def model_dump(self, **kwargs) -> dict:
        return {"not": self.not_.model_dump(**kwargs)}


Rule = All | Any_ | Not | BaseModel


def _condition_for(data: dict) -> Condition | None:
    """The condition a JSON object names. When it holds the keys of several (an
    aggregate names its event), the one whose model has the others' keys as fields."""
    found = [c for key, c in _CONDITIONS.items() if key in data]
    for candidate in found:
        fields = set(candidate.model.model_fields)
        if all(other is candidate or other.key in fields for other in found):
            return candidate
    return found[0] if found else None


class _Refused(Exception):
    def __init__(self, where: list, message: str) -> None:
        self.where, self.message = where, message


# pydantic's words for the mistakes people make in a rule, in the person's language
# (the English stays pydantic's own).
_PYDANTIC = {
    gettext_noop("Field required"),
    gettext_noop("Extra inputs are not permitted"),
    gettext_noop("Input should be a valid list"),
    gettext_noop("Input should be a valid string"),
    gettext_noop("Input should be a valid integer, unable to parse string as an integer"),
    gettext_noop("Input should be a valid number, unable to parse string as a number"),
}


def _pydantic_words(error: dict) -> str:
    message = error["msg"].removeprefix("Value error, ")
    if message in _PYDANTIC:
        return _(message)
    if error["type"] == "literal_error":
        # The allowed values are literals: quoted, as the rest of the UI quotes them.
        expected = str(error["ctx"]["expected"]).replace("' or '", "' " + _("or") + " '")
        expected = re.sub(r"'([^']*)'", r"“\1”", expected)
        return _("Input should be %(expected)s") % {"expected": expected}
    return message


def _parse(data: Any, where: list, depth: int, counter: list[int]) -> Rule:
    if depth > MAX_DEPTH:
        raise _Refused([], f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(data, dict):
        group = next((g for g in GROUPS if g in data), None)
        if group is not None:
            extra = sorted(set(data) - {group})
            if extra:
                raise _Refused([*where, extra[0]], _("Extra inputs are not permitted"))
            if group == "not":
                return Not(_parse(data["not"], [*where, "not"], depth + 1, counter))
            children = data[group]
            if not isinstance(children, list):
                raise _Refused([*where, group], _("Input should be a valid list"))
            if len(children) > MAX_CONDITIONS:
                raise _Refused([*where, group], f"List should have at most {MAX_CONDITIONS} items")
            parsed = [
                _parse(child, [*where, group, i], depth + 1, counter)
                for i, child in enumerate(children)
            ]
            return All(parsed) if group == "all" else Any_(parsed)
        condition = _condition_for(data)
        if condition is not None:
            counter[0] += 1
            if counter[0] > MAX_CONDITIONS:
                raise _Refused([], f"more than {MAX_CONDITIONS} conditions")
            try:
                return condition.model.model_validate(data)
            except ValidationError as error:
                first = error.errors()[0]
                raise _Refused([*where, *first["loc"]], _pydantic_words(first)) from None
    keys = ", ".join([*GROUPS, *_CONDITIONS])
    raise _Refused(where, f"a condition is an object with one of the keys {keys}")


def rule_parse(data: Any, *, field: str = "rule") -> Rule:
    """A checked rule, or InvalidInputError naming the offending part."""
    if not isinstance(data, dict):
        raise InvalidInputError(gettext("must be a JSON object"), field=field)
    try:
        return _parse(data, [], 1, [0])
    except _Refused as refused:
        path = ".".join([field, *(str(p) for p in refused.where)])
        raise InvalidInputError(refused.message, field=path) from None


def rule_walk(rule: Rule) -> Iterator[Any]:
    """Every condition of the rule, groups included."""
    yield rule
    if isinstance(rule, All):
        for child in rule.all:
            yield from rule_walk(child)
    elif isinstance(rule, Any_):
        for child in rule.any:
            yield from rule_walk(child)
    elif isinstance(rule, Not):
        yield from rule_walk(rule.not_)


def _conditions_with_paths(rule: Rule, where: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    if isinstance(rule, All | Any_):
        group = "all" if isinstance(rule, All) else "any"
        for i, child in enumerate(getattr(rule, group)):
            yield from _conditions_with_paths(child, (*where, group, i))
    elif isinstance(rule, Not):
        yield from _conditions_with_paths(rule.not_, (*where, "not"))
    else:
        yield where, rule


def rule_segments(rule: Rule) -> list[str]:
    """The segments the rule refers to."""
    return [ref for _, c in _conditions_with_paths(rule) for ref in condition_of(c).segments(c)]


def rule_timed(rule: Rule) -> bool:
    """Whether time passing alone can change the rule's answer for a customer (checked on
    a schedule as well as on events)."""
    return any(condition_of(c).timed(c) for _, c in _conditions_with_paths(rule))


def rule_personal(rule: Rule, *, field: str = "rule") -> list[tuple[str, str]]:
    """Where the rule asks about personal data: ("rule.all.0.trait", "email") pairs."""
    return [
        (".".join([field, *(str(p) for p in where), path]), name)
        for where, c in _conditions_with_paths(rule)
        for path, name in condition_of(c).personal(c)
    ]


def rule_describe(rule: Rule) -> str:
    """The rule in words, in the active language ("plan is pro and did Order Completed
    at least 3 times in the last 90 days")."""
    if isinstance(rule, All | Any_):
        children = rule.all if isinstance(rule, All) else rule.any
        if not children:
            return _("everyone") if isinstance(rule, All) else _("no one")
        joiner = _(" and ") if isinstance(rule, All) else _(" or ")
        inner = joiner.join(rule_describe(c) for c in children)
        return f"({inner})" if len(children) > 1 else inner
    if isinstance(rule, Not):
        return _("not %(rule)s") % {"rule": rule_describe(rule.not_)}
    return condition_of(rule).describe(rule)


def rule_schema() -> dict:
    """The rule language as JSON Schema: groups over every registered condition."""
    defs: dict[str, Any] = {}
    refs = []
    for condition in conditions_all():
        schema = condition.model.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
        defs.update(schema.pop("$defs", {}))
        name = condition.model.__name__
        defs[name] = schema
        refs.append({"$ref": f"#/$defs/{name}"})
    rule = {"$ref": "#/$defs/Rule"}
    for group in ("all", "any"):
        defs[group.capitalize()] = {
            "type": "object",
            "properties": {group: {"type": "array", "items": rule, "maxItems": MAX_CONDITIONS}},
            "required": [group],
            "additionalProperties": False,
        }
        refs.append({"$ref": f"#/$defs/{group.capitalize()}"})
    defs["Not"] = {
        "type": "object",
        "properties": {"not": rule},
        "required": ["not"],
        "additionalProperties": False,
    }
    refs.append({"$ref": "#/$defs/Not"})
    defs["Rule"] = {"oneOf": refs}
    return {"title": "Rapport segment rule", "$ref": "#/$defs/Rule", "$defs": defs}
