"""Reads of the journeys app: journeys, per-step counts, conversion against the
holdout, a customer's journeys."""

import math
import uuid
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils.translation import gettext

from rapport.core.selectors import object_get
from rapport.journeys.models import Enrolment, Journey, JourneyVersion, StepRun
from rapport.tenancy.models import Workspace

# The two-sided 95 % normal quantile.
Z95 = 1.959963984540054


def journey_list(*, workspace: Workspace, status: str | None = None) -> QuerySet[Journey]:
    journeys = Journey.objects.filter(workspace=workspace)
    if status:
        journeys = journeys.filter(status=status)
    return journeys.order_by("-created_at")


def journey_get(*, workspace: Workspace, journey_id: uuid.UUID) -> Journey:
    return object_get(
        Journey.objects.filter(workspace=workspace),
        message=gettext("No journey with id %(pk)s in this workspace"),
        pk=journey_id,
    )


def journey_graph(*, workspace: Workspace, journey: Journey, number: int | None = None) -> dict:
    """The graph of the current version (or of version `number`)."""
    return (
        JourneyVersion.objects.filter(
            workspace=workspace, journey=journey, number=number or journey.version
        )
        .values_list("graph", flat=True)
        .get()
    )


def journey_versions(*, workspace: Workspace, journey: Journey) -> list[dict]:
    """Each version with how many customers are still on it."""
    live = dict(
        Enrolment.objects.filter(workspace=workspace, journey=journey, state__in=Enrolment.LIVE)
        .values_list("version_id")
        .annotate(n=Count("pk"))
    )
    return [
        {
            "number": v.number,
            "created_at": v.created_at,
            "created_by": v.created_by,
            "live": live.get(v.pk, 0),
        }
        for v in JourneyVersion.objects.filter(workspace=workspace, journey=journey).order_by(
            "number"
        )
    ]


def journey_step_counts(*, workspace: Workspace, journey: Journey) -> dict[str, dict[str, int]]:
    """Per step key: `passed` (runs of the step that finished), `waiting` (customers at
    it now: waiting, or due), `exited` (customers who left the journey while at it: the
    goal met, the journey stopped) and `entered` (the three together). Every version's
    steps of the same key count together."""
    counts: dict[str, dict[str, int]] = {}

    def row(key: str) -> dict[str, int]:
        return counts.setdefault(key, {"entered": 0, "waiting": 0, "passed": 0, "exited": 0})

    passed = (
        StepRun.objects.filter(workspace=workspace, journey=journey)
        .values_list("step")
        .annotate(n=Count("pk"))
    )
    for key, n in passed:
        row(key)["passed"] += n
    at = (
        Enrolment.objects.filter(workspace=workspace, journey=journey)
        .exclude(step="")
        .filter(
            state__in=(
                Enrolment.State.ACTIVE,
                Enrolment.State.CONVERTED,
                Enrolment.State.EXITED,
            )
        )
        .values_list("step", "state")
        .annotate(n=Count("pk"))
    )
    for key, state, n in at:
        row(key)["waiting" if state == Enrolment.State.ACTIVE else "exited"] += n
    for value in counts.values():
        value["entered"] = value["passed"] + value["waiting"] + value["exited"]
    try:
        steps = journey_graph(workspace=workspace, journey=journey)["steps"]
    except JourneyVersion.DoesNotExist:
        steps = {}
    for key in steps:
        row(key)
    return counts


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def difference_interval(
    converted_a: int, n_a: int, converted_b: int, n_b: int, *, z: float = Z95
) -> tuple[float, float, float] | None:
    """The difference of two proportions (a - b) with its (Wald) confidence interval:
    (difference, low, high); None when a group is empty."""
    if not n_a or not n_b:
        return None
    p_a, p_b = converted_a / n_a, converted_b / n_b
    diff = p_a - p_b
    spread = z * math.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    return diff, diff - spread, diff + spread


def journey_conversion(*, workspace: Workspace, journey: Journey) -> dict[str, Any]:
    """Enrolled customers (messaged) against the holdout: each group's size, how many
    met the goal, the rates, and the lift (the difference of the rates) with its 95 %
    confidence interval. `significant`: the interval does not hold 0."""
    converted = Q(state=Enrolment.State.CONVERTED)
    counted = Enrolment.objects.filter(workspace=workspace, journey=journey).aggregate(
        a=Count("pk", filter=Q(holdout=False)),
        a_converted=Count("pk", filter=Q(holdout=False) & converted),
        b=Count("pk", filter=Q(holdout=True)),
        b_converted=Count("pk", filter=Q(holdout=True) & converted),
    )
    groups = {
        "enrolled": counted["a"],
        "enrolled_converted": counted["a_converted"],
        "holdout": counted["b"],
        "holdout_converted": counted["b_converted"],
    }
    interval = difference_interval(
        groups["enrolled_converted"],
        groups["enrolled"],
        groups["holdout_converted"],
        groups["holdout"],
    )
    holdout_rate = _rate(groups["holdout_converted"], groups["holdout"])
    enrolled_rate = _rate(groups["enrolled_converted"], groups["enrolled"])
    return {
        "goal": journey.goal or None,
        **groups,
        "enrolled_rate": enrolled_rate,
        "holdout_rate": holdout_rate,
        "lift": interval[0] if interval else None,
        "lift_low": interval[1] if interval else None,
        "lift_high": interval[2] if interval else None,
        "relative_lift": (
            (enrolled_rate - holdout_rate) / holdout_rate
            if enrolled_rate is not None and holdout_rate
            else None
        ),
        "significant": bool(interval and (interval[1] > 0 or interval[2] < 0)),
    }


def journey_state_counts(*, workspace: Workspace, journey: Journey) -> dict[str, int]:
    found = dict(
        Enrolment.objects.filter(workspace=workspace, journey=journey)
        .values_list("state")
        .annotate(n=Count("pk"))
    )
    return {state: found.get(state, 0) for state in Enrolment.State.values}


def profile_enrolments(*, workspace: Workspace, profile_id: Any, limit: int = 50) -> list[dict]:
    """The journeys a customer is in (or was), newest first, and where."""
    rows = (
        Enrolment.objects.filter(workspace=workspace, profile_id=profile_id)
        .select_related("journey", "version")
        .order_by("-entered_at")[:limit]
    )
    return [
        {
            "id": e.pk,
            "journey_id": e.journey_id,
            "journey": e.journey.name,
            "version": e.version.number,
            "state": e.state,
            "step": e.step,
            "waiting_for": e.waiting_for,
            "due_at": e.due_at,
            "holdout": e.holdout,
            "path": e.path,
            "entered_at": e.entered_at,
            "exited_at": e.exited_at,
            "exit_reason": e.exit_reason,
        }
        for e in rows
    ]
