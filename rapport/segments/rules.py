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
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from rapport.core.errors import InvalidInputError

MAX_DEPTH = 8
MAX_CONDITIONS = 100
MAX_LIST = 1000
MAX_DAYS = 36500


def _addressable(name: str) -> str:
    # SQLite cannot address such a key in a JSON path: refused on every database alike.
    if '"' in name or "\\" in name:
        raise ValueError("a trait or property name cannot hold a double quote or a backslash")
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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_when(value: Any) -> datetime:
    """A date ("2026-01-31", midnight UTC) or an aware ISO time."""
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("must be a date (YYYY-MM-DD) or an ISO 8601 time")
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a date (YYYY-MM-DD) or an ISO 8601 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _check_value(op: str, value: Any) -> None:
    """The value each operator takes."""
    if op in PRESENCE:
        if value is not None:
            raise ValueError(f"'{op}' takes no value")
        return
    if value is None:
        raise ValueError(f"'{op}' needs a value")
    if op in LISTS:
        if not isinstance(value, list) or not value or len(value) > MAX_LIST:
            raise ValueError(f"'{op}' takes a list of 1 to {MAX_LIST} values")
        for item in value:
            if not isinstance(item, str | int | float) or isinstance(item, bool):
                raise ValueError(f"'{op}' takes a list of strings or numbers")
        return
    if isinstance(value, list | dict):
        raise ValueError(f"'{op}' takes a single value, not a list or object")
    if op in TEXT and not isinstance(value, str):
        raise ValueError(f"'{op}' takes a string")
    if op in DATES:
        parse_when(value)
    if op in AGES and (
        not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_DAYS
    ):
        raise ValueError(f"'{op}' takes a whole number of days from 1 to {MAX_DAYS}")
    if op in ("gt", "gte", "lt", "lte") and isinstance(value, bool):
        raise ValueError(f"'{op}' takes a number or a string")
    if isinstance(value, str) and len(value) > 1000:
        raise ValueError("a value is at most 1000 characters")


class _Compare(_Strict):
    op: ValueOp
    value: Scalar | list[Scalar] | None = None

    @model_validator(mode="after")
    def _value_fits(self):
        _check_value(self.op, self.value)
        return self


class PropertyCondition(_Compare):
    """A property of the event: `{"property": "total", "op": "gt", "value": 50}`."""

    property: KeyName


class Trait(_Compare):
    """A trait of the customer; dotted names reach into objects (`address.city`)."""

    trait: KeyName


class AccountTrait(_Compare):
    """A trait of any account (company) the customer belongs to."""

    account_trait: KeyName


class ProfileTime(_Strict):
    """When the customer was first or last seen."""

    profile: Literal["first_seen_at", "last_seen_at"]
    op: Literal["before", "after", "within_last_days", "older_than_days"]
    value: str | int

    @model_validator(mode="after")
    def _value_fits(self):
        _check_value(self.op, self.value)
        return self


class Count(_Strict):
    op: CountOp = "gte"
    value: int = Field(1, ge=0, le=1_000_000)


class Window(_Strict):
    """Which of the customer's events count: the last N days, older than N days,
    between two dates, or the first N days after they were first seen (or after their
    first event of `from`, e.g. "Signed Up")."""

    last_days: int | None = Field(None, ge=1, le=MAX_DAYS)
    older_than_days: int | None = Field(None, ge=1, le=MAX_DAYS)
    after: str | None = None
    before: str | None = None
    first_days: int | None = Field(None, ge=1, le=MAX_DAYS)
    from_: Name | None = Field(None, alias="from")

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
                "give exactly one of last_days, older_than_days, after/before, first_days"
            )
        if self.from_ is not None and self.first_days is None:
            raise ValueError("'from' goes with first_days")
        for value in (self.after, self.before):
            if value is not None:
                parse_when(value)
        return self

    @property
    def timed(self) -> bool:
        """Whether time passing alone changes what the window holds."""
        return self.last_days is not None or self.older_than_days is not None


class Event(_Strict):
    """Did (or did not: count 0) an event, how often, when, with which properties."""

    event: Name
    count: Count = Count()
    window: Window | None = None
    where: list[PropertyCondition] = Field(default_factory=list, max_length=20)


class Aggregate(_Strict):
    """sum / avg / min / max of a numeric event property, compared with a number.
    A customer without such events has no value and does not match."""

    aggregate: Literal["sum", "avg", "min", "max"]
    event: Name
    property: KeyName
    op: CountOp
    value: int | float
    window: Window | None = None
    where: list[PropertyCondition] = Field(default_factory=list, max_length=20)


class Consent(_Strict):
    """The latest consent statement for a channel and purpose."""

    consent: Literal["email", "sms", "push", "phone", "direct_mail"]
    purpose: Literal["marketing", "transactional"] = "marketing"
    status: Literal["granted", "denied"] = "granted"


class SegmentRef(_Strict):
    """Currently a member of another segment of the workspace (`not` for outside it)."""

    segment: str = Field(min_length=1, max_length=64)


class Rfm(_Compare):
    """A computed RFM attribute: cell (a name), r / f / m (1-5), or the raw
    recency_days, frequency, monetary."""

    rfm: Literal["cell", "r", "f", "m", "recency_days", "frequency", "monetary"]


