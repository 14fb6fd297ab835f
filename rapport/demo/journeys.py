"""The demo company runs two of the shipped programmes (rapport/journeys/programmes.py)
on its own history: the Onboarding month and the Win-back, installed and started, then
replayed over the story's last weeks on a clock that moves in steps, so that their
pages show what running them for those weeks would have shown.

The replay enrols each customer when the story says so: at their sign-up for the
Onboarding month; for the Win-back at the moment their churn risk would have turned
high, which the replay reads from the orders (60 days without one, after buying
before: what the churn model weighs most). At each step of the clock the goals the
story's own events meet ("Brew Planner Used", an order) end those enrolments as
converted, the holdout included, and the engine runs whatever is due then: its
messages land in the local outbox. Customers whose churn risk is high now are enrolled
now, as the live trigger would. The story does not read the messages, so the lift
against the holdout hovers around zero: the pages show real counts, not a made-up
effect."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from rapport.tenancy.models import Workspace
from rapport.tenancy.services import Actor

DEMO_JOURNEY_DAYS = 45
RUN = ("onboarding_month", "win_back")
TICK = timedelta(hours=6)
# The replay's stand-in for "churn risk becomes high": this long without an order.
LAPSE = timedelta(days=60)


def _goal_events(goal: dict | None) -> list[str]:
    """The events that meet a goal: its event, or those its rule's `any` names."""
    if not goal:
        return []
    if goal.get("event"):
        return [goal["event"]]
    rule = goal.get("rule") or {}
    return [c["event"] for c in rule.get("any", [rule]) if isinstance(c, dict) and "event" in c]


def _current(workspace: Workspace) -> dict:
    """Each profile id as the live customer it now is (merged-away ones followed)."""
    from rapport.profiles.models import Profile

    rows = dict(Profile.objects.filter(workspace=workspace).values_list("pk", "merged_into_id"))
    out = {}
    for pk in rows:
        current, hops = pk, 0
        while rows.get(current) is not None and hops < 10:
            current, hops = rows[current], hops + 1
        out[pk] = current
    return out


def _events(workspace: Workspace, names: list[str], start: datetime, end: datetime, current):
    """(timestamp, live profile id, event) of these events in [start, end), in time order."""
    from rapport.ingest.models import Event

    rows = (
        Event.objects.filter(
            workspace=workspace,
            event__in=names,
            timestamp__gte=start,
            timestamp__lt=end,
            profile_id__isnull=False,
        )
        .order_by("timestamp")
        .values_list("timestamp", "profile_id", "event")
    )
    return [(at, current.get(pk, pk), name) for at, pk, name in rows]


def _lapses(workspace: Workspace, purchase: str, start: datetime, end: datetime, current):
    """(moment, profile id): the first moment in [start, end) each customer had gone
    LAPSE without an order, having ordered before."""
    from rapport.ingest.models import Event

    orders: dict[Any, list[datetime]] = defaultdict(list)
    for at, pk in (
        Event.objects.filter(workspace=workspace, event=purchase, timestamp__lt=end)
        .order_by("timestamp")
        .values_list("timestamp", "profile_id")
    ):
        orders[current.get(pk, pk)].append(at)
    found = []
    for pk, times in orders.items():
        for before, after in zip(times, [*times[1:], None], strict=True):
            moment = before + LAPSE
            if (after is None or after > moment) and start <= moment < end:
                found.append((moment, pk))
                break
    return sorted(found, key=lambda item: item[0])


def demo_journeys(
    *, workspace: Workspace, actor: Actor, end: datetime, days: int = DEMO_JOURNEY_DAYS
) -> dict[str, Any]:
    """Install, start and replay the demo's journeys (once per workspace: a workspace
    that has journeys already is left as it is). Returns per journey its counts."""
    from rapport.journeys import selectors as journey_selectors
    from rapport.journeys import services as journeys
    from rapport.journeys.models import Journey
    from rapport.journeys.programmes import programme_install
    from rapport.predictions.models import ChurnScore
    from rapport.tenancy.commerce import commerce_settings_get

    if Journey.objects.filter(workspace=workspace).exists():
        return {}
    installed = {}
    for key in RUN:
        journey = programme_install(workspace=workspace, key=key, actor=actor)
        installed[key] = journeys.journey_start(journey=journey, actor=actor)
    onboarding, win_back = installed["onboarding_month"], installed["win_back"]
    purchase = commerce_settings_get(workspace=workspace).purchase_event
    start = end - timedelta(days=days)
    current = _current(workspace)
    signups = _events(workspace, [onboarding.trigger["event"]], start, end, current)
    lapses = _lapses(workspace, purchase, start, end, current)
    goals = {j.pk: _goal_events(j.goal) for j in installed.values()}
    names = sorted({name for events in goals.values() for name in events})
    met = _events(workspace, names, start, end, current)
    ws = workspace.pk

    def run_until(now: datetime) -> None:
        while journeys.enrolments_advance(workspace_id=ws, now=now)["claimed"] == journeys.BATCH:
            pass

    def due(items: list, upto: datetime) -> list:
        taken = []
        while items and items[0][0] <= upto:
            taken.append(items.pop(0))
        return taken

    clock = start
    while clock < end:
        clock = min(clock + TICK, end)
        for journey, entering in (
            (onboarding, due(signups, clock)),
            (win_back, due(lapses, clock)),
        ):
            if entering:
                journeys.enrolments_create_many(
                    journey=journey, profile_ids=[pk for _, pk, *_ in entering], now=entering[0][0]
                )
        happened = due(met, clock)
        for journey in installed.values():
            first: dict = {}
            for at, pk, name in happened:
                if name in goals[journey.pk]:
                    first.setdefault(pk, at)
            if first:
                # The engine's own goal check, on the story's events at their time.
                journeys._convert(journey, first, clock)
        run_until(clock)
    # Now: those whose churn risk is high today, as the prediction trigger enrols them.
    risky = ChurnScore.objects.filter(workspace=workspace, band="high").values_list(
        "profile_id", flat=True
    )
    journeys.enrolments_create_many(journey=win_back, profile_ids=list(risky), now=end)
    run_until(end)
    return {
        key: {
            **journey_selectors.journey_state_counts(workspace=workspace, journey=journey),
            "conversion": {
                k: v
                for k, v in journey_selectors.journey_conversion(
                    workspace=workspace, journey=journey
                ).items()
                if k in ("enrolled", "enrolled_converted", "holdout", "holdout_converted")
            },
        }
        for key, journey in installed.items()
    }
