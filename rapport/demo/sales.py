"""The demo company's sales team (rapport/sales): two salespeople who own its offices
and their people, two pipelines (office subscriptions, wholesale), a deal per office
over the story's months — won, lost, or still open for the recent ones — with the
moves each made and when, a logged call on some, and the open deals' follow-up tasks,
a few of them overdue. The workspace's admins get tasks too, so that "My tasks" and
the home page's card have something to say to whoever signs in.

Whether an office's deal is won depends on its size and its industry (bigger offices,
and design and software studios, buy more often), drawn from a generator seeded by
the demo's seed: two loads tell the same story, and a lead score has something to
learn. Every deal, move, task and note goes through the sales services (audited,
on the timelines); the times are then set to when they happened in the story."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from rapport.profiles.models import Account, AccountMember
from rapport.sales import services
from rapport.sales.models import Deal, DealStageChange, Note, Notification, Owner, Pipeline
from rapport.tenancy.models import Membership, Workspace
from rapport.tenancy.permissions import Role
from rapport.tenancy.services import Actor, member_add

SELLERS = [
    ("maria@sales.demo.example.com", "Maria Santos"),
    ("tom@sales.demo.example.com", "Tom Becker"),
]
WHOLESALE_STAGES = [
    {"name": "Enquiry", "probability": 10},
    {"name": "Samples sent", "probability": 30},
    {"name": "Tasting", "probability": 50},
    {"name": "Terms agreed", "probability": 80},
    {"name": "Won", "kind": "won"},
    {"name": "Lost", "kind": "lost"},
]
# Deals opened in the last OPEN_DAYS of the story are still open, and a share of the
# others is a deal that came back recently (a renewal, more seats) and is open too.
OPEN_DAYS = 45
OPEN_SHARE = 0.2
# Per seat and year, in pounds: an office subscription's amount.
SEAT_PRICE = Decimal("96")
KEEN_INDUSTRIES = {"design", "software"}


def _win_chance(employees: int, industry: str) -> float:
    chance = 0.25 + min(employees, 120) / 240
    return min(0.9, chance + (0.15 if industry in KEEN_INDUSTRIES else 0.0))


def _backdate(deal: Deal, moves: list[datetime], closed: bool) -> None:
    changes = list(DealStageChange.objects.filter(deal=deal).order_by("at", "created_at"))
    for change, at in zip(changes, moves, strict=False):
        DealStageChange.objects.filter(pk=change.pk).update(at=at, created_at=at)
    Deal.objects.filter(pk=deal.pk).update(
        created_at=moves[0],
        updated_at=moves[-1],
        stage_changed_at=moves[-1],
        closed_at=moves[-1] if closed else None,
    )


def demo_sales(*, workspace: Workspace, actor: Actor, end: datetime, seed: int) -> dict[str, Any]:
    rng = random.Random(seed * 7919 + 27)  # noqa: S311 - a story, not a secret
    if Pipeline.objects.filter(workspace=workspace, name="Office subscriptions").exists():
        # Loaded already (the same seed again stores nothing twice).
        return {"deals": Deal.objects.filter(workspace=workspace).count(), "loaded_before": True}
    sellers = []
    for email, name in SELLERS:
        member = Membership.objects.filter(workspace=workspace, user__email=email).first()
        if member is None:
            member, _ = member_add(
                workspace=workspace, email=email, role=Role.SALES, name=name, actor=actor
            )
        sellers.append(member)
    admins = list(Membership.objects.filter(workspace=workspace, role=Role.ADMIN))
    offices = list(
        Account.objects.filter(workspace=workspace, merged_into__isnull=True).order_by("group_id")
    )
    if not offices:
        return {"deals": 0}
    services.owners_assign(
        workspace=workspace,
        actor=actor,
        member_ids=[s.pk for s in sellers],
        account_ids=[a.pk for a in offices],
    )
    owner_of = {
        o.account_id: o.member
        for o in Owner.objects.filter(workspace=workspace, account__in=offices)
    }
    people: dict[Any, list] = {}
    for link in AccountMember.objects.filter(workspace=workspace, account__in=offices):
        people.setdefault(link.account_id, []).append(link.profile_id)
    for seller in sellers:
        mine = [p for a in offices if owner_of[a.pk] == seller for p in people.get(a.pk, [])]
        if mine:
            services.owners_assign(
                workspace=workspace,
                actor=actor,
                member_ids=[seller.pk],
                profile_ids=mine,
                mode="one",
            )

    offices_pipeline = services.pipeline_create(
        workspace=workspace, actor=actor, name="Office subscriptions", currency="GBP"
    )
    wholesale = services.pipeline_create(
        workspace=workspace, actor=actor, name="Wholesale", currency="GBP", stages=WHOLESALE_STAGES
    )
    counts = {"won": 0, "lost": 0, "open": 0}
    plans = []
    for office in offices:
        plans.append((offices_pipeline, office, False))
        if rng.random() < 0.12:
            plans.append((wholesale, office, True))
    follow_ups = []
    for pipeline, office, is_wholesale in plans:
        stages = list(pipeline.stages.order_by("position"))
        open_stages = [s for s in stages if s.kind == "open"]
        won = next(s for s in stages if s.kind == "won")
        lost = next(s for s in stages if s.kind == "lost")
        start = office.first_seen_at or end - timedelta(days=300)
        opened = min(start + timedelta(days=rng.randint(0, 20)), end - timedelta(days=2))
        if rng.random() < OPEN_SHARE:
            opened = end - timedelta(days=rng.randint(5, OPEN_DAYS - 5))
        employees = int((office.traits or {}).get("employees") or 10)
        industry = str((office.traits or {}).get("industry") or "")
        amount = Decimal(rng.randint(8, 40) * 250) if is_wholesale else SEAT_PRICE * employees
        owner = owner_of[office.pk]
        members = people.get(office.pk, [])
        deal = services.deal_create(
            workspace=workspace,
            actor=Actor.for_user(owner.user),
            data={
                "name": f"{office.name or office.group_id}: {pipeline.name.lower()}",
                "stage_id": open_stages[0].pk,
                "amount": amount,
                "owner_id": owner.pk,
                "account_id": office.pk,
                "profile_id": members[0] if members else None,
                "expected_close": (opened + timedelta(days=30)).date(),
            },
        )
        moves = [opened]
        at = opened
        still_open = (end - opened).days < OPEN_DAYS
        reach = rng.randint(1, len(open_stages) - 1) if len(open_stages) > 1 else 0
        for stage in open_stages[1 : reach + 1]:
            at = min(at + timedelta(days=rng.randint(3, 12)), end - timedelta(hours=1))
            services.deal_move(deal=deal, actor=Actor.for_user(owner.user), stage_id=stage.pk)
            moves.append(at)
        if still_open:
            counts["open"] += 1
            follow_ups.append((deal, owner, members))
        else:
            outcome = won if rng.random() < _win_chance(employees, industry) else lost
            at = min(at + timedelta(days=rng.randint(2, 15)), end - timedelta(hours=1))
            services.deal_move(deal=deal, actor=Actor.for_user(owner.user), stage_id=outcome.pk)
            moves.append(at)
            counts[outcome.kind] += 1
        _backdate(deal, moves, closed=not still_open)
        if members and rng.random() < 0.3:
            note = services.note_create(
                workspace=workspace,
                actor=Actor.for_user(owner.user),
                data={
                    "kind": "call",
                    "body": f"<p>Spoke with the office manager about {employees} seats.</p>",
                    "deal_id": deal.pk,
                    "profile_id": members[0],
                },
            )
            Note.objects.filter(pk=note.pk).update(occurred_at=moves[0], created_at=moves[0])
    tasks = 0
    # Whoever signs in as an admin has one overdue, one due later today and the rest
    # upcoming.
    late_today = max(end.replace(hour=22, minute=0, second=0, microsecond=0), end) - end
    admin_due = [timedelta(days=-2), late_today + timedelta(minutes=10), timedelta(days=4)]
    for n, (deal, owner, members) in enumerate(follow_ups):
        for member in [owner, *(admins if n < len(admin_due) else [])]:
            due = (
                admin_due[n]
                if member in admins
                else timedelta(days=rng.randint(-3, 7), hours=rng.randint(0, 8))
            )
            services.task_create(
                workspace=workspace,
                actor=actor,
                data={
                    "title": f"Follow up: {deal.name}",
                    "due_at": end + due,
                    "assignee_id": member.pk,
                    "deal_id": deal.pk,
                    "profile_id": members[0] if members else None,
                },
            )
            tasks += 1
    # The lead score learns from the closed deals (a small demo may have too few).
    from rapport.core.errors import ConflictError

    try:
        lead_model = services.lead_model_train(workspace=workspace, actor=actor).metrics
    except ConflictError:
        lead_model = None
    # The notifications of the demo's own tasks are not news to anyone.
    Notification.objects.filter(workspace=workspace).delete()
    return {
        "sellers": len(sellers),
        "offices_owned": len(offices),
        "deals": sum(counts.values()),
        **counts,
        "tasks": tasks,
        "lead_model": lead_model,
    }
