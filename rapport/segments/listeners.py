"""Who hears of changes in segment membership and lifecycle stage: apps above segments
(journeys' triggers) register here from their AppConfig.ready, so that segments never
imports them.

Each listener is called inside the transaction that made the change, so that what it
writes (an enrolment) commits with the change or not at all: a change is heard once."""

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

# `listener(segment=, now=, entered=, left=)`: the segment's members changed at `now`;
# the rows entered (`entered_at == now`) and left (`left_at == now`) are its history.
_MEMBERSHIP: dict[str, Callable[..., None]] = {}
# `listener(workspace_id=, moves=, now=)`: customers changed stage at `now`; `moves` are
# (profile_id, from_stage, from_sub_stage, to_stage, to_sub_stage).
_LIFECYCLE: dict[str, Callable[..., None]] = {}


def membership_listener_register(*, name: str, listener: Callable[..., None]) -> None:
    _MEMBERSHIP[name] = listener


def lifecycle_listener_register(*, name: str, listener: Callable[..., None]) -> None:
    _LIFECYCLE[name] = listener


def membership_changed(*, segment: Any, now: datetime, entered: int, left: int) -> None:
    if entered or left:
        for listener in _MEMBERSHIP.values():
            listener(segment=segment, now=now, entered=entered, left=left)


def lifecycle_changed(*, workspace_id: Any, moves: Sequence[tuple], now: datetime) -> None:
    if moves:
        for listener in _LIFECYCLE.values():
            listener(workspace_id=workspace_id, moves=moves, now=now)
