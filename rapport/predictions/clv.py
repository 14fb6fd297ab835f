"""Customer lifetime value: the BG/NBD model of repeat purchasing and the Gamma-Gamma
model of spend (Fader, Hardie & Lee 2005, "Counting your customers the easy way";
Fader, Hardie & Lee 2005, "RFM and CLV: using iso-value curves"), fitted by maximum
likelihood with SciPy.

Each customer is summarised as in the papers: `frequency` x, the number of repeat
purchases (purchase days after the first); `recency` t_x, the time from the first
purchase to the last; `T`, the time from the first purchase to the end of the
calibration period; and `monetary` m, the mean value of the repeat purchases. Times are
in the model's unit (weeks or days).

Pure NumPy/SciPy on arrays; `rapport/predictions/services.py` reads the arrays from the
purchase events and writes the scores."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, gammaln, hyp2f1


class FitError(ValueError):
    """The data cannot support the model (too few customers or repeat buyers)."""


@dataclass(frozen=True)
class Summary:
    frequency: np.ndarray
    recency: np.ndarray
    T: np.ndarray
    monetary: np.ndarray


@dataclass(frozen=True)
class BgNbd:
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    iterations: int


@dataclass(frozen=True)
class GammaGamma:
    p: float
    q: float
    gamma: float
    log_likelihood: float
    iterations: int


def _compress(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Identical customers once, with a weight: a million customers summarised in whole
    days are a few hundred thousand distinct rows."""
    stacked = np.column_stack(columns)
    unique, counts = np.unique(stacked, axis=0, return_counts=True)
    return [unique[:, i] for i in range(unique.shape[1])], counts.astype(float)


def _bgnbd_log_likelihood(params, x, tx, T, weights, lgamma_bx_terms=None):
    r, alpha, a, b = np.exp(params)
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    a4 = np.full_like(x, -np.inf)
    a4[repeat] = (
        np.log(a) - np.log(b + x[repeat] - 1) - (r + x[repeat]) * np.log(alpha + tx[repeat])
    )
    return a1 + a2 + np.logaddexp(a3, a4)


def _minimize(objective, start):
    """Quasi-Newton on the log-parameters (as `lifetimes` does), with a simplex search
    only if that does not converge."""
    result = minimize(objective, start, method="BFGS", options={"gtol": 1e-7})
    if not result.success:
        result = minimize(
            objective,
            result.x,
            method="Nelder-Mead",
            options={"xatol": 1e-7, "fatol": 1e-10, "maxiter": 4000, "maxfev": 8000},
        )
    return result


def bgnbd_fit(frequency, recency, T) -> BgNbd:
    """Maximum likelihood estimates of r, alpha, a, b."""
    x, tx, t_end = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    if len(x) < 10:
        raise FitError("at least 10 customers with a purchase are needed")
    if not (x > 0).any():
        raise FitError("no customer bought twice: repeat purchasing cannot be modelled")
    if (tx > t_end + 1e-9).any() or (x < 0).any():
        raise FitError("recency cannot exceed T, nor frequency be negative")
    (x, tx, t_end), weights = _compress(x, tx, t_end)
    total = weights.sum()
    # Start from the scale of the data: alpha near the mean time per purchase.
    start = np.log([1.0, max(float(np.average(t_end, weights=weights)), 1e-3), 1.0, 1.0])

    def objective(params):
        ll = _bgnbd_log_likelihood(params, x, tx, t_end, weights)
        value = -(ll * weights).sum() / total
        return value if np.isfinite(value) else 1e100

    result = _minimize(objective, start)
    r, alpha, a, b = (float(v) for v in np.exp(result.x))
    return BgNbd(r, alpha, a, b, float(-result.fun * total), int(result.nit))


def gamma_gamma_fit(frequency, monetary) -> GammaGamma:
    """Maximum likelihood estimates of p, q, gamma from the customers who bought again
    (their mean repeat purchase value)."""
    x = np.asarray(frequency, dtype=float)
    m = np.asarray(monetary, dtype=float)
    keep = (x > 0) & (m > 0)
    if keep.sum() < 10:
        raise FitError("at least 10 customers with a repeat purchase of positive value are needed")
    (x, m), weights = _compress(x[keep], m[keep])
    total = weights.sum()
    log_m, log_x = np.log(m), np.log(x)

    def objective(params):
        p, q, v = np.exp(params)
        px = p * x
        ll = (
            gammaln(px + q)
            - gammaln(px)
            - gammaln(q)
            + q * np.log(v)
            + (px - 1) * log_m
            + px * log_x
            - (px + q) * np.log(x * m + v)
        )
        value = -(ll * weights).sum() / total
        return value if np.isfinite(value) else 1e100

    start = np.log([1.0, 2.0, max(float(np.average(m, weights=weights)), 1e-3)])
    result = _minimize(objective, start)
    p, q, v = (float(value) for value in np.exp(result.x))
    return GammaGamma(p, q, v, float(-result.fun * total), int(result.nit))


