from django.apps import AppConfig


class IngestConfig(AppConfig):
    name = "rapport.ingest"
    label = "ingest"
    verbose_name = "Event ingestion"

    def ready(self) -> None:
        from rapport.ingest import permissions  # noqa: F401 - registers permissions
