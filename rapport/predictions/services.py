"""Training, scoring and the model registry. `clv_model_train` and
`churn_model_train` fit a new version from the workspace's data and keep it with its
metrics; `clv_scores_refresh` and `churn_scores_refresh` write every customer's scores
with the latest version; `churn_driver_segment_create` turns a driver into a segment."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext

from rapport.core.bulk import rows_insert, tables_analyze
from rapport.core.errors import ConflictError, InvalidInputError
from rapport.core.money import money_stored
from rapport.predictions import churn, clv, features, selectors
from rapport.predictions.listeners import scores_watched
from rapport.predictions.models import (
    ChurnDriver,
    ChurnScore,
    ClvScore,
    PredictionModel,
    PredictionSettings,
)
from rapport.segments.models import Segment
from rapport.segments.services import segment_create, segments_refresh
from rapport.tenancy.models import Workspace
from rapport.tenancy.services import Actor, audit_log_record

TIME_UNITS = {"day": 1.0, "week": 7.0}
WRITE_CHUNK = 10_000
# With this much purchase history and no cut-off given, the last 90 days are held out to
# check the fit.
HOLDOUT_DAYS = 90
MIN_HISTORY_FOR_HOLDOUT_DAYS = 180
REASONS = 3


class TrainError(InvalidInputError):
    """The workspace's data cannot support the model (said in words a user can act on)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="data", code="not_enough_data")


# --- Settings ---------------------------------------------------------------------------


def _settings_label(config: PredictionSettings) -> features.Label:
    """The churn label the workspace's settings define."""
    days = (
        config.churn_horizon_days if config.churn_label == "event" else config.churn_inactive_days
    )
    return _label_check(
        features.Label(
            config.churn_label,
            days=days,
            event=config.churn_event,
            trait=config.churn_trait,
            positive=config.churn_positive,
        )
    )


def _label_check(label: features.Label) -> features.Label:
    """The label with its names trimmed, or InvalidInputError naming the setting."""
    if label.kind == "event":
        if not label.event.strip():
            raise InvalidInputError(gettext("name the cancellation event"), field="churn_event")
        if not 1 <= label.days <= 365:
            raise InvalidInputError(gettext("from 1 to 365 days"), field="churn_horizon_days")
        return features.Label("event", days=label.days, event=label.event.strip())
    if label.kind == "inactive":
        if not 1 <= label.days <= 365:
            raise InvalidInputError(gettext("from 1 to 365 days"), field="churn_inactive_days")
        return features.Label("inactive", days=label.days)
    if label.kind == "trait":
        if not label.trait.strip():
            raise InvalidInputError(
                gettext("name the trait that says a customer left"), field="churn_trait"
            )
        if not label.positive.strip():
            raise InvalidInputError(
                gettext("give the trait's value for churned"), field="churn_positive"
            )
        return features.Label("trait", trait=label.trait.strip(), positive=label.positive.strip())
    raise InvalidInputError(gettext("must be event, inactive or trait"), field="churn_label")


def prediction_settings_update(
    *, workspace: Workspace, actor: Actor, **changes: Any
) -> PredictionSettings:
    """Change what counts as churn and how lifetime value is computed."""
    allowed = {
        "churn_label",
        "churn_event",
        "churn_horizon_days",
        "churn_inactive_days",
        "churn_trait",
        "churn_positive",
        "clv_time_unit",
        "clv_months",
        "clv_monthly_discount",
    }
    unknown = set(changes) - allowed
    if unknown:
        raise InvalidInputError(gettext("unknown setting"), field=sorted(unknown)[0])
    with transaction.atomic():
        config, _ = PredictionSettings.objects.select_for_update().get_or_create(
            workspace=workspace
        )
        for name, value in changes.items():
            if value is not None:
                setattr(config, name, value)
        _settings_label(config)
        if config.clv_time_unit not in TIME_UNITS:
            raise InvalidInputError(gettext("must be week or day"), field="clv_time_unit")
        if not 1 <= config.clv_months <= 120:
            raise InvalidInputError(gettext("from 1 to 120 months"), field="clv_months")
        if not 0 <= config.clv_monthly_discount < 1:
            raise InvalidInputError(
                gettext("a rate from 0 to 1 per month"), field="clv_monthly_discount"
            )
        config.save()
        audit_log_record(
            workspace=workspace,
            actor=actor,
            action="predictions.settings_update",
            details={k: v for k, v in changes.items() if v is not None},
        )
    return config


