"""Models over the API: the latest version of each (`GET /api/v1/models/{kind}/latest`,
the document `rapport models train ... --json` prints), training and scoring on demand
(a worker runs them), the churn label, drivers as segments, a customer's scores."""

import uuid
from datetime import date, datetime
from typing import Any, Literal

from django.http import HttpRequest
from django.utils.translation import gettext
from ninja import Field, Router, Schema, Status
from pydantic import ConfigDict

from rapport.core.errors import InvalidInputError, NotFoundError
from rapport.core.types import IsoDate
from rapport.predictions import selectors, services
from rapport.predictions import tasks as prediction_tasks
from rapport.profiles import selectors as profile_selectors

router = Router(tags=["predictions"])


class ModelBrief(Schema):
    id: uuid.UUID
    kind: str
    version: int
    trained_at: datetime
    trained_by: str
    seconds: float
    data_from: datetime | None
    data_to: datetime | None
    scored: int
    scored_at: datetime | None
    metrics: dict


class ClvTrainIn(Schema):
    model_config = ConfigDict(extra="forbid")

    as_of: IsoDate | None = Field(None, description="Calibration cut-off (inclusive)")
    time_unit: Literal["week", "day"] | None = None


class ChurnTrainIn(Schema):
    model_config = ConfigDict(extra="forbid")

    label_event: str | None = Field(None, max_length=255)
    horizon_days: int | None = Field(None, ge=1, le=365, strict=True)
    inactive_days: int | None = Field(None, ge=1, le=365, strict=True)
    label_trait: str | None = Field(None, max_length=255)
    positive: str | None = Field(None, max_length=255)


class QueuedOut(Schema):
    task_id: str


class PredictionSettingsOut(Schema):
    churn_label: str
    churn_event: str
    churn_horizon_days: int
    churn_inactive_days: int
    churn_trait: str
    churn_positive: str
    clv_time_unit: str
    clv_months: int
    clv_monthly_discount: float
    last_error: str
    last_error_at: datetime | None


class PredictionSettingsPatch(Schema):
    model_config = ConfigDict(extra="forbid")

    churn_label: Literal["event", "inactive", "trait"] | None = None
    churn_event: str | None = Field(None, max_length=255)
    churn_horizon_days: int | None = Field(None, ge=1, le=365, strict=True)
    churn_inactive_days: int | None = Field(None, ge=1, le=365, strict=True)
    churn_trait: str | None = Field(None, max_length=255)
    churn_positive: str | None = Field(None, max_length=255)
    clv_time_unit: Literal["week", "day"] | None = None
    clv_months: int | None = Field(None, ge=1, le=120, strict=True)
    clv_monthly_discount: float | None = Field(None, ge=0, lt=1, strict=True)


class DriverSegmentIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)


class SegmentCreatedOut(Schema):
    id: uuid.UUID
    name: str
    rule: dict


class ClvOut(Schema):
    # Money travels as a decimal string ("1234.5600") with its currency beside it.
    clv: str | None = Field(description="Lifetime value in `currency`, a decimal as text")
    expected_order_value: str | None = Field(description="In `currency`, a decimal as text")
    currency: str = Field(description="ISO 4217: the reporting currency the model learnt in")
    p_alive: float
    expected_purchases_30: float
    expected_purchases_90: float
    expected_purchases_365: float
    frequency: int
    computed_at: datetime
    model_id: str


class ProfilePredictionsOut(Schema):
    churn: dict | None
    clv: ClvOut | None


@router.get("", response=list[ModelBrief], summary="Every trained version, newest first")
def model_list(request: HttpRequest, kind: Literal["clv", "churn"] | None = None):
    request.auth.require("models.read")
    return list(selectors.model_list(workspace=request.auth.workspace, kind=kind)[:200])


def _latest(request: HttpRequest, kind: str) -> dict[str, Any]:
    request.auth.require("models.read")
    model = selectors.model_latest(workspace=request.auth.workspace, kind=kind)
    if model is None:
        raise NotFoundError(
            gettext("no %(kind)s model has been trained in this workspace yet") % {"kind": kind}
        )
    return selectors.model_document(model)


@router.get("/clv/latest", summary="The latest CLV model: BG/NBD and Gamma-Gamma parameters")
def clv_latest(request: HttpRequest):
    return _latest(request, "clv")


@router.get("/churn/latest", summary="The latest churn model: metrics, features, drivers")
def churn_latest(request: HttpRequest):
    return _latest(request, "churn")