class Lifecycle(_Compare):
    """The customer's current lifecycle stage or sub-stage (by key)."""

    lifecycle: Literal["stage", "sub_stage"]


class Prediction(_Compare):
    """A score written by the predictions app: churn probability (0-1) or band (low,
    medium, high); lifetime value and its parts. Customers without a score (never
    bought: no CLV) match only the negative operators."""

    prediction: Literal[
        "churn_probability",
        "churn_band",
        "clv",
        "p_alive",
        "expected_purchases_30",
        "expected_purchases_90",
        "expected_purchases_365",
        "expected_order_value",
    ]


class All(_Strict):
    all: list[Rule] = Field(max_length=MAX_CONDITIONS)


class Any_(_Strict):
    any: list[Rule] = Field(max_length=MAX_CONDITIONS)


class Not(_Strict):
    not_: Rule = Field(alias="not")


_TAGS = (
    "all",
    "any",
    "not",
    "trait",
    "profile",
    "event",
    "aggregate",
    "consent",
    "account_trait",
    "segment",
    "rfm",
    "lifecycle",
    "prediction",
)


def _tag(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return _MODEL_TAGS.get(type(value))
    if isinstance(value, dict):
        if "aggregate" in value:
            return "aggregate"
        for tag in _TAGS:
            if tag in value:
                return tag
    return None


Rule = Annotated[
    Annotated[All, Tag("all")]
    | Annotated[Any_, Tag("any")]
    | Annotated[Not, Tag("not")]
    | Annotated[Trait, Tag("trait")]
    | Annotated[ProfileTime, Tag("profile")]
    | Annotated[Event, Tag("event")]
    | Annotated[Aggregate, Tag("aggregate")]
    | Annotated[Consent, Tag("consent")]
    | Annotated[AccountTrait, Tag("account_trait")]
    | Annotated[SegmentRef, Tag("segment")]
    | Annotated[Rfm, Tag("rfm")]
    | Annotated[Lifecycle, Tag("lifecycle")]
    | Annotated[Prediction, Tag("prediction")],
    Discriminator(
        _tag,
        custom_error_type="unknown_condition",
        custom_error_message=f"a condition is an object with one of the keys {', '.join(_TAGS)}",
    ),
]
_MODEL_TAGS = {
    All: "all",
    Any_: "any",
    Not: "not",
    Trait: "trait",
    ProfileTime: "profile",
    Event: "event",
    Aggregate: "aggregate",
    Consent: "consent",
    AccountTrait: "account_trait",
    SegmentRef: "segment",
    Rfm: "rfm",
    Lifecycle: "lifecycle",
    Prediction: "prediction",
}
All.model_rebuild()
Any_.model_rebuild()
Not.model_rebuild()
_ADAPTER = TypeAdapter(Rule)


def rule_schema() -> dict:
    """The rule language as JSON Schema."""
    schema = _ADAPTER.json_schema(by_alias=True)
    schema["title"] = "Rapport segment rule"
    return schema


def _path(loc: tuple) -> str:
    # Pydantic puts the union's tag before each condition's own fields; people write the
    # JSON without it.
    parts: list[str] = []
    expect_tag = True
    for item in loc:
        if expect_tag and isinstance(item, str) and item in _TAGS:
            expect_tag = False
            continue
        parts.append(str(item))
        expect_tag = isinstance(item, int) or item == "not"
    return ".".join(parts)


def rule_parse(data: Any, *, field: str = "rule") -> Rule:
    """A checked rule, or InvalidInputError naming the offending part."""
    if not isinstance(data, dict):
        raise InvalidInputError("must be a JSON object", field=field)
    try:
        rule = _ADAPTER.validate_python(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = _path(first["loc"])
        path = f"{field}.{where}" if where else field
        message = first["msg"].removeprefix("Value error, ")
        raise InvalidInputError(message, field=path) from None
    depth, count = _measure(rule)
    if depth > MAX_DEPTH:
        raise InvalidInputError(f"nested deeper than {MAX_DEPTH} levels", field=field)
    if count > MAX_CONDITIONS:
        raise InvalidInputError(f"more than {MAX_CONDITIONS} conditions", field=field)
    return rule


def _measure(rule: Rule, depth: int = 1) -> tuple[int, int]:
    if isinstance(rule, All | Any_):
        children = rule.all if isinstance(rule, All) else rule.any
        measured = [_measure(child, depth + 1) for child in children]
        return max([depth, *(d for d, _ in measured)]), sum(c for _, c in measured)
    if isinstance(rule, Not):
        return _measure(rule.not_, depth + 1)
    return depth, 1


def rule_walk(rule: Rule):
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


def rule_segments(rule: Rule) -> list[str]:
    """The segments the rule refers to."""
    return [c.segment for c in rule_walk(rule) if isinstance(c, SegmentRef)]


def rule_timed(rule: Rule) -> bool:
    """Whether time passing alone can change the rule's answer for a customer (checked on
    a schedule as well as on events)."""
    for c in rule_walk(rule):
        if isinstance(c, Event | Aggregate) and c.window is not None and c.window.timed:
            return True
        if isinstance(c, Trait | ProfileTime | PropertyCondition) and c.op in AGES:
            return True
        if isinstance(c, Rfm | Lifecycle | SegmentRef | Consent | Prediction):
            # Recomputed on their own schedule (consent can expire).
            return True
    return False
