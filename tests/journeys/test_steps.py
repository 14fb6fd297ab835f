"""Journeys walked with a frozen clock: the waits, event waits and their timeouts,
goals, holdouts, versions, branches and splits, triggers and re-entry."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from rapport.channels.models import Message
from rapport.channels.services import contact_policy_set
from rapport.journeys import services
from rapport.journeys.models import Enrolment, StepRun
from rapport.journeys.selectors import journey_conversion, journey_step_counts
from rapport.profiles.models import Profile
from tests.journeys.conftest import ACTOR, advance, customers, email, journey

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)  # a Monday, 06:00 UTC


def send(next_=None, subject="Hello"):
    return {
        "type": "send",
        "channel": "email",
        "purpose": "marketing",
        "content": email(subject),
        "next": next_,
    }


def person(shop, user_id: str, **traits) -> Profile:
    shop.send({"type": "identify", "userId": user_id, "traits": traits})
    return Profile.objects.get(workspace=shop.workspace, identifiers__value=user_id)


def track(shop, user_id: str, event: str, **properties):
    shop.send({"type": "track", "userId": user_id, "event": event, "properties": properties})


def outcomes(enrolment) -> list[tuple[str, str]]:
    return list(
        StepRun.objects.filter(enrolment=enrolment).order_by("id").values_list("step", "outcome")
    )


def test_time_of_day_waits_in_each_customers_zone(shop):
    contact_policy_set(workspace=shop.workspace, actor=ACTOR, timezone_name="Asia/Tokyo")
    with time_machine.travel(T0, tick=False):
        j = journey(
            shop,
            {"at9": {"type": "wait_until", "time": "09:00", "next": "hi"}, "hi": send()},
        )
        berlin, new_york, nowhere = (
            customers(shop, 1, timezone="Europe/Berlin")[0],
            customers(shop, 1, timezone="America/New_York")[0],
            customers(shop, 1)[0],
        )
        services.enrolments_create_many(journey=j, profile_ids=[berlin.pk, new_york.pk, nowhere.pk])
        advance(shop)
    due = {e.profile_id: e.due_at for e in Enrolment.objects.all()}
    # 06:00 UTC is 07:00 in Berlin (09:00 today), 01:00 in New York (09:00 today, EST),
    # 15:00 in Tokyo (09:00 tomorrow): the workspace's zone for a customer without one.
    assert due[berlin.pk] == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    assert due[new_york.pk] == datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    assert due[nowhere.pk] == datetime(2026, 3, 3, 0, 0, tzinfo=UTC)
    with time_machine.travel(datetime(2026, 3, 2, 8, 0, tzinfo=UTC), tick=False):
        assert advance(shop)["claimed"] == 1
    assert set(Message.objects.values_list("profile_id", flat=True)) == {berlin.pk}
    with time_machine.travel(datetime(2026, 3, 3, 0, 0, tzinfo=UTC), tick=False):
        assert advance(shop)["claimed"] == 2
    assert Message.objects.count() == 3
    assert set(Enrolment.objects.values_list("state", flat=True)) == {"completed"}


def test_an_event_wait_wakes_on_the_event_or_times_out(shop):
    with time_machine.travel(T0, tick=False):
        ann, bob = person(shop, "ann"), person(shop, "bob")
        j = journey(
            shop,
            {
                "wait3": {
                    "type": "wait_event",
                    "event": "Brew Planner Used",
                    "where": [{"property": "plan", "op": "eq", "value": "full"}],
                    "timeout_seconds": 3 * 86400,
                    "next": "well_done",
                    "timeout_next": "tutorial",
                },
                "well_done": send(subject="Well done"),
                "tutorial": send(subject="Tutorial"),
            },
        )
        services.enrolments_create_many(journey=j, profile_ids=[ann.pk, bob.pk])
        advance(shop)
        assert set(Enrolment.objects.values_list("waiting_for", flat=True)) == {"Brew Planner Used"}
    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        # Not matching the step's `where`: no wake-up.
        track(shop, "ann", "Brew Planner Used", plan="draft")
        assert Enrolment.objects.get(profile=ann).waiting_for == "Brew Planner Used"
        track(shop, "ann", "Brew Planner Used", plan="full")
        woken = Enrolment.objects.get(profile=ann)
        assert (woken.waiting_for, woken.resume, woken.due_at) == (
            "",
            "well_done",
            T0 + timedelta(days=1),
        )
        advance(shop)
    with time_machine.travel(T0 + timedelta(days=3), tick=False):
        advance(shop)
    a, b = Enrolment.objects.get(profile=ann), Enrolment.objects.get(profile=bob)
    assert outcomes(a) == [("wait3", "event"), ("well_done", "sent")]
    assert outcomes(b) == [("wait3", "timeout"), ("tutorial", "sent")]
    assert a.state == b.state == "completed"


def test_an_event_trigger_enrols_and_runs_the_first_step(shop, settings):
    with time_machine.travel(T0, tick=False):
        person(shop, "ann")
        journey(
            shop,
            {"hi": send()},
            trigger={
                "type": "event",
                "event": "Signed Up",
                "where": [{"property": "plan", "op": "eq", "value": "pro"}],
            },
        )
        track(shop, "ann", "Signed Up", plan="free")
        assert not Enrolment.objects.exists()
        track(shop, "ann", "Signed Up", plan="pro")
        track(shop, "ann", "Signed Up", plan="pro")  # in already: once
        assert Enrolment.objects.count() == 1
        advance(shop)
    assert Message.objects.count() == 1


def test_the_runner_is_woken_by_an_enrolment(shop, settings):
    from django_tasks_db.models import DBTaskResult

    settings.RAPPORT_JOURNEYS_ENQUEUE = True
    j = journey(shop, {"hi": send()})
    people = customers(shop, 3)
    services.enrolments_create_many(journey=j, profile_ids=[p.pk for p in people])
    services.enrolments_create_many(journey=j, profile_ids=[p.pk for p in customers(shop, 2)])
    waiting = DBTaskResult.objects.filter(task_path="rapport.journeys.tasks.journeys_advance")
    # One task waiting is enough, however many enrolments were made.
    assert waiting.count() == 1
    assert waiting.get().args_kwargs["kwargs"] == {"workspace_id": str(shop.workspace.pk)}


def test_a_goal_met_mid_wait_exits_as_converted(shop):
    with time_machine.travel(T0, tick=False):
        ann, bob = person(shop, "ann"), person(shop, "bob")
        j = journey(
            shop,
            {
                "hi": send("wait"),
                "wait": {"type": "wait", "seconds": 7 * 86400, "next": "again"},
                "again": send(subject="Again"),
            },
            goal={"event": "Order Completed", "where": [], "within_days": 30},
        )
        services.enrolments_create_many(journey=j, profile_ids=[ann.pk, bob.pk])
        advance(shop)
    with time_machine.travel(T0 + timedelta(days=2), tick=False):
        track(shop, "ann", "Order Completed", total=20)
    a = Enrolment.objects.get(profile=ann)
    assert (a.state, a.exit_reason, a.due_at) == ("converted", "goal", None)
    with time_machine.travel(T0 + timedelta(days=7), tick=False):
        advance(shop)
    assert Message.objects.filter(profile=ann).count() == 1
    assert Message.objects.filter(profile=bob).count() == 2
    counts = journey_step_counts(workspace=shop.workspace, journey=j)
    assert counts["wait"] == {"entered": 2, "waiting": 0, "passed": 1, "exited": 1}
    conversion = journey_conversion(workspace=shop.workspace, journey=j)
    assert (conversion["enrolled"], conversion["enrolled_converted"]) == (2, 1)


def test_a_goal_met_after_the_journey_ended_counts_within_its_window(shop):
    """As a held-out customer is watched for the goal's whole window, so is one whose
    steps ended sooner: the comparison with the holdout is like for like."""
    with time_machine.travel(T0, tick=False):
        ann, bob, cy = person(shop, "ann"), person(shop, "bob"), person(shop, "cy")
        j = journey(
            shop, {"hi": send()}, goal={"event": "Order Completed", "where": [], "within_days": 30}
        )
        services.enrolments_create_many(journey=j, profile_ids=[ann.pk, bob.pk, cy.pk])
        advance(shop)
    assert set(Enrolment.objects.values_list("state", flat=True)) == {"completed"}
    with time_machine.travel(T0 + timedelta(days=5), tick=False):
        track(shop, "ann", "Order Completed", total=20)
    with time_machine.travel(T0 + timedelta(days=31), tick=False):
        track(shop, "bob", "Order Completed", total=20)
    a, b, c = (Enrolment.objects.get(profile=p) for p in (ann, bob, cy))
    assert (a.state, a.exit_reason) == ("converted", "goal")
    assert a.exited_at == T0  # when her steps ended, not when she converted
    assert (b.state, c.state) == ("completed", "completed")
    conversion = journey_conversion(workspace=shop.workspace, journey=j)
    assert (conversion["enrolled"], conversion["enrolled_converted"]) == (3, 1)


def test_holdout_customers_receive_nothing_and_are_measured(shop):
    with time_machine.travel(T0, tick=False):
        j = journey(
            shop,
            {
                "hi": send("webhook"),
                "webhook": {"type": "webhook", "url": "https://hooks.example.com/x"},
            },
            holdout_percent=30,
            goal={"event": "Order Completed", "within_days": 10},
        )
        people = customers(shop, 400)
        made = services.enrolments_create_many(journey=j, profile_ids=[p.pk for p in people])
        advance(shop)
    held = {e.profile_id for e in made if e.holdout}
    assert 80 < len(held) < 160
    assert all(e.state == "held_out" for e in Enrolment.objects.filter(holdout=True))
    messaged = set(Message.objects.values_list("profile_id", flat=True))
    assert messaged and not (messaged & held)
    assert len(messaged) == 400 - len(held)
    # The same customers are held out on every run (a stable hash of journey and customer).
    assert {p.pk for p in people if services.held_out(j, p.pk)} == held
    # When the goal's window ends, the holdout's enrolments end too.
    with time_machine.travel(T0 + timedelta(days=10), tick=False):
        advance(shop)
    assert set(Enrolment.objects.filter(holdout=True).values_list("state", flat=True)) == {
        "completed"
    }
    assert Message.objects.count() == 2 * (400 - len(held))


def test_a_version_change_keeps_customers_on_theirs_until_migrated(shop):
    with time_machine.travel(T0, tick=False):
        j = journey(
            shop,
            {"wait": {"type": "wait", "seconds": 86400, "next": "old"}, "old": send(subject="Old")},
        )
        (first,) = customers(shop, 1)
        services.enrolments_create_many(journey=j, profile_ids=[first.pk])
        advance(shop)
        j = services.journey_update(
            journey=j,
            graph={
                "name": "Onboarding",
                "start": "wait",
                "steps": {
                    "wait": {"type": "wait", "seconds": 86400, "next": "new"},
                    "new": send(subject="New"),
                },
            },
            actor=ACTOR,
        )
        (second,) = customers(shop, 1)
        services.enrolments_create_many(journey=j, profile_ids=[second.pk])
        advance(shop)
    assert j.version == 2
    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        advance(shop)
    assert outcomes(Enrolment.objects.get(profile=first))[-1] == ("old", "sent")
    assert outcomes(Enrolment.objects.get(profile=second))[-1] == ("new", "sent")
    assert Enrolment.objects.get(profile=first).version.number == 1


def test_migrating_moves_waiting_customers_to_the_new_graph(shop):
    with time_machine.travel(T0, tick=False):
        j = journey(
            shop,
            {"wait": {"type": "wait", "seconds": 86400, "next": "old"}, "old": send(subject="Old")},
        )
        people = customers(shop, 3)
        services.enrolments_create_many(journey=j, profile_ids=[p.pk for p in people])
        advance(shop)
        j = services.journey_update(
            journey=j,
            graph={
                "name": "Onboarding",
                "start": "pause",
                "steps": {
                    "pause": {"type": "wait", "seconds": 86400, "next": "new"},
                    "new": send(subject="New"),
                },
            },
            actor=ACTOR,
        )
        with pytest.raises(Exception, match="wait"):
            services.journey_migrate(journey=j, from_version=1, actor=ACTOR)
        moved = services.journey_migrate(
            journey=j, from_version=1, mapping={"wait": "pause"}, actor=ACTOR
        )
    assert moved == 3
    assert set(Enrolment.objects.values_list("step", "resume")) == {("pause", "new")}
    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        advance(shop)
    assert set(Message.objects.values_list("content__subject", flat=True)) == {"New"}


def test_branch_and_split(shop):
    j = journey(
        shop,
        {
            "branch": {
                "type": "branch",
                "rule": {"trait": "plan", "op": "eq", "value": "pro"},
                "yes": "ab",
                "no": "bye",
            },
            "ab": {
                "type": "split",
                "paths": [
                    {"share": 50, "next": "a", "label": "A"},
                    {"share": 50, "next": "b", "label": "B"},
                ],
            },
            "a": {"type": "update_trait", "trait": "variant", "value": "A", "next": None},
            "b": {"type": "update_trait", "trait": "variant", "value": "B", "next": None},
            "bye": {"type": "exit"},
        },
    )
    pros, frees = customers(shop, 200, plan="pro"), customers(shop, 20, plan="free")
    services.enrolments_create_many(journey=j, profile_ids=[p.pk for p in pros + frees])
    advance(shop)
    paths = dict(Enrolment.objects.values_list("profile_id", "path"))
    assert {paths[p.pk] for p in frees} == {""}
    a = [p for p in pros if paths[p.pk] == "A"]
    assert 60 < len(a) < 140
    assert Profile.objects.get(pk=a[0].pk).traits["variant"] == "A"
    assert set(Enrolment.objects.values_list("state", flat=True)) == {"completed"}


def test_reentry_rules(shop):
    (ann,) = customers(shop, 1)
    graphs = {
        "never": ({"mode": "never"}, [True, False, False]),
        "after": ({"mode": "after_days", "days": 2}, [True, False, True]),
        "always": ({"mode": "always"}, [True, True, True]),
    }
    for name, (reentry, expected) in graphs.items():
        j = journey(shop, {"hi": send()}, name=name, reentry=reentry)
        got = []
        for day in range(3):
            with time_machine.travel(T0 + timedelta(days=day * 1.5), tick=False):
                got.append(bool(services.enrolments_create_many(journey=j, profile_ids=[ann.pk])))
                advance(shop)
        assert got == expected, name


def test_pause_holds_due_steps_and_stop_exits_everyone(shop):
    with time_machine.travel(T0, tick=False):
        j = journey(shop, {"wait": {"type": "wait", "seconds": 60, "next": "hi"}, "hi": send()})
        people = customers(shop, 5)
        services.enrolments_create_many(journey=j, profile_ids=[p.pk for p in people])
        advance(shop)
        j = services.journey_pause(journey=j, actor=ACTOR)
        assert (
            services.enrolments_create_many(journey=j, profile_ids=[customers(shop, 1)[0].pk]) == []
        )
    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
        assert advance(shop)["claimed"] == 0
        j = services.journey_start(journey=j, actor=ACTOR)
        assert advance(shop)["claimed"] == 5
    assert Message.objects.count() == 5
    with time_machine.travel(T0 + timedelta(minutes=6), tick=False):
        j = journey(
            shop, {"wait": {"type": "wait", "seconds": 60, "next": "hi"}, "hi": send()}, name="Two"
        )
        services.enrolments_create_many(journey=j, profile_ids=[p.pk for p in people])
        advance(shop)
        services.journey_stop(journey=j, actor=ACTOR)
    assert set(Enrolment.objects.filter(journey=j).values_list("state", flat=True)) == {"exited"}
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        assert advance(shop)["claimed"] == 0


def test_a_step_logged_already_is_not_run_again(shop):
    """Two runners on one enrolment (a lease run out while its runner was alive): the
    second's step log collides, and its whole batch rolls back, sends included."""
    from django.db import IntegrityError

    j = journey(shop, {"hi": send()})
    (ann,) = customers(shop, 1)
    (e,) = services.enrolments_create_many(journey=j, profile_ids=[ann.pk])
    StepRun.objects.create(
        workspace=shop.workspace,
        journey=j,
        enrolment=e,
        step="hi",
        visit=1,
        outcome="sent",
        at=e.entered_at,
    )
    with pytest.raises(IntegrityError):
        services.enrolments_advance(workspace_id=shop.workspace.pk)
    assert not Message.objects.exists()
    assert Enrolment.objects.get().step == "hi"


