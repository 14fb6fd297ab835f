"""KPIs with money in several currencies: converted with the rate of their day into the
reporting currency, or left out and reported; never two currencies added together. On
the hand-computed shop (tests/analytics/conftest.py) plus orders in EUR and JPY."""

from datetime import date

import pytest

from rapport.analytics import export, selectors, services
from rapport.tenancy import commerce
from rapport.tenancy.models import User
from rapport.tenancy.services import Actor
from tests.web.clients import signed_in

ACTOR = Actor.system("tests")
OCTOBER = (date(2026, 10, 1), date(2026, 10, 31))


def _order(user, at, revenue, currency, n):
    return {
        "type": "track",
        "userId": user,
        "event": "Order Completed",
        "timestamp": at,
        "messageId": f"money-{n}",
        "properties": {"revenue": revenue, "currency": currency},
    }


@pytest.fixture
def shop_in_currencies(shop):
    commerce.commerce_settings_update(
        workspace=shop.workspace, actor=ACTOR, reporting_currency="GBP"
    )
    commerce.exchange_rates_upload(
        workspace=shop.workspace,
        actor=ACTOR,
        rows=[
            {"currency": "EUR", "rate": "0.80", "valid_from": "2026-01-01"},
            {"currency": "EUR", "rate": "0.90", "valid_from": "2026-10-15"},
        ],
    )
    shop.send(
        _order("u1", "2026-10-10T12:00:00Z", 100, "EUR", 1),  # 80
        _order("u1", "2026-10-20T12:00:00Z", 100, "EUR", 2),  # 90
        _order("u3", "2026-10-21T12:00:00Z", 5000, "JPY", 3),  # no rate
        _order("u3", "2026-10-22T12:00:00Z", 7000, "jpy", 4),  # no rate
    )
    return shop


def test_kpis_convert_and_report_what_they_cannot(shop_in_currencies):
    report = selectors.kpis_report(
        workspace=shop_in_currencies.workspace, first=OCTOBER[0], last=OCTOBER[1]
    )
    figures = report["figures"]
    assert report["currency"] == "GBP"
    # The shop's 180 (no currency: GBP) + 80 + 90 in EUR; the JPY left out; 30 refunded.
    assert report["parts"]["gross_purchase_value"] == 350.0
    assert figures["revenue"] == 320.0
    # Orders count every purchase, whatever its currency; the average is of those valued.
    assert figures["orders"] == 7
    assert figures["average_order_value"] == pytest.approx(350 / 5, abs=0.01)
    assert report["unconverted"] == [{"currency": "JPY", "count": 2, "amount": "12000"}]


def test_without_rates_nothing_foreign_is_added(shop_in_currencies):
    from rapport.tenancy.models import ExchangeRate

    ExchangeRate.objects.filter(workspace=shop_in_currencies.workspace).delete()
    commerce.commerce_settings_update(  # a rate change: cached results end
        workspace=shop_in_currencies.workspace, actor=ACTOR, reporting_currency="GBP"
    )
    report = selectors.kpis_report(
        workspace=shop_in_currencies.workspace, first=OCTOBER[0], last=OCTOBER[1]
    )
    assert report["parts"]["gross_purchase_value"] == 180.0
    assert report["unconverted"] == [
        {"currency": "EUR", "count": 2, "amount": "200.00"},
        {"currency": "JPY", "count": 2, "amount": "12000"},
    ]


def test_snapshots_keep_their_currency_and_the_csv_names_it(shop_in_currencies):
    workspace = shop_in_currencies.workspace
    services.kpi_snapshots_take(workspace_id=workspace.pk, day=OCTOBER[1])
    board = selectors.home_dashboard(workspace=workspace, window=30)
    assert board["currency"] == "GBP"
    assert board["unconverted"][0]["currency"] == "JPY"
    report = selectors.kpis_report(workspace=workspace, first=OCTOBER[0], last=OCTOBER[1])
    rows = list(export.kpis_rows(report))
    assert rows[0][5] == "currency"
    by_name = {row[0]: row for row in rows[1:]}
    assert by_name["revenue"][5] == "GBP" and by_name["orders"][5] == ""
    history = list(export.history_rows(selectors.kpi_history(workspace=workspace, window=30)))
    assert history[0][-2] == "currency" and history[1][-2] == "GBP"


@pytest.mark.parametrize(
    ("language", "revenue", "warning"),
    [
        ("en", "£320.00", "2 purchases in JPY (¥12,000) have no exchange rate"),
        ("ru", "320,00 £", "2 покупки в JPY (12 000 ¥) не имеют курса"),
    ],
)
def test_the_period_page_shows_money_with_its_sign_and_the_warning(
    shop_in_currencies, language, revenue, warning
):
    client = signed_in(shop_in_currencies)
    User.objects.filter(memberships__workspace=shop_in_currencies.workspace).update(
        language=language
    )
    html = client.get("/analytics/period/?start=2026-10-01&end=2026-10-31").content.decode()
    text = html.replace("\xa0", " ").replace("\u202f", " ")
    assert revenue in text
    assert warning in text
    assert "data-unconverted" in html
