"""Churn training on 1,000,000 customers with 50 features (targets: train under 5
minutes, score under 2 minutes, peak memory under 4 GB).

The feature matrix is drawn synthetically with the shape the feature builder gives
(counts over windows, trends, recency and tenure, flags for features used in the first
30 days, numeric and categorical traits), with churn depending on a few of them.
Training is Rapport's: boosted trees with early stopping, Platt calibration, the
metrics, feature importance and the driver scan; scoring is the calibrated probability,
the band and each customer's top three TreeSHAP reasons. BENCH_CHURN_CUSTOMERS changes
the count."""

import os
import resource
import time

import numpy as np
from scipy.special import expit

from rapport.predictions import churn

CUSTOMERS = int(os.environ.get("BENCH_CHURN_CUSTOMERS", "1000000"))
FEATURES = 50


def simulate(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = np.empty((n, FEATURES), dtype=np.float32)
    X[:, 0] = rng.exponential(20, n)  # recency
    X[:, 1] = rng.uniform(0, 700, n)  # tenure
    for j in range(2, 32):  # event counts over windows
        X[:, j] = rng.poisson(rng.gamma(1.0, 3.0, n))
    for j in range(32, 42):  # used in the first 30 days
        X[:, j] = rng.random(n) < 0.6
    for j in range(42, 47):  # numeric traits, some missing
        X[:, j] = rng.normal(50, 15, n)
        X[rng.random(n) < 0.1, j] = np.nan
    for j in range(47, 50):  # categorical traits
        X[:, j] = rng.integers(0, 6, n)
    margin = -2.2 + 0.03 * X[:, 0] - 0.9 * X[:, 32] + 0.4 * (X[:, 47] == 2) - 0.05 * X[:, 5]
    y = (rng.random(n) < expit(margin)).astype(np.int8)
    return X, y, [47, 48, 49]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run() -> dict:
    X, y, categorical = simulate(CUSTOMERS)
    started = time.perf_counter()
    fitted = churn.churn_fit(X, y, categorical)
    test_x, test_y = simulate(max(CUSTOMERS // 5, 1000), seed=1)[:2]
    metrics = churn.churn_metrics(test_y, churn.churn_predict(fitted, test_x))
    churn.feature_importance(fitted)
    behaviours = [{"kind": "flag", "has": X[:, j] == 0} for j in range(32, 42)]
    drivers = churn.drivers_scan(behaviours, y)
    trained = time.perf_counter() - started

    started = time.perf_counter()
    probability = churn.churn_predict(fitted, X)
    churn.churn_band(probability)
    for start in range(0, len(X), 100_000):
        contributions = churn.churn_contributions(fitted, X[start : start + 100_000])[:, :-1]
        np.argsort(-contributions, axis=1)[:, :3]
    scored = time.perf_counter() - started
    return {
        "customers": CUSTOMERS,
        "features": FEATURES,
        "trees": fitted.booster.num_trees(),
        "train_seconds": round(trained, 1),
        "train_target_seconds": 300,
        "score_seconds": round(scored, 1),
        "score_target_seconds": 120,
        "peak_memory_mb": round(_peak_mb()),
        "memory_target_mb": 4096,
        "roc_auc_out_of_sample": metrics["roc_auc"],
        "top_driver_feature": drivers[0]["kind"] if drivers else None,
    }