def test_a_task_step_gives_the_customers_owner_a_task_once(shop):
    from rapport.sales.models import Task
    from rapport.sales.services import owner_set
    from rapport.tenancy.models import Membership

    j = journey(
        shop,
        {
            "task": {
                "type": "create_task",
                "title": "Call {{ customer.first_name }}",
                "due_in_days": 2,
            }
        },
    )
    ann, bob = customers(shop, 2, first_name="Ann")
    seller = Membership.objects.filter(workspace=shop.workspace).first()
    owner_set(workspace=shop.workspace, actor=ACTOR, member_id=seller.pk, profile=ann)
    services.enrolments_create_many(journey=j, profile_ids=[ann.pk, bob.pk])
    from django.utils import timezone

    before = timezone.now()
    advance(shop)
    advance(shop)
    tasks = {t.profile_id: t for t in Task.objects.filter(workspace=shop.workspace)}
    assert set(tasks) == {ann.pk, bob.pk}
    assert tasks[ann.pk].title == "Call Ann"
    assert tasks[ann.pk].assignee == seller
    assert tasks[bob.pk].assignee is None  # no owner: the team's unassigned tasks
    assert abs((tasks[ann.pk].due_at - before).total_seconds() - 2 * 86400) < 60
    run = StepRun.objects.get(step="task", enrolment__profile=ann)
    assert run.outcome == "task_created"
    assert run.detail["task_id"] == str(tasks[ann.pk].pk)


