"""Stored money is Decimal with its currency: a buyer's CLV and expected order value,
and a KPI snapshot's money; the migrations convert existing rows and back again; the
person page and the API show the currency."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from rapport.analytics import selectors as analytics_selectors
from rapport.analytics import services as analytics_services
from rapport.analytics.models import KpiSnapshot
from rapport.core.money import money_stored
from rapport.predictions import services
from rapport.predictions.models import ClvScore
from rapport.tenancy.services import Actor
from tests.money_fixtures import order as money_order
from tests.web.clients import signed_in

ACTOR = Actor.system("tests")
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def order(user, days_ago, revenue, currency=None):
    return money_order(user, days_ago, revenue, currency, now=NOW)


@pytest.mark.parametrize(
    "value, stored",
    [
        (0.1, Decimal("0.1000")),
        (1234.56789, Decimal("1234.5679")),
        (2.00005, Decimal("2.0000")),  # half-even on the decimal text
        (float("nan"), None),
        (float("inf"), None),
        (1e20, Decimal("99999999999999.9999")),
        (None, None),
    ],
)
def test_money_stored_rounds_through_decimal(value, stored):
    assert money_stored(value) == stored


@pytest.fixture
def scored(money_shop):
    tenant = money_shop
    calls = []
    for n in range(40):
        for k in range(1 + n % 4):
            calls.append(
                order(
                    f"u{n}", 5 + 37 * k + n % 9, 10 + (n * 7 + k * 3) % 50, "EUR" if k % 2 else None
                )
            )
    tenant.send(*calls)
    model = services.clv_model_train(workspace=tenant.workspace, actor=ACTOR, now=NOW)
    services.clv_scores_refresh(workspace_id=tenant.workspace.pk, model=model, now=NOW)
    return tenant


def test_scores_are_decimal_in_the_models_currency_and_shown_with_it(scored):
    scores = list(ClvScore.objects.filter(workspace=scored.workspace))
    assert scores
    for score in scores:
        assert isinstance(score.clv, Decimal) and isinstance(score.expected_order_value, Decimal)
        assert score.clv.as_tuple().exponent == -4
        assert score.currency == "GBP"
    best = max(scores, key=lambda s: s.clv)
    body = scored.api("analyst").get(f"/api/v1/models/profile/{best.profile_id}").json()
    assert body["clv"]["currency"] == "GBP"
    assert body["clv"]["clv"] == str(best.clv)  # a decimal string
    assert Decimal(body["clv"]["expected_order_value"]) == best.expected_order_value
    html = signed_in(scored).get(f"/customers/{best.profile_id}/").content.decode()
    assert f"£{best.clv.quantize(Decimal('0.01')):,}" in html
    # The customer list's CLV column, sorted by it.
    listed = signed_in(scored).get("/customers/", {"col": ["clv"], "sort": "clv"})
    assert listed.status_code == 200
    assert f"£{best.clv.quantize(Decimal('0.01')):,}" in listed.content.decode()


def test_kpi_snapshots_keep_money_as_decimal_with_its_currency(scored):
    analytics_services.kpi_snapshots_take(
        workspace_id=scored.workspace.pk, day=date(2026, 10, 31), backfill_days=1
    )
    snapshot = KpiSnapshot.objects.get(
        workspace=scored.workspace, segment=None, window_days=30, day=date(2026, 10, 31)
    )
    assert snapshot.currency == "GBP"
    assert isinstance(snapshot.revenue, Decimal) and snapshot.revenue > 0
    assert "revenue" not in snapshot.figures and "currency" not in snapshot.figures
    board = analytics_selectors.home_dashboard(workspace=scored.workspace, window=30)
    revenue = next(k for k in board["kpis"] if k["name"] == "revenue")
    assert revenue["value"] == snapshot.revenue and board["currency"] == "GBP"
    api = scored.api("analyst").get("/api/v1/analytics/kpis/history?window=30&days=5").json()
    latest = api["snapshots"][-1]["figures"]
    assert latest["revenue"] == str(snapshot.revenue) and latest["currency"] == "GBP"


@pytest.mark.django_db(transaction=True)
def test_the_migrations_convert_rows_and_back():
    before = [
        ("predictions", "0001_initial"),
        ("analytics", "0001_initial"),
        ("tenancy", "0005_commerce_settings"),
    ]
    after = [("predictions", "0002_money_decimal"), ("analytics", "0002_money_decimal")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps
        Workspace = old.get_model("tenancy", "Workspace")
        Commerce = old.get_model("tenancy", "CommerceSettings")
        Profile = old.get_model("profiles", "Profile")
        Model = old.get_model("predictions", "PredictionModel")
        Score = old.get_model("predictions", "ClvScore")
        Snapshot = old.get_model("analytics", "KpiSnapshot")
        shop = Workspace.objects.create(name="Migrated money")
        Commerce.objects.create(workspace=shop, reporting_currency="EUR")
        profile = Profile.objects.create(workspace=shop)
        model = Model.objects.create(
            workspace=shop, kind="clv", version=1, config={"currency": "GBP"}, trained_at=NOW
        )
        Score.objects.create(
            profile=profile,
            workspace=shop,
            model=model,
            frequency=2,
            recency=1.0,
            age=3.0,
            p_alive=0.5,
            expected_purchases_30=0.1,
            expected_purchases_90=0.3,
            expected_purchases_365=1.0,
            expected_order_value=41.123456,
            clv=123.45,
            computed_at=NOW,
        )
        Snapshot.objects.create(
            workspace=shop,
            day=date(2026, 10, 31),
            window_days=30,
            figures={
                "orders": 3,
                "revenue": 150.5,
                "average_order_value": 50.17,
                "clv_average": None,
                "clv_total": 0.0,
                "parts": {"gross_purchase_value": 160.5, "refunded": 10.0, "churned": 1},
            },
            computed_at=NOW,
        )
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        new = executor.loader.project_state(after).apps
        score = new.get_model("predictions", "ClvScore").objects.get(profile_id=profile.pk)
        assert (score.clv, score.expected_order_value) == (Decimal("123.45"), Decimal("41.1235"))
        assert score.currency == "GBP"  # the model's
        snapshot = new.get_model("analytics", "KpiSnapshot").objects.get(workspace_id=shop.pk)
        assert snapshot.currency == "EUR"  # the workspace's reporting currency
        assert snapshot.revenue == Decimal("150.5")
        assert snapshot.average_order_value == Decimal("50.17")
        assert snapshot.clv_average is None and snapshot.clv_total == 0
        assert (snapshot.gross_purchase_value, snapshot.refunded) == (Decimal("160.5"), 10)
        assert snapshot.figures == {"orders": 3, "parts": {"churned": 1}}
        # And back.
        executor = MigrationExecutor(connection)
        executor.migrate(before)
        old = executor.loader.project_state(before).apps
        score = old.get_model("predictions", "ClvScore").objects.get(profile_id=profile.pk)
        assert (score.clv, score.expected_order_value) == (123.45, 41.1235)
        figures = (
            old.get_model("analytics", "KpiSnapshot").objects.get(workspace_id=shop.pk).figures
        )
        assert figures["revenue"] == 150.5 and figures["currency"] == "EUR"
        assert figures["parts"] == {"gross_purchase_value": 160.5, "refunded": 10.0, "churned": 1}
        assert figures["clv_average"] is None
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())


def test_a_clv_rule_with_a_currency_compares_only_scores_in_it(scored):
    from tests.segments.conftest import matching

    everyone = ClvScore.objects.filter(workspace=scored.workspace).count()
    assert len(matching(scored, {"prediction": "clv", "op": "gte", "value": 0})) == everyone
    in_pounds = {"prediction": "clv", "op": "gte", "value": 0, "currency": "gbp"}
    assert len(matching(scored, in_pounds)) == everyone
    assert matching(scored, {**in_pounds, "currency": "EUR"}) == set()
    from rapport.segments import rules as r

    assert r.rule_describe(r.rule_parse({**in_pounds, "value": 200})) == "lifetime value ≥ £200.00"
