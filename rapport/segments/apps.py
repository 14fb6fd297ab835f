from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "rapport.segments"
    label = "segments"
    verbose_name = "Segments, RFM and lifecycle"

    def ready(self) -> None:
        from rapport.core.search import search_provider_register
        from rapport.segments import (
            conditions,  # noqa: F401 - registers the rule language's
            permissions,  # noqa: F401 - registers permissions
        )
        from rapport.segments.search import PROVIDER as SEGMENTS

        search_provider_register(SEGMENTS)
        _schedule()


def _schedule() -> None:
    from django.conf import settings

    from rapport.core.schedule import schedule_register
    from rapport.segments import tasks

    # What time alone changes: windows such as "in the last 90 days", ages, expiries.
    schedule_register(
        "segments.timed",
        every_seconds=lambda: settings.RAPPORT_SEGMENTS_REFRESH_SECONDS,
        enqueue=lambda workspace_id: tasks.segments_refresh.enqueue(
            workspace_id=workspace_id, timed_only=True
        ),
    )
    # RFM daily, then the lifecycle and every segment that may read them.
    schedule_register(
        "segments.rfm",
        every_seconds=lambda: settings.RAPPORT_RFM_REFRESH_SECONDS,
        enqueue=lambda workspace_id: tasks.rfm_refresh.enqueue(workspace_id=workspace_id),
    )
    # Scheduled audience exports: each schedule runs at its own hour; this looks for them.
    schedule_register(
        "segments.audiences",
        every_seconds=lambda: settings.RAPPORT_AUDIENCE_CHECK_SECONDS,
        enqueue=lambda workspace_id: tasks.audiences_export_due.enqueue(workspace_id=workspace_id),
    )