def expected_purchases(model: BgNbd, t, frequency, recency, T) -> np.ndarray:
    """E[purchases in the next t time units | x, t_x, T] (the paper's equation 10)."""
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    x, tx, t_end = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    t = float(t)
    # The formula divides by a - 1 and is continuous there: step off the singularity,
    # where the division and the cancellation inside the bracket lose every digit.
    if abs(a - 1) < 1e-6:
        a = 1 + math.copysign(1e-6, a - 1)
    ha, hb, hc = r + x, b + x, a + b + x - 1
    z = t / (alpha + t_end + t)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_hyp = np.log(hyp2f1(ha, hb, hc, z))
        # Euler's transformation where the series overflows.
        alternative = np.log(hyp2f1(hc - ha, hc - hb, hc, z)) + (hc - ha - hb) * np.log1p(-z)
        log_hyp = np.where(np.isfinite(log_hyp), log_hyp, alternative)
        numerator = (
            (a + b + x - 1)
            / (a - 1)
            * (1 - np.exp(log_hyp + (r + x) * np.log((alpha + t_end) / (alpha + t + t_end))))
        )
        denominator = 1 + (x > 0) * (a / (b + np.maximum(x, 1) - 1)) * (
            (alpha + t_end) / (alpha + tx)
        ) ** (r + x)
        expected = numerator / denominator
    # Dropping out only lowers it: a customer who never drops out (the NBD posterior
    # mean) bounds it, and stands in where the series still fails numerically.
    never_drops = (r + x) * t / (alpha + t_end)
    return np.where(np.isfinite(expected), np.clip(expected, 0.0, never_drops), never_drops)


def probability_alive(model: BgNbd, frequency, recency, T) -> np.ndarray:
    """P(still a customer | x, t_x, T)."""
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    x, tx, t_end = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    log_odds_dead = (r + x) * np.log((alpha + t_end) / (alpha + tx)) + np.log(
        a / (b + np.maximum(x, 1) - 1)
    )
    return np.where(x == 0, 1.0, expit(-log_odds_dead))


def expected_order_value(model: GammaGamma, frequency, monetary) -> np.ndarray:
    """E[value of a purchase | x, m]: the customer's own mean shrunk towards the
    population's, the more so the fewer their purchases."""
    p, q, v = model.p, model.q, model.gamma
    x = np.asarray(frequency, dtype=float)
    m = np.nan_to_num(np.asarray(monetary, dtype=float))
    population = v * p / (q - 1) if q > 1 else np.nan
    weight = p * x / (p * x + q - 1)
    return (1 - weight) * population + weight * m


def lifetime_value(
    bgnbd: BgNbd,
    gamma_gamma: GammaGamma,
    frequency,
    recency,
    T,
    monetary,
    *,
    unit_days: float,
    months: int = 12,
    monthly_discount: float = 0.01,
) -> np.ndarray:
    """The discounted value of the customer's expected purchases over the next `months`
    (30-day months), each month's purchases times the expected order value, discounted
    at `monthly_discount` per month (as the `lifetimes` package computes it)."""
    value = expected_order_value(gamma_gamma, frequency, monetary)
    month = 30.0 / unit_days
    total = np.zeros(len(np.asarray(frequency)), dtype=float)
    previous = np.zeros_like(total)
    for i in range(1, months + 1):
        cumulative = expected_purchases(bgnbd, i * month, frequency, recency, T)
        total += value * (cumulative - previous) / (1 + monthly_discount) ** i
        previous = cumulative
    return total


def holdout_check(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """How the predicted purchases in the holdout compare with what customers did."""
    predicted = np.asarray(predicted, dtype=float)
    actual = np.asarray(actual, dtype=float)
    error = predicted - actual
    correlation = (
        float(np.corrcoef(predicted, actual)[0, 1])
        if len(actual) > 1 and actual.std() > 0 and predicted.std() > 0
        else 0.0
    )
    return {
        "customers": len(actual),
        "predicted_total": round(float(predicted.sum()), 2),
        "actual_total": round(float(actual.sum()), 2),
        "mae": round(float(np.abs(error).mean()), 4) if len(actual) else 0.0,
        "rmse": round(float(np.sqrt((error**2).mean())), 4) if len(actual) else 0.0,
        "correlation": round(correlation, 4),
    }
