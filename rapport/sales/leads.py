"""Lead scoring: the chance that a deal with this customer is won, learnt from the
workspace's won and lost deals — each described by its customer as they were when the
deal opened (their account's size and industry, how many colleagues are known, what
they had done and bought before) — with each customer's reasons.

The model is a regularised logistic regression (scikit-learn) on standardised
features: a few hundred deals is what a sales team has, where boosted trees overfit
and a linear model's probabilities are already calibrated (its log-loss is what it
minimises). Each reason is a feature's term in the log-odds, coefficient times standardised
value. The model is judged by 5-fold cross-validated ROC AUC against the prior-only
baseline (every lead at the base rate: ROC AUC 0.5) and by its Brier score against
the prior's. Pure NumPy and scikit-learn on arrays; `lead_rows` reads the database."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from django.db.models import Count, Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold

MIN_CLASS = 10
MIN_INDUSTRY = 3
NUMERIC = ("employees", "colleagues", "events", "purchases", "days_known", "has_account")
LABELS = {
    "employees": _("size of their company"),
    "colleagues": _("colleagues known"),
    "events": _("activity before the deal"),
    "purchases": _("purchases before the deal"),
    "days_known": _("time known"),
    "has_account": _("belongs to a company"),
    "industry": _("industry"),
}


class LeadTrainError(ValueError):
    """Too few won (or lost) deals to learn from."""


@dataclass
class Lead:
    """A customer as they were at a moment: the raw features of one row."""

    employees: float
    colleagues: float
    events: float
    purchases: float
    days_known: float
    has_account: float
    industry: str


def _numeric(lead: Lead) -> list[float]:
    return [
        math.log1p(max(lead.employees, 0.0)),
        math.log1p(max(lead.colleagues, 0.0)),
        math.log1p(max(lead.events, 0.0)),
        math.log1p(max(lead.purchases, 0.0)),
        math.log1p(max(lead.days_known, 0.0)),
        lead.has_account,
    ]


def _design(leads: list[Lead], params: dict) -> np.ndarray:
    numeric = np.array([_numeric(lead) for lead in leads], dtype=float).reshape(len(leads), -1)
    z = (numeric - np.array(params["means"])) / np.array(params["scales"])
    industries = params["industries"]
    onehot = np.zeros((len(leads), len(industries)))
    for row, lead in enumerate(leads):
        if lead.industry in industries:
            onehot[row, industries.index(lead.industry)] = 1.0
    return np.hstack([z, onehot])


def _prepare(leads: list[Lead]) -> dict:
    numeric = np.array([_numeric(lead) for lead in leads], dtype=float)
    scales = numeric.std(axis=0)
    counts = Counter(lead.industry for lead in leads if lead.industry)
    return {
        "means": numeric.mean(axis=0).tolist(),
        "scales": np.where(scales > 0, scales, 1.0).tolist(),
        "industries": sorted(k for k, n in counts.items() if n >= MIN_INDUSTRY),
    }


def lead_fit(leads: list[Lead], won: np.ndarray, *, c: float = 1.0) -> dict:
    """The model's parameters (JSON-ready) from leads and whether their deal was won."""
    won = np.asarray(won, dtype=int)
    positives, negatives = int(won.sum()), int(len(won) - won.sum())
    if positives < MIN_CLASS or negatives < MIN_CLASS:
        raise LeadTrainError(
            gettext(
                "needs at least %(min)s won and %(min)s lost deals to learn from; there are "
                "%(won)s won and %(lost)s lost"
            )
            % {"min": MIN_CLASS, "won": positives, "lost": negatives}
        )
    params = _prepare(leads)
    model = LogisticRegression(C=c, max_iter=2000).fit(_design(leads, params), won)
    params["coef"] = model.coef_[0].tolist()
    params["intercept"] = float(model.intercept_[0])
    return params


def lead_predict(params: dict, leads: list[Lead]) -> np.ndarray:
    if not leads:
        return np.zeros(0)
    margin = _design(leads, params) @ np.array(params["coef"]) + params["intercept"]
    return 1.0 / (1.0 + np.exp(-margin))


def lead_reasons(params: dict, lead: Lead, *, top: int = 3) -> list[dict[str, Any]]:
    """The features that move this lead's log-odds most, either way."""
    terms = _design([lead], params)[0] * np.array(params["coef"])
    names = [*NUMERIC, *(f"industry:{i}" for i in params["industries"])]
    order = np.argsort(-np.abs(terms))
    reasons = []
    for index in order[:top]:
        if abs(terms[index]) < 0.05:
            break
        name = names[index]
        reasons.append(
            {
                "feature": name.split(":", 1)[0],
                "value": name.split(":", 1)[1] if ":" in name else _raw(lead, name),
                "contribution": round(float(terms[index]), 3),
            }
        )
    return reasons


