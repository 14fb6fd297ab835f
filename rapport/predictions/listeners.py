"""Who hears of a workspace's scores being rewritten: apps above predictions (journeys'
`prediction` trigger) register here from their AppConfig.ready.

A watcher is a context manager factory, `watcher(workspace_id=, kind=, now=)`, entered
before the old scores are deleted and left after the new ones are written, inside the
scoring's transaction: it can read the scores before and after, and what it writes
commits with the scores."""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from datetime import datetime
from typing import Any

_WATCHERS: dict[str, Callable[..., AbstractContextManager]] = {}


def scores_watcher_register(*, name: str, watcher: Callable[..., AbstractContextManager]) -> None:
    _WATCHERS[name] = watcher


@contextmanager
def scores_watched(*, workspace_id: Any, kind: str, now: datetime) -> Iterator[None]:
    with ExitStack() as stack:
        for watcher in _WATCHERS.values():
            stack.enter_context(watcher(workspace_id=workspace_id, kind=kind, now=now))
        yield
