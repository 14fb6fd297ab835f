"""The triggers other than `event` and `manual` (rapport/journeys/triggers.py), each on a
real database with a frozen clock: who is enrolled, once, and in which workspace."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection, transaction

from rapport.channels.models import ContactPolicy
from rapport.core.bulk import rows_insert
from rapport.journeys.models import Enrolment, Journey, TriggerMark
from rapport.journeys.services import journey_create, journey_start
from rapport.journeys.triggers import time_triggers_run, trigger_problems
from rapport.predictions.listeners import scores_watched
from rapport.predictions.models import ChurnScore, PredictionModel
from rapport.profiles.models import Profile
from rapport.segments import services as segments
from rapport.segments.models import Segment
from rapport.tenancy.services import Actor
from tests.conftest import tenant_create

ACTOR = Actor.system("tests")
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest.fixture
def shop(db):
    return tenant_create("Triggers", sample_data=False)


@pytest.fixture
def other(db):
    return tenant_create("Elsewhere", sample_data=False)


def customer(shop, **traits) -> Profile:
    return Profile.objects.create(workspace=shop.workspace, traits=traits)


def journey(shop, trigger: dict, *, reentry: str = "always") -> Journey:
    made = journey_create(
        workspace=shop.workspace,
        graph={
            "name": f"On {trigger['type']} {Journey.objects.count()}",
            "trigger": trigger,
            "reentry": {"mode": reentry},
            "start": "pause",
            "steps": {"pause": {"type": "wait", "seconds": 3600, "next": None}},
        },
        actor=ACTOR,
    )
    return journey_start(journey=made, actor=ACTOR)


def forced_active(shop, trigger: dict) -> Journey:
    """A journey running with a trigger it could not start with (another workspace's
    segment): the trigger side must still refuse it."""
    made = journey_create(
        workspace=shop.workspace,
        graph={
            "name": f"Forced {trigger['type']}",
            "trigger": trigger,
            "start": "pause",
            "steps": {"pause": {"type": "wait", "seconds": 3600, "next": None}},
        },
        actor=ACTOR,
    )
    Journey.objects.filter(pk=made.pk).update(status="active", started_at=NOW - timedelta(days=1))
    made.refresh_from_db()
    return made


def enrolled(j: Journey) -> list:
    """The customers enrolled, once per enrolment (a customer twice: enrolled twice)."""
    return sorted(
        str(p) for p in Enrolment.objects.filter(journey=j).values_list("profile_id", flat=True)
    )


def ids(*profiles) -> list:
    return sorted(str(p.pk) for p in profiles)


def finish(j: Journey) -> None:
    """As if the runner took everyone through: a new occurrence may enrol them again."""
    Enrolment.objects.filter(journey=j).update(state="completed", due_at=None)


# --- segments ---------------------------------------------------------------------------


def test_entering_a_dynamic_segment_enrols_each_entry_once(shop, time_machine):
    time_machine.move_to(NOW, tick=False)
    ann, bob, cy = customer(shop, plan="pro"), customer(shop, plan="free"), customer(shop)
    pros = segments.segment_create(
        workspace=shop.workspace,
        name="Pros",
        rule={"trait": "plan", "op": "eq", "value": "pro"},
        actor=ACTOR,
        refresh="now",
    )
    entered = journey(shop, {"type": "segment_entered", "segment_id": str(pros.pk)})
    left = journey(shop, {"type": "segment_left", "segment_id": str(pros.pk)})
    # Ann was in before the journey started: she did not enter since.
    assert enrolled(entered) == []

    time_machine.move_to(NOW + timedelta(minutes=1), tick=False)
    Profile.objects.filter(pk=bob.pk).update(traits={"plan": "pro"})
    Profile.objects.filter(pk=ann.pk).update(traits={"plan": "free"})
    assert segments.segment_refresh(segment=pros) == {"entered": 1, "left": 1, "size": 1}
    assert enrolled(entered) == ids(bob)
    assert enrolled(left) == ids(ann)

    # Refreshing again changes nothing and enrols nobody, even with the first ones done.
    finish(entered), finish(left)
    time_machine.move_to(NOW + timedelta(minutes=2), tick=False)
    segments.segment_refresh(segment=pros)
    assert enrolled(entered) == ids(bob)

    # Ann comes back: a new entry, a new enrolment (the re-entry rule allows it).
    time_machine.move_to(NOW + timedelta(minutes=3), tick=False)
    Profile.objects.filter(pk=ann.pk).update(traits={"plan": "pro"})
    Profile.objects.filter(pk=cy.pk).update(traits={"plan": "pro"})
    segments.segment_refresh(segment=pros)
    assert enrolled(entered) == ids(ann, bob, cy)


def test_a_static_list_edited_by_hand_triggers_too_and_a_rolled_back_change_does_not(
    shop, time_machine
):
    time_machine.move_to(NOW, tick=False)
    ann, bob = customer(shop), customer(shop)
    vips = segments.segment_create(
        workspace=shop.workspace, name="VIPs", kind="static", actor=ACTOR
    )
    entered = journey(shop, {"type": "segment_entered", "segment_id": str(vips.pk)})
    left = journey(shop, {"type": "segment_left", "segment_id": str(vips.pk)})
    segments.segment_members_add(segment=vips, values=[str(ann.pk), str(bob.pk)], actor=ACTOR)
    assert enrolled(entered) == ids(ann, bob)
    time_machine.move_to(NOW + timedelta(minutes=1), tick=False)
    segments.segment_members_remove(segment=vips, profile_ids=[bob.pk], actor=ACTOR)
    assert enrolled(left) == ids(bob)

    # The enrolment is written in the change's transaction: no change, no enrolment.
    time_machine.move_to(NOW + timedelta(minutes=2), tick=False)
    with pytest.raises(RuntimeError), transaction.atomic():
        segments.segment_members_remove(segment=vips, profile_ids=[ann.pk], actor=ACTOR)
        raise RuntimeError
    assert enrolled(left) == ids(bob)


def test_another_workspaces_segment_triggers_nothing(shop, other, time_machine):
    time_machine.move_to(NOW, tick=False)
    theirs = segments.segment_create(
        workspace=other.workspace, name="Theirs", kind="static", actor=ACTOR
    )
    mine = forced_active(shop, {"type": "segment_entered", "segment_id": str(theirs.pk)})
    scheduled = forced_active(
        shop, {"type": "schedule", "cron": "* * * * *", "segment_id": str(theirs.pk)}
    )
    stranger = Profile.objects.create(workspace=other.workspace)
    segments.segment_members_add(segment=theirs, values=[str(stranger.pk)], actor=ACTOR)
    time_machine.move_to(NOW + timedelta(minutes=5), tick=False)
    assert time_triggers_run(workspace_id=shop.workspace.pk) == {str(scheduled.pk): 0}
    assert enrolled(mine) == enrolled(scheduled) == []
    assert not Enrolment.objects.filter(profile=stranger).exists()


# --- lifecycle ------------------------------------------------------------------------------


def test_arriving_at_a_lifecycle_stage_or_sub_stage_enrols(shop, time_machine):
    time_machine.move_to(NOW, tick=False)
    segments.lifecycle_stages_ensure(workspace_id=shop.workspace.pk)
    # A default sub-stage: onboarding customers who used the key feature (the
    # workspace's key event, "Key Feature Used" unless set).
    stage = journey(shop, {"type": "lifecycle_changed", "stage": "onboarding"})
    sub = journey(
        shop,
        {"type": "lifecycle_changed", "stage": "onboarding", "sub_stage": "onb_key_feature"},
    )
    shop.send({"type": "track", "userId": "ann", "event": "Signed Up"})
    ann = Profile.objects.get(workspace=shop.workspace, merged_into__isnull=True)
    assert enrolled(stage) == ids(ann)
    assert enrolled(sub) == []
    # Within the stage, into the sub-stage: the sub-stage's journey, not the stage's again.
    finish(stage)
    time_machine.move_to(NOW + timedelta(minutes=1), tick=False)
    shop.send({"type": "track", "userId": "ann", "event": "Key Feature Used"})
    assert enrolled(sub) == ids(ann)
    assert enrolled(stage) == ids(ann)
    # Staying where she is: nothing.
    time_machine.move_to(NOW + timedelta(minutes=2), tick=False)
    finish(sub)
    shop.send({"type": "track", "userId": "ann", "event": "Key Feature Used"})
    segments.lifecycle_refresh(workspace_id=shop.workspace.pk)
    assert enrolled(sub) == ids(ann)
    from rapport.journeys.triggers import trigger_profiles_now

    assert sorted(map(str, trigger_profiles_now(journey=sub))) == ids(ann)


# --- prediction -----------------------------------------------------------------------------


def _rescore(shop, model, scores: dict) -> None:
    """A scoring's rewrite, as churn_scores_refresh does it: every score replaced."""
    with (
        transaction.atomic(),
        scores_watched(workspace_id=shop.workspace.pk, kind="churn", now=NOW),
    ):
        ChurnScore.objects.filter(workspace=shop.workspace).delete()
        rows_insert(
            ChurnScore,
            [
                {
                    "profile_id": p.pk,
                    "workspace_id": shop.workspace.pk,
                    "model_id": model.pk,
                    "probability": value,
                    "band": "high" if value >= 0.7 else "low",
                    "reasons": [],
                    "computed_at": NOW,
                }
                for p, value in scores.items()
            ],
            conflict=["profile_id"],
        )


