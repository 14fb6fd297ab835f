from django.apps import AppConfig


class PredictionsConfig(AppConfig):
    name = "rapport.predictions"
    label = "predictions"
    verbose_name = "Predictions: churn risk, lifetime value, churn drivers"

    def ready(self) -> None:
        from rapport.predictions import (
            conditions,
            permissions,  # noqa: F401 - registers permissions
        )

        conditions.register()

        _schedule()


def _schedule() -> None:
    from django.conf import settings

    from rapport.core.schedule import schedule_register
    from rapport.predictions import tasks

    # Retrain weekly (then score); score daily with the latest models.
    schedule_register(
        "predictions.train",
        every_seconds=lambda: settings.RAPPORT_MODELS_TRAIN_SECONDS,
        enqueue=lambda workspace_id: tasks.models_train.enqueue(workspace_id=workspace_id),
    )
    schedule_register(
        "predictions.score",
        every_seconds=lambda: settings.RAPPORT_MODELS_SCORE_SECONDS,
        enqueue=lambda workspace_id: tasks.models_score.enqueue(workspace_id=workspace_id),
    )
