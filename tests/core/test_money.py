"""Money: amounts with their currency, never added across currencies; formatting in
each language; conversion with the rate of the day, in Python and in the database; what
cannot be converted is reported, not guessed."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.template import Context, Template
from django.utils import translation

from rapport.core.errors import InvalidInputError
from rapport.core.jsonkeys import json_number
from rapport.core.money import (
    CurrencyMismatchError,
    Money,
    Rate,
    Rates,
    Unconverted,
    currency_clean,
    money_format,
    unconverted_message,
    unconverted_read,
)

RATES = Rates(
    "GBP",
    (
        Rate("EUR", Decimal("0.85"), date(2026, 1, 1)),
        Rate("EUR", Decimal("0.90"), date(2026, 6, 1)),
        Rate("USD", Decimal("0.75"), date(2026, 3, 1)),
    ),
)


def spaces(text: str) -> str:
    """CLDR writes Russian with no-break spaces: compare them as spaces."""
    return text.replace("\xa0", " ").replace("\u202f", " ")


def test_money_of_the_same_currency_adds_up():
    total = Money.of("10.005", "GBP") + Money.of(5, "GBP")
    assert total == Money(Decimal("15.00"), "GBP")
    assert Money.of(1234.5, "JPY").amount == Decimal("1234")  # no minor unit: rounded even
    assert (Money.of(3, "EUR") - Money.of(1, "EUR")).amount == Decimal("2.00")


@pytest.mark.parametrize("operation", ["add", "sub", "lt"])
def test_two_currencies_never_add_up(operation):
    a, b = Money.of(1, "GBP"), Money.of(1, "EUR")
    with pytest.raises(CurrencyMismatchError):
        {"add": lambda: a + b, "sub": lambda: a - b, "lt": lambda: a < b}[operation]()


@pytest.mark.parametrize(
    ("language", "amount", "currency", "expected"),
    [
        ("en", Decimal("1234.5"), "GBP", "£1,234.50"),
        ("en", 1234.5, "EUR", "€1,234.50"),
        ("en", Decimal("12000"), "JPY", "¥12,000"),
        ("ru", Decimal("1234.5"), "GBP", "1 234,50 £"),
        ("ru", Decimal("1234.5"), "EUR", "1 234,50 €"),
        ("ru", Decimal("1234.5"), "RUB", "1 234,50 ₽"),
    ],
)
def test_money_is_written_as_the_language_writes_it(language, amount, currency, expected):
    assert spaces(money_format(amount, currency, language=language)) == expected
    with translation.override(language):
        assert spaces(str(Money.of(amount, currency))) == expected


def test_the_money_filter_follows_the_active_language():
    template = Template('{% load money %}{{ v|money:"GBP" }} {{ none|money:"GBP" }}')
    with translation.override("en"):
        assert template.render(Context({"v": 42.5, "none": None})) == "£42.50 -"
    with translation.override("ru"):
        assert spaces(template.render(Context({"v": 42.5, "none": None}))) == "42,50 £ -"


@pytest.mark.parametrize("value", ["", "gbpx", "XYZ", None, 12, "EU"])
def test_a_currency_is_an_iso_4217_code(value):
    with pytest.raises(InvalidInputError) as error:
        currency_clean(value, field="rates[2].currency")
    assert error.value.field == "rates[2].currency"


def test_currency_codes_are_upper_cased():
    assert currency_clean(" eur ", field="currency") == "EUR"


@pytest.mark.parametrize(
    ("currency", "day", "rate"),
    [
        ("GBP", date(2020, 1, 1), Decimal(1)),
        ("EUR", date(2025, 12, 31), None),  # before its first rate: not guessed
        ("EUR", date(2026, 1, 1), Decimal("0.85")),
        ("EUR", date(2026, 5, 31), Decimal("0.85")),
        ("EUR", date(2026, 6, 1), Decimal("0.90")),
        ("EUR", date(2030, 1, 1), Decimal("0.90")),
        ("USD", date(2026, 2, 28), None),
        ("JPY", date(2026, 7, 1), None),  # no rate at all
    ],
)
def test_the_rate_of_a_day_is_the_last_one_given_before_it(currency, day, rate):
    assert RATES.rate_on(currency, day) == rate


def test_a_total_converts_what_it_can_and_reports_the_rest():
    total, missing = RATES.total(
        [
            (Money.of(100, "GBP"), date(2026, 7, 1)),
            (Money.of(100, "EUR"), date(2026, 7, 1)),  # 90.00
            (Money.of(1000, "JPY"), date(2026, 7, 1)),
            (Money.of(2000, "JPY"), date(2026, 7, 2)),
            (Money.of(10, "USD"), date(2026, 1, 1)),  # before USD's first rate
        ]
    )
    assert total == Money(Decimal("190.00"), "GBP")
    assert missing == [
        Unconverted("JPY", 2, Decimal("3000")),
        Unconverted("USD", 1, Decimal("10.00")),
    ]


def test_the_left_out_are_said_in_words():
    item = Unconverted("JPY", 3, Decimal("12000"))
    with translation.override("en"):
        assert unconverted_message(item) == (
            "3 purchases in JPY (¥12,000) have no exchange rate and are left out."
        )
        assert unconverted_message(Unconverted("JPY", 1, Decimal("500")).to_json()) == (
            "1 purchase in JPY (¥500) has no exchange rate and is left out."
        )
    with translation.override("ru"):
        text = spaces(unconverted_message(item))
        assert "JPY" in text and "12 000" in text and "курс" in text


@pytest.mark.django_db
def test_conversion_in_the_database_matches_python(tenant):
    from rapport.ingest.models import Event

    def order(user, day, revenue, currency=None):
        properties = {"revenue": revenue}
        if currency is not None:
            properties["currency"] = currency
        return {
            "type": "track",
            "userId": user,
            "event": "Order Completed",
            "timestamp": f"{day}T12:00:00Z",
            "properties": properties,
        }

    tenant.send(
        order("a", "2026-07-01", 100),  # no currency: the reporting one
        order("a", "2026-07-01", 100, "EUR"),  # 90
        order("b", "2026-02-01", 100, "eur"),  # 85 (lower case is the same code)
        order("b", "2026-07-01", 1000, "JPY"),  # no rate
        order("c", "2026-07-02", 2000, "JPY"),  # no rate
        order("c", "2026-07-03", 50, None),
        order("c", "2026-07-03", 7, ""),  # empty: the reporting currency
        order("c", "2026-02-01", 10, "USD"),  # before USD's first rate
    )
    events = Event.objects.filter(workspace=tenant.workspace, event="Order Completed")
    value = json_number("properties", "revenue")
    total = events.aggregate(total=Sum(RATES.converted(value)))["total"]
    assert total == pytest.approx(100 + 90 + 85 + 50 + 7)
    assert unconverted_read(events, value, RATES) == [
        Unconverted("JPY", 2, Decimal("3000")),
        Unconverted("USD", 1, Decimal("10.00")),
    ]
    # In Python, from the same rows: the same figure.
    amounts = [
        (
            Money.of(e.properties["revenue"], (e.properties.get("currency") or "GBP").upper()),
            e.timestamp.astimezone(UTC).date(),
        )
        for e in events
    ]
    in_python, missing = RATES.total(amounts)
    assert float(in_python.amount) == pytest.approx(total)
    assert [m.currency for m in missing] == ["JPY", "USD"]


def test_a_rate_span_starts_at_midnight_utc():
    rates = Rates("GBP", (Rate("EUR", Decimal("2"), date(2026, 1, 2)),))
    assert rates.convert(Money.of(1, "EUR"), date(2026, 1, 1)) is None
    assert rates.convert(Money.of(1, "EUR"), date(2026, 1, 2)) == Money.of(2, "GBP")
    assert datetime(2026, 1, 2, tzinfo=UTC).date() == date(2026, 1, 2)