def test_a_churn_risk_enrols_when_it_crosses_the_threshold_not_on_every_rescore(shop):
    ann, bob, cy = customer(shop), customer(shop), customer(shop)
    model = PredictionModel.objects.create(
        workspace=shop.workspace, kind="churn", version=1, trained_at=NOW
    )
    # Bob is already above it when the journey starts: he has not crossed.
    _rescore(shop, model, {ann: 0.2, bob: 0.9})
    risky = journey(
        shop, {"type": "prediction", "model": "churn", "field": "risk", "op": "gte", "value": 0.7}
    )
    _rescore(shop, model, {ann: 0.2, bob: 0.9})
    assert enrolled(risky) == []
    _rescore(shop, model, {ann: 0.75, bob: 0.95, cy: 0.1})
    assert enrolled(risky) == ids(ann)
    finish(risky)
    # Still above: no crossing. Down and up again: a new one.
    _rescore(shop, model, {ann: 0.8, bob: 0.3, cy: 0.1})
    assert enrolled(risky) == ids(ann)
    _rescore(shop, model, {ann: 0.8, bob: 0.71, cy: 0.1})
    assert enrolled(risky) == ids(ann, bob)


def test_scoring_itself_reports_crossings(shop, time_machine):
    """The real CLV scoring: a customer scored for the first time crosses into
    `p_alive gte 0`; scoring again moves nobody."""
    from rapport.predictions.services import clv_scores_refresh

    time_machine.move_to(NOW, tick=False)
    clv = PredictionModel.objects.create(
        workspace=shop.workspace,
        kind="clv",
        version=1,
        trained_at=NOW,
        config={"time_unit": "week", "months": 12},
        params={
            "bgnbd": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
            "gamma_gamma": {"p": 6.25, "q": 3.74, "gamma": 15.44},
        },
    )
    alive = journey(
        shop, {"type": "prediction", "model": "clv", "field": "p_alive", "op": "gte", "value": 0}
    )
    for days in (40, 20):
        shop.send(
            {
                "type": "track",
                "userId": "ann",
                "event": "Order Completed",
                "properties": {"revenue": 30},
                "timestamp": (NOW - timedelta(days=days)).isoformat(),
            }
        )
    assert clv_scores_refresh(workspace_id=shop.workspace.pk, model=clv)["scored"] == 1
    ann = Profile.objects.get(workspace=shop.workspace, merged_into__isnull=True)
    assert enrolled(alive) == ids(ann)
    finish(alive)
    clv_scores_refresh(workspace_id=shop.workspace.pk, model=clv)
    assert enrolled(alive) == ids(ann)