def error_record(*, workspace_id, message: str) -> None:
    """Keep why a background training failed, for the models page."""
    config, _ = PredictionSettings.objects.get_or_create(workspace_id=workspace_id)
    config.last_error = message[:2000]
    config.last_error_at = timezone.now()
    config.save(update_fields=["last_error", "last_error_at", "updated_at"])


def model_of_run(*, workspace_id, kind: str, run_key: str) -> PredictionModel | None:
    """The model a queued training already saved (`run_key`: its task's id), if any."""
    if not run_key:
        return None
    return PredictionModel.objects.filter(
        workspace_id=workspace_id, kind=kind, config__run_key=run_key
    ).first()


def _model_save(
    *, workspace: Workspace, kind: str, actor: Actor, run_key: str = "", **fields: Any
) -> PredictionModel:
    with transaction.atomic():
        # One version number per kind: the lock serialises concurrent trainings.
        PredictionSettings.objects.get_or_create(workspace=workspace)
        PredictionSettings.objects.select_for_update().filter(workspace=workspace).exists()
        if run_key:
            # A queued training run again (its worker died after saving): one version.
            saved = model_of_run(workspace_id=workspace.pk, kind=kind, run_key=run_key)
            if saved is not None:
                return saved
            fields["config"] = {**fields.get("config", {}), "run_key": run_key}
        latest = PredictionModel.objects.filter(workspace=workspace, kind=kind).aggregate(
            v=Max("version")
        )["v"]
        model = PredictionModel.objects.create(
            workspace=workspace,
            kind=kind,
            version=(latest or 0) + 1,
            trained_by=actor.label[:200],
            trained_at=timezone.now(),
            **fields,
        )
        PredictionSettings.objects.filter(workspace=workspace).update(
            last_error="", last_error_at=None
        )
        audit_log_record(
            workspace=workspace,
            actor=actor,
            action=f"predictions.{kind}_train",
            target=model,
            details={"version": model.version, "metrics": _headline(model)},
        )
    return model


def _headline(model: PredictionModel) -> dict:
    keys = ("roc_auc", "pr_auc", "brier", "lift_top_decile", "customers")
    if model.kind == PredictionModel.Kind.CHURN:
        return {k: model.metrics.get(k) for k in keys}
    return {"holdout": model.metrics.get("holdout")}


# --- Lifetime value ---------------------------------------------------------------------


def _day_number(value: date) -> int:
    return (value - date(1970, 1, 1)).days


