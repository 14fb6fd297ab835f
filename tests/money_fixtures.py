"""The money tests' shop: a workspace reporting in pounds, with euros at 0.5 from 2020
and no rate for dollars (or any other currency), and the purchases sent to it. Used by
tests/predictions/test_money.py, test_money_decimal.py and
tests/segments/test_money_rules.py through the `money_shop` fixture (tests/conftest.py)."""

from datetime import datetime, timedelta

from rapport.tenancy import commerce
from rapport.tenancy.services import Actor

ACTOR = Actor.system("tests")
REPORTING_CURRENCY = "GBP"
EUR_RATE = "0.5"


def order(user: str, days_ago: float, revenue, currency: str | None = None, *, now: datetime):
    """An `Order Completed` call `days_ago` before `now`; no currency: the reporting one."""
    properties = {"revenue": revenue}
    if currency:
        properties["currency"] = currency
    return {
        "type": "track",
        "userId": user,
        "event": "Order Completed",
        "timestamp": (now - timedelta(days=days_ago)).isoformat(),
        "properties": properties,
    }


def money_shop_create(name: str = "Money"):
    """Pounds, euros at 0.5 (from 2020), dollars with no rate."""
    from tests.conftest import tenant_create

    tenant = tenant_create(name, sample_data=False)
    commerce.commerce_settings_update(
        workspace=tenant.workspace, actor=ACTOR, reporting_currency=REPORTING_CURRENCY
    )
    commerce.exchange_rates_upload(
        workspace=tenant.workspace,
        actor=ACTOR,
        rows=[{"currency": "EUR", "rate": EUR_RATE, "valid_from": "2020-01-01"}],
    )
    return tenant