# --- date_trait -----------------------------------------------------------------------------


def test_a_birthday_enrols_at_the_local_time_in_each_zone_once_a_year(shop, time_machine):
    ContactPolicy.objects.update_or_create(
        workspace=shop.workspace, defaults={"timezone": "America/Sao_Paulo"}
    )
    tokyo = customer(shop, birthday="1990-12-04", timezone="Asia/Tokyo")
    paris = customer(shop, birthday="1985-12-04", timezone="Europe/Paris")
    # No zone of her own (nor a valid one): the workspace's, São Paulo (UTC-3).
    sao = customer(shop, birthday="2000-12-04T00:00:00Z", timezone="Mars/Olympus")
    customer(shop, birthday="1990-12-25", timezone="Asia/Tokyo")
    customer(shop, timezone="Asia/Tokyo")
    customer(shop, birthday="not a date")
    time_machine.move_to(NOW - timedelta(days=2), tick=False)
    birthday = journey(
        shop, {"type": "date_trait", "trait": "birthday", "time": "09:00", "yearly": True}
    )

    # 3 December, 23:30 UTC: 4 December 08:30 in Tokyo, not yet 9:00.
    time_machine.move_to(datetime(2026, 12, 3, 23, 30, tzinfo=UTC), tick=False)
    assert time_triggers_run(workspace_id=shop.workspace.pk) == {str(birthday.pk): 0}
    # 00:05 UTC: 09:05 in Tokyo.
    time_machine.move_to(datetime(2026, 12, 4, 0, 5, tzinfo=UTC), tick=False)
    time_triggers_run(workspace_id=shop.workspace.pk)
    assert enrolled(birthday) == ids(tokyo)
    # Run twice, even with Tokyo's journey over: enrolled once.
    finish(birthday)
    time_triggers_run(workspace_id=shop.workspace.pk)
    assert enrolled(birthday) == ids(tokyo)
    # 08:00 UTC is 09:00 in Paris; São Paulo's nine o'clock is 12:00 UTC.
    time_machine.move_to(datetime(2026, 12, 4, 8, 0, tzinfo=UTC), tick=False)
    time_triggers_run(workspace_id=shop.workspace.pk)
    assert enrolled(birthday) == ids(tokyo, paris)
    time_machine.move_to(datetime(2026, 12, 4, 12, 1, tzinfo=UTC), tick=False)
    time_triggers_run(workspace_id=shop.workspace.pk)
    time_triggers_run(workspace_id=shop.workspace.pk)
    assert enrolled(birthday) == ids(tokyo, paris, sao)
    # The next day nobody; a year on, everyone again, once.
    finish(birthday)
    time_machine.move_to(datetime(2026, 12, 5, 12, 1, tzinfo=UTC), tick=False)
    time_triggers_run(workspace_id=shop.workspace.pk)
    assert len(enrolled(birthday)) == 3
    time_machine.move_to(datetime(2027, 12, 4, 13, 0, tzinfo=UTC), tick=False)
    time_triggers_run(workspace_id=shop.workspace.pk)
    time_triggers_run(workspace_id=shop.workspace.pk)
    assert enrolled(birthday) == sorted(ids(tokyo, paris, sao) * 2)
    # The marks of last year are gone, this year's kept.
    assert TriggerMark.objects.filter(journey=birthday, profile__isnull=False).count() == 3


