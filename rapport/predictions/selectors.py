"""Reading models, scores and drivers. `model_document` is the one shape the CLI's
`--json`, the API and the UI read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q
from django.utils.translation import gettext

from rapport.core.errors import NotFoundError
from rapport.predictions.models import (
    ChurnDriver,
    ChurnScore,
    ClvScore,
    PredictionModel,
    PredictionSettings,
)
from rapport.tenancy.models import Workspace

KINDS = ("clv", "churn")


def model_latest(*, workspace: Workspace, kind: str) -> PredictionModel | None:
    return (
        PredictionModel.objects.filter(workspace=workspace, kind=kind).order_by("-version").first()
    )


def model_get(*, workspace: Workspace, model_id) -> PredictionModel:
    found = PredictionModel.objects.filter(workspace=workspace, pk=model_id).first()
    if found is None:
        raise NotFoundError(gettext("no such model in this workspace"))
    return found


def model_list(*, workspace: Workspace, kind: str | None = None):
    models = PredictionModel.objects.filter(workspace=workspace).defer("artifact")
    if kind:
        models = models.filter(kind=kind)
    return models.order_by("kind", "-version")


def model_document(model: PredictionModel) -> dict[str, Any]:
    """A model version as the CLI prints it with --json and the API returns it."""
    document: dict[str, Any] = {
        "id": str(model.pk),
        "kind": model.kind,
        "version": model.version,
        "trained_at": model.trained_at.isoformat(),
        "trained_by": model.trained_by,
        "seconds": model.seconds,
        "data_from": model.data_from.isoformat() if model.data_from else None,
        "data_to": model.data_to.isoformat() if model.data_to else None,
        "scored": model.scored,
        "scored_at": model.scored_at.isoformat() if model.scored_at else None,
        "metrics": model.metrics,
    }
    if model.kind == PredictionModel.Kind.CLV:
        document.update(
            {
                "bgnbd": model.params["bgnbd"],
                "gamma_gamma": model.params["gamma_gamma"],
                "time_unit": model.config["time_unit"],
                "as_of": model.config["as_of"],
                "months": model.config.get("months"),
                "monthly_discount": model.config.get("monthly_discount"),
                # Order and lifetime values are in this currency ("" before currencies).
                "currency": model.config.get("currency", ""),
            }
        )
    else:
        document.update(
            {
                "label": model.config["label"],
                "as_of": model.config.get("as_of"),
                "features": sorted(model.features, key=lambda f: -f["importance"]),
                "drivers": [driver_document(d) for d in model.drivers.all()],
            }
        )
    return document


def driver_document(driver: ChurnDriver) -> dict[str, Any]:
    return {
        "id": str(driver.pk),
        "rank": driver.rank,
        "kind": driver.kind,
        "params": driver.params,
        "description": driver.description,
        "rule": driver.rule,
        "support": driver.support,
        "churn_rate": driver.churn_rate,
        "churn_rate_others": driver.churn_rate_others,
        "relative_risk": driver.relative_risk,
        "ci_low": driver.ci_low,
        "ci_high": driver.ci_high,
    }


def churn_driver_get(*, workspace: Workspace, driver_id) -> ChurnDriver:
    found = (
        ChurnDriver.objects.filter(workspace=workspace, pk=driver_id)
        .select_related("model__workspace")
        .first()
    )
    if found is None:
        raise NotFoundError(gettext("no such churn driver in this workspace"))
    return found


@dataclass(frozen=True)
class ProfilePredictions:
    churn: ChurnScore | None
    clv: ClvScore | None


def profile_predictions(*, workspace: Workspace, profile) -> ProfilePredictions:
    return ProfilePredictions(
        churn=ChurnScore.objects.filter(workspace=workspace, profile=profile).first(),
        clv=ClvScore.objects.filter(workspace=workspace, profile=profile).first(),
    )


def prediction_settings(*, workspace: Workspace) -> PredictionSettings:
    found = PredictionSettings.objects.filter(workspace=workspace).first()
    return found or PredictionSettings(workspace=workspace)


def customers_in_band(*, workspace: Workspace, band: str):
    """A condition on profiles: scored in this churn risk band."""
    scored = ChurnScore.objects.filter(workspace=workspace, band=band)
    return Q(pk__in=scored.values("profile_id"))


def churn_bands(*, workspace: Workspace) -> dict[str, int]:
    rows = (
        ChurnScore.objects.filter(workspace=workspace)
        .values("band")
        .annotate(n=Count("profile_id"))
        .values_list("band", "n")
    )
    counts = dict(rows)
    return {band: counts.get(band, 0) for band in ("high", "medium", "low")}


# --- Columns of the customer list (rapport/web/lists.py) ------------------------------


def scores_of(*, workspace: Workspace, profile_ids: list) -> dict:
    """Each listed customer's churn (band, probability, top reason) and CLV, by profile
    id: {"churn": {id: ChurnScore}, "clv": {id: ClvScore}}."""
    return {
        "churn": {
            s.profile_id: s
            for s in ChurnScore.objects.filter(workspace=workspace, profile_id__in=profile_ids)
        },
        "clv": {
            s.profile_id: s
            for s in ClvScore.objects.filter(workspace=workspace, profile_id__in=profile_ids)
        },
    }


def score_order(kind: str):
    """An expression for the outer profile query: its churn probability or CLV."""
    from django.db.models import OuterRef, Subquery

    model, field = (ChurnScore, "probability") if kind == "churn" else (ClvScore, "clv")
    return Subquery(model.objects.filter(profile_id=OuterRef("pk")).values(field)[:1])