def clv_model_train(
    *,
    workspace: Workspace,
    actor: Actor,
    as_of: date | None = None,
    time_unit: str | None = None,
    now: datetime | None = None,
    run_key: str = "",
) -> PredictionModel:
    """Fit BG/NBD and Gamma-Gamma on the purchases up to `as_of` (the calibration
    cut-off, inclusive); the purchases after it are the holdout the fit is checked on.
    Without `as_of`, the last 90 days are held out when there are 180 days of history."""
    started = time.perf_counter()
    now = now or timezone.now()
    config = selectors.prediction_settings(workspace=workspace)
    unit = time_unit or config.clv_time_unit
    if unit not in TIME_UNITS:
        raise InvalidInputError(gettext("must be week or day"), field="time_unit")
    if as_of is not None and as_of > now.date():
        raise InvalidInputError(gettext("the cut-off cannot be in the future"), field="as_of")
    unit_days = TIME_UNITS[unit]
    purchases = features.purchase_days(workspace_id=workspace.pk, until=now)
    if not len(purchases.day):
        raise TrainError(
            gettext(
                "no purchases to learn from: the workspace has no events named the purchase "
                "event (see Settings → Commerce)"
            )
        )
    end_day = min(int(purchases.day.max()), _day_number(now.date()))
    if as_of is None:
        span = end_day - int(purchases.day.min())
        cutoff_day = end_day - HOLDOUT_DAYS if span >= MIN_HISTORY_FOR_HOLDOUT_DAYS else end_day
    else:
        cutoff_day = _day_number(as_of)
    calibration = features.buyers_summarise(purchases, end_day=cutoff_day, unit_days=unit_days)
    try:
        bgnbd = clv.bgnbd_fit(calibration.frequency, calibration.recency, calibration.T)
        spend = clv.gamma_gamma_fit(calibration.frequency, calibration.monetary)
    except clv.FitError as error:
        raise TrainError(str(error)) from None
    metrics: dict[str, Any] = {
        "customers": len(calibration.ids),
        "repeat_customers": int((calibration.frequency > 0).sum()),
        "log_likelihood": {
            "bgnbd": round(bgnbd.log_likelihood, 3),
            "gamma_gamma": round(spend.log_likelihood, 3),
        },
        "population_order_value": round(spend.gamma * spend.p / (spend.q - 1), 4)
        if spend.q > 1
        else None,
        # Purchases left out for want of an exchange rate, by currency.
        "unconverted": purchases.unconverted,
    }
    if end_day > cutoff_day:
        length = (end_day - cutoff_day) / unit_days
        predicted = clv.expected_purchases(
            bgnbd, length, calibration.frequency, calibration.recency, calibration.T
        )
        actual = features.purchases_between(
            purchases, calibration.ids, after_day=cutoff_day, end_day=end_day
        )
        metrics["holdout"] = {
            "length": round(length, 3),
            "from": _date_of(cutoff_day + 1).isoformat(),
            "to": _date_of(end_day).isoformat(),
            **clv.holdout_check(predicted, actual),
        }
    model = _model_save(
        workspace=workspace,
        kind=PredictionModel.Kind.CLV,
        actor=actor,
        run_key=run_key,
        config={
            "as_of": _date_of(cutoff_day).isoformat(),
            "time_unit": unit,
            "months": config.clv_months,
            "monthly_discount": config.clv_monthly_discount,
            # Order values and lifetime values are in this currency (ISO 4217).
            "currency": purchases.currency,
        },
        params={
            "bgnbd": {"r": bgnbd.r, "alpha": bgnbd.alpha, "a": bgnbd.a, "b": bgnbd.b},
            "gamma_gamma": {"p": spend.p, "q": spend.q, "gamma": spend.gamma},
        },
        features=["frequency", "recency", "T", "monetary"],
        metrics=metrics,
        data_from=_midnight(int(purchases.day.min())),
        data_to=_midnight(cutoff_day) + timedelta(days=1),
        seconds=round(time.perf_counter() - started, 3),
    )
    return model


def _date_of(day: int) -> date:
    return date(1970, 1, 1) + timedelta(days=day)


def _midnight(day: int) -> datetime:
    return datetime.combine(_date_of(day), datetime.min.time(), UTC)


def clv_fitted(model: PredictionModel) -> tuple[clv.BgNbd, clv.GammaGamma]:
    b, g = model.params["bgnbd"], model.params["gamma_gamma"]
    return (
        clv.BgNbd(b["r"], b["alpha"], b["a"], b["b"], 0.0, 0),
        clv.GammaGamma(g["p"], g["q"], g["gamma"], 0.0, 0),
    )