def test_a_renewal_date_fires_its_offset_days_before_once(shop, time_machine):
    due = customer(shop, renewal_date="2026-12-18", timezone="America/New_York")
    next_year = customer(shop, renewal_date="2027-12-18", timezone="America/New_York")
    time_machine.move_to(NOW - timedelta(days=2), tick=False)
    renewal = journey(
        shop,
        {
            "type": "date_trait",
            "trait": "renewal_date",
            "offset_days": -14,
            "time": "10:30",
            "yearly": False,
        },
    )
    # 4 December 15:00 UTC is 10:00 in New York: not yet.
    time_machine.move_to(datetime(2026, 12, 4, 15, 0, tzinfo=UTC), tick=False)
    time_triggers_run(workspace_id=shop.workspace.pk)
    assert enrolled(renewal) == []
    time_machine.move_to(datetime(2026, 12, 4, 15, 31, tzinfo=UTC), tick=False)
    time_triggers_run(workspace_id=shop.workspace.pk)
    finish(renewal)
    time_triggers_run(workspace_id=shop.workspace.pk)
    assert enrolled(renewal) == ids(due)
    assert next_year.pk not in set(Enrolment.objects.values_list("profile_id", flat=True))


def test_29_february_fires_on_28_february_in_other_years(shop, time_machine):
    leap = customer(shop, birthday="2000-02-29")
    time_machine.move_to(datetime(2027, 2, 27, tzinfo=UTC), tick=False)
    birthday = journey(shop, {"type": "date_trait", "trait": "birthday", "time": "00:00"})
    time_machine.move_to(datetime(2027, 2, 28, 1, 0, tzinfo=UTC), tick=False)
    time_triggers_run(workspace_id=shop.workspace.pk)
    assert enrolled(birthday) == ids(leap)


