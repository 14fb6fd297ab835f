"""The learner in a simulated population whose true acceptance depends on a trait
(rapport/decisions/simulation.py): after a few thousand decisions it earns well above
a random and a static policy, close to the policy that knows the true rates; with
decay it relearns a world that changed."""

import numpy as np
import pytest

from rapport.decisions import learner
from rapport.decisions.simulation import simulate

STEPS = 4000


@pytest.fixture(scope="module")
def runs():
    return {p: simulate(policy=p, steps=STEPS) for p in ("random", "static", "oracle", "engine")}


def test_the_engine_earns_well_above_random_and_static(runs):
    engine = runs["engine"].mean()
    assert engine > 1.5 * runs["random"].mean()
    assert engine > 1.3 * runs["static"].mean()


def test_the_engine_comes_close_to_the_oracle_once_it_has_learned(runs):
    # The second half: within 10% of what knowing the true rates earns.
    assert runs["engine"].mean(STEPS // 2) > 0.9 * runs["oracle"].mean(STEPS // 2)


def test_the_regret_flattens(runs):
    regret = runs["engine"].regret()
    first, last = regret[999], regret[-1] - regret[-1000]
    assert last < first / 3
    # Random keeps losing at the same pace.
    random = runs["random"].regret()
    assert random[-1] - random[-1000] > 5 * last


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_learning_holds_for_other_seeds(seed):
    engine = simulate(policy="engine", steps=3000, seed=seed)
    static = simulate(policy="static", steps=3000, seed=seed)
    assert engine.mean(1500) > 1.4 * static.mean(1500)


def test_decay_relearns_a_changed_world():
    kept = simulate(policy="engine", steps=8000, swap_at=4000)
    decayed = simulate(policy="engine", steps=8000, swap_at=4000, half_life=2000)
    assert decayed.mean(6000) > 1.5 * kept.mean(6000)


def test_a_new_action_starts_at_its_prior_and_learns_both_ways():
    typical = learner.predictor_index([f"t.fact{n}=x" for n in range(learner.TYPICAL_PREDICTORS)])
    index = learner.predictor_index(["t.plan=gold", "ch=web"])
    mean, variance = learner.model_new(prior_propensity=0.05)
    assert learner.propensity(mean, variance, typical) == pytest.approx(0.05, abs=0.005)
    assert 0.01 < learner.propensity(mean, variance, index) < 0.1
    for _ in range(200):
        learner.model_update(mean, variance, index, label=1)
    assert learner.propensity(mean, variance, index) > 0.9
    for _ in range(2000):
        learner.model_update(mean, variance, index, label=0)
    assert learner.propensity(mean, variance, index) < 0.2
    # Another customer's weights moved only through the shared bias.
    other = learner.predictor_index(["t.plan=basic", "ch=email"])
    assert set(other) & set(index) == {learner.BIAS}


def test_thompson_draws_spread_for_new_actions_and_narrow_with_evidence():
    index = learner.predictor_index(["t.plan=gold"])
    fresh = learner.model_new(prior_propensity=0.1)
    taught = learner.model_new(prior_propensity=0.1)
    rng = np.random.default_rng(0)
    for _ in range(3000):
        learner.model_update(*taught, index, label=int(rng.random() < 0.1))
    stack = learner.Stack([fresh[0], taught[0]], [fresh[1], taught[1]])
    draws = np.array([stack.propensities(index, rng=rng) for _ in range(500)])
    assert draws[:, 0].std() > 4 * draws[:, 1].std()
    assert draws[:, 1].mean() == pytest.approx(0.1, abs=0.03)


def test_stack_rows_score_a_subset_like_a_smaller_stack():
    models = [learner.model_new(prior_propensity=p) for p in (0.02, 0.2, 0.5)]
    index = learner.predictor_index(["a", "b"])
    full = learner.Stack([m for m, _ in models], [v for _, v in models])
    part = learner.Stack([models[2][0], models[0][0]], [models[2][1], models[0][1]])
    assert np.allclose(full.propensities(index, rows=np.array([2, 0])), part.propensities(index))


def test_models_round_trip_through_bytes():
    mean, variance = learner.model_new(prior_propensity=0.3)
    assert np.array_equal(learner.from_bytes(learner.to_bytes(mean)), mean)
    restored = learner.from_bytes(learner.to_bytes(variance))
    restored[0] = 5.0  # writable
    assert variance[0] != 5.0


def test_predictors_leave_identifying_traits_out():
    from rapport.decisions.predictors import predictor_names

    names = predictor_names(
        traits={"email": "a@b.c", "First Name": "Ann", "plan": "Gold", "orders": 5, "vip": True},
        stage="active",
        rfm_cell=None,
        segment_ids=["s1"],
        churn_band="low",
        clv=0.5,
        channel="email",
        placement="",
        context={"device": {"type": "Mobile"}, "page": "/cart"},
    )
    assert "t.plan=gold" in names and "t.orders~3" in names and "t.vip=true" in names
    assert not any("a@b.c" in n or "ann" in n for n in names)
    assert "dev=mobile" in names and "ctx.page=/cart" in names and "clv~0" in names
