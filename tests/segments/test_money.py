"""RFM's monetary value in the reporting currency: other currencies converted with the
rate of their day, those without one left out of monetary (still purchases for recency
and frequency) and reported on the RFM pages."""

from decimal import Decimal

import pytest

from rapport.segments import services
from rapport.segments.models import RfmScore
from rapport.tenancy import commerce
from rapport.tenancy.services import Actor
from tests.segments.conftest import NOW, ago, profile_of
from tests.web.clients import signed_in

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("tests")


def order(user, days_ago, revenue, currency=None):
    properties = {"revenue": revenue}
    if currency:
        properties["currency"] = currency
    return {
        "type": "track",
        "userId": user,
        "event": "Order Completed",
        "timestamp": ago(days_ago),
        "properties": properties,
    }


@pytest.fixture
def euro_shop(shop):
    commerce.commerce_settings_update(
        workspace=shop.workspace, actor=ACTOR, reporting_currency="EUR"
    )
    commerce.exchange_rates_upload(
        workspace=shop.workspace,
        actor=ACTOR,
        rows=[{"currency": "GBP", "rate": "1.20", "valid_from": "2020-01-01"}],
    )
    shop.send(
        order("ann", 3, 100),  # EUR, the reporting currency
        order("ann", 5, 50, "GBP"),  # 60
        order("bob", 10, 10, "GBP"),  # 12
        order("bob", 12, 3000, "JPY"),  # no rate
        order("cy", 20, 9000, "JPY"),  # no rate: a buyer with no monetary value
    )
    return shop


def test_monetary_is_converted_and_what_is_not_is_reported(euro_shop):
    result = services.rfm_refresh(workspace_id=euro_shop.workspace.pk, now=NOW)
    assert result["buyers"] == 3 and result["currency"] == "EUR"
    assert result["unconverted"] == [{"currency": "JPY", "count": 2, "amount": "12000"}]
    got = {
        user: RfmScore.objects.get(profile=profile_of(euro_shop, user))
        for user in ("ann", "bob", "cy")
    }
    assert (got["ann"].monetary, got["ann"].currency) == (Decimal("160.00"), "EUR")
    assert got["bob"].monetary == Decimal("12.00") and got["bob"].frequency == 2
    assert got["cy"].monetary == Decimal("0.00") and got["cy"].frequency == 1
    assert services.rfm_unconverted(workspace=euro_shop.workspace) == result["unconverted"]


def test_rfm_pages_show_money_with_its_sign_and_the_warning(euro_shop):
    services.rfm_refresh(workspace_id=euro_shop.workspace.pk, now=NOW)
    client = signed_in(euro_shop)
    for url in ("/rfm/", "/analytics/rfm/"):
        html = client.get(url).content.decode()
        assert "2 purchases in JPY (¥12,000) have no exchange rate and are left out." in html
        assert "€" in html, url
    answer = euro_shop.api().get("/api/v1/rfm").json()
    assert answer["currency"] == "EUR"
    assert answer["unconverted"][0]["currency"] == "JPY"
    assert sum(Decimal(c["monetary"] or 0) for c in answer["cells"]) == Decimal("172.00")