# --- schedule -------------------------------------------------------------------------------


def test_a_schedule_enrols_the_segments_members_at_their_local_time_once(shop, other, time_machine):
    tokyo = customer(shop, timezone="Asia/Tokyo")
    paris = customer(shop, timezone="Europe/Paris")
    berlin = customer(shop, timezone="Europe/Berlin")
    utc = customer(shop)  # the contact policy's zone: UTC
    outsider = customer(shop, timezone="Asia/Tokyo")
    members = segments.segment_create(
        workspace=shop.workspace, name="Daily", kind="static", actor=ACTOR
    )
    segments.segment_members_add(
        segment=members, values=[str(p.pk) for p in (tokyo, paris, berlin, utc)], actor=ACTOR
    )
    # Started at noon UTC on 3 December: that day's 9:00 had passed everywhere west of
    # Tokyo's; those occurrences are not caught up.
    time_machine.move_to(NOW, tick=False)
    daily = journey(shop, {"type": "schedule", "cron": "0 9 * * *", "segment_id": str(members.pk)})
    assert time_triggers_run(workspace_id=shop.workspace.pk) == {str(daily.pk): 0}

    # 4 December 00:30 UTC: 09:30 in Tokyo.
    time_machine.move_to(datetime(2026, 12, 4, 0, 30, tzinfo=UTC), tick=False)
    assert time_triggers_run(workspace_id=shop.workspace.pk) == {str(daily.pk): 1}
    assert enrolled(daily) == ids(tokyo)
    finish(daily)
    assert time_triggers_run(workspace_id=shop.workspace.pk) == {str(daily.pk): 0}
    # 08:01 UTC: 09:01 in Paris and in Berlin, one occurrence for both.
    time_machine.move_to(datetime(2026, 12, 4, 8, 1, tzinfo=UTC), tick=False)
    time_triggers_run(workspace_id=shop.workspace.pk)
    time_triggers_run(workspace_id=shop.workspace.pk)
    assert enrolled(daily) == ids(tokyo, paris, berlin)
    time_machine.move_to(datetime(2026, 12, 4, 9, 0, tzinfo=UTC), tick=False)
    time_triggers_run(workspace_id=shop.workspace.pk)
    assert enrolled(daily) == ids(tokyo, paris, berlin, utc)
    # The next day, each once more; the worker was down all morning: one occurrence each.
    finish(daily)
    time_machine.move_to(datetime(2026, 12, 5, 11, 0, tzinfo=UTC), tick=False)
    time_triggers_run(workspace_id=shop.workspace.pk)
    time_triggers_run(workspace_id=shop.workspace.pk)
    assert enrolled(daily) == sorted(ids(tokyo, paris, berlin, utc) * 2)
    assert outsider.pk not in set(Enrolment.objects.values_list("profile_id", flat=True))


def test_a_paused_journey_is_not_triggered(shop, time_machine):
    from rapport.journeys.services import journey_pause

    customer(shop, birthday="1990-12-04")
    time_machine.move_to(NOW, tick=False)
    birthday = journey(shop, {"type": "date_trait", "trait": "birthday", "time": "09:00"})
    journey_pause(journey=birthday, actor=ACTOR)
    time_machine.move_to(datetime(2026, 12, 4, 10, 0, tzinfo=UTC), tick=False)
    assert time_triggers_run(workspace_id=shop.workspace.pk) == {}
    assert enrolled(birthday) == []


