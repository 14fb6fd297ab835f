from datetime import date

from django_tasks import task

from rapport.core.errors import InvalidInputError
from rapport.core.leases import task_lost_register, task_run_key
from rapport.predictions import services
from rapport.tenancy.models import Workspace
from rapport.tenancy.services import Actor


@task()
def models_train(*, workspace_id: str) -> dict:
    """Retrain CLV and churn, then score (weekly). Taken over from a dead worker, it
    keeps the versions already saved (they are keyed by the task's id)."""
    return services.models_train(workspace_id=workspace_id, run_key=task_run_key())


@task()
def models_score(*, workspace_id: str) -> dict:
    """Score every customer with the latest models (daily), then refresh the segments."""
    return services.models_score(workspace_id=workspace_id)


@task()
def model_train(*, workspace_id: str, kind: str, options: dict, actor_label: str) -> dict:
    """One model trained on demand (API, UI), then scored; a failure is kept for the
    models page to show. `options` are the CLI's, with a cut-off as an ISO date."""
    workspace = Workspace.objects.get(pk=workspace_id)
    actor = Actor.system(actor_label)
    run_key = task_run_key()
    saved = services.model_of_run(workspace_id=workspace.pk, kind=kind, run_key=run_key)
    if saved is not None:
        # Run again after its worker died: the model is saved, the scoring is redone.
        return {"model": str(saved.pk), "scored": services.model_score(model=saved)["scored"]}
    try:
        if kind == "clv":
            as_of = options.get("as_of")
            model = services.clv_model_train(
                workspace=workspace,
                actor=actor,
                as_of=date.fromisoformat(as_of) if as_of else None,
                time_unit=options.get("time_unit"),
                run_key=run_key,
            )
        else:
            label = services.churn_label_resolve(workspace=workspace, **options)
            model = services.churn_model_train(
                workspace=workspace, actor=actor, label=label, run_key=run_key
            )
    except InvalidInputError as error:
        services.error_record(workspace_id=workspace_id, message=f"{kind}: {error.message}")
        return {"error": error.message}
    scored = services.model_score(model=model)
    return {"model": str(model.pk), "scored": scored["scored"]}


def _training_lost(*, workspace_id: str, kind: str, message: str, **_: object) -> None:
    """Shown on the models page like any failed training."""
    services.error_record(workspace_id=workspace_id, message=f"{kind}: {message}")


task_lost_register(model_train, _training_lost)
