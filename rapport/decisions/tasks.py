from django_tasks import task

from rapport.decisions import outcomes


@task()
def decisions_learn(*, workspace_id: str) -> dict:
    """Fold the workspace's new outcomes into the actions' models (and close the
    response windows that passed)."""
    return outcomes.decisions_learn(workspace_id=workspace_id)