def test_the_timeline_shows_the_journey(shop):
    from rapport.profiles.selectors import profile_timeline

    j = journey(shop, {"hi": send()}, name="Welcome")
    ann = person(shop, "ann")
    services.enrolments_create_many(journey=j, profile_ids=[ann.pk])
    advance(shop)
    page = profile_timeline(workspace=shop.workspace, profile_id=ann.pk, kinds=["event"])
    whats = [i.data["journey"]["what"] for i in page.items if "journey" in i.data]
    assert sorted(whats) == ["completed", "entered", "sent"]


def test_a_rule_goal_is_checked_for_the_customers_of_each_batch(shop):
    with time_machine.travel(T0, tick=False):
        ann, bob = person(shop, "ann", plan="free"), person(shop, "bob", plan="free")
        j = journey(
            shop,
            {"wait": {"type": "wait", "seconds": 86400, "next": None}},
            goal={"rule": {"trait": "plan", "op": "eq", "value": "pro"}},
        )
        services.enrolments_create_many(journey=j, profile_ids=[ann.pk, bob.pk])
        advance(shop)
        shop.send({"type": "identify", "userId": "ann", "traits": {"plan": "pro"}})
    states = dict(Enrolment.objects.values_list("profile_id", "state"))
    assert states == {ann.pk: "converted", bob.pk: "active"}


