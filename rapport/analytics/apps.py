from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "rapport.analytics"
    label = "analytics"
    verbose_name = "Analytics: customer KPIs, the funnel, cohorts, dashboards"

    def ready(self) -> None:
        from rapport.analytics import permissions  # noqa: F401 - registers permissions

        _schedule()


def _schedule() -> None:
    from django.conf import settings

    from rapport.analytics import tasks
    from rapport.core.schedule import schedule_register

    # The day's KPI snapshots (yesterday's complete day, in the workspace's time zone).
    schedule_register(
        "analytics.snapshot",
        every_seconds=lambda: settings.RAPPORT_KPI_SNAPSHOT_SECONDS,
        enqueue=lambda workspace_id: tasks.kpi_snapshots_take.enqueue(workspace_id=workspace_id),
    )
