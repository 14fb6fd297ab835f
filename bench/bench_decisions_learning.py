"""Next best action's learning: the regret curve of the engine's Thompson sampling in a
simulated population whose acceptance depends on a trait (rapport/decisions/
simulation.py), against a random policy, a static priority and the oracle that knows
the true rates; averaged over BENCH_LEARNING_SEEDS (5) populations of
BENCH_LEARNING_STEPS (10,000) decisions each."""

import os
import time

import numpy as np

from rapport.decisions.simulation import POLICIES, simulate

STEPS = int(os.environ.get("BENCH_LEARNING_STEPS", "10000"))
SEEDS = int(os.environ.get("BENCH_LEARNING_SEEDS", "5"))
CHECKPOINTS = [c for c in (100, 250, 500, 1000, 2000, 3000, 5000, 10000) if c <= STEPS]


def run() -> dict:
    figures: dict = {"steps": STEPS, "seeds": SEEDS, "policies": {}}
    for policy in POLICIES:
        started = time.perf_counter()
        runs = [simulate(policy=policy, steps=STEPS, seed=seed) for seed in range(SEEDS)]
        regret = np.mean([r.regret() for r in runs], axis=0)
        earned = np.mean([r.earned for r in runs], axis=0)
        figures["policies"][policy] = {
            "mean_reward": round(float(earned.mean()), 4),
            "mean_reward_last_half": round(float(earned[STEPS // 2 :].mean()), 4),
            "cumulative_regret": {str(c): round(float(regret[c - 1]), 1) for c in CHECKPOINTS},
            "seconds": round(time.perf_counter() - started, 2),
        }
    oracle = figures["policies"]["oracle"]["mean_reward_last_half"]
    for row in figures["policies"].values():
        row["share_of_oracle_last_half"] = round(row["mean_reward_last_half"] / oracle, 3)
    return figures
