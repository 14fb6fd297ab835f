"""CLV fit and scoring for 1,000,000 customers (BG/NBD + Gamma-Gamma) against the
`lifetimes` package on the same summary data.

The customers are drawn from the BG/NBD and Gamma-Gamma processes with the CDNOW
parameters (times in whole days, counted in weeks, as the purchase events give them).
Both sides fit the two models and compute P(alive), expected purchases over 30, 90 and
365 days, the expected order value and a 12-month CLV. BENCH_CLV_CUSTOMERS changes the
count."""

import os
import time
import warnings

import numpy as np

from rapport.predictions import clv

CUSTOMERS = int(os.environ.get("BENCH_CLV_CUSTOMERS", "1000000"))


def simulate(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    r, alpha, a, b = 0.243, 4.414, 0.793, 2.426
    p, q, gamma = 6.25, 3.74, 15.44
    rate = rng.gamma(r, 1 / alpha, n)
    drop = rng.beta(a, b, n)
    T_days = rng.integers(7, 365, n)
    T = T_days / 7
    x = np.zeros(n)
    last = np.zeros(n)
    t = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    while alive.any():
        idx = np.flatnonzero(alive)
        t[idx] += rng.exponential(1 / np.maximum(rate[idx], 1e-9))
        inside = t[idx] <= T[idx]
        bought = idx[inside]
        x[bought] += 1
        last[bought] = np.floor(t[bought] * 7) / 7
        alive[idx[~inside]] = False
        dies = bought[rng.random(len(bought)) < drop[bought]]
        alive[dies] = False
    nu = rng.gamma(q, 1 / gamma, n)
    monetary = np.where(x > 0, rng.gamma(p * np.maximum(x, 1), 1 / nu) / np.maximum(x, 1), 0)
    return x, last, T, monetary


def ours(x, tx, T, m) -> float:
    started = time.perf_counter()
    bg = clv.bgnbd_fit(x, tx, T)
    gg = clv.gamma_gamma_fit(x, m)
    clv.probability_alive(bg, x, tx, T)
    for days in (30, 90, 365):
        clv.expected_purchases(bg, days / 7, x, tx, T)
    clv.expected_order_value(gg, x, m)
    clv.lifetime_value(bg, gg, x, tx, T, m, unit_days=7, months=12, monthly_discount=0.01)
    return time.perf_counter() - started, bg, gg


def reference(x, tx, T, m) -> float:
    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    started = time.perf_counter()
    bg = BetaGeoFitter().fit(x, tx, T)
    repeat = x > 0
    gg = GammaGammaFitter().fit(pd.Series(x[repeat]), pd.Series(m[repeat]))
    bg.conditional_probability_alive(x, tx, T)
    for days in (30, 90, 365):
        bg.conditional_expected_number_of_purchases_up_to_time(days / 7, x, tx, T)
    gg.conditional_expected_average_profit(pd.Series(x), pd.Series(m))
    gg.customer_lifetime_value(
        bg,
        pd.Series(x),
        pd.Series(tx),
        pd.Series(T),
        pd.Series(m),
        time=12,
        discount_rate=0.01,
        freq="W",
    )
    return time.perf_counter() - started, bg, gg


def run() -> dict:
    warnings.filterwarnings("ignore")
    x, tx, T, m = simulate(CUSTOMERS)
    seconds, bg, gg = ours(x, tx, T, m)
    ref_seconds, ref_bg, ref_gg = reference(x, tx, T, m)
    return {
        "customers": CUSTOMERS,
        "repeat_customers": int((x > 0).sum()),
        "rapport_seconds": round(seconds, 2),
        "lifetimes_seconds": round(ref_seconds, 2),
        "speedup_vs_lifetimes": round(ref_seconds / seconds, 2),
        "target_seconds": 60,
        "rapport_bgnbd": {k: round(getattr(bg, k), 4) for k in ("r", "alpha", "a", "b")},
        "lifetimes_bgnbd": {k: round(float(v), 4) for k, v in ref_bg.params_.items()},
        "rapport_gamma_gamma": {k: round(getattr(gg, k), 4) for k in ("p", "q", "gamma")},
        "lifetimes_gamma_gamma": {k: round(float(v), 4) for k, v in ref_gg.params_.items()},
    }