def _raw(lead: Lead, name: str) -> float:
    return round(float(getattr(lead, name)), 1)


def lead_cross_validate(
    leads: list[Lead], won: np.ndarray, *, folds: int = 5, seed: int = 0
) -> dict:
    """Every deal predicted by a model that did not see it, and the prior-only baseline
    (the training folds' base rate) beside it."""
    won = np.asarray(won, dtype=int)
    folds = max(2, min(folds, int(won.sum()), int(len(won) - won.sum())))
    predicted = np.zeros(len(won))
    prior = np.zeros(len(won))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(np.zeros(len(won)), won):
        params = lead_fit([leads[i] for i in train], won[train])
        predicted[test] = lead_predict(params, [leads[i] for i in test])
        prior[test] = won[train].mean()
    return {
        "roc_auc": round(float(roc_auc_score(won, predicted)), 4),
        "prior_roc_auc": round(float(roc_auc_score(won, prior)), 4),
        "brier": round(float(brier_score_loss(won, predicted)), 4),
        "prior_brier": round(float(brier_score_loss(won, prior)), 4),
        "base_rate": round(float(won.mean()), 4),
        "deals": len(won),
        "won": int(won.sum()),
        "validation": f"{folds}-fold cross-validation",
    }


# --- From the database ---------------------------------------------------------------------


def lead_rows(*, workspace, subjects: list[tuple[Any, Any, datetime]]) -> list[Lead]:
    """A `Lead` for each (profile id or None, account id or None, moment): the account's
    size and industry, its people, and the customer's events and purchases before the
    moment."""
    from rapport.ingest.models import Event
    from rapport.profiles.models import Account, AccountMember, Profile
    from rapport.tenancy.commerce import commerce_settings_get

    purchase = commerce_settings_get(workspace=workspace).purchase_event
    profile_ids = {p for p, _a, _t in subjects if p}
    account_ids = {a for _p, a, _t in subjects if a}
    # A customer without an account on the deal: the account they belong to.
    links: dict[Any, Any] = {}
    for link in AccountMember.objects.filter(workspace=workspace, profile_id__in=profile_ids):
        links.setdefault(link.profile_id, link.account_id)
    account_ids |= set(links.values())
    accounts = {a.pk: a for a in Account.objects.filter(workspace=workspace, pk__in=account_ids)}
    colleagues = dict(
        AccountMember.objects.filter(workspace=workspace, account_id__in=account_ids)
        .values("account_id")
        .annotate(n=Count("id"))
        .values_list("account_id", "n")
    )
    first_seen = dict(
        Profile.objects.filter(workspace=workspace, pk__in=profile_ids).values_list(
            "pk", "first_seen_at"
        )
    )
    activity = _activity(workspace, subjects, purchase, Event)
    rows = []
    for profile_id, account_id, at in subjects:
        account = accounts.get(account_id or links.get(profile_id))
        traits = account.traits if account is not None else {}
        events, purchases = activity.get((profile_id, at), (0, 0))
        known = first_seen.get(profile_id) or (account.first_seen_at if account else None)
        try:
            employees = float(traits.get("employees") or 0)
        except (TypeError, ValueError):
            employees = 0.0
        rows.append(
            Lead(
                employees=employees,
                colleagues=float(colleagues.get(account.pk, 0)) if account else 0.0,
                events=float(events),
                purchases=float(purchases),
                days_known=max(0.0, (at - known).days) if known else 0.0,
                has_account=1.0 if account is not None else 0.0,
                industry=str(traits.get("industry") or "")[:100],
            )
        )
    return rows


def _activity(workspace, subjects, purchase: str, event_model) -> dict:
    """{(profile id, moment): (events, purchases) before it}: one grouped query per
    moment shared by many (scoring, all at now), one query each otherwise (training,
    each deal at its opening)."""
    by_moment: dict[datetime, list] = {}
    for profile_id, _account_id, at in subjects:
        if profile_id:
            by_moment.setdefault(at, []).append(profile_id)
    found: dict[tuple, tuple[int, int]] = {}
    for at, ids in by_moment.items():
        for start in range(0, len(ids), 2000):
            chunk = ids[start : start + 2000]
            rows = (
                event_model.objects.filter(
                    workspace=workspace, profile_id__in=chunk, timestamp__lt=at
                )
                .values("profile_id")
                .annotate(n=Count("id"), bought=Count("id", filter=Q(event=purchase)))
                .values_list("profile_id", "n", "bought")
            )
            for profile_id, n, bought in rows:
                found[(profile_id, at)] = (n, bought)
    return found