def clv_scores_refresh(
    *, workspace_id, model: PredictionModel | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Every buyer's probability of being alive, expected purchases over 30, 90 and 365
    days, expected order value and lifetime value, from their purchases up to now."""
    started = time.perf_counter()
    now = now or timezone.now()
    model = model or _latest(workspace_id, PredictionModel.Kind.CLV)
    if model is None:
        return {"scored": 0, "model": None}
    unit_days = TIME_UNITS[model.config["time_unit"]]
    bgnbd, spend = clv_fitted(model)
    purchases = features.purchase_days(workspace_id=workspace_id, until=now)
    trained_in = model.config.get("currency")
    if trained_in and trained_in != purchases.currency:
        # Its spend model learnt amounts in another currency: scores would mix two.
        return {
            "scored": 0,
            "model": str(model.pk),
            "error": f"the model learnt {trained_in}; the reporting currency is now "
            f"{purchases.currency}: train it again",
        }
    buyers = features.buyers_summarise(
        purchases, end_day=_day_number(now.date()), unit_days=unit_days
    )
    x, tx, T, m = buyers.frequency, buyers.recency, buyers.T, buyers.monetary
    alive = clv.probability_alive(bgnbd, x, tx, T)
    horizons = {d: clv.expected_purchases(bgnbd, d / unit_days, x, tx, T) for d in (30, 90, 365)}
    order_value = clv.expected_order_value(spend, x, m)
    value = clv.lifetime_value(
        bgnbd,
        spend,
        x,
        tx,
        T,
        m,
        unit_days=unit_days,
        months=model.config.get("months", 12),
        monthly_discount=model.config.get("monthly_discount", 0.01),
    )
    with (
        transaction.atomic(),
        scores_watched(workspace_id=workspace_id, kind=PredictionModel.Kind.CLV, now=now),
    ):
        ClvScore.objects.filter(workspace_id=workspace_id).delete()
        for start in range(0, len(buyers.ids), WRITE_CHUNK):
            rows_insert(
                ClvScore,
                [
                    {
                        "profile_id": buyers.ids[i],
                        "workspace_id": workspace_id,
                        "model_id": model.pk,
                        "frequency": int(x[i]),
                        "recency": round(float(tx[i]), 4),
                        "age": round(float(T[i]), 4),
                        "p_alive": round(float(alive[i]), 6),
                        "expected_purchases_30": round(float(horizons[30][i]), 6),
                        "expected_purchases_90": round(float(horizons[90][i]), 6),
                        "expected_purchases_365": round(float(horizons[365][i]), 6),
                        # Rounded through Decimal from the float the model gave.
                        "expected_order_value": money_stored(float(order_value[i])),
                        "clv": money_stored(float(value[i])),
                        "currency": purchases.currency,
                        "computed_at": now,
                    }
                    for i in range(start, min(start + WRITE_CHUNK, len(buyers.ids)))
                ],
                conflict=["profile_id"],
            )
        PredictionModel.objects.filter(pk=model.pk).update(scored_at=now, scored=len(buyers.ids))
        tables_analyze(ClvScore)
    return {
        "scored": len(buyers.ids),
        "model": str(model.pk),
        "currency": purchases.currency,
        "unconverted": purchases.unconverted,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _latest(workspace_id, kind: str) -> PredictionModel | None:
    return (
        PredictionModel.objects.filter(workspace_id=workspace_id, kind=kind)
        .order_by("-version")
        .first()
    )


# --- Churn ------------------------------------------------------------------------------


def churn_label_resolve(
    *,
    workspace: Workspace,
    label_event: str | None = None,
    horizon_days: int | None = None,
    inactive_days: int | None = None,
    label_trait: str | None = None,
    positive: str | None = None,
) -> features.Label:
    """The label a training asked for, else the workspace's setting."""
    if label_event:
        return _label_check(features.Label("event", days=horizon_days or 30, event=label_event))
    if inactive_days:
        return _label_check(features.Label("inactive", days=inactive_days))
    if label_trait:
        return _label_check(features.Label("trait", trait=label_trait, positive=positive or ""))
    return _settings_label(selectors.prediction_settings(workspace=workspace))


def _label_json(label: features.Label) -> dict:
    if label.kind == "event":
        return {"kind": "event", "event": label.event, "horizon_days": label.days}
    if label.kind == "inactive":
        return {"kind": "inactive", "inactive_days": label.days}
    return {"kind": "trait", "trait": label.trait, "positive": label.positive}


def _label_from_json(data: dict) -> features.Label:
    if data["kind"] == "event":
        return features.Label("event", days=data["horizon_days"], event=data["event"])
    if data["kind"] == "inactive":
        return features.Label("inactive", days=data["inactive_days"])
    return features.Label("trait", trait=data["trait"], positive=data["positive"])


def churn_model_train(
    *,
    workspace: Workspace,
    actor: Actor,
    label: features.Label,
    as_of: datetime | None = None,
    run_key: str = "",
) -> PredictionModel:
    """Train a churn model. With an event or inactivity label it is validated out of
    time: trained on customers as they were two horizons ago (and whether they churned
    in the horizon after), tested on them one horizon ago; the version kept is then
    trained on the later period. With a trait label (a snapshot) it is validated by
    5-fold cross-validation and trained on everyone whose trait is known."""
    started = time.perf_counter()
    as_of = as_of or timezone.now()
    try:
        if label.kind == "trait":
            spec = features.spec_discover(
                workspace_id=workspace.pk, at=as_of, exclude_traits=(label.trait,)
            )
            frame = features.frame_build(
                workspace_id=workspace.pk, spec=spec, at=as_of, label=label
            )
            X, y = frame.X[frame.eligible], frame.y[frame.eligible]
            metrics = churn.churn_cross_validate(X, y, frame.categorical)
            fitted = churn.churn_fit(X, y, frame.categorical)
            data_from, data_to = None, as_of
        else:
            later = as_of - timedelta(days=label.days)
            earlier = later - timedelta(days=label.days)
            exclude = (label.event,) if label.kind == "event" else ()
            spec = features.spec_discover(
                workspace_id=workspace.pk, at=later, exclude_events=exclude
            )
            train = features.frame_build(
                workspace_id=workspace.pk, spec=spec, at=earlier, label=label
            )
            train_x, train_y = train.X[train.eligible], train.y[train.eligible]
            try:
                first = churn.churn_fit(train_x, train_y, train.categorical)
            except churn.TrainError as error:
                raise churn.TrainError(
                    gettext(
                        "as of %(earlier)s (two horizons back, for out-of-time validation): "
                        "%(error)s"
                    )
                    % {"earlier": earlier.date(), "error": error}
                ) from None
            train_customers = len(train_y)
            # One period's features in memory at a time (a million customers' are
            # gigabytes while they are built).
            del train, train_x, train_y
            test = features.frame_build(workspace_id=workspace.pk, spec=spec, at=later, label=label)
            test_x, test_y = test.X[test.eligible], test.y[test.eligible]
            if len(test_y) and 0 < test_y.sum() < len(test_y):
                metrics = churn.churn_metrics(test_y, churn.churn_predict(first, test_x))
            else:
                raise churn.TrainError(
                    gettext("the test period after %(later)s has no churned or no kept customers")
                    % {"later": later.date()}
                )
            metrics["validation"] = (
                f"out of time: trained as of {earlier.date()}, tested as of {later.date()}"
            )
            metrics["train_customers"] = train_customers
            fitted = churn.churn_fit(test_x, test_y, test.categorical)
            frame = test
            data_from, data_to = earlier, as_of
    except churn.TrainError as error:
        raise TrainError(str(error)) from None
    importance = churn.feature_importance(fitted)
    found = _drivers_find(frame, spec)
    model = _model_save(
        workspace=workspace,
        kind=PredictionModel.Kind.CHURN,
        actor=actor,
        run_key=run_key,
        config={"label": _label_json(label), "as_of": as_of.isoformat()},
        params={"spec": spec.to_json()},
        features=[
            {"name": n, "label": lab, "importance": round(float(imp), 5)}
            for n, lab, imp in zip(frame.names, frame.labels, importance, strict=True)
        ],
        metrics=metrics,
        artifact=fitted.dumps(),
        data_from=data_from,
        data_to=data_to,
        seconds=round(time.perf_counter() - started, 3),
    )
    ChurnDriver.objects.bulk_create(
        [
            ChurnDriver(
                workspace=workspace,
                model=model,
                rank=rank,
                kind=d["kind"],
                params=d["params"],
                description=d["description"][:500],
                rule=d["rule"],
                support=d["support"],
                churn_rate=d["churn_rate"],
                churn_rate_others=d["churn_rate_others"],
                relative_risk=d["relative_risk"],
                ci_low=d["ci_low"],
                ci_high=d["ci_high"],
            )
            for rank, d in enumerate(found, start=1)
        ]
    )
    return model


# Behaviours of a customer's first days are compared looking back, on everyone past
# them (see features.Frame.cohort); the others looking ahead, on the customers at risk.
FIRST_DAYS_KINDS = {"not_in_first_days", "in_first_days"}


def _drivers_find(frame: features.Frame, spec: features.Spec) -> list[dict]:
    behaviours = _behaviours(frame, spec, frame.X)
    found = []
    for first_days, population, y in (
        (True, frame.cohort, frame.left),
        (False, frame.eligible, frame.y),
    ):
        chosen = [
            {**b, "has": b["has"][population]}
            for b in behaviours
            if (b["kind"] in FIRST_DAYS_KINDS) == first_days
        ]
        found += churn.drivers_scan(chosen, y[population])
    found.sort(key=lambda d: (-d["relative_risk"], -d["support"]))
    return found[: churn.TOP_DRIVERS]


def _behaviours(frame: features.Frame, spec: features.Spec, X: np.ndarray) -> list[dict]:
    """What a growth team would ask about: did or did not use each common feature in
    the first 30 days, used it less than usual lately, each value of a trait, a numeric
    trait below or above its median, contacted support."""
    col = frame.columns
    found: list[dict] = []
    days = features.FIRST_DAYS
    seasoned = X[:, col["tenure_days"]] >= days
    for i, name in enumerate(spec.events):
        used_first = X[:, col[f"e{i}_first"]] > 0
        found.append(
            {
                "kind": "not_in_first_days",
                "params": {"event": name, "days": days},
                "description": f"Did not do “{name}” in their first {days} days",
                "has": seasoned & ~used_first,
                "rule": {
                    "all": [
                        {"profile": "first_seen_at", "op": "older_than_days", "value": days},
                        {
                            "event": name,
                            "count": {"op": "eq", "value": 0},
                            "window": {"first_days": days},
                        },
                    ]
                },
            }
        )
        found.append(
            {
                "kind": "in_first_days",
                "params": {"event": name, "days": days},
                "description": f"Did “{name}” in their first {days} days",
                "has": seasoned & used_first,
                "rule": {"event": name, "window": {"first_days": days}},
            }
        )
        recent = X[:, col[f"e{i}_30d"]]
        users = recent[recent > 0]
        threshold = max(1, int(np.median(users))) if len(users) else 1
        found.append(
            {
                "kind": "low_usage",
                "params": {"event": name, "days": 30, "threshold": threshold},
                "description": f"“{name}” fewer than {threshold} times in the last 30 days",
                "has": recent < threshold,
                "rule": {
                    "event": name,
                    "count": {"op": "lt", "value": threshold},
                    "window": {"last_days": 30},
                },
            }
        )
    if "support_90d" in col:
        found.append(
            {
                "kind": "support",
                "params": {"days": 90},
                "description": "Contacted support in the last 90 days",
                "has": X[:, col["support_90d"]] > 0,
                "rule": {
                    "any": [{"event": n, "window": {"last_days": 90}} for n in spec.support_events]
                },
            }
        )
    for i, key in enumerate(spec.numeric_traits):
        values = X[:, col[f"n{i}"]]
        known = ~np.isnan(values)
        if known.sum() < 2 or len(np.unique(values[known])) < 3:
            continue
        median = float(np.median(values[known]))
        for op, has, word in (
            ("lt", values < median, "below"),
            ("gte", values >= median, "at or above"),
        ):
            found.append(
                {
                    "kind": "trait_numeric",
                    "params": {"trait": key, "op": op, "value": median},
                    "description": f"{key} {word} {median:g}",
                    "has": known & has,
                    "rule": {"trait": key, "op": op, "value": median},
                }
            )
    for i, (key, vocabulary) in enumerate(spec.categorical_traits.items()):
        codes = X[:, col[f"c{i}"]]
        for code, value in enumerate(vocabulary):
            found.append(
                {
                    "kind": "trait_value",
                    "params": {"trait": key, "value": value},
                    "description": f"{key} is {value}",
                    "has": codes == code,
                    "rule": {"trait": key, "op": "eq", "value": value},
                }
            )
    return found


def churn_fitted(model: PredictionModel) -> churn.Fitted:
    return churn.Fitted.loads(model.artifact)


def churn_scores_refresh(
    *, workspace_id, model: PredictionModel | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Every customer still at risk (not already churned by the model's label) gets a
    churn probability, a band and their top reasons."""
    started = time.perf_counter()
    now = now or timezone.now()
    model = model or _latest(workspace_id, PredictionModel.Kind.CHURN)
    if model is None:
        return {"scored": 0, "model": None}
    spec = features.Spec.from_json(model.params["spec"])
    label = _label_from_json(model.config["label"])
    frame = features.frame_build(workspace_id=workspace_id, spec=spec, at=now, label=label)
    # At risk: not already churned (a trait label's positives have left).
    at_risk = frame.eligible & (frame.y == 0) if label.kind == "trait" else frame.eligible
    X = frame.X[at_risk]
    ids = [pid for pid, keep in zip(frame.ids, at_risk, strict=True) if keep]
    fitted = churn_fitted(model)
    probability = churn.churn_predict(fitted, X) if len(ids) else np.empty(0)
    bands = churn.churn_band(probability)
    written = 0
    with (
        transaction.atomic(),
        scores_watched(workspace_id=workspace_id, kind=PredictionModel.Kind.CHURN, now=now),
    ):
        ChurnScore.objects.filter(workspace_id=workspace_id).delete()
        for start in range(0, len(ids), WRITE_CHUNK):
            stop = min(start + WRITE_CHUNK, len(ids))
            reasons = _reasons(fitted, X[start:stop], frame, spec)
            rows_insert(
                ChurnScore,
                [
                    {
                        "profile_id": ids[i],
                        "workspace_id": workspace_id,
                        "model_id": model.pk,
                        "probability": round(float(probability[i]), 6),
                        "band": bands[i],
                        "reasons": reasons[i - start],
                        "computed_at": now,
                    }
                    for i in range(start, stop)
                ],
                conflict=["profile_id"],
            )
            written += stop - start
        PredictionModel.objects.filter(pk=model.pk).update(scored_at=now, scored=written)
        tables_analyze(ChurnScore)
    return {
        "scored": written,
        "model": str(model.pk),
        "seconds": round(time.perf_counter() - started, 3),
    }


def _reasons(fitted: churn.Fitted, X: np.ndarray, frame: features.Frame, spec: features.Spec):
    """The features that push each customer's risk up the most (TreeSHAP)."""
    if not len(X):
        return []
    contributions = churn.churn_contributions(fitted, X)[:, :-1]
    top = np.argsort(-contributions, axis=1)[:, :REASONS]
    vocabularies = {
        frame.columns[f"c{i}"]: vocabulary
        for i, vocabulary in enumerate(spec.categorical_traits.values())
    }
    out = []
    for row in range(len(X)):
        reasons = []
        for j in top[row]:
            contribution = float(contributions[row, j])
            if contribution <= 0:
                break
            value = X[row, j]
            if j in vocabularies:
                shown: Any = None if np.isnan(value) else vocabularies[j][int(value)]
            else:
                shown = None if np.isnan(value) else round(float(value), 2)
            reasons.append(
                {
                    "feature": frame.names[j],
                    "label": frame.labels[j],
                    "value": shown,
                    "contribution": round(contribution, 4),
                }
            )
        out.append(reasons)
    return out


def churn_driver_segment_create(
    *, driver: ChurnDriver, actor: Actor, name: str | None = None
) -> Segment:
    """A dynamic segment of the customers who show the driver's behaviour."""
    workspace = driver.model.workspace
    name = (name or f"Churn driver: {driver.description}")[:200]
    if Segment.objects.filter(workspace=workspace, name=name).exists():
        raise ConflictError(gettext("a segment named “%(name)s” already exists") % {"name": name})
    return segment_create(
        workspace=workspace,
        name=name,
        rule=driver.rule,
        description=(
            f"Customers with this behaviour churn {driver.relative_risk:g} times as often as "
            f"the others (95% interval {driver.ci_low:g} to {driver.ci_high:g}; "
            f"{driver.support} customers when found)."
        ),
        actor=actor,
    )


def models_train(*, workspace_id, actor: Actor | None = None, run_key: str = "") -> dict[str, Any]:
    """The scheduled retraining: CLV, then churn with the workspace's label, then
    scoring. A model the data cannot support is skipped and the reason kept. Run again
    with the same `run_key` (its task's id), it keeps the versions it already saved."""
    workspace = Workspace.objects.get(pk=workspace_id)
    actor = actor or Actor.system("schedule")
    out: dict[str, Any] = {}
    for kind, train in (
        ("clv", lambda: clv_model_train(workspace=workspace, actor=actor, run_key=run_key)),
        (
            "churn",
            lambda: churn_model_train(
                workspace=workspace,
                actor=actor,
                label=churn_label_resolve(workspace=workspace),
                run_key=run_key,
            ),
        ),
    ):
        saved = model_of_run(workspace_id=workspace.pk, kind=kind, run_key=run_key)
        if saved is not None:
            out[kind] = str(saved.pk)
            continue
        try:
            out[kind] = str(train().pk)
        except InvalidInputError as error:
            error_record(workspace_id=workspace_id, message=f"{kind}: {error.message}")
            out[kind] = error.message
    out["scores"] = models_score(workspace_id=workspace_id)
    return out


def model_score(*, model: PredictionModel, now: datetime | None = None) -> dict[str, Any]:
    """Score every customer with `model`, then refresh the segments (rules may read the
    scores)."""
    refresh = clv_scores_refresh if model.kind == PredictionModel.Kind.CLV else churn_scores_refresh
    result = refresh(workspace_id=model.workspace_id, model=model, now=now)
    segments_refresh(workspace_id=model.workspace_id)
    return result


def models_score(*, workspace_id) -> dict[str, Any]:
    """Score every customer with the latest models, then refresh the segments."""
    result = {
        "clv": clv_scores_refresh(workspace_id=workspace_id),
        "churn": churn_scores_refresh(workspace_id=workspace_id),
    }
    segments_refresh(workspace_id=workspace_id)
    return result
