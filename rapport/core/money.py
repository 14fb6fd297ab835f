"""Money: an amount with its currency, shown in the person's language, and converted to
the workspace's reporting currency only with a rate someone gave.

The rules every app that counts money keeps:

- an amount never travels without its currency (`Money`); adding two currencies
  raises `CurrencyMismatchError` rather than giving a number that means nothing;
- a purchase's currency is its `properties.currency` (ISO 4217, as Segment's
  e-commerce spec sends it); without one it is in the workspace's reporting currency;
- another currency is converted with the rate valid on the purchase's day (the last
  rate whose `valid_from` is on or before it, UTC). Without such a rate the amount is
  not guessed: it is left out and reported (`Unconverted`), so a person sees
  "3 purchases in JPY have no exchange rate and are left out".

The conversion runs inside the database (`Rates.converted`, a CASE over the few rates a
workspace has), so KPIs, RFM and CLV stay one pass over the events.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import cache
from typing import Any

from babel.numbers import (
    format_currency,
    get_currency_name,
    get_currency_precision,
    list_currencies,
)
from django.db.models import Case, CharField, Count, F, FloatField, Sum, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce, NullIf, Upper
from django.db.models.lookups import Exact, GreaterThanOrEqual, LessThan
from django.utils import translation
from django.utils.translation import gettext, ngettext

from rapport.core.errors import InvalidInputError

CURRENCY_PROPERTY = "currency"
DEFAULT_REPORTING_CURRENCY = "USD"

# A stored amount (`DecimalField(max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES)`)
# with its currency in a column beside it. Four places: the currencies with three
# minor digits (BHD, KWD, OMR) and one to spare, so sums and averages of stored
# amounts round right when shown; fourteen digits before the point hold any figure
# even in currencies counted in millions (IDR, VND). Shown rounded to the currency's
# own minor unit (`Money.of`, `money_format`).
MONEY_DIGITS = 18
MONEY_PLACES = 4
_STORED = Decimal(1).scaleb(-MONEY_PLACES)
_STORED_MAX = Decimal(10) ** (MONEY_DIGITS - MONEY_PLACES) - _STORED


class CurrencyMismatchError(ValueError):
    """Two currencies added, subtracted or compared: a bug, never a figure."""


@cache
def currencies() -> frozenset[str]:
    """ISO 4217 codes (as CLDR, through Babel, knows them)."""
    return frozenset(list_currencies())


def currency_clean(value: Any, *, field: str) -> str:
    """An ISO 4217 code, upper case, or a 422 naming `field`."""
    code = value.strip().upper() if isinstance(value, str) else ""
    if code not in currencies():
        raise InvalidInputError(
            gettext("%(field)s must be an ISO 4217 currency code such as GBP, EUR or USD")
            % {"field": field},
            field=field,
        )
    return code


def minor_units(currency: str) -> int:
    """Digits after the decimal point: 2 for GBP, 0 for JPY."""
    return get_currency_precision(currency)


def to_decimal(value: Any) -> Decimal:
    """A number from the database (float on both backends for JSON values) as Decimal."""
    if value is None:
        return Decimal(0)
    if isinstance(value, Decimal):
        return value
    return Decimal(str(value))


def money_stored(value: Any) -> Decimal | None:
    """`value` (a float from numpy or the database, a Decimal, None) as the Decimal a
    money column stores: rounded half-even to `MONEY_PLACES` through its decimal text
    (not its binary expansion, so 0.1 stays 0.1), held within the column's range. A
    value that is not a number (NaN, infinite) stores as None: unknown, not a guess."""
    if value is None:
        return None
    try:
        amount = to_decimal(value)
    except InvalidOperation:
        return None
    if not amount.is_finite():
        return None
    amount = amount.quantize(_STORED, rounding=ROUND_HALF_EVEN)
    return max(-_STORED_MAX, min(_STORED_MAX, amount))


@dataclass(frozen=True, order=False)
class Money:
    amount: Decimal
    currency: str

    @classmethod
    def of(cls, amount: Any, currency: str) -> Money:
        """`amount` rounded to the currency's minor unit."""
        exponent = Decimal(1).scaleb(-minor_units(currency))
        return cls(to_decimal(amount).quantize(exponent, rounding=ROUND_HALF_EVEN), currency)

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatchError(f"{self.currency} and {other.currency} do not add up")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __str__(self) -> str:
        return money_format(self.amount, self.currency)


def babel_locale(language: str | None = None) -> str:
    """Django's language code ("en", "ru", "en-gb") as Babel's locale ("en_GB")."""
    return translation.to_locale(language or translation.get_language() or "en")


def money_format(amount: Any, currency: str, *, language: str | None = None) -> str:
    """`amount` with its currency sign, as the person's language writes money:
    £1,234.50 in English, 1 234,50 £ in Russian."""
    if amount is None:
        return ""
    try:
        return format_currency(to_decimal(amount), currency, locale=babel_locale(language))
    except (InvalidOperation, ValueError):
        return f"{amount} {currency}"


def currency_name(currency: str, *, language: str | None = None) -> str:
    """The currency's name in the person's language: "British pound", "британский фунт
    стерлингов"; the code itself for one CLDR does not know."""
    try:
        return get_currency_name(currency, locale=babel_locale(language))
    except (ValueError, LookupError):
        return currency


