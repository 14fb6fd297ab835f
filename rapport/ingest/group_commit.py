"""Group commit for the Tracking API.

Committing each request's events in a transaction of its own makes the commit, the
round trips and the downstream task row the cost of every single-event call. Instead
each server process has one writer thread: concurrent requests hand it their parsed
events and wait; it writes everything queued so far in one transaction
(`events_ingest_many`) and then releases each request with its own result, or with the
error that stopped the write (a group that fails is written again request by request,
so that one request's bad data fails that request alone). A 2xx therefore still means
committed. The writer never waits for more work: at low load a request is written
alone and at once; under load the requests that arrive during one write form the next.

Used when RAPPORT_INGEST_GROUP_COMMIT is on (the default for a server); tests that run
inside one database transaction call `events_ingest` directly.
"""

import logging
import queue
import threading
import time
from concurrent.futures import Future

from django.conf import settings
from django.db import close_old_connections, connection

from rapport.ingest.services import IngestBatch, IngestResult, events_ingest_many

logger = logging.getLogger(__name__)

MAX_ROWS_PER_COMMIT = 5000
# Writers per process (RAPPORT_INGEST_WRITERS). One measured best on two cores: a
# second writer makes smaller groups, more commits and more contention for the GIL.
WRITERS = 1
# A connection is checked (a round trip) at most this often, not once per commit; a
# write on a broken one fails, closes it, and the next write reconnects.
HEALTH_CHECK_SECONDS = 10.0
_STOP = object()
WAIT_SECONDS = 30


class GroupCommitter:
    def __init__(self, writers: int | None = None) -> None:
        if writers is None:
            writers = getattr(settings, "RAPPORT_INGEST_WRITERS", WRITERS)
        self._queue: queue.SimpleQueue[tuple[IngestBatch, Future]] = queue.SimpleQueue()
        self._writers = writers
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def submit(self, batch: IngestBatch) -> IngestResult:
        """Block until the batch is committed; raise what the write raised."""
        self._ensure_writer()
        future: Future[IngestResult] = Future()
        self._queue.put((batch, future))
        return future.result(timeout=WAIT_SECONDS)

    def _ensure_writer(self) -> None:
        if len(self._threads) == self._writers and all(t.is_alive() for t in self._threads):
            return
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            while len(self._threads) < self._writers:
                thread = threading.Thread(
                    target=self._run, name="rapport-ingest-writer", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def stop(self) -> None:
        """Finish what is queued, close the writers' connections and end their threads."""
        live = [t for t in self._threads if t.is_alive()]
        for _ in live:
            self._queue.put(_STOP)
        for thread in live:
            thread.join(timeout=WAIT_SECONDS)
        self._threads = []

    def _take(self) -> list[tuple[IngestBatch, Future]] | None:
        first = self._queue.get()
        if first is _STOP:
            return None
        taken = [first]
        rows = len(first[0].rows)
        while rows < MAX_ROWS_PER_COMMIT:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                self._queue.put(_STOP)
                break
            taken.append(item)
            rows += len(item[0].rows)
        return taken

    def _run(self) -> None:
        checked_at = 0.0
        while True:
            taken = self._take()
            if taken is None:
                connection.close()
                return
            live = [
                (batch, future) for batch, future in taken if future.set_running_or_notify_cancel()
            ]
            if not live:
                continue
            if time.monotonic() - checked_at > HEALTH_CHECK_SECONDS:
                close_old_connections()
                checked_at = time.monotonic()
            self._write(live)

    def _write(self, live: list[tuple[IngestBatch, Future]]) -> None:
        try:
            results = events_ingest_many(batches=[batch for batch, _ in live])
        except BaseException as exc:  # every waiting request must hear of it
            logger.warning("group commit of %d requests failed: %s", len(live), exc)
            connection.close()
            if len(live) == 1:
                live[0][1].set_exception(exc)
                return
            # What one request holds must not fail the others (another workspace's
            # among them): each is written again alone, and only the guilty one fails.
            for batch, future in live:
                try:
                    result = events_ingest_many(batches=[batch])[0]
                except BaseException as alone:
                    connection.close()
                    future.set_exception(alone)
                else:
                    future.set_result(result)
            return
        for (_, future), result in zip(live, results, strict=True):
            future.set_result(result)


_committer = GroupCommitter()


def ingest_grouped(batch: IngestBatch) -> IngestResult:
    return _committer.submit(batch)