# --- checks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trigger", "path"),
    [
        ({"type": "schedule", "cron": "0 25 * * *", "segment_id": "x"}, "trigger.cron"),
        ({"type": "schedule", "cron": "0 9 * * * *", "segment_id": "x"}, "trigger.cron"),
        ({"type": "prediction", "model": "ltv", "field": "risk"}, "trigger.model"),
        ({"type": "prediction", "model": "churn", "field": "clv"}, "trigger.field"),
        ({"type": "lifecycle_changed", "stage": "nowhere"}, "trigger.stage"),
        (
            {"type": "lifecycle_changed", "stage": "churned", "sub_stage": "activated"},
            "trigger.sub_stage",
        ),
    ],
)
def test_trigger_problems_name_the_field(shop, trigger, path):
    segments.lifecycle_stages_ensure(workspace_id=shop.workspace.pk)
    assert [p["path"] for p in trigger_problems(workspace=shop.workspace, trigger=trigger)] == [
        path
    ]


def test_good_triggers_have_no_problems(shop):
    segments.lifecycle_stages_ensure(workspace_id=shop.workspace.pk)
    for trigger in (
        {"type": "schedule", "cron": "0 9 * * 1-5", "segment_id": "x"},
        {"type": "prediction", "model": "churn", "field": "risk"},
        {"type": "lifecycle_changed", "stage": "onboarding"},
    ):
        assert trigger_problems(workspace=shop.workspace, trigger=trigger) == []
    assert Segment.objects.count() == 0


def test_profiles_are_read_after_a_zone_reaches_the_time_not_every_minute(shop, time_machine):
    """A date trait written after the customer's 9:00 is picked up the next time some
    zone reaches 9:00 (within the hour), still on their day."""
    time_machine.move_to(datetime(2026, 12, 4, 10, 5, tzinfo=UTC), tick=False)
    birthday = journey(shop, {"type": "date_trait", "trait": "birthday", "time": "09:00"})
    assert time_triggers_run(workspace_id=shop.workspace.pk) == {str(birthday.pk): 0}
    late = customer(shop, birthday="1999-12-04")
    time_machine.move_to(datetime(2026, 12, 4, 10, 7, tzinfo=UTC), tick=False)
    time_triggers_run(workspace_id=shop.workspace.pk)
    assert enrolled(birthday) == []
    # 11:00 UTC is 9:00 at UTC-2 (South Georgia): the profiles are read again.
    time_machine.move_to(datetime(2026, 12, 4, 11, 0, tzinfo=UTC), tick=False)
    time_triggers_run(workspace_id=shop.workspace.pk)
    assert enrolled(birthday) == ids(late)


def test_a_journey_with_a_bad_cron_cannot_start(shop):
    from rapport.core.errors import InvalidInputError

    static = segments.segment_create(
        workspace=shop.workspace, name="Static", kind="static", actor=ACTOR
    )
    made = journey_create(
        workspace=shop.workspace,
        graph={
            "name": "Bad cron",
            "trigger": {"type": "schedule", "cron": "0 9 * * 8", "segment_id": str(static.pk)},
            "start": "x",
            "steps": {"x": {"type": "exit"}},
        },
        actor=ACTOR,
    )
    with pytest.raises(InvalidInputError) as error:
        journey_start(journey=made, actor=ACTOR)
    assert error.value.field == "trigger.cron"


def test_the_schedule_enqueues_the_time_job_only_where_a_time_journey_runs(shop, other):
    from django_tasks_db.models import DBTaskResult

    from rapport.core.schedule import schedule_run_due

    journey(shop, {"type": "date_trait", "trait": "birthday", "time": "09:00"})
    before = DBTaskResult.objects.filter(task_path__endswith="time_triggers_due").count()
    ran = [w for name, w in schedule_run_due() if name == "journeys.time_triggers"]
    assert sorted(ran) == sorted([str(shop.workspace.pk), str(other.workspace.pk)])
    queued = DBTaskResult.objects.filter(task_path__endswith="time_triggers_due")
    assert queued.count() == before + 1
    assert queued.filter(args_kwargs__kwargs__workspace_id=str(shop.workspace.pk)).exists()


