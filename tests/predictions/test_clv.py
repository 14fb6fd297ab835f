"""Lifetime value: BG/NBD and Gamma-Gamma reproduce Fader, Hardie & Lee on the CDNOW
data (imported through `rapport import events`), and the scores reach the customers."""

import json
import os

import numpy as np
import pytest

from rapport.cli import _run, cli
from rapport.predictions import clv
from rapport.predictions.models import ClvScore, PredictionModel
from rapport.predictions.services import clv_fitted
from rapport.profiles.models import Profile
from tests.conftest import tenant_create

lifetimes = pytest.importorskip("lifetimes")
CDNOW_SAMPLE = os.path.join(os.path.dirname(lifetimes.__file__), "datasets", "CDNOW_sample.txt")

# The published estimates (Fader, Hardie & Lee 2005; DESIGN.md).
PAPER = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "p": 6.25, "q": 3.74, "gamma": 15.44}


def test_the_fit_on_the_papers_summary_data_gives_the_papers_parameters():
    from lifetimes.datasets import load_cdnow_summary

    data = load_cdnow_summary()
    model = clv.bgnbd_fit(data["frequency"], data["recency"], data["T"])
    assert (round(model.r, 3), round(model.alpha, 3)) == (PAPER["r"], PAPER["alpha"])
    assert (round(model.a, 3), round(model.b, 3)) == (PAPER["a"], PAPER["b"])
    expected = clv.expected_purchases(model, 39, [2], [30.43], [38.86])
    assert round(float(expected[0]), 3) == 1.226


def test_probability_alive_and_order_value_follow_the_formulas():
    model = clv.BgNbd(0.243, 4.414, 0.793, 2.426, 0, 0)
    # A customer who never bought again is alive by the model's assumption.
    assert clv.probability_alive(model, [0], [0], [38.86])[0] == 1.0
    # Buying often and long ago (recency far from T) makes being alive unlikely.
    recent, lapsed = clv.probability_alive(model, [5, 5], [38, 5], [38.86, 38.86])
    assert recent > 0.85 > 0.2 > lapsed
    spend = clv.GammaGamma(6.25, 3.74, 15.44, 0, 0)
    population = 15.44 * 6.25 / 2.74
    assert clv.expected_order_value(spend, [0], [0])[0] == pytest.approx(population)
    # Many purchases: close to the customer's own mean.
    assert clv.expected_order_value(spend, [100], [50])[0] == pytest.approx(50, rel=0.02)


@pytest.mark.parametrize("a", [1.0, 1 + 1e-12, 1 - 1e-12])
def test_expected_purchases_stay_finite_where_the_formula_divides_by_a_minus_one(a):
    x, tx, T = np.array([0.0, 1, 5, 20]), np.array([0.0, 10, 30, 50]), np.array([20.0, 40, 60, 60])
    at_one = clv.expected_purchases(clv.BgNbd(2.0, 10.0, a, 5.0, 0, 0), 13, x, tx, T)
    near = clv.expected_purchases(clv.BgNbd(2.0, 10.0, 1.001, 5.0, 0, 0), 13, x, tx, T)
    assert np.isfinite(at_one).all()
    assert at_one == pytest.approx(near, rel=1e-3)
    # Never more than a customer who never drops out would buy.
    assert (at_one <= (2.0 + x) * 13 / (10.0 + T)).all()


def test_a_fit_without_repeat_buyers_is_refused_with_a_reason():
    with pytest.raises(clv.FitError, match="bought twice"):
        clv.bgnbd_fit(np.zeros(50), np.zeros(50), np.full(50, 10.0))
    with pytest.raises(clv.FitError, match="at least 10"):
        clv.bgnbd_fit([1, 2], [1, 2], [3, 3])


def _cdnow_events(path) -> int:
    lines = []
    with open(CDNOW_SAMPLE) as source:
        for n, row in enumerate(source):
            customer, _, day, cds, dollars = row.split()
            stamp = f"{day[:4]}-{day[4:6]}-{day[6:]}T12:00:00Z"
            lines.append(
                json.dumps(
                    {
                        "type": "track",
                        "event": "Order Completed",
                        "userId": f"cdnow-{customer}",
                        "messageId": f"cdnow-{n}",
                        "timestamp": stamp,
                        "properties": {"revenue": float(dollars), "cds": int(cds)},
                    }
                )
            )
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


@pytest.mark.django_db(transaction=True)
def test_cdnow_through_the_import_path_reproduces_the_paper(tmp_path, capsys):
    tenant_create("Cdnow", sample_data=False)
    rows = _cdnow_events(tmp_path / "cdnow.jsonl")
    events = ["import", "events", str(tmp_path / "cdnow.jsonl"), "--workspace", "Cdnow", "--json"]
    assert _run(cli.main, events) == 0
    assert json.loads(capsys.readouterr().out)["accepted"] == rows
    assert Profile.objects.filter(merged_into__isnull=True).count() == 2357

    train = ["models", "train", "clv", "--as-of", "1997-09-30", "--time-unit", "week"]
    assert _run(cli.main, [*train, "--workspace", "Cdnow", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)

    assert document["time_unit"] == "week"
    fitted = {**document["bgnbd"], **document["gamma_gamma"]}
    assert {k: round(fitted[k], 3 if k in ("r", "alpha", "a", "b") else 2) for k in PAPER} == PAPER
    assert document["metrics"]["customers"] == 2357
    assert document["metrics"]["repeat_customers"] == 946
    # The holdout (to the end of the data, 39 weeks) is compared with what customers did.
    holdout = document["metrics"]["holdout"]
    assert holdout["from"] == "1997-10-01" and holdout["to"] == "1998-06-30"
    assert holdout["correlation"] > 0.5
    assert (
        abs(holdout["predicted_total"] - holdout["actual_total"]) < 0.15 * holdout["actual_total"]
    )

    model = PredictionModel.objects.get(pk=document["id"])
    bgnbd, _ = clv_fitted(model)
    assert round(float(clv.expected_purchases(bgnbd, 39, [2], [30.43], [38.86])[0]), 3) == 1.226
    # Every buyer is scored.
    assert ClvScore.objects.filter(model=model).count() == 2357
    best = ClvScore.objects.order_by("-clv").first()
    assert best.clv > 0 and 0 <= best.p_alive <= 1
    assert best.expected_purchases_365 >= best.expected_purchases_90 >= best.expected_purchases_30


@pytest.mark.django_db
def test_training_without_purchases_says_why(tenant, capsys):
    code = _run(cli.main, ["models", "train", "clv", "--workspace", tenant.workspace.name])
    assert code == 1
    assert "no purchases to learn from" in capsys.readouterr().err


@pytest.mark.django_db
def test_a_queued_training_reads_its_cut_off_and_keeps_why_it_failed(tenant):
    from rapport.predictions import tasks
    from rapport.predictions.selectors import prediction_settings

    result = tasks.model_train.call(
        workspace_id=str(tenant.workspace.pk),
        kind="clv",
        options={"as_of": "1997-09-30", "time_unit": "week"},
        actor_label="api",
    )
    assert "no purchases to learn from" in result["error"]
    assert "no purchases" in prediction_settings(workspace=tenant.workspace).last_error
