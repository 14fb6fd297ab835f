"""A training queued once and run again (its worker died after the model was saved)
keeps one model version: versions are keyed by the queued task's id."""

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from rapport.core import leases
from rapport.predictions import tasks
from rapport.predictions.models import PredictionModel
from tests.conftest import tenant_create


def _purchases(tenant, *, customers: int) -> None:
    rng = np.random.default_rng(3)
    now = timezone.now()
    batch = []
    for i in range(customers):
        first = int(rng.integers(60, 400))
        for j in range(int(rng.integers(1, 6))):
            day = now - timedelta(days=first - int(rng.integers(0, first)) + 1)
            batch.append(
                {
                    "type": "track",
                    "event": "Order Completed",
                    "userId": f"buyer-{i}",
                    "messageId": f"buyer-{i}-{j}",
                    "timestamp": day.isoformat(),
                    "properties": {"revenue": float(rng.integers(5, 200))},
                }
            )
    tenant.send(*batch)


def _in_task(task_id: str, run):
    token = leases.task_running(task_id)
    try:
        return run()
    finally:
        leases.task_done(token)


@pytest.mark.django_db
def test_a_training_run_twice_by_its_task_saves_one_version():
    tenant = tenant_create("Shop", sample_data=False)
    _purchases(tenant, customers=80)
    workspace_id = str(tenant.workspace.pk)

    def train():
        return tasks.model_train.call(
            workspace_id=workspace_id, kind="clv", options={}, actor_label="api"
        )

    first = _in_task("task-1", train)
    again = _in_task("task-1", train)

    assert "error" not in first
    assert again == first
    assert PredictionModel.objects.filter(workspace=tenant.workspace).count() == 1
    # Another request to train is another version.
    _in_task("task-2", train)
    versions = PredictionModel.objects.filter(workspace=tenant.workspace).values_list(
        "version", flat=True
    )
    assert sorted(versions) == [1, 2]


@pytest.mark.django_db
def test_the_scheduled_retraining_run_twice_keeps_its_versions():
    tenant = tenant_create("Shop", sample_data=False)
    _purchases(tenant, customers=80)
    workspace_id = str(tenant.workspace.pk)

    def retrain():
        return tasks.models_train.call(workspace_id=workspace_id)

    first = _in_task("weekly-1", retrain)
    again = _in_task("weekly-1", retrain)

    assert first["clv"] == again["clv"]
    assert PredictionModel.objects.filter(workspace=tenant.workspace, kind="clv").count() == 1