@pytest.mark.skipif(
    "connection.vendor != 'postgresql'",
    reason="workers at once need PostgreSQL's row locks (SQLite writes one at a time)",
)
@pytest.mark.django_db(transaction=True)
def test_two_workers_running_the_time_job_at_once_enrol_each_customer_once():
    shop = tenant_create("Workers", sample_data=False)
    people = [customer(shop, birthday="1990-12-04", timezone="Europe/Paris") for _ in range(30)]
    daily = segments.segment_create(
        workspace=shop.workspace, name="Daily", kind="static", actor=ACTOR
    )
    segments.segment_members_add(segment=daily, values=[str(p.pk) for p in people], actor=ACTOR)
    with time_machine.travel(NOW, tick=False):
        birthday = journey(shop, {"type": "date_trait", "trait": "birthday", "time": "09:00"})
        scheduled = journey(
            shop, {"type": "schedule", "cron": "0 9 * * *", "segment_id": str(daily.pk)}
        )
    failures: list[BaseException] = []
    start = threading.Barrier(4)

    def worker():
        try:
            with time_machine.travel(datetime(2026, 12, 4, 8, 30, tzinfo=UTC), tick=False):
                start.wait()
                time_triggers_run(workspace_id=shop.workspace.pk)
        except BaseException as error:  # reported below
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert enrolled(birthday) == enrolled(scheduled) == ids(*people)


def test_an_event_that_puts_a_customer_in_a_segment_enrols_them_seconds_later(shop):
    """Through the pipeline: the event, identity, then segments_from_events' refresh."""
    planners = segments.segment_create(
        workspace=shop.workspace,
        name="Planners",
        rule={"event": "Brew Planner Used"},
        actor=ACTOR,
        refresh="now",
    )
    entered = journey(shop, {"type": "segment_entered", "segment_id": str(planners.pk)})
    shop.send({"type": "track", "userId": "ann", "event": "Signed Up"})
    assert enrolled(entered) == []
    shop.send({"type": "track", "userId": "ann", "event": "Brew Planner Used"})
    ann = Profile.objects.get(workspace=shop.workspace, merged_into__isnull=True)
    assert enrolled(entered) == ids(ann)
    shop.send({"type": "track", "userId": "ann", "event": "Brew Planner Used"})
    assert enrolled(entered) == ids(ann)


def test_who_meets_a_trigger_now_for_a_journey_that_takes_those_already_there(shop):
    from rapport.journeys.services import enrolments_create_many
    from rapport.journeys.triggers import trigger_profiles_now

    ann, bob = customer(shop), customer(shop)
    vips = segments.segment_create(
        workspace=shop.workspace, name="VIPs", kind="static", actor=ACTOR
    )
    segments.segment_members_add(segment=vips, values=[str(ann.pk)], actor=ACTOR)
    model = PredictionModel.objects.create(
        workspace=shop.workspace, kind="churn", version=1, trained_at=NOW
    )
    _rescore(shop, model, {ann: 0.1, bob: 0.8})
    entered = journey(shop, {"type": "segment_entered", "segment_id": str(vips.pk)})
    risky = journey(
        shop, {"type": "prediction", "model": "churn", "field": "risk", "op": "gte", "value": 0.7}
    )
    dated = journey(shop, {"type": "date_trait", "trait": "birthday", "time": "09:00"})
    assert sorted(map(str, trigger_profiles_now(journey=entered))) == ids(ann)
    assert sorted(map(str, trigger_profiles_now(journey=risky))) == ids(bob)
    assert trigger_profiles_now(journey=dated) is None
    made = enrolments_create_many(
        journey=risky, profile_ids=list(trigger_profiles_now(journey=risky)), now=NOW
    )
    assert [e.profile_id for e in made] == [bob.pk]
