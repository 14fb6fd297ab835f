"""Stored events handed to the downstream consumers (`events_dispatch`)."""

import gc

import pytest

from rapport.ingest.pipeline import Consumer, pipeline_consumers, pipeline_override
from rapport.ingest.services import events_dispatch


@pytest.fixture
def recorded():
    calls = []

    def consumer(workspace_id, events):
        calls.append((gc.isenabled(), [e.message_id for e in events]))
        if any(e.message_id == "fails" for e in events):
            raise RuntimeError("consumer failed")

    with pipeline_override([*pipeline_consumers(), Consumer("recorded", consumer)]):
        yield calls


@pytest.mark.django_db
def test_consumers_get_the_batch_oldest_first_with_the_collector_paused(tracker, tenant, recorded):
    tenant.send(
        {
            "type": "track",
            "userId": "u1",
            "event": "B",
            "messageId": "m2",
            "timestamp": "2026-01-02T00:00:00Z",
        },
        {
            "type": "track",
            "userId": "u1",
            "event": "A",
            "messageId": "m1",
            "timestamp": "2026-01-01T00:00:00Z",
        },
    )

    assert recorded == [(False, ["m1", "m2"])]
    assert gc.isenabled()


@pytest.mark.django_db
def test_a_failing_consumer_leaves_the_collector_on(tenant, recorded):
    with pytest.raises(RuntimeError):
        tenant.send({"type": "track", "userId": "u1", "event": "A", "messageId": "fails"})

    assert gc.isenabled()
    assert events_dispatch(workspace_id=tenant.workspace.pk, message_ids=[]) == 0
