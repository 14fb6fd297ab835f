from django.apps import AppConfig


class DecisionsConfig(AppConfig):
    name = "rapport.decisions"
    label = "decisions"
    verbose_name = "Decisions: next best action, adaptive propensities, arbitration"

    def ready(self) -> None:
        from django.conf import settings

        from rapport.channels import hooks
        from rapport.core.schedule import schedule_register
        from rapport.decisions import (
            blocks,
            messages,
            permissions,  # noqa: F401 - registers permissions
            tasks,
        )

        schedule_register(
            "decisions.learn",
            every_seconds=lambda: getattr(settings, "RAPPORT_DECISIONS_LEARN_SECONDS", 60),
            enqueue=lambda workspace_id: tasks.decisions_learn.enqueue(workspace_id=workspace_id),
        )
        # Messages carrying a decision: their content chosen, their answers learned from.
        if messages.message_answered not in hooks.answer_listeners:
            hooks.answer_listeners.append(messages.message_answered)
        hooks.content_deciders["broadcast"] = messages.broadcast_decide
        hooks.block_renderers["next_best_action"] = blocks.block_render
        if blocks.PREFIX not in hooks.untracked_prefixes:
            hooks.untracked_prefixes.append(blocks.PREFIX)
