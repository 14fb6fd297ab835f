"""The funnel, cohorts and the loyalty curve against the hand-computed shop."""

from datetime import date

import pytest
from pydantic import ValidationError

from rapport.analytics import selectors
from rapport.analytics.funnel import FunnelQuery
from tests.analytics.conftest import user_ids

STEPS = [
    {"page": "*"},
    {"event": "Signed Up"},
    {"event": "Order Completed", "label": "First purchase"},
    {"event": "Order Completed", "label": "Second purchase"},
]


def _funnel(**extra) -> FunnelQuery:
    return FunnelQuery(steps=STEPS, start=date(2026, 10, 1), end=date(2026, 10, 31), **extra)


def test_a_four_step_funnel(shop):
    report = selectors.funnel_report(workspace=shop.workspace, query=_funnel())
    steps = report["steps"]
    # Pages in October (London): u3, u4 (2 Oct), u5 (00:30 on 1 Oct).
    assert [s["customers"] for s in steps] == [3, 2, 1, 1]
    assert steps[1]["conversion_from_previous"] == pytest.approx(2 / 3)
    assert steps[3]["conversion_from_start"] == pytest.approx(1 / 3)
    # u3 signed up 5 minutes after the page, u5 30 minutes after: median 17.5 minutes.
    assert steps[1]["median_seconds_from_previous"] == 1050
    assert steps[2]["median_seconds_from_previous"] == 55 * 60
    assert steps[3]["median_seconds_from_previous"] == 10 * 86400
    assert steps[2]["label"] == "First purchase" and steps[0]["label"] == "Any page view"


def test_a_later_step_must_follow_the_one_before(shop):
    # u1 bought on 5 Oct but never viewed a page in October: not in the funnel.
    query = FunnelQuery(
        steps=[{"event": "Order Completed"}, {"event": "Survey Answered"}],
        start=date(2026, 10, 1),
        end=date(2026, 10, 31),
    )
    steps = selectors.funnel_report(workspace=shop.workspace, query=query)["steps"]
    assert [s["customers"] for s in steps] == [2, 2]  # u1 (5 -> 6 Oct), u3 (10 -> 22 Oct)
    # Within one day of the first purchase: only u1.
    query = query.model_copy(update={"conversion_days": 1})
    steps = selectors.funnel_report(workspace=shop.workspace, query=query)["steps"]
    assert [s["customers"] for s in steps] == [2, 1]


def test_trait_and_stage_steps(shop):
    query = FunnelQuery(
        steps=[{"page": "*"}, {"trait": "plan", "value": "pro"}],
        start=date(2026, 10, 1),
        end=date(2026, 10, 31),
    )
    steps = selectors.funnel_report(workspace=shop.workspace, query=query)["steps"]
    assert [s["customers"] for s in steps] == [3, 1]


def test_breakdown_by_campaign_and_the_customers_behind_a_step(shop):
    report = selectors.funnel_report(
        workspace=shop.workspace, query=_funnel(breakdown="utm_source")
    )
    groups = {g["value"]: [s["customers"] for s in g["steps"]] for g in report["groups"]}
    assert groups == {"(none)": [2, 1, 0, 0], "google": [1, 1, 1, 1]}
    dropped = selectors.funnel_customers(
        workspace=shop.workspace, query=_funnel(), step=2, outcome="dropped", group=None
    )
    assert user_ids(shop.workspace, dropped) == {"u5"}
    reached = selectors.funnel_customers(
        workspace=shop.workspace, query=_funnel(), step=1, outcome="reached", group=None
    )
    assert user_ids(shop.workspace, reached) == {"u3", "u4", "u5"}


@pytest.mark.parametrize(
    "steps, message",
    [
        ([{"event": "A"}], "at least 2"),
        ([{"event": "A", "page": "*"}, {"event": "B"}], "exactly one"),
        ([{"event": "A"}, {"stage": "x", "value": 3}], "value goes with trait"),
        ([{"event": "A"}, {"trait": 'a"b'}], "pattern"),
    ],
)
def test_bad_funnels_are_refused(steps, message):
    with pytest.raises(ValidationError, match=message):
        FunnelQuery(steps=steps, start=date(2026, 10, 1), end=date(2026, 10, 31))


