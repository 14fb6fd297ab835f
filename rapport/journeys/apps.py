from django.apps import AppConfig


class JourneysConfig(AppConfig):
    name = "rapport.journeys"
    label = "journeys"
    verbose_name = "Journeys: multi-step flows, durable timers, goals, holdouts"

    def ready(self) -> None:
        from django.conf import settings

        from rapport.core.schedule import schedule_register
        from rapport.journeys import (
            permissions,  # noqa: F401 - registers permissions
            tasks,
            timeline,
            triggers,
        )
        from rapport.profiles.selectors import timeline_source_register
        from rapport.profiles.timeline_sentences import sentence_register

        timeline_source_register(kinds=("event",), entries=timeline.enrolment_entries)
        sentence_register(data="journey", sentence=timeline.enrolment_sentence)
        schedule_register(
            "journeys.advance",
            every_seconds=lambda: settings.RAPPORT_JOURNEYS_RUN_SECONDS,
            enqueue=lambda workspace_id: tasks.journeys_advance.enqueue(workspace_id=workspace_id),
        )
        # Segments, lifecycle, predictions, date traits and schedules (triggers.py).
        triggers.triggers_register()
