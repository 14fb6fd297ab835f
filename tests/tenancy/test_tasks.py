"""Background work: a task enqueued inside a transaction exists only if it commits, and
a worker runs it."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from rapport.cli import _run, cli
from rapport.tenancy.models import AuditLogEntry
from rapport.tenancy.services import Actor, audit_log_record
from rapport.tenancy.tasks import audit_log_prune


@pytest.mark.django_db(transaction=True)
def test_task_enqueued_in_a_rolled_back_transaction_never_runs(tenant):
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_log_prune.enqueue(workspace_id=str(tenant.workspace.pk), older_than_days=90)
        raise RuntimeError("the change failed")
    assert not DBTaskResult.objects.filter(task_path__endswith="audit_log_prune").exists()


@pytest.mark.django_db(transaction=True)
def test_task_enqueued_in_a_committed_transaction_is_run_by_the_worker(tenant):
    old = audit_log_record(workspace=tenant.workspace, actor=Actor.system(), action="demo.old")
    AuditLogEntry.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=400))
    kept = AuditLogEntry.objects.count() - 1

    with transaction.atomic():
        result = audit_log_prune.enqueue(workspace_id=str(tenant.workspace.pk), older_than_days=365)
    assert DBTaskResult.objects.filter(task_path__endswith="audit_log_prune").count() == 1

    assert _run(cli.main, ["worker", "--batch"]) == 0

    result.refresh()
    assert result.status == "SUCCESSFUL"
    assert result.return_value == 1
    assert AuditLogEntry.objects.count() == kept