def test_messages_of_a_step_are_one_per_customer_and_key(shop):
    from rapport.channels.services import messages_create_many
    from rapport.tenancy.models import Workspace

    people = customers(shop, 3)
    items = [{"profile_id": p.pk, "idempotency_key": f"k{i}"} for i, p in enumerate(people)]
    workspace = Workspace.objects.get(pk=shop.workspace.pk)
    first = messages_create_many(
        workspace=workspace, channel="email", purpose="marketing", items=items, content=email()
    )
    again = messages_create_many(
        workspace=workspace, channel="email", purpose="marketing", items=items, content=email()
    )
    assert set(first) == {"k0", "k1", "k2"}
    assert {k: m.pk for k, m in first.items()} == {k: m.pk for k, m in again.items()}
    assert Message.objects.count() == 3


def test_an_erased_customer_leaves_and_the_step_log_forgets_them(shop):
    from rapport.identity.services import profile_erase

    j = journey(
        shop,
        {
            "task": {"type": "create_task", "title": "Call {{ customer.first_name }}", "next": "w"},
            "w": {"type": "wait", "seconds": 3600, "next": None},
        },
    )
    ann = person(shop, "ann", first_name="Ann")
    services.enrolments_create_many(journey=j, profile_ids=[ann.pk])
    advance(shop)
    profile_erase(profile=ann, actor=ACTOR)
    # The profile's rows go (CASCADE): its enrolment, and the step log naming it.
    assert not Enrolment.objects.exists()
    assert not StepRun.objects.exists()


def test_a_failing_step_ends_its_customers_without_stalling_the_runner(shop, monkeypatch):
    j = journey(
        shop,
        {
            "b": {
                "type": "branch",
                "rule": {"trait": "plan", "op": "eq", "value": "x"},
                "yes": None,
                "no": None,
            }
        },
    )
    k = journey(shop, {"hi": send()}, name="Other")
    (ann,) = customers(shop, 1)
    services.enrolments_create_many(journey=j, profile_ids=[ann.pk])
    services.enrolments_create_many(journey=k, profile_ids=[ann.pk])

    def broken(*args, **kwargs):
        raise RuntimeError("the segment is gone")

    monkeypatch.setattr(services, "_branch", broken)
    advance(shop)
    failed = Enrolment.objects.get(journey=j)
    assert (failed.state, failed.exit_reason) == ("exited", "error")
    assert StepRun.objects.get(enrolment=failed).detail == {"error": "the segment is gone"}
    # The other journey's customer went on in the same batch.
    assert Enrolment.objects.get(journey=k).state == "completed"
    assert Message.objects.count() == 1
