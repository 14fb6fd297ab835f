"""The churn model: gradient-boosted trees (LightGBM), calibrated, with each customer's
reasons as TreeSHAP contributions, the metrics kept with each version, and the scan
for churn drivers (relative risk with a confidence interval).

Pure NumPy on arrays; `features.py` builds the arrays from the database and
`services.py` keeps the results."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
from django.utils.translation import gettext
from scipy.special import expit
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split

MIN_CLASS = 20
BANDS = (("high", 0.5), ("medium", 0.2), ("low", 0.0))


class TrainError(ValueError):
    """Too few churned (or kept) customers to learn from."""


@dataclass
class Fitted:
    booster: lgb.Booster
    # Platt scaling of the raw margin: P = expit(slope * margin + intercept).
    slope: float
    intercept: float

    def dumps(self) -> str:
        return json.dumps(
            {
                "booster": self.booster.model_to_string(),
                "slope": self.slope,
                "intercept": self.intercept,
            }
        )

    @classmethod
    def loads(cls, text: str) -> Fitted:
        data = json.loads(text)
        return cls(lgb.Booster(model_str=data["booster"]), data["slope"], data["intercept"])


def _params(rows: int, seed: int) -> dict:
    # Small data wants slow, shallow, regularised trees (the Telco data reaches a 5-fold
    # ROC AUC of about 0.849 with these); large data affords faster learning. TreeSHAP
    # reasons cost trees x leaves x depth squared for each customer: on a million, 7
    # leaves at a learning rate of 0.2 (at most 200 trees) gave the same ROC AUC as 15
    # leaves at 0.1 (to 0.0005, bench_churn) for a seventh of the time per tree, and
    # scoring a million customers through the database stays within two minutes.
    small = rows < 50_000
    return {
        "objective": "binary",
        "learning_rate": 0.02 if small else 0.2,
        "num_leaves": 8 if small else 7,
        "min_data_in_leaf": 100 if rows >= 2_000 else max(5, rows // 40),
        "lambda_l2": 10.0,
        "feature_fraction": 0.6,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "cat_smooth": 10,
        "seed": seed,
        "num_threads": os.cpu_count() or 1,
        "verbosity": -1,
    }


def _check_classes(y: np.ndarray) -> None:
    positives = int(y.sum())
    negatives = int(len(y) - positives)
    if positives < MIN_CLASS or negatives < MIN_CLASS:
        raise TrainError(
            gettext(
                "needs at least %(min_class)s churned and %(min_class)s kept customers to learn "
                "from; the data has %(positives)s churned and %(negatives)s kept"
            )
            % {"min_class": MIN_CLASS, "positives": positives, "negatives": negatives}
        )


def churn_fit(X: np.ndarray, y: np.ndarray, categorical: list[int], *, seed: int = 0) -> Fitted:
    """Boosted trees on 80% (stopped early on the other 20%), then Platt scaling of
    their margin on that 20%, so probabilities mean what they say."""
    y = np.asarray(y, dtype=np.int8)
    _check_classes(y)
    fit_x, cal_x, fit_y, cal_y = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=seed
    )
    params = _params(len(y), seed)
    train = lgb.Dataset(fit_x, fit_y, categorical_feature=categorical, free_raw_data=True)
    valid = lgb.Dataset(cal_x, cal_y, reference=train, categorical_feature=categorical)
    booster = lgb.train(
        params,
        train,
        num_boost_round=2000 if len(y) < 50_000 else 200,
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(50, verbose=False)],
    )
    margin = booster.predict(cal_x, raw_score=True, num_iteration=booster.best_iteration)
    platt = LogisticRegression(C=1e6).fit(margin.reshape(-1, 1), cal_y)
    return Fitted(booster, float(platt.coef_[0, 0]), float(platt.intercept_[0]))


def churn_predict(fitted: Fitted, X: np.ndarray) -> np.ndarray:
    margin = fitted.booster.predict(X, raw_score=True)
    return expit(fitted.slope * margin + fitted.intercept)


def churn_contributions(fitted: Fitted, X: np.ndarray) -> np.ndarray:
    """TreeSHAP values (Lundberg & Lee) of each feature for each customer, on the
    log-odds scale of the calibrated probability; the last column is the baseline."""
    return fitted.booster.predict(X, pred_contrib=True) * fitted.slope


def churn_band(probability: np.ndarray) -> np.ndarray:
    bands = np.full(len(probability), "low", dtype=object)
    bands[probability >= 0.2] = "medium"
    bands[probability >= 0.5] = "high"
    return bands


def churn_metrics(y: np.ndarray, p: np.ndarray) -> dict:
    """ROC AUC, PR AUC, Brier score, calibration (10 bins) and lift in the top decile."""
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    base = float(y.mean())
    order = np.argsort(-p, kind="stable")
    top = order[: max(1, len(p) // 10)]
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy="quantile")
    return {
        "roc_auc": round(float(roc_auc_score(y, p)), 4),
        "pr_auc": round(float(average_precision_score(y, p)), 4),
        "brier": round(float(brier_score_loss(y, p)), 4),
        "base_rate": round(base, 4),
        "lift_top_decile": round(float(y[top].mean()) / base, 3) if base else 0.0,
        "calibration": [
            {"predicted": round(float(a), 4), "observed": round(float(b), 4)}
            for a, b in zip(prob_pred, prob_true, strict=True)
        ],
        "customers": len(y),
        "churned": int(y.sum()),
    }


def churn_cross_validate(
    X: np.ndarray, y: np.ndarray, categorical: list[int], *, folds: int = 5, seed: int = 0
) -> dict:
    """Stratified k-fold: every customer predicted by a model that did not see them."""
    y = np.asarray(y, dtype=np.int8)
    _check_classes(y)
    predicted = np.zeros(len(y), dtype=float)
    fold_auc = []
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train_index, test_index in splitter.split(X, y):
        fitted = churn_fit(X[train_index], y[train_index], categorical, seed=seed)
        predicted[test_index] = churn_predict(fitted, X[test_index])
        fold_auc.append(roc_auc_score(y[test_index], predicted[test_index]))
    metrics = churn_metrics(y, predicted)
    metrics["validation"] = f"{folds}-fold cross-validation"
    # The figure papers report: the mean of the folds' ROC AUC.
    metrics["roc_auc"] = round(float(np.mean(fold_auc)), 4)
    metrics["roc_auc_folds"] = [round(float(a), 4) for a in fold_auc]
    return metrics


def feature_importance(fitted: Fitted) -> np.ndarray:
    gain = fitted.booster.feature_importance(importance_type="gain")
    total = gain.sum()
    return gain / total if total else gain


# --- Churn drivers ---------------------------------------------------------------------


def relative_risk(has: np.ndarray, y: np.ndarray) -> dict | None:
    """Churn rate with the behaviour over the rate without, and its 95% interval (the
    log method of Katz et al. 1978, with 0.5 added to empty cells)."""
    has = np.asarray(has, dtype=bool)
    y = np.asarray(y, dtype=bool)
    n1 = int(has.sum())
    n0 = int(len(has) - n1)
    if not n1 or not n0:
        return None
    a = float((y & has).sum())
    c = float((y & ~has).sum())
    if a == 0 or c == 0:
        a, c, n1f, n0f = a + 0.5, c + 0.5, n1 + 1.0, n0 + 1.0
    else:
        n1f, n0f = float(n1), float(n0)
    rate1, rate0 = a / n1f, c / n0f
    rr = rate1 / rate0
    se = math.sqrt(max(1 / a - 1 / n1f + 1 / c - 1 / n0f, 0.0))
    return {
        "support": n1,
        "churn_rate": round(float((y & has).sum()) / n1, 4),
        "churn_rate_others": round(float((y & ~has).sum()) / n0, 4),
        "relative_risk": round(rr, 3),
        "ci_low": round(math.exp(math.log(rr) - 1.96 * se), 3),
        "ci_high": round(math.exp(math.log(rr) + 1.96 * se), 3),
    }


TOP_DRIVERS = 15


def drivers_scan(
    behaviours: list[dict], y: np.ndarray, *, min_support: int | None = None, top: int = TOP_DRIVERS
) -> list[dict]:
    """The behaviours (each {"has": bool array, ...}) after which customers churn
    significantly more often (interval above 1), largest relative risk first. A
    behaviour without which nobody churned is a precondition of the label (only
    subscribers cancel a subscription), not a driver, and is left out."""
    y = np.asarray(y, dtype=bool)
    floor = min_support if min_support is not None else max(20, len(y) // 100)
    found = []
    for behaviour in behaviours:
        has = behaviour["has"]
        if has.sum() < floor or (~has).sum() < floor or not (y & ~has).any():
            continue
        stats = relative_risk(has, y)
        if stats is None or stats["ci_low"] <= 1.0:
            continue
        found.append({**{k: v for k, v in behaviour.items() if k != "has"}, **stats})
    found.sort(key=lambda d: (-d["relative_risk"], -d["support"]))
    return found[:top]
