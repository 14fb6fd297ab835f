"""What an action earned, for its report page: how often decisions gave it, how often
it was shown and answered, the value it delivered, the uplift of the model's choice
over the control group with a 95 % confidence interval, and the learning curve.

The control group (DecisionSettings.control_percent) gets a random eligible action
instead of the model's choice. For one action, "uplift" is therefore the acceptance
rate when the model chose to give it minus the rate when chance gave it to a control
customer: how much better the model does by choosing *whom* to show it to. When the
workspace's control mode is "nothing", control customers get no action, and there is
no control rate to compare with (the report says so).

An impression is a given action that was shown: its `impression_at` is set, or any
outcome was recorded for it (a click implies the customer saw it). It is accepted when
one of the positive outcomes (clicked, accepted, converted) was recorded; a rate is
accepted / shown.

The interval of a difference of two proportions is Newcombe's hybrid score interval
(Newcombe 1998, "Interval estimation for the difference between independent
proportions: comparison of eleven methods", Statistics in Medicine 17, method 10),
built from each rate's Wilson score interval. Unlike the Wald interval it stays inside
[-1, 1], and is honest with small counts and rates near 0 or 1, which is what a new
action's first days look like.
"""

import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from rapport.decisions.models import POSITIVE, Action, DecisionAction, Outcome, OutcomeKind

# The normal quantile of a two-sided 95 % interval.
Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, *, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (successes / n); None when n is 0."""
    if n <= 0:
        return None
    if not 0 <= successes <= n:
        raise ValueError("successes must be between 0 and n")
    p = successes / n
    z2 = z * z
    centre = p + z2 / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    denominator = 1 + z2 / n
    low = (centre - spread) / denominator
    high = (centre + spread) / denominator
    # Exact at the ends (the formula gives them up to rounding).
    return (0.0 if successes == 0 else max(0.0, low), 1.0 if successes == n else min(1.0, high))


def difference_interval(
    successes_a: int, n_a: int, successes_b: int, n_b: int, *, z: float = Z95
) -> tuple[float, float, float] | None:
    """The difference of two independent proportions (a - b) with Newcombe's hybrid
    score interval: (difference, low, high); None when a group is empty."""
    a = wilson_interval(successes_a, n_a, z=z)
    b = wilson_interval(successes_b, n_b, z=z)
    if a is None or b is None:
        return None
    p_a, p_b = successes_a / n_a, successes_b / n_b
    (l_a, u_a), (l_b, u_b) = a, b
    diff = p_a - p_b
    low = diff - math.sqrt((p_a - l_a) ** 2 + (u_b - p_b) ** 2)
    high = diff + math.sqrt((u_a - p_a) ** 2 + (p_b - l_b) ** 2)
    return diff, max(-1.0, low), min(1.0, high)


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _given(*, workspace, action: Action):
    """The action's given rows, each marked shown and accepted."""
    outcomes = Outcome.objects.filter(
        workspace=workspace, decision=OuterRef("decision"), action=OuterRef("action")
    )
    return DecisionAction.objects.filter(workspace=workspace, action=action).annotate(
        answered=Exists(outcomes),
        accepted=Exists(outcomes.filter(outcome__in=POSITIVE)),
    )


_SHOWN = Q(impression_at__isnull=False) | Q(answered=True)