@dataclass(frozen=True)
class Rate:
    """1 `currency` is worth `rate` of the reporting currency from `valid_from` on."""

    currency: str
    rate: Decimal
    valid_from: date


@dataclass(frozen=True)
class Unconverted:
    """Amounts in a currency with no rate on their day: left out of every total."""

    currency: str
    count: int
    amount: Decimal

    def to_json(self) -> dict[str, Any]:
        return {"currency": self.currency, "count": self.count, "amount": str(self.amount)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Unconverted:
        return cls(data["currency"], int(data["count"]), Decimal(str(data["amount"])))


def unconverted_message(item: Unconverted | dict[str, Any]) -> str:
    """ "3 purchases in JPY (¥12,000) have no exchange rate and are left out.\""""
    if isinstance(item, dict):
        item = Unconverted.from_json(item)
    return ngettext(
        "%(count)s purchase in %(currency)s (%(amount)s) has no exchange rate and is left out.",
        "%(count)s purchases in %(currency)s (%(amount)s) have no exchange rate and are left out.",
        item.count,
    ) % {
        "count": item.count,
        "currency": item.currency,
        "amount": money_format(item.amount, item.currency),
    }


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


@dataclass(frozen=True)
class Rates:
    """A workspace's reporting currency and its rates for others (what `Rate` says).
    Built by `rapport.tenancy.selectors.money_rates_get`."""

    reporting: str
    rates: tuple[Rate, ...] = ()
    _by_currency: dict[str, list[Rate]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for rate in sorted(self.rates, key=lambda r: (r.currency, r.valid_from)):
            if rate.currency != self.reporting:
                self._by_currency.setdefault(rate.currency, []).append(rate)

    # --- in Python ------------------------------------------------------------------

    def rate_on(self, currency: str, day: date) -> Decimal | None:
        if currency == self.reporting:
            return Decimal(1)
        spans = self._by_currency.get(currency)
        if not spans:
            return None
        where = bisect_right([r.valid_from for r in spans], day)
        return spans[where - 1].rate if where else None

    def convert(self, money: Money, day: date) -> Money | None:
        """`money` in the reporting currency, or None when no rate covers `day`."""
        rate = self.rate_on(money.currency, day)
        if rate is None:
            return None
        return Money.of(money.amount * rate, self.reporting)

    def total(self, amounts: Iterable[tuple[Money, date]]) -> tuple[Money, list[Unconverted]]:
        """The sum in the reporting currency, and what could not be converted."""
        total = Money(Decimal(0), self.reporting)
        missing: dict[str, tuple[int, Decimal]] = {}
        for money, day in amounts:
            converted = self.convert(money, day)
            if converted is None:
                n, amount = missing.get(money.currency, (0, Decimal(0)))
                missing[money.currency] = (n + 1, amount + money.amount)
            else:
                total += converted
        return Money.of(total.amount, self.reporting), [
            Unconverted(c, n, a) for c, (n, a) in sorted(missing.items())
        ]

    # --- in the database ------------------------------------------------------------

    def currency(self, column: str = "properties") -> Any:
        """An event's currency: `properties.currency` upper-cased; absent, null or
        empty, the reporting currency. One JSON lookup (SQL NULL for JSON null on both
        databases): it is read for every purchase of every KPI, RFM and CLV query."""
        return Coalesce(
            NullIf(Upper(KeyTextTransform(CURRENCY_PROPERTY, column)), Value("")),
            Value(self.reporting),
            output_field=CharField(),
        )

    def converted(self, value: Any, *, column: str = "properties", timestamp: str = "timestamp"):
        """`value` (an expression) in the reporting currency, NULL where no rate covers
        the event's day."""
        currency = self.currency(column)
        whens = [When(Exact(currency, Value(self.reporting)), then=value)]
        at = F(timestamp)
        for code, spans in self._by_currency.items():
            for i, rate in enumerate(spans):
                condition = Exact(currency, Value(code)) & GreaterThanOrEqual(
                    at, Value(_midnight(rate.valid_from))
                )
                if i + 1 < len(spans):
                    condition &= LessThan(at, Value(_midnight(spans[i + 1].valid_from)))
                whens.append(When(condition, then=value * Value(float(rate.rate))))
        return Case(*whens, default=None, output_field=FloatField())


def unconverted_read(queryset, value: Any, rates: Rates, *, column: str = "properties"):
    """What `queryset` (events) holds in currencies without a rate on their day, by
    currency: a query of its own, run only when a total said some were left out."""
    rows = (
        queryset.annotate(
            _value=value,
            _converted=rates.converted(value, column=column),
            _currency=rates.currency(column),
        )
        .filter(_value__isnull=False, _converted__isnull=True)
        .order_by()
        .values("_currency")
        .annotate(_n=Count("pk"), _amount=Sum("_value"))
        .values_list("_currency", "_n", "_amount")
    )
    return [
        Unconverted(
            currency,
            n,
            Money.of(amount, currency).amount if currency in currencies() else to_decimal(amount),
        )
        for currency, n, amount in sorted(rows, key=lambda r: str(r[0]))
    ]
