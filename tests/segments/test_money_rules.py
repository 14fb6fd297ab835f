"""A sum of purchase amounts in the rule language never adds two currencies: each
purchase is converted to the reporting currency at its day's rate, those without a rate
are left out and reported by the preview and the refresh, and the words name the
currency."""

from datetime import UTC, datetime

import pytest
from django.utils import translation

from rapport.segments import rules as r
from rapport.segments import selectors, services
from rapport.segments.models import SegmentMembership
from rapport.tenancy.services import Actor
from tests.money_fixtures import order as money_order

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("tests")
NOW = datetime.now(UTC)


def order(user, days_ago, revenue, currency=None):
    return money_order(user, days_ago, revenue, currency, now=NOW)


@pytest.fixture
def shop(money_shop):
    """Pounds, euros at 0.5 (from 2020), dollars with no rate."""
    tenant = money_shop
    tenant.send(
        order("pounds", 5, 60),  # £60
        order("pounds", 4, 50, "gbp"),  # £50: 110
        order("euros", 5, 200, "EUR"),  # £100
        order("euros", 3, 30, "EUR"),  # £15: 115 (230 if added raw)
        order("mixed", 5, 20),  # £20
        order("mixed", 3, 100, "EUR"),  # £50: 70
        order("mixed", 2, 500, "USD"),  # no rate: left out (570 if added raw)
        order("dollars", 2, 900, "USD"),  # no rate: no amount at all
    )
    return tenant


def spent(op, value, **extra):
    return {
        "aggregate": "sum",
        "event": "Order Completed",
        "property": "revenue",
        "op": op,
        "value": value,
        **extra,
    }


def _users(tenant, preview):
    from rapport.identity.models import Identifier

    ids = [p.pk for p in preview.sample]
    return set(
        Identifier.objects.filter(profile_id__in=ids, kind="user_id").values_list(
            "value", flat=True
        )
    )


@pytest.mark.parametrize("currency", ["GBP", None])
def test_a_sum_converts_and_leaves_out_what_has_no_rate(shop, currency):
    rule = spent("gte", 100, **({"currency": currency} if currency else {}))
    preview = selectors.segment_preview(
        workspace=shop.workspace, rule=rule, can_see_pii=True, now=NOW
    )
    # Raw sums would take in "mixed" (570) and "dollars" (900).
    assert preview.count == 2
    assert _users(shop, preview) == {"pounds", "euros"}
    assert [u.to_json() for u in preview.unconverted] == [
        {"currency": "USD", "count": 2, "amount": "1400.00"}
    ]
    assert preview.money_notes == [
        "2 purchases in USD ($1,400.00) have no exchange rate and are left out."
    ]


def test_an_average_and_a_narrow_band(shop):
    average = selectors.segment_preview(
        workspace=shop.workspace,
        rule=spent("lt", 40, aggregate="avg", currency="GBP"),
        can_see_pii=True,
        now=NOW,
    )
    # mixed: (20 + 50) / 2 = 35; the dollars are not averaged in.
    assert _users(shop, average) == {"mixed"}


def test_a_rule_amount_in_another_currency_is_converted_with_todays_rate(shop):
    # €200 is £100 today.
    preview = selectors.segment_preview(
        workspace=shop.workspace, rule=spent("gte", 200, currency="EUR"), can_see_pii=True, now=NOW
    )
    assert _users(shop, preview) == {"pounds", "euros"}
    none = selectors.segment_preview(
        workspace=shop.workspace, rule=spent("gte", 1, currency="USD"), can_see_pii=True, now=NOW
    )
    assert none.count == 0 and none.no_rate_today == ["USD"]


def test_a_refresh_reports_the_missing_rate(shop):
    segment = services.segment_create(
        workspace=shop.workspace,
        name="Spent £100",
        rule=spent("gte", 100, currency="GBP"),
        actor=ACTOR,
        refresh="later",
    )
    result = services.segment_refresh(segment=segment, now=NOW)
    assert result["size"] == 2
    assert result["unconverted"] == [{"currency": "USD", "count": 2, "amount": "1400.00"}]
    assert SegmentMembership.objects.filter(segment=segment, left_at__isnull=True).count() == 2


def test_the_api_preview_reports_it(shop):
    body = (
        shop.api("analyst")
        .post("/api/v1/segments/preview", {"rule": spent("gte", 100, currency="GBP")})
        .json()
    )
    assert body["count"] == 2
    assert body["unconverted"] == [{"currency": "USD", "count": 2, "amount": "1400.00"}]
    assert "USD" in body["notes"][0]


def test_the_words_name_the_currency():
    parsed = r.rule_parse(spent("gte", 250, currency="gbp"))
    assert parsed.currency == "GBP"
    with translation.override("en"):
        assert r.rule_describe(parsed) == (
            "sum of revenue of Order Completed ≥ £250.00 "
            "(purchases converted to GBP at the rate of their day)"
        )
    with translation.override("ru"):
        words = r.rule_describe(parsed)
    assert "250,00" in words and "£" in words and "GBP" in words


@pytest.mark.parametrize("currency", ["XXQ", 12, "EURO"])
def test_an_unknown_currency_is_refused_by_name(currency):
    from rapport.core.errors import InvalidInputError

    with pytest.raises(InvalidInputError) as refused:
        r.rule_parse({"all": [spent("gte", 1, currency=currency)]})
    assert refused.value.field == "rule.all.0.currency"
