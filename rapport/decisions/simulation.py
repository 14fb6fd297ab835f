"""A simulated population with known acceptance rates, to measure how well a policy
chooses: the learning test (tests/decisions/test_learning_simulation.py) and the regret
curve of bench/bench_decisions_learning.py.

Customers have a plan (basic, plus, pro: what their acceptance depends on) and two
facts that change nothing (device, region), so the model must find which predictor
matters. Six actions of equal value; each plan has one action it loves (about 0.30),
the others earn 0.05-0.12, so a static ranking (the best action on average for
everyone) earns about half of what knowing the customer earns.

Policies: `random` (a uniformly random action), `static` (the action with the best
average true rate, for everyone: the best a fixed priority can do), `oracle` (knows the
true rate of every action for every customer: regret 0) and `engine` (learner.py's
Thompson sampling on predictors.py's predictors, learning from every outcome).
"""

from dataclasses import dataclass, field

import numpy as np

from rapport.decisions import learner
from rapport.decisions.predictors import predictor_names

PLANS = ("basic", "plus", "pro")
DEVICES = ("mobile", "desktop", "tablet")
REGIONS = ("north", "south", "east", "west")
# True acceptance rate of each action (columns) for each plan (rows).
RATES = np.array(
    [
        [0.30, 0.10, 0.05, 0.12, 0.08, 0.06],
        [0.08, 0.28, 0.10, 0.12, 0.06, 0.05],
        [0.05, 0.08, 0.32, 0.12, 0.10, 0.07],
    ]
)
POLICIES = ("random", "static", "oracle", "engine")


@dataclass
class Run:
    policy: str
    steps: int
    # Expected reward (the chosen action's true rate) of each step, and the oracle's.
    earned: list[float] = field(default_factory=list)
    best: list[float] = field(default_factory=list)

    def mean(self, start: int = 0, stop: int | None = None) -> float:
        return float(np.mean(self.earned[start:stop]))

    def regret(self) -> np.ndarray:
        """Cumulative regret against the oracle after each step."""
        return np.cumsum(np.array(self.best) - np.array(self.earned))


def simulate(
    *,
    policy: str,
    steps: int,
    seed: int = 7,
    rates: np.ndarray = RATES,
    swap_at: int = 0,
    half_life: float = 0.0,
) -> Run:
    """Run `policy` for `steps` decisions, one random customer each; the customer
    accepts with the true rate of the action given. `swap_at` > 0: from that step the
    plans' favourite actions rotate (a changed world, for the decay test). `half_life` > 0:
    the engine's evidence halves every `half_life` decisions (learner.model_decay)."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}")
    rng = np.random.default_rng(seed)
    choose_rng = np.random.default_rng(seed + 1)
    n_actions = rates.shape[1]
    models = [learner.model_new(prior_propensity=0.1) for _ in range(n_actions)]
    prior_mean, prior_variance = learner.model_new(prior_propensity=0.1)
    fraction = learner.decay_fraction(elapsed_days=1, half_life_days=half_life) if half_life else 0
    run = Run(policy=policy, steps=steps)
    for step in range(steps):
        table = np.roll(rates, 1, axis=0) if swap_at and step >= swap_at else rates
        plan = int(rng.integers(len(PLANS)))
        truth = table[plan]
        if policy == "random":
            chosen = int(choose_rng.integers(n_actions))
        elif policy == "static":
            chosen = int(np.argmax(table.mean(axis=0)))
        elif policy == "oracle":
            chosen = int(np.argmax(truth))
        else:
            names = predictor_names(
                traits={
                    "plan": PLANS[plan],
                    "region": REGIONS[int(rng.integers(len(REGIONS)))],
                },
                stage=None,
                rfm_cell=None,
                segment_ids=(),
                churn_band=None,
                clv=None,
                channel="web",
                placement="home",
                context={"device": DEVICES[int(rng.integers(len(DEVICES)))]},
            )
            index = learner.predictor_index(names)
            stack = learner.Stack([m for m, _ in models], [v for _, v in models])
            chosen = int(np.argmax(stack.propensities(index, rng=choose_rng)))
        accepted = bool(rng.random() < truth[chosen])
        if policy == "engine":
            mean, variance = models[chosen]
            learner.model_update(mean, variance, index, label=int(accepted))
            if fraction and step % 50 == 49:
                # Decayed in steps of 50 decisions, as a worker decays per batch.
                for m, v in models:
                    learner.model_decay(
                        m,
                        v,
                        prior_mean=prior_mean,
                        prior_variance=prior_variance,
                        fraction=1 - (1 - fraction) ** 50,
                    )
        run.earned.append(float(truth[chosen]))
        run.best.append(float(truth.max()))
    return run
