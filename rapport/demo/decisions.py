"""The demo company's next best actions (rapport/decisions): a small catalogue, then
the website's home banner asking the engine for each customer's action on the days
they visited in the story's last weeks, and each customer answering as their plan
makes them likely to, so that the catalogue's reports, the learning curve and the
person page's simulator show an engine that has learned something.

What the customers answer is drawn from fixed rates (`ACCEPTANCE`) that depend on the
plan trait: subscribers take the Brew Planner tutorial and the office upgrade, people
who buy one bag at a time take the subscription offer. The engine is not told; it
learns it from the outcomes, and its share of accepted offers climbs over the replay
while the control group's (a random eligible action) stays flat. The draws come from
a generator seeded by the demo's seed, so two loads tell the same story."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from rapport.tenancy.models import Workspace
from rapport.tenancy.services import Actor

DEMO_DECISION_DAYS = 30
# Decisions the replay makes at most (the banner on some visits, not every one).
DEMO_DECISIONS = 2000

ACTIONS: list[dict[str, Any]] = [
    {
        "key": "brew-planner-tutorial",
        "name": "Brew Planner tutorial",
        "kind": "message",
        "channels": ["web", "app", "email"],
        "value": "5",
        "content": {
            "web": {
                "title": "Plan your week of coffee",
                "body": "Three minutes with the Brew Planner and your beans arrive "
                "when you need them.",
                "link_url": "/brew-planner",
            },
            "email": {
                "title": "Get more from your subscription",
                "body": "The Brew Planner keeps your deliveries in step with your mornings.",
            },
        },
    },
    {
        "key": "subscribe-and-save",
        "name": "Subscribe and save 15%",
        "kind": "offer",
        "channels": ["web", "app", "email"],
        "value": "30",
        "currency": "EUR",
        "eligibility": {"all": [{"trait": "plan", "op": "ne", "value": "subscription"}]},
        "content": {
            "web": {
                "title": "15% off every bag, delivered",
                "body": "Switch to a subscription and save on every order.",
                "link_url": "/subscribe",
            }
        },
    },
    {
        "key": "office-upgrade",
        "name": "Office coffee plan",
        "kind": "offer",
        "channels": ["web", "email"],
        "value": "60",
        "currency": "EUR",
        "content": {
            "web": {
                "title": "Coffee for the whole office",
                "body": "One delivery for the team, billed monthly.",
                "link_url": "/office",
            }
        },
    },
    {
        "key": "review-request",
        "name": "Review your last bag",
        "kind": "message",
        "channels": ["web", "app", "email"],
        "value": "2",
        "content": {
            "web": {
                "title": "How was your last bag?",
                "body": "Two questions, and your next order ships free.",
                "link_url": "/review",
            }
        },
    },
    {
        "key": "service-call",
        "name": "Call from the coffee team",
        "kind": "service",
        "channels": ["assisted"],
        "value": "20",
        "content": {"assisted": {"title": "Call this customer", "body": "Ask how it is going."}},
    },
]

# The true chance that a customer accepts an action shown to them, by plan.
ACCEPTANCE = {
    "brew-planner-tutorial": {"subscription": 0.30, "pay-as-you-go": 0.04},
    "subscribe-and-save": {"subscription": 0.0, "pay-as-you-go": 0.22},
    "office-upgrade": {"subscription": 0.10, "pay-as-you-go": 0.02},
    "review-request": {"subscription": 0.08, "pay-as-you-go": 0.08},
}


def demo_decisions(
    *,
    workspace: Workspace,
    actor: Actor,
    end: datetime,
    count: int = DEMO_DECISIONS,
    days: int = DEMO_DECISION_DAYS,
    seed: int = 7,
) -> dict[str, Any]:
    """Create the catalogue and replay the home banner's decisions over the last `days`
    days (once per workspace: a workspace with actions already is left as it is).
    Returns the decisions made and the outcomes recorded, per action."""
    from rapport.decisions import services as decisions
    from rapport.decisions.engine import decision_make
    from rapport.decisions.models import Action
    from rapport.decisions.outcomes import decisions_learn, outcome_record
    from rapport.profiles.models import Profile

    if Action.objects.filter(workspace=workspace).exists():
        return {}
    for data in ACTIONS:
        decisions.action_create(workspace=workspace, actor=actor, data=dict(data))
    profiles = list(
        Profile.objects.filter(workspace=workspace, merged_into__isnull=True)
        .order_by("pk")
        .only("pk", "traits")
    )
    if not profiles:
        return {"decisions": 0}
    rng = np.random.default_rng(seed)
    start = end - timedelta(days=days)
    # The clock moves forward decision by decision; the engine learns every 50.
    moments = sorted(start + (end - start) * float(x) for x in rng.random(count))
    given: Counter[str] = Counter()
    accepted: Counter[str] = Counter()
    for n, now in enumerate(moments):
        profile = profiles[int(rng.integers(len(profiles)))]
        result = decision_make(
            workspace=workspace,
            profile=profile,
            channel="web",
            placement="home_banner",
            origin="demo",
            now=now,
        )
        for candidate in result.actions:
            given[candidate.key] += 1
            outcome_record(
                workspace=workspace,
                decision_id=result.decision_id,
                action_key=candidate.key,
                outcome="impression",
                at=now,
            )
            plan = (profile.traits or {}).get("plan") or "pay-as-you-go"
            rate = ACCEPTANCE.get(candidate.key, {}).get(plan, 0.05)
            if rng.random() < rate:
                accepted[candidate.key] += 1
                outcome_record(
                    workspace=workspace,
                    decision_id=result.decision_id,
                    action_key=candidate.key,
                    outcome="accepted",
                    at=now + timedelta(minutes=2),
                )
        if n % 50 == 49:
            decisions_learn(workspace_id=workspace.pk, now=now)
    decisions_learn(workspace_id=workspace.pk, now=end + timedelta(days=2))
    return {
        "decisions": count,
        "given": dict(given),
        "accepted": dict(accepted),
    }