def test_cohorts_by_sign_up_month(shop):
    report = selectors.cohorts_report(
        workspace=shop.workspace, by="signup", last_month="2026-10", months=3
    )
    rows = {row["cohort"]: row for row in report["rows"]}
    assert rows["2026-08"]["customers"] == 1
    assert rows["2026-08"]["active"] == [1, 1, 1]
    assert rows["2026-08"]["revenue_per_customer"] == [0, 0, 100.0]
    # u2, u4, u6 (u5 belongs to October in London); in October only u4 is active.
    assert rows["2026-09"]["customers"] == 3
    assert rows["2026-09"]["retention"] == [1.0, pytest.approx(1 / 3)]
    assert rows["2026-10"]["customers"] == 2
    assert rows["2026-10"]["retention"] == [1.0]
    assert rows["2026-10"]["revenue_per_customer"] == [25.0]  # (50 + 30 - 30) / 2
    who = selectors.cohort_customers(
        workspace=shop.workspace, by="signup", month="2026-09", offset=1
    )
    assert user_ids(shop.workspace, who) == {"u4"}


def test_cohorts_by_first_purchase(shop):
    report = selectors.cohorts_report(
        workspace=shop.workspace, by="first_purchase", last_month="2026-10", months=2
    )
    rows = {row["cohort"]: row for row in report["rows"]}
    assert rows["2026-09"]["customers"] == 0 and rows["2026-09"]["retention"] == [None, None]
    assert rows["2026-10"]["customers"] == 2  # u1 and u3
    assert rows["2026-10"]["revenue_per_customer"] == [75.0]


def test_the_loyalty_curve_counts_stages_at_each_month_end(shop):
    from rapport.segments.models import LifecycleChange
    from rapport.segments.services import lifecycle_refresh

    lifecycle_refresh(workspace_id=shop.workspace.pk)
    changes = LifecycleChange.objects.filter(workspace=shop.workspace)
    assert changes.exists()
    # As if the stages had been computed on 15 Sep, and a second change on 15 Oct.
    first = changes.order_by("pk").first()
    changes.update(at="2026-09-15T00:00:00Z")
    LifecycleChange.objects.create(
        workspace=shop.workspace,
        profile_id=first.profile_id,
        from_stage=first.to_stage,
        to_stage="churned",
        at="2026-10-15T00:00:00Z",
    )
    report = selectors.loyalty_report(workspace=shop.workspace, last_month="2026-10", months=3)
    assert report["months"] == ["2026-08", "2026-09", "2026-10"]
    totals = [sum(row["customers"][k] for row in report["stages"]) for k in range(3)]
    everyone = changes.values("profile_id").distinct().count()
    assert totals == [0, everyone, everyone]
    churned = next(row for row in report["stages"] if row["stage"] == "churned")
    assert churned["customers"][2] - churned["customers"][1] >= 1


def test_cohorts_twice_in_one_transaction(shop):
    from django.db import transaction

    from rapport.analytics.services import analytics_data_changed

    with transaction.atomic():
        for by in ("signup", "first_purchase", "signup"):
            analytics_data_changed(shop.workspace.pk, [])
            report = selectors.cohorts_report(
                workspace=shop.workspace, by=by, last_month="2026-10", months=2
            )
            assert report["cached"] is False and len(report["rows"]) == 2


def test_the_utm_campaign_is_the_campaign_name_of_the_spec(shop):
    report = selectors.funnel_report(
        workspace=shop.workspace, query=_funnel(breakdown="utm_campaign")
    )
    groups = {g["value"]: g["steps"][0]["customers"] for g in report["groups"]}
    assert groups == {"(none)": 2, "brand": 1}
