"""Models in the UI: each model's metrics, the churn model's calibration curve,
feature importance and drivers (each savable as a segment), training on demand."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from rapport.predictions import selectors, services
from rapport.predictions import tasks as prediction_tasks
from rapport.web.pages import workspace_page

CURVE_SIZE = 200
FEATURES_SHOWN = 15


def calibration_points(calibration: list[dict], *, size: int = CURVE_SIZE) -> str:
    """The calibration curve as SVG polyline points (predicted across, observed up)."""
    return " ".join(
        f"{round(p['predicted'] * size, 1)},{round(size - p['observed'] * size, 1)}"
        for p in calibration
    )


@workspace_page("models.read")
def models_page(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    workspace = principal.workspace
    clv = selectors.model_latest(workspace=workspace, kind="clv")
    churn = selectors.model_latest(workspace=workspace, kind="churn")
    churn_document = selectors.model_document(churn) if churn else None
    features = []
    if churn_document:
        top = churn_document["features"][:FEATURES_SHOWN]
        most = max((f["importance"] for f in top), default=0) or 1
        features = [{**f, "width": round(100 * f["importance"] / most)} for f in top]
    context = {
        "clv": selectors.model_document(clv) if clv else None,
        "clv_model": clv,
        "churn_model": churn,
        "churn": churn_document,
        "features": features,
        "curve": calibration_points(churn.metrics.get("calibration", [])) if churn else "",
        "curve_size": CURVE_SIZE,
        "bands": selectors.churn_bands(workspace=workspace),
        "settings": selectors.prediction_settings(workspace=workspace),
        "versions": list(selectors.model_list(workspace=workspace)[:20]),
        "can_manage": principal.has_perm("models.manage"),
        "can_segment": principal.has_perm("segments.manage"),
        "customers_url": reverse("web:customer_list"),
    }
    return render(request, "web/predictions/models.html", context)


@workspace_page("models.manage")
@require_POST
def model_train(request: HttpRequest, kind: str) -> HttpResponse:
    principal = request.principal
    prediction_tasks.model_train.enqueue(
        workspace_id=str(principal.workspace.pk),
        kind=kind,
        options={},
        actor_label=principal.actor.label,
    )
    return redirect(reverse("web:models") + "?queued=1")


@workspace_page("segments.manage")
@require_POST
def driver_segment_create(request: HttpRequest, driver_id) -> HttpResponse:
    principal = request.principal
    driver = selectors.churn_driver_get(workspace=principal.workspace, driver_id=driver_id)
    segment = services.churn_driver_segment_create(driver=driver, actor=principal.actor)
    return redirect("web:segment_detail", segment_id=segment.pk)
