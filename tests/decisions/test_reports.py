"""The action reports (rapport/decisions/reports.py): the Wilson and Newcombe intervals
against the published values, and the report and learning curve of an action counted
from its decisions and outcomes, by group, in its own workspace only."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from rapport.decisions.models import Action
from rapport.decisions.reports import (
    action_learning_curve,
    action_report,
    action_summaries,
    difference_interval,
    wilson_interval,
)
from tests.conftest import tenant_create
from tests.decisions.conftest import given_plant

# Newcombe (1998), "Two-sided confidence intervals for the single proportion:
# comparison of seven methods", Statistics in Medicine 17, table I (Wilson, method 3).
WILSON = [
    ((81, 263), (0.2553, 0.3662)),
    ((15, 148), (0.0624, 0.1605)),
    ((0, 20), (0.0, 0.1611)),
    ((1, 29), (0.0061, 0.1718)),
]

# Newcombe (1998), "Interval estimation for the difference between independent
# proportions: comparison of eleven methods", Statistics in Medicine 17, table II
# (method 10, the hybrid score interval).
NEWCOMBE = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((6, 7, 2, 7), (0.0582, 0.8062)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((0, 10, 0, 10), (-0.2775, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0)),
    ((10, 10, 0, 10), (0.6075, 1.0)),
]


@pytest.mark.parametrize(("counts", "expected"), WILSON)
def test_wilson_interval_matches_the_published_values(counts, expected):
    low, high = wilson_interval(*counts)
    assert low == pytest.approx(expected[0], abs=5e-5)
    assert high == pytest.approx(expected[1], abs=5e-5)


@pytest.mark.parametrize(("counts", "expected"), NEWCOMBE)
def test_newcombe_hybrid_interval_matches_the_published_values(counts, expected):
    a, n_a, b, n_b = counts
    diff, low, high = difference_interval(a, n_a, b, n_b)
    assert diff == pytest.approx(a / n_a - b / n_b)
    assert low == pytest.approx(expected[0], abs=5e-5)
    assert high == pytest.approx(expected[1], abs=5e-5)


def test_the_interval_is_symmetric_in_the_groups_and_none_when_one_is_empty():
    diff, low, high = difference_interval(56, 70, 48, 80)
    back = difference_interval(48, 80, 56, 70)
    assert back == pytest.approx((-diff, -high, -low))
    assert difference_interval(3, 10, 0, 0) is None
    assert wilson_interval(0, 0) is None
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_more_evidence_narrows_the_interval():
    widths = [
        (lambda d: d[2] - d[1])(difference_interval(3 * k, 10 * k, 2 * k, 10 * k))
        for k in (1, 10, 100)
    ]
    assert widths[0] > widths[1] > widths[2]


# --- The report of one action -------------------------------------------------------------

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def shop(db):
    return tenant_create("Reports", sample_data=False)


def _action(workspace, key="spring", **extra) -> Action:
    return Action.objects.create(
        workspace=workspace, key=key, name=key.title(), channels=["web"], **extra
    )


def _give(workspace, action, *, control=False, at=NOW, outcomes=(), shown=True, value=10):
    return given_plant(
        workspace,
        action,
        control=control,
        at=at,
        outcomes=outcomes,
        shown=shown,
        value=Decimal(value),
    )


def test_the_report_counts_each_group_and_the_uplift(shop):
    ws = shop.workspace
    action = _action(ws, currency="EUR")
    # Model-chosen: 10 shown, 4 accepted (one clicked and converted counts once), one
    # given but never shown.
    for _ in range(3):
        _give(ws, action, outcomes=["impression", "accepted"])
    _give(ws, action, outcomes=["impression", "clicked", "converted"])
    for _ in range(5):
        _give(ws, action, outcomes=["impression"])
    _give(ws, action, outcomes=["impression", "declined"])
    _give(ws, action, shown=False)
    # Control: 10 shown, 1 accepted.
    _give(ws, action, control=True, outcomes=["impression", "accepted"])
    for _ in range(9):
        _give(ws, action, control=True)
    # Another action and another workspace count nothing here.
    _give(ws, _action(ws, "other"), outcomes=["accepted"])
    other = tenant_create("Elsewhere", sample_data=False).workspace
    _give(other, _action(other), outcomes=["accepted"])

    report = action_report(workspace=ws, action=action)
    assert report["decisions"] == 21
    assert report["model"] == {"decisions": 11, "impressions": 10, "accepted": 4, "rate": 0.4}
    assert report["control"] == {"decisions": 10, "impressions": 10, "accepted": 1, "rate": 0.1}
    assert report["impressions"] == 20 and report["accepted"] == 5
    assert report["rate"] == pytest.approx(0.25)
    assert report["value"] == Decimal(50)
    assert report["currency"] == "EUR"
    assert report["outcomes"]["impression"] == 11 and report["outcomes"]["converted"] == 1
    expected = difference_interval(4, 10, 1, 10)
    assert (report["uplift"], report["uplift_low"], report["uplift_high"]) == expected
    assert report["uplift"] == pytest.approx(0.3)
    assert report["significant"] is (expected[1] > 0)


def test_no_control_impressions_no_uplift(shop):
    ws = shop.workspace
    action = _action(ws)
    _give(ws, action, outcomes=["accepted"])
    report = action_report(workspace=ws, action=action)
    assert report["model"]["impressions"] == 1 and report["model"]["rate"] == 1.0
    assert report["control"]["rate"] is None
    assert report["uplift"] is None and report["significant"] is False


def test_the_learning_curve_has_every_day_and_both_groups(shop):
    ws = shop.workspace
    action = _action(ws)
    yesterday = NOW - timedelta(days=1)
    _give(ws, action, at=yesterday, outcomes=["clicked"])
    _give(ws, action, at=yesterday)
    _give(ws, action, at=yesterday, control=True)
    _give(ws, action, at=NOW, control=True, outcomes=["accepted"])
    # Older than the curve's window.
    _give(ws, action, at=NOW - timedelta(days=40), outcomes=["accepted"])

    curve = action_learning_curve(workspace=ws, action=action, days=7, now=NOW)
    assert [p["day"] for p in curve] == [(NOW - timedelta(days=6 - i)).date() for i in range(7)]
    by_day = {p["day"]: p for p in curve}
    day = by_day[yesterday.date()]
    assert (day["shown"], day["accepted"], day["rate"]) == (2, 1, 0.5)
    assert (day["control_shown"], day["control_rate"]) == (1, 0.0)
    today = by_day[NOW.date()]
    assert today["rate"] is None and today["control_rate"] == 1.0
    assert sum(p["shown"] + p["control_shown"] for p in curve) == 4


def test_summaries_for_the_list(shop):
    ws = shop.workspace
    given, idle = _action(ws), _action(ws, "idle")
    _give(ws, given, outcomes=["accepted"])
    _give(ws, given)
    found = action_summaries(workspace=ws, actions=[given, idle])
    assert found[given.pk] == {"decisions": 2, "impressions": 2, "accepted": 1, "rate": 0.5}
    assert found[idle.pk]["decisions"] == 0 and found[idle.pk]["rate"] is None
