"""django_tasks_db's worker, with a heartbeat and leases (rapport/core/leases.py).

It takes the name `db_worker` (rapport.core comes before django_tasks_db in
INSTALLED_APPS), so that every way of starting a worker (`rapport worker`, the CLI's
queue drains, `manage.py db_worker`) beats, reaps dead workers' tasks, and records a
result only for a task that is still its own."""

import logging
from typing import Any

from django.core.exceptions import SuspiciousOperation
from django.utils import timezone
from django_tasks_db.compat import TaskContext, task_finished, task_started
from django_tasks_db.management.commands import db_worker
from django_tasks_db.models import DBTaskResult

from rapport.core import leases

logger = logging.getLogger("django_tasks_db")


def _exception_fields(exc: BaseException) -> dict[str, Any]:
    from traceback import format_exception

    return {
        "status": "FAILED",
        "finished_at": timezone.now(),
        "exception_class_path": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "traceback": "".join(format_exception(exc)),
        "return_value": None,
    }


class LeasedWorker(db_worker.Worker):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.heartbeat = leases.Heartbeat(worker_id=self.worker_id)
        self.background = True

    def run(self) -> None:
        self.background = leases.can_beat_in_background()
        self.heartbeat.start(background=self.background)
        try:
            super().run()
        finally:
            self.heartbeat.stop()

    def run_task(self, db_task_result: DBTaskResult) -> None:
        """The parent's, with the result written only if the claim is still ours."""
        if not self.background:
            # No thread beats for a worker inside a transaction: beat between tasks.
            self.heartbeat.beat()
        self.heartbeat.busy.set()
        key = leases.task_running(str(db_task_result.pk))
        try:
            self.running_task = True
            task = db_task_result.task
            task_result = db_task_result.task_result
            backend_type = task.get_backend()
            task_started.send(sender=backend_type, task_result=task_result)
            if task.takes_context:
                return_value = task.call(
                    TaskContext(task_result=task_result), *task_result.args, **task_result.kwargs
                )
            else:
                return_value = task.call(*task_result.args, **task_result.kwargs)
            leases.task_finish(
                db_task_result=db_task_result,
                fields={
                    "status": "SUCCESSFUL",
                    "finished_at": timezone.now(),
                    "return_value": return_value,
                    "exception_class_path": "",
                    "traceback": "",
                },
            )
            task_finished.send(sender=backend_type, task_result=db_task_result.task_result)
        except BaseException as exc:
            leases.task_finish(db_task_result=db_task_result, fields=_exception_fields(exc))
            try:
                sender = type(db_task_result.task.get_backend())
                task_result = db_task_result.task_result
            except (ImportError, SuspiciousOperation):
                logger.exception("Task id=%s failed unexpectedly", db_task_result.id)
            else:
                task_finished.send(sender=sender, task_result=task_result)
        finally:
            self.running_task = False
            self._run_tasks += 1
            self.heartbeat.busy.clear()
            leases.task_done(key)


class Command(db_worker.Command):
    help = "Run a database background worker that beats and takes over dead workers' tasks"

    def handle(self, **options: Any) -> None:
        # The parent builds `db_worker.Worker` by that name: have it build ours.
        original = db_worker.Worker
        db_worker.Worker = LeasedWorker
        try:
            super().handle(**options)
        finally:
            db_worker.Worker = original
