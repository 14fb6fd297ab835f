from django_tasks import task

from rapport.journeys import services


@task()
def journeys_advance(*, workspace_id: str) -> dict:
    """Run the workspace's due steps, batch after batch, until none is due (or for
    a while: then it enqueues itself again)."""
    counts = services.enrolments_advance_all(workspace_id=workspace_id)
    if counts.get("more"):
        journeys_advance.enqueue(workspace_id=workspace_id)
    else:
        services.runner_wake_next(workspace_id=workspace_id)
    return counts
