"""Each KPI against the hand-computed shop (tests/analytics/conftest.py)."""

from datetime import date

import pytest

from rapport.analytics import selectors
from tests.analytics.conftest import user_ids

OCTOBER = (date(2026, 10, 1), date(2026, 10, 31))


@pytest.fixture
def october(shop):
    return selectors.kpis_report(workspace=shop.workspace, first=OCTOBER[0], last=OCTOBER[1])


def test_counts_of_customers(october):
    figures = october["figures"]
    # u7 arrives after the period; u4's two anonymous profiles are one customer.
    assert figures["customers"] == 6
    # u3, and u5 whose 23:30 UTC on 30 September is 1 October in London.
    assert figures["new_customers"] == 2
    # u1, u3, u4, u5: u2 only had a newsletter delivered and opened.
    assert figures["active_customers"] == 4


def test_churn_and_retention(october):
    figures = october["figures"]
    # Active in the previous period: u1, u2, u4, u6 (not u5: that is October in London).
    assert october["parts"]["active_previous_period"] == 4
    assert october["parts"]["churned"] == 2  # u2, u6
    assert figures["churn_rate"] == pytest.approx(0.5)
    assert figures["retention_rate"] == pytest.approx(0.5)
    assert october["period"] == {"first": "2026-10-01", "last": "2026-10-31", "days": 31}
    assert october["previous_period"] == {"first": "2026-08-31", "last": "2026-09-30", "days": 31}


def test_money(october):
    figures = october["figures"]
    # 100 + 50 + 30 bought, 30 refunded; u7's 999 is in November.
    assert figures["revenue"] == 150.0
    assert october["parts"]["gross_purchase_value"] == 180.0
    assert october["parts"]["refunded"] == 30.0
    assert figures["orders"] == 3
    assert figures["buyers"] == 2
    assert figures["average_order_value"] == 60.0
    assert figures["purchase_frequency"] == pytest.approx(1.5)
    assert figures["clv_average"] is None and figures["clv_total"] == 0


def test_nps_and_engagement(october):
    figures = october["figures"]
    # 10 and 9 promote, 5 detracts: (2 - 1) / 3.
    assert figures["nps_responses"] == 3
    assert figures["nps"] == pytest.approx(33.3)
    # The four active and u2, who opened a newsletter, of six.
    assert figures["engagement_rate"] == pytest.approx(5 / 6)


def test_against_the_previous_period(october):
    previous = october["previous"]
    # September in London: u1, u2, u4 (first seen on 15 Sep), u6; u5 not yet.
    assert previous["customers"] == 4
    assert previous["new_customers"] == 3
    assert previous["active_customers"] == 4
    assert previous["revenue"] == 0
    change = october["changes"]["churn_rate"]
    # Nobody was active in the period before September but u1 (from 20 Aug): no churn.
    assert october["previous"]["churn_rate"] == 0
    assert change["difference"] == pytest.approx(0.5) and change["good"] is False
    assert october["changes"]["revenue"]["good"] is True
    assert october["changes"]["revenue"]["relative"] is None  # from zero


def test_an_empty_period_has_no_rates(shop):
    report = selectors.kpis_report(
        workspace=shop.workspace, first=date(2025, 1, 1), last=date(2025, 1, 31)
    )
    figures = report["figures"]
    assert figures["customers"] == 0 and figures["revenue"] == 0
    for name in ("churn_rate", "retention_rate", "average_order_value", "nps", "engagement_rate"):
        assert figures[name] is None


def test_the_customers_behind_a_figure(shop):
    def who(figure):
        ids = selectors.kpi_customers(
            workspace=shop.workspace,
            figure=figure,
            first=OCTOBER[0],
            last=OCTOBER[1],
            segment_id=None,
        )
        return user_ids(shop.workspace, ids)

    assert who("churned") == {"u2", "u6"}
    assert who("retained") == {"u1", "u4"}
    assert who("new_customers") == {"u3", "u5"}
    assert who("promoters") == {"u1", "u5"}
    assert who("detractors") == {"u3"}
    assert who("engaged") == {"u1", "u2", "u3", "u4", "u5"}


def test_a_segment_scope_counts_its_members_at_the_end_of_the_period(shop):
    from rapport.analytics.services import analytics_data_changed
    from rapport.profiles.models import Profile
    from rapport.segments.services import segment_from_profiles
    from rapport.tenancy.services import Actor

    pros = Profile.objects.filter(workspace=shop.workspace, traits__plan="pro")
    segment = segment_from_profiles(
        workspace=shop.workspace,
        name="Pro",
        profile_ids=list(pros.values_list("pk", flat=True)),
        actor=Actor.system("tests"),
    )
    # Members since now: at the end of October they were not members yet.
    report = selectors.kpis_report(
        workspace=shop.workspace, first=OCTOBER[0], last=OCTOBER[1], segment_id=segment.pk
    )
    assert report["figures"]["customers"] == 0
    from rapport.segments.models import SegmentMembership

    SegmentMembership.objects.filter(segment=segment).update(entered_at="2026-09-01T00:00:00Z")
    analytics_data_changed(shop.workspace.pk, [])
    report = selectors.kpis_report(
        workspace=shop.workspace, first=OCTOBER[0], last=OCTOBER[1], segment_id=segment.pk
    )
    figures = report["figures"]
    assert figures["customers"] == 1 and figures["revenue"] == 50.0 and figures["nps"] == -100


def test_results_are_cached_until_new_data_arrives(shop):
    first = selectors.kpis_report(workspace=shop.workspace, first=OCTOBER[0], last=OCTOBER[1])
    again = selectors.kpis_report(workspace=shop.workspace, first=OCTOBER[0], last=OCTOBER[1])
    assert first["cached"] is False and again["cached"] is True
    shop.send(
        {
            "type": "track",
            "userId": "u2",
            "event": "Order Completed",
            "properties": {"revenue": 20},
            "timestamp": "2026-10-30T12:00:00Z",
            "messageId": "late-order",
        }
    )
    fresh = selectors.kpis_report(workspace=shop.workspace, first=OCTOBER[0], last=OCTOBER[1])
    assert fresh["cached"] is False
    assert fresh["figures"]["revenue"] == 170.0 and fresh["figures"]["churn_rate"] == 0.25
