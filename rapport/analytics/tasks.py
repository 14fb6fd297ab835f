from django_tasks import task

from rapport.analytics import services


@task()
def kpi_snapshots_take(*, workspace_id: str) -> dict:
    """Yesterday's KPI snapshots (scheduled several times a day; taking a day again
    replaces its snapshots, so a late event still counts)."""
    return services.kpi_snapshots_take(workspace_id=workspace_id)
