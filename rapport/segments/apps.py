from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "rapport.segments"
    label = "segments"
    verbose_name = "Segments, RFM and lifecycle"

    def ready(self) -> None:
        from rapport.ingest.services import event_consumer_register
        from rapport.segments import permissions  # noqa: F401 - registers permissions
        from rapport.segments.services import segments_from_events

        # After identity, accounts and consent (10-30): rules read all three.
        event_consumer_register(segments_from_events, order=50)
