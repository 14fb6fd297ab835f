from django_tasks import task

from rapport.analytics import services


@task()
def kpi_snapshots_take(*, workspace_id: str) -> dict:
    """Yesterday's KPI snapshots (scheduled daily; taking a day again
    replaces its snapshots, so a late event still counts)."""
    return services.kpi_snapshots_take(workspace_id=workspace_id)


@task()
def kpi_snapshots_backfill(*, workspace_id: str, day: str | None, backfill_days: int) -> dict:
    """Snapshots on demand (API, CLI): a day, and as many days before it."""
    from datetime import date

    return services.kpi_snapshots_take(
        workspace_id=workspace_id,
        day=date.fromisoformat(day) if day else None,
        backfill_days=backfill_days,
    )
