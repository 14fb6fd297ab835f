"""The group committer: concurrent requests are written together, each gets its own
result, and a failed write reaches every request that waited on it."""

import threading
from unittest import mock

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from rapport.ingest import group_commit
from rapport.ingest.models import Event
from rapport.ingest.services import Destination, IngestBatch, events_parse
from tests.conftest import tenant_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def committer():
    running = group_commit.GroupCommitter()
    yield running
    running.stop()


@pytest.fixture
def destination():
    tenant = tenant_create("Grouped", sample_data=False)
    return Destination(workspace_id=tenant.workspace.pk, source_id=tenant.created.source.pk)


def _batch(destination, i: int) -> IngestBatch:
    now = timezone.now()
    items = [
        {"type": "track", "userId": f"u{i}", "event": "E", "messageId": f"m{i}"},
        {"type": "track", "userId": f"u{i}"},
    ]
    rows, refused = events_parse(items, received_at=now)
    return IngestBatch(destination=destination, rows=rows, refused=refused, received_at=now)


def _submit_all(committer, batches):
    results, errors = {}, {}

    def one(i, batch):
        try:
            results[i] = committer.submit(batch)
        except Exception as exc:
            errors[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=one, args=(i, b)) for i, b in enumerate(batches)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results, errors


def test_concurrent_requests_are_each_answered_and_stored(destination, committer):
    if connection.vendor == "sqlite":
        pytest.skip("the in-memory test database is not shared with other threads' writes")
    results, errors = _submit_all(committer, [_batch(destination, i) for i in range(40)])

    assert errors == {}
    assert all(r.accepted == 1 and r.rejected == 1 for r in results.values())
    assert results[7].message_ids == ["m7"]
    assert Event.objects.filter(workspace_id=destination.workspace_id).count() == 40


def test_a_failed_write_fails_every_waiting_request(destination, committer):
    with mock.patch.object(
        group_commit, "events_ingest_many", side_effect=OperationalError("server closed")
    ):
        results, errors = _submit_all(committer, [_batch(destination, i) for i in range(10)])

    assert results == {}
    assert len(errors) == 10
    assert all(isinstance(e, OperationalError) for e in errors.values())
    assert Event.objects.filter(workspace_id=destination.workspace_id).count() == 0

    # The writer goes on working after a failure.
    results, errors = _submit_all(committer, [_batch(destination, 100)])
    assert errors == {} and results[0].accepted == 1


def test_a_request_that_fails_its_group_fails_alone(destination, committer):
    """One request whose write fails, grouped with others (of any workspace): the
    others are written and answered; only it gets the error."""
    from rapport.ingest.services import IngestResult

    groups = []

    def write(*, batches):
        groups.append(len(batches))
        if any(row["message_id"] == "m3" for batch in batches for row in batch.rows):
            raise OperationalError("invalid byte sequence")
        return [IngestResult(accepted=len(b.rows), message_ids=["ok"]) for b in batches]

    release = threading.Event()
    real_take = committer._take

    def grouped_take():
        release.wait(timeout=10)  # let all ten requests queue up, to be written as one group
        return real_take()

    with (
        mock.patch.object(group_commit, "events_ingest_many", side_effect=write),
        mock.patch.object(committer, "_take", side_effect=grouped_take),
    ):
        threading.Timer(0.5, release.set).start()
        results, errors = _submit_all(committer, [_batch(destination, i) for i in range(10)])

    assert max(groups) > 1
    assert set(errors) == {3} and isinstance(errors[3], OperationalError)
    assert set(results) == set(range(10)) - {3}
