from django_tasks import task

from rapport.core.leases import task_lost_register
from rapport.ingest import pipeline, services


@task()
def events_dispatch(
    *,
    batch_id: str | None = None,
    workspace_id: str | None = None,
    message_ids: list[str] | None = None,
) -> list[str]:
    """Run a pipeline batch; returns the consumers done with it on this run."""
    if batch_id is None and message_ids is not None:
        # Enqueued before batches existed (an upgrade with work in the queue).
        batch_id = pipeline.pipeline_batch_create(
            workspace_id=workspace_id, message_ids=message_ids
        )
        return []
    return pipeline.pipeline_batch_run(batch_id=batch_id).done


@task()
def pipeline_sweep(*, workspace_id: str) -> int:
    return pipeline.pipeline_sweep(workspace_id=workspace_id)


@task()
def import_run(*, import_job_id: str) -> int:
    """Safe to run again (a worker that died is taken over): the import resumes after
    its last committed chunk, and an import already done is left alone."""
    return services.import_run(import_job_id=import_job_id).rows_done


def _import_lost(*, import_job_id: str, message: str) -> None:
    """An import whose workers kept dying shows as failed, with why, not as running."""
    from rapport.ingest.models import ImportJob

    ImportJob.objects.filter(pk=import_job_id).exclude(status=ImportJob.Status.DONE).update(
        status=ImportJob.Status.FAILED, failure=message[:2000]
    )


task_lost_register(import_run, _import_lost)
