from django_tasks import task

from rapport.ingest import services


@task()
def events_dispatch(*, workspace_id: str, message_ids: list[str]) -> int:
    return services.events_dispatch(workspace_id=workspace_id, message_ids=message_ids)


@task()
def import_run(*, import_job_id: str) -> int:
    return services.import_run(import_job_id=import_job_id).rows_done
