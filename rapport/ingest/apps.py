from django.apps import AppConfig


class IngestConfig(AppConfig):
    name = "rapport.ingest"
    label = "ingest"
    verbose_name = "Event ingestion"

    def ready(self) -> None:
        from django.conf import settings

        from rapport.core.schedule import schedule_register
        from rapport.ingest import (
            permissions,  # noqa: F401 - registers permissions
            tasks,
        )

        # Batches whose task died with a worker (rapport/ingest/pipeline.py).
        schedule_register(
            "ingest.pipeline_sweep",
            every_seconds=lambda: settings.RAPPORT_PIPELINE_SWEEP_SECONDS,
            enqueue=lambda workspace_id: tasks.pipeline_sweep.enqueue(workspace_id=workspace_id),
        )
