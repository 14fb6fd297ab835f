from django_tasks import task

from rapport.core.leases import task_lost_register
from rapport.ingest import services


@task()
def events_dispatch(*, workspace_id: str, message_ids: list[str]) -> int:
    return services.events_dispatch(workspace_id=workspace_id, message_ids=message_ids)


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
