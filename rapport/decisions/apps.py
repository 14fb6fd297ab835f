from django.apps import AppConfig


class DecisionsConfig(AppConfig):
    name = "rapport.decisions"
    label = "decisions"
    verbose_name = "Decisions: next best action, adaptive propensities, arbitration"

    def ready(self) -> None:
        from django.conf import settings

        from rapport.core.schedule import schedule_register
        from rapport.decisions import (
            permissions,  # noqa: F401 - registers permissions
            tasks,
        )

        schedule_register(
            "decisions.learn",
            every_seconds=lambda: getattr(settings, "RAPPORT_DECISIONS_LEARN_SECONDS", 60),
            enqueue=lambda workspace_id: tasks.decisions_learn.enqueue(workspace_id=workspace_id),
        )
