from django.apps import AppConfig


class SalesConfig(AppConfig):
    name = "rapport.sales"
    label = "sales"
    verbose_name = "Sales: owners, deals and pipelines, tasks, notes"

    def ready(self) -> None:
        from rapport.core.schedule import schedule_register
        from rapport.profiles.selectors import timeline_source_register
        from rapport.profiles.timeline_sentences import sentence_register
        from rapport.sales import (
            permissions,  # noqa: F401 - registers permissions
            tasks,
            timeline,
        )

        timeline_source_register(kinds=("event",), entries=timeline.sales_entries)
        sentence_register(data="sales", sentence=timeline.sales_sentence)
        schedule_register(
            "sales.remind",
            every_seconds=lambda: 60,
            enqueue=lambda workspace_id: tasks.tasks_remind.enqueue(workspace_id=str(workspace_id)),
        )
        schedule_register(
            "sales.leads",
            every_seconds=lambda: 24 * 3600,
            enqueue=lambda workspace_id: tasks.lead_model_train.enqueue(
                workspace_id=str(workspace_id)
            ),
        )
        from rapport.sales import conditions

        conditions.register()
