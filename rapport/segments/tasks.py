from django_tasks import task

from rapport.segments import services
from rapport.segments.models import Segment


@task()
def segment_refresh(*, segment_id: str) -> dict:
    segment = Segment.objects.filter(pk=segment_id).first()
    if segment is None:  # deleted since
        return {}
    return services.segment_refresh(segment=segment)


@task()
def segments_refresh(*, workspace_id: str, timed_only: bool = False) -> dict:
    """The lifecycle, then the segments (those with time windows only, if asked)."""
    lifecycle = services.lifecycle_refresh(workspace_id=workspace_id)
    segments = services.segments_refresh(workspace_id=workspace_id, timed_only=timed_only)
    return {"lifecycle": lifecycle, "segments": segments}


@task()
def rfm_refresh(*, workspace_id: str) -> dict:
    """RFM, then the lifecycle and the segments that read it."""
    result = services.rfm_refresh(workspace_id=workspace_id)
    result["lifecycle"] = services.lifecycle_refresh(workspace_id=workspace_id)
    services.segments_refresh(workspace_id=workspace_id)
    return result


@task()
def lifecycle_refresh(*, workspace_id: str) -> dict:
    return services.lifecycle_refresh(workspace_id=workspace_id)


@task()
def audiences_export_due(*, workspace_id: str) -> dict:
    """The workspace's scheduled audience exports that are due (rapport/segments/audiences.py)."""
    from rapport.segments.audiences import audience_schedules_run_due

    return {"runs": audience_schedules_run_due(workspace_id=workspace_id)}
