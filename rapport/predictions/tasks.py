from django_tasks import task

from rapport.predictions import services
from rapport.tenancy.services import Actor


@task()
def models_train(*, workspace_id: str) -> dict:
    """Retrain CLV and churn, then score (weekly, and on demand)."""
    return services.models_train(workspace_id=workspace_id)


@task()
def models_score(*, workspace_id: str) -> dict:
    """Score every customer with the latest models (daily), then refresh the segments
    that read the scores."""
    from rapport.segments.services import segments_refresh

    result = services.models_score(workspace_id=workspace_id)
    segments_refresh(workspace_id=workspace_id)
    return result


@task()
def model_train(*, workspace_id: str, kind: str, options: dict, actor_label: str) -> dict:
    """One model trained on demand (API, UI), then scored; a failure is kept for the
    models page to show."""
    from rapport.core.errors import InvalidInputError
    from rapport.tenancy.models import Workspace

    workspace = Workspace.objects.get(pk=workspace_id)
    actor = Actor.system(actor_label)
    try:
        if kind == "clv":
            model = services.clv_model_train(workspace=workspace, actor=actor, **options)
            scored = services.clv_scores_refresh(workspace_id=workspace_id, model=model)
        else:
            label = services.churn_label_resolve(workspace=workspace, **options)
            model = services.churn_model_train(workspace=workspace, actor=actor, label=label)
            scored = services.churn_scores_refresh(workspace_id=workspace_id, model=model)
    except InvalidInputError as error:
        services.error_record(workspace_id=workspace_id, message=f"{kind}: {error.message}")
        return {"error": error.message}
    from rapport.segments.services import segments_refresh

    segments_refresh(workspace_id=workspace_id)
    return {"model": str(model.pk), "scored": scored["scored"]}