@router.post(
    "/clv/train", response={202: QueuedOut}, summary="Fit a new CLV model and score (a worker)"
)
def clv_train(request: HttpRequest, payload: ClvTrainIn):
    request.auth.require("models.manage")
    options = {"as_of": payload.as_of, "time_unit": payload.time_unit}
    if payload.as_of is not None and payload.as_of > date.today():
        raise InvalidInputError(gettext("the cut-off cannot be in the future"), field="as_of")
    result = prediction_tasks.model_train.enqueue(
        workspace_id=str(request.auth.workspace.pk),
        kind="clv",
        options={k: v.isoformat() if isinstance(v, date) else v for k, v in options.items()},
        actor_label=request.auth.actor.label,
    )
    return Status(202, {"task_id": str(result.id)})


@router.post(
    "/churn/train",
    response={202: QueuedOut},
    summary="Train a new churn model and score (a worker)",
)
def churn_train(request: HttpRequest, payload: ChurnTrainIn):
    request.auth.require("models.manage")
    options = payload.model_dump(exclude_none=True)
    # Checked now, so that a bad label is a 422 here rather than a failed task.
    services.churn_label_resolve(workspace=request.auth.workspace, **options)
    result = prediction_tasks.model_train.enqueue(
        workspace_id=str(request.auth.workspace.pk),
        kind="churn",
        options=options,
        actor_label=request.auth.actor.label,
    )
    return Status(202, {"task_id": str(result.id)})


@router.post("/score", response={202: QueuedOut}, summary="Score everyone with the latest models")
def models_score(request: HttpRequest):
    request.auth.require("models.manage")
    result = prediction_tasks.models_score.enqueue(workspace_id=str(request.auth.workspace.pk))
    return Status(202, {"task_id": str(result.id)})


@router.get(
    "/settings", response=PredictionSettingsOut, summary="What counts as churn; CLV horizon"
)
def settings_get(request: HttpRequest):
    request.auth.require("models.read")
    return selectors.prediction_settings(workspace=request.auth.workspace)


@router.patch("/settings", response=PredictionSettingsOut, summary="Change what counts as churn")
def settings_update(request: HttpRequest, payload: PredictionSettingsPatch):
    request.auth.require("models.manage")
    return services.prediction_settings_update(
        workspace=request.auth.workspace,
        actor=request.auth.actor,
        **payload.model_dump(exclude_none=True),
    )


@router.post(
    "/drivers/{driver_id}/segment",
    response={201: SegmentCreatedOut},
    summary="Save a churn driver as a dynamic segment",
)
def driver_segment_create(request: HttpRequest, driver_id: uuid.UUID, payload: DriverSegmentIn):
    request.auth.require("segments.manage")
    driver = selectors.churn_driver_get(workspace=request.auth.workspace, driver_id=driver_id)
    segment = services.churn_driver_segment_create(
        driver=driver, actor=request.auth.actor, name=payload.name
    )
    return Status(201, segment)


@router.get(
    "/profile/{profile_id}",
    response=ProfilePredictionsOut,
    summary="A customer's churn risk (with reasons) and lifetime value",
)
def profile_predictions(request: HttpRequest, profile_id: uuid.UUID):
    request.auth.require("models.read")
    workspace = request.auth.workspace
    profile = profile_selectors.profile_get(workspace=workspace, profile_id=profile_id)
    found = selectors.profile_predictions(workspace=workspace, profile=profile)
    churn = clv = None
    if found.churn is not None:
        churn = {
            "probability": found.churn.probability,
            "band": found.churn.band,
            "reasons": found.churn.reasons,
            "computed_at": found.churn.computed_at,
            "model_id": str(found.churn.model_id),
        }
    if found.clv is not None:
        c = found.clv
        clv = {
            "clv": None if c.clv is None else str(c.clv),
            "p_alive": c.p_alive,
            "expected_purchases_30": c.expected_purchases_30,
            "expected_purchases_90": c.expected_purchases_90,
            "expected_purchases_365": c.expected_purchases_365,
            "expected_order_value": None
            if c.expected_order_value is None
            else str(c.expected_order_value),
            "currency": c.currency,
            "frequency": c.frequency,
            "computed_at": c.computed_at,
            "model_id": str(c.model_id),
        }
    return {"churn": churn, "clv": clv}


ROUTERS = [("v1/models", router)]
