"""CLV's purchases in the reporting currency: converted with the rate of their day;
those without a rate left out (neither a purchase nor a value) and reported with the
model, whose currency is kept beside its values."""

from datetime import UTC, datetime

import numpy as np
import pytest

from rapport.predictions import features, services
from rapport.predictions.models import ClvScore
from rapport.tenancy import commerce
from rapport.tenancy.services import Actor
from tests.money_fixtures import order as money_order

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("tests")
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def order(user, days_ago, revenue, currency=None):
    return money_order(user, days_ago, revenue, currency, now=NOW)


@pytest.fixture
def shop(money_shop):
    return money_shop


def test_purchase_days_are_in_the_reporting_currency(shop):
    shop.send(
        order("a", 10, 10),
        order("a", 10, 20, "EUR"),  # the same day: 10 + 10
        order("a", 3, 30, "JPY"),  # no rate: not a purchase day either
        order("b", 5, 40, "EUR"),  # 20
        order("c", 7, 500, "JPY"),  # no rate: c is no buyer at all
    )
    days = features.purchase_days(workspace_id=shop.workspace.pk, until=NOW)
    assert days.currency == "GBP"
    assert len(days.ids) == 2
    assert sorted(days.value.tolist()) == [20.0, 20.0]
    assert days.unconverted == [{"currency": "JPY", "count": 2, "amount": "530"}]


def test_a_clv_model_keeps_its_currency_and_what_it_left_out(shop):
    rng = np.random.default_rng(3)
    calls = []
    for n in range(60):
        for k in range(int(rng.integers(1, 6))):
            currency = "EUR" if k % 2 else None
            calls.append(
                order(f"u{n}", float(rng.uniform(1, 400)), float(rng.gamma(4, 10)), currency)
            )
    calls.append(order("u0", 2, 1000, "CHF"))
    shop.send(*calls)
    model = services.clv_model_train(workspace=shop.workspace, actor=ACTOR, now=NOW)
    assert model.config["currency"] == "GBP"
    assert model.metrics["unconverted"] == [{"currency": "CHF", "count": 1, "amount": "1000.00"}]
    result = services.clv_scores_refresh(workspace_id=shop.workspace.pk, model=model, now=NOW)
    assert result["scored"] == ClvScore.objects.filter(workspace=shop.workspace).count() > 0
    # A new reporting currency: the model's values are in another; scoring refuses to mix.
    commerce.commerce_settings_update(
        workspace=shop.workspace, actor=ACTOR, reporting_currency="EUR"
    )
    refused = services.clv_scores_refresh(workspace_id=shop.workspace.pk, model=model, now=NOW)
    assert refused["scored"] == 0 and "train it again" in refused["error"]