def action_report(*, workspace, action: Action) -> dict[str, Any]:
    """The action's figures since it was created: decisions that gave it, impressions,
    acceptances and their rate, value delivered (the value of the accepted ones), by
    group (model-chosen, control), and the uplift with its 95 % interval."""
    given = _given(workspace=workspace, action=action)
    counted = given.aggregate(
        decisions=Count("pk"),
        decisions_control=Count("pk", filter=Q(control=True)),
        shown=Count("pk", filter=_SHOWN & Q(control=False)),
        shown_control=Count("pk", filter=_SHOWN & Q(control=True)),
        taken=Count("pk", filter=_SHOWN & Q(accepted=True, control=False)),
        taken_control=Count("pk", filter=_SHOWN & Q(accepted=True, control=True)),
        value=Sum("value", filter=_SHOWN & Q(accepted=True)),
    )
    outcomes = dict(
        Outcome.objects.filter(workspace=workspace, action=action)
        .values_list("outcome")
        .annotate(n=Count("pk"))
        .order_by()
    )
    model = {
        "decisions": counted["decisions"] - counted["decisions_control"],
        "impressions": counted["shown"],
        "accepted": counted["taken"],
        "rate": _rate(counted["taken"], counted["shown"]),
    }
    control = {
        "decisions": counted["decisions_control"],
        "impressions": counted["shown_control"],
        "accepted": counted["taken_control"],
        "rate": _rate(counted["taken_control"], counted["shown_control"]),
    }
    impressions = model["impressions"] + control["impressions"]
    accepted = model["accepted"] + control["accepted"]
    interval = difference_interval(
        model["accepted"], model["impressions"], control["accepted"], control["impressions"]
    )
    return {
        "decisions": counted["decisions"],
        "impressions": impressions,
        "accepted": accepted,
        "rate": _rate(accepted, impressions),
        "value": counted["value"] or Decimal(0),
        "currency": action.currency,
        "outcomes": {kind: outcomes.get(kind, 0) for kind in OutcomeKind.values},
        "model": model,
        "control": control,
        "uplift": interval[0] if interval else None,
        "uplift_low": interval[1] if interval else None,
        "uplift_high": interval[2] if interval else None,
        "significant": bool(interval and (interval[1] > 0 or interval[2] < 0)),
    }


def action_learning_curve(
    *, workspace, action: Action, days: int = 30, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Acceptance by UTC day of the impression, model-chosen and control, over the last
    `days` days: [{day, shown, accepted, rate, control_shown, control_accepted,
    control_rate}], every day present (rates None on a day with no impression)."""
    now = now or timezone.now()
    today = now.astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time(), tzinfo=UTC)
    rows = (
        _given(workspace=workspace, action=action)
        .filter(impression_at__gte=since)
        .annotate(day=TruncDate("impression_at", tzinfo=UTC))
        .values("day", "control")
        .annotate(shown=Count("pk"), accepted=Count("pk", filter=Q(accepted=True)))
        .order_by()
    )
    found: dict[tuple[date, bool], tuple[int, int]] = {
        (r["day"], r["control"]): (r["shown"], r["accepted"]) for r in rows
    }
    curve = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        shown, accepted = found.get((day, False), (0, 0))
        control_shown, control_accepted = found.get((day, True), (0, 0))
        curve.append(
            {
                "day": day,
                "shown": shown,
                "accepted": accepted,
                "rate": _rate(accepted, shown),
                "control_shown": control_shown,
                "control_accepted": control_accepted,
                "control_rate": _rate(control_accepted, control_shown),
            }
        )
    return curve


def action_summaries(*, workspace, actions) -> dict[Any, dict[str, Any]]:
    """For the catalogue's list, by action id: decisions that gave it, impressions and
    acceptance rate (both groups), in one query."""
    ids = [a.pk for a in actions]
    if not ids:
        return {}
    outcomes = Outcome.objects.filter(
        workspace=workspace, decision=OuterRef("decision"), action=OuterRef("action")
    )
    rows = (
        DecisionAction.objects.filter(workspace=workspace, action_id__in=ids)
        .annotate(answered=Exists(outcomes), accepted=Exists(outcomes.filter(outcome__in=POSITIVE)))
        .values("action_id")
        .annotate(
            decisions=Count("pk"),
            shown=Count("pk", filter=_SHOWN),
            accepted_n=Count("pk", filter=_SHOWN & Q(accepted=True)),
        )
        .order_by()
    )
    summaries = {
        r["action_id"]: {
            "decisions": r["decisions"],
            "impressions": r["shown"],
            "accepted": r["accepted_n"],
            "rate": _rate(r["accepted_n"], r["shown"]),
        }
        for r in rows
    }
    empty = {"decisions": 0, "impressions": 0, "accepted": 0, "rate": None}
    return {pk: summaries.get(pk, empty) for pk in ids}
