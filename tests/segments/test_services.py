"""Segments as events arrive and as time passes, static lists and snapshots, RFM cells
on a hand-computed example, and lifecycle stages for scripted customer stories."""

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from rapport.core.errors import ConflictError, InvalidInputError, PermissionDeniedError
from rapport.segments import rfm, services
from rapport.segments.models import LifecycleChange, LifecycleState, RfmScore, SegmentMembership
from rapport.tenancy.commerce import commerce_settings_update
from rapport.tenancy.models import AuditLogEntry
from rapport.tenancy.services import Actor
from tests.segments.conftest import profile_of

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("tests")


def members(segment) -> set[str]:
    from rapport.identity.models import Identifier

    ids = SegmentMembership.objects.filter(segment=segment, left_at__isnull=True).values(
        "profile_id"
    )
    return set(
        Identifier.objects.filter(profile_id__in=ids, kind="user_id").values_list(
            "value", flat=True
        )
    )


def order(shop, user: str, days_ago: float = 0, total: float = 60, now=None) -> None:
    at = (now or timezone.now()) - timedelta(days=days_ago)
    shop.send(
        {
            "type": "track",
            "userId": user,
            "event": "Order Completed",
            "timestamp": at.isoformat(),
            "properties": {"total": total},
        }
    )


BIG_SPENDERS = {
    "all": [
        {"trait": "plan", "op": "eq", "value": "pro"},
        {
            "event": "Order Completed",
            "count": {"op": "gte", "value": 2},
            "window": {"last_days": 30},
            "where": [{"property": "total", "op": "gt", "value": 50}],
        },
    ]
}


def test_membership_follows_events_as_they_arrive(shop, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    shop.send({"type": "identify", "userId": "ann", "traits": {"plan": "pro"}})
    segment = services.segment_create(
        workspace=shop.workspace,
        name="Big spenders",
        rule=BIG_SPENDERS,
        actor=ACTOR,
        refresh="now",
    )
    assert members(segment) == set() and segment.size == 0
    order(shop, "ann", 1)
    assert members(segment) == set()  # one order is not two
    order(shop, "ann", 0)
    assert members(segment) == {"ann"}  # the event consumer re-checked her at once
    segment.refresh_from_db()
    assert segment.size == 1
    shop.send({"type": "identify", "userId": "ann", "traits": {"plan": "free"}})
    assert members(segment) == set()
    shop.send({"type": "identify", "userId": "ann", "traits": {"plan": "pro"}})
    assert members(segment) == {"ann"}
    history = list(
        SegmentMembership.objects.filter(segment=segment)
        .order_by("id")
        .values_list("left_at", flat=True)
    )
    assert len(history) == 2 and history[0] is not None and history[1] is None


def test_time_passing_takes_people_out_on_the_scheduled_refresh(shop, time_machine):
    start = timezone.now()
    time_machine.move_to(start, tick=False)
    shop.send({"type": "identify", "userId": "ann", "traits": {"plan": "pro"}})
    order(shop, "ann", 0)
    order(shop, "ann", 0, total=80)
    segment = services.segment_create(
        workspace=shop.workspace,
        name="Big spenders",
        rule=BIG_SPENDERS,
        actor=ACTOR,
        refresh="now",
    )
    assert members(segment) == {"ann"} and segment.timed
    time_machine.move_to(start + timedelta(days=31), tick=False)
    assert members(segment) == {"ann"}  # no event since: still in until the schedule runs
    services.segments_refresh(workspace_id=shop.workspace.pk, timed_only=True)
    assert members(segment) == set()
    stay = SegmentMembership.objects.get(segment=segment)
    assert stay.entered_at == start and stay.left_at == start + timedelta(days=31)


def test_a_segment_of_a_segment_is_refreshed_after_it(shop):
    shop.send(
        {"type": "identify", "userId": "ann", "traits": {"plan": "pro", "city": "Leeds"}},
        {"type": "identify", "userId": "bob", "traits": {"plan": "pro", "city": "York"}},
    )
    pros = services.segment_create(
        workspace=shop.workspace,
        name="Pros",
        actor=ACTOR,
        refresh="now",
        rule={"trait": "plan", "op": "eq", "value": "pro"},
    )
    leeds_pros = services.segment_create(
        workspace=shop.workspace,
        name="Leeds pros",
        actor=ACTOR,
        refresh="now",
        rule={"all": [{"segment": str(pros.pk)}, {"trait": "city", "op": "eq", "value": "leeds"}]},
    )
    assert members(leeds_pros) == {"ann"}
    shop.send({"type": "identify", "userId": "ann", "traits": {"plan": "free"}})
    assert members(pros) == {"bob"} and members(leeds_pros) == set()
    with pytest.raises(InvalidInputError, match="refers back"):
        services.segment_update(segment=pros, actor=ACTOR, rule={"segment": str(leeds_pros.pk)})
    with pytest.raises(ConflictError, match="used by"):
        services.segment_delete(segment=pros, actor=ACTOR)
    other = services.segment_create(
        workspace=__import__("tests.conftest", fromlist=["x"])
        .tenant_create("Other", sample_data=False)
        .workspace,
        name="Theirs",
        actor=ACTOR,
        refresh="now",
        rule={"all": []},
    )
    with pytest.raises(InvalidInputError, match="no segment"):
        services.segment_create(
            workspace=shop.workspace,
            name="Sneaky",
            actor=ACTOR,
            rule={"segment": str(other.pk)},
        )


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"all": [{"trait": "x", "op": "between", "value": 1}]}, "rule.all.0.op"),
        (
            {"any": [{"event": "X", "count": {"op": "gte", "value": "three"}}]},
            "rule.any.0.count.value",
        ),
        ({"all": [{"nonsense": 1}]}, "rule.all.0"),
        ({"not": {"trait": "x", "op": "in", "value": []}}, "rule.not"),
        ({"segment": "not-a-uuid"}, "rule.segment"),
        ({"trait": 'a"b', "op": "exists"}, "rule.trait"),
        ("plan = pro", "rule"),
    ],
)
def test_invalid_rules_are_refused_naming_the_part(shop, rule, field):
    with pytest.raises(InvalidInputError) as caught:
        services.segment_create(workspace=shop.workspace, name="Bad", rule=rule, actor=ACTOR)
    assert caught.value.field == field
    assert not services.Segment.objects.filter(workspace=shop.workspace).exists()


def test_static_list_snapshot_and_export(shop):
    shop.send(
        {
            "type": "identify",
            "userId": "ann",
            "traits": {"email": "Ann@Example.com", "phone": "+44 20 7946 0958", "plan": "pro"},
        },
        {"type": "identify", "userId": "bob", "traits": {"email": "bob@example.com"}},
    )
    vip = services.segment_create(
        workspace=shop.workspace, name="VIP list", kind="static", actor=ACTOR
    )
    added = services.segment_members_add(
        segment=vip, values=["ann@example.com", "bob", "nobody@example.com"], actor=ACTOR
    )
    assert added["added"] == 2 and added["unknown"] == ["nobody@example.com"]
    again = services.segment_members_add(segment=vip, values=["ANN@example.com"], actor=ACTOR)
    assert again["added"] == 0 and again["already"] == 1
    assert members(vip) == {"ann", "bob"}

    pros = services.segment_create(
        workspace=shop.workspace,
        name="Pros",
        actor=ACTOR,
        refresh="now",
        rule={"trait": "plan", "op": "eq", "value": "pro"},
    )
    frozen = services.segment_snapshot(segment=pros, name="Pros in November", actor=ACTOR)
    shop.send({"type": "identify", "userId": "bob", "traits": {"plan": "pro"}})
    assert members(pros) == {"ann", "bob"} and members(frozen) == {"ann"}

    # Hashed exports carry what ann consented to (tests/segments/test_export.py).
    from rapport.profiles.services import consent_set

    for channel in ("email", "sms"):
        consent_set(
            profile=profile_of(shop, "ann"),
            channel=channel,
            purpose="marketing",
            status="granted",
            actor=ACTOR,
        )
    lines = list(
        services.segment_export(segment=vip, format="google", actor=ACTOR, can_see_pii=False)
    )
    import hashlib

    assert lines[0].strip() == "Email,Phone"
    expected = (
        hashlib.sha256(b"ann@example.com").hexdigest()
        + ","
        + hashlib.sha256(b"+442079460958").hexdigest()
    )
    assert expected in [line.strip() for line in lines]
    meta = "".join(
        services.segment_export(segment=vip, format="meta", actor=ACTOR, can_see_pii=False)
    )
    assert hashlib.sha256(b"442079460958").hexdigest() in meta
    readable = "".join(
        services.segment_export(segment=vip, format="csv", actor=ACTOR, can_see_pii=True)
    )
    assert "ann@example.com" in readable and "bob" in readable
    with pytest.raises(PermissionDeniedError):
        services.segment_export(segment=vip, format="csv", actor=ACTOR, can_see_pii=False)
    assert (
        AuditLogEntry.objects.filter(workspace=shop.workspace, action="segment.export").count() == 3
    )


def test_rfm_scores_on_a_hand_computed_example():
    # Five buyers. Recency 1, 5, 5, 30, 200 days: average ranks (best = highest) 5, 3.5,
    # 3.5, 2, 1 of 5 -> ceil(5 x rank / 5) = 5, 4, 4, 2, 1.
    r, f, m, cells = rfm.rfm_score(
        np.array([1, 5, 5, 30, 200]), np.array([10, 1, 3, 1, 1]), np.array([900, 20, 300, 50, 10])
    )
    assert r.tolist() == [5, 4, 4, 2, 1]
    # Frequency 10, 1, 3, 1, 1: ranks 5, 2, 4, 2, 2 -> 5, 2, 4, 2, 2.
    assert f.tolist() == [5, 2, 4, 2, 2]
    # Monetary 900, 20, 300, 50, 10: ranks 5, 2, 4, 3, 1 -> 5, 2, 4, 3, 1.
    assert m.tolist() == [5, 2, 4, 3, 1]
    # FM = ceil((F + M) / 2): 5, 2, 4, 3, 2.
    assert cells == ["Champions", "Potential loyalists", "Loyal", "At risk", "Hibernating"]
    assert rfm.rfm_cell(1, 1, 1) == "Lost" and rfm.rfm_cell(5, 1, 1) == "New"
    assert rfm.rfm_cell(1, 5, 5) == "Can't lose them" and rfm.rfm_cell(3, 3, 3) == "Need attention"
    assert rfm.rfm_cell(4, 1, 1) == "Promising" and rfm.rfm_cell(3, 1, 2) == "About to sleep"
    assert {rfm.rfm_cell(a, b, b) for a in range(1, 6) for b in range(1, 6)} == set(rfm.CELLS)


def test_rfm_refresh_from_purchase_events(shop, time_machine):
    now = timezone.now()
    time_machine.move_to(now, tick=False)
    for user, days, totals in [
        ("ann", [1, 10, 20], [100, 200, 300]),
        ("bob", [5], [20]),
        ("cy", [5, 50], [150, 150]),
        ("dee", [30], [50]),
        ("eve", [200], [10]),
    ]:
        for d, t in zip(days, totals, strict=True):
            order(shop, user, d, t, now=now)
    shop.send({"type": "identify", "userId": "fay"})  # never bought
    result = services.rfm_refresh(workspace_id=shop.workspace.pk)
    assert result["buyers"] == 5
    scores = {profile_of(shop, u).pk: u for u in ["ann", "bob", "cy", "dee", "eve"]}
    got = {
        scores[s.profile_id]: (s.r, s.f, s.m, s.cell, s.frequency, int(s.monetary))
        for s in RfmScore.objects.filter(workspace=shop.workspace)
    }
    # The example above, as events: recency 1, 5, 5, 30, 200; frequency 3, 1, 2, 1, 1;
    # monetary 600, 20, 300, 50, 10.
    assert got["ann"] == (5, 5, 5, "Champions", 3, 600)
    assert got["bob"] == (4, 2, 2, "Potential loyalists", 1, 20)
    assert got["cy"] == (4, 4, 4, "Loyal", 2, 300)
    assert got["eve"][3] == "Hibernating"
    commerce_settings_update(workspace=shop.workspace, purchase_event="Bought", actor=ACTOR)
    assert services.rfm_refresh(workspace_id=shop.workspace.pk)["buyers"] == 0
    assert not RfmScore.objects.filter(workspace=shop.workspace).exists()


def stage_of(shop, user):
    state = LifecycleState.objects.get(profile=profile_of(shop, user))
    return state.stage


def test_lifecycle_stories(shop, time_machine):
    start = timezone.now()
    time_machine.move_to(start, tick=False)
    # A visitor who never buys: preboarding.
    shop.send({"type": "page", "anonymousId": "visitor-1", "name": "Home"})
    # Signs up, buys: onboarding for a month.
    shop.send({"type": "track", "userId": "ann", "event": "Signed Up"})
    order(shop, "ann")
    # An NPS promoter who bought long ago and lately.
    shop.send(
        {
            "type": "track",
            "userId": "bob",
            "event": "Signed Up",
            "timestamp": (start - timedelta(days=100)).isoformat(),
        },
        {
            "type": "track",
            "userId": "bob",
            "event": "Survey Answered",
            "properties": {"survey": "nps", "score": 10},
        },
    )
    order(shop, "bob", 90)
    # Cancelled this week and not bought since: churned.
    order(shop, "cy", 60)
    shop.send({"type": "track", "userId": "cy", "event": "Subscription Cancelled"})
    services.lifecycle_refresh(workspace_id=shop.workspace.pk)
    from rapport.identity.models import Identifier

    visitor = Identifier.objects.get(workspace=shop.workspace, value="visitor-1").profile
    assert LifecycleState.objects.get(profile=visitor).stage == "preboarding"
    assert stage_of(shop, "ann") == "onboarding"
    assert stage_of(shop, "bob") == "positive_development"
    assert stage_of(shop, "cy") == "churned"

    # Five weeks on Ann has bought again: relationship development.
    time_machine.move_to(start + timedelta(days=35), tick=False)
    order(shop, "ann")
    assert stage_of(shop, "ann") == "relationship_development"  # re-checked on the event
    # Three months without a sign of her: reboarding.
    time_machine.move_to(start + timedelta(days=100), tick=False)
    services.lifecycle_refresh(workspace_id=shop.workspace.pk)
    assert stage_of(shop, "ann") == "reboarding"
    path = list(
        LifecycleChange.objects.filter(profile=profile_of(shop, "ann"))
        .order_by("at", "id")
        .values_list("to_stage", "to_sub_stage")
    )
    # Every move is recorded, between sub-stages of one stage too (the default ones).
    assert path == [
        ("onboarding", "onb_signed_up"),
        ("onboarding", "onb_first_purchase"),
        ("relationship_development", "rd_recent"),
        ("reboarding", "rb_quiet"),
    ]
    # Every live profile has exactly one stage.
    from rapport.profiles.models import Profile

    live = Profile.objects.filter(workspace=shop.workspace, merged_into__isnull=True).count()
    assert LifecycleState.objects.filter(workspace=shop.workspace).count() == live


def test_sub_stages_and_renamed_stages(shop):
    from rapport.segments.models import LifecycleStage

    stages = services.lifecycle_stages_ensure(workspace_id=shop.workspace.pk)
    onboarding = next(s for s in stages if s.key == "onboarding")
    services.lifecycle_stage_update(stage=onboarding, name="Getting started", actor=ACTOR)
    # The shipped sub-stages are the workspace's to delete: only its own stays.
    for shipped in onboarding.children.all():
        services.lifecycle_stage_delete(stage=shipped, actor=ACTOR)
    services.lifecycle_sub_stage_create(
        parent=onboarding,
        key="activated",
        name="Activated",
        actor=ACTOR,
        rule={"event": "Brew Planner Used"},
    )
    shop.send(
        {"type": "track", "userId": "ann", "event": "Signed Up"},
        {"type": "track", "userId": "ann", "event": "Brew Planner Used"},
        {"type": "track", "userId": "bob", "event": "Signed Up"},
    )
    states = {
        u: (s.stage, s.sub_stage)
        for u in ["ann", "bob"]
        for s in [LifecycleState.objects.get(profile=profile_of(shop, u))]
    }
    assert states == {"ann": ("onboarding", "activated"), "bob": ("onboarding", "")}
    assert LifecycleStage.objects.get(workspace=shop.workspace, key="onboarding").name == (
        "Getting started"
    )
    with pytest.raises(InvalidInputError, match="lifecycle"):
        services.lifecycle_stage_update(
            stage=onboarding, actor=ACTOR, rule={"lifecycle": "stage", "op": "eq", "value": "x"}
        )


def test_a_merged_away_profile_leaves_segments_and_stages(shop):
    shop.send(
        {"type": "page", "anonymousId": "laptop-1", "name": "Home"},
        {"type": "identify", "userId": "ann", "traits": {"plan": "pro"}},
    )
    visitors = services.segment_create(
        workspace=shop.workspace, name="Everyone", actor=ACTOR, refresh="now", rule={"all": []}
    )
    assert (
        visitors.size == 2 and LifecycleState.objects.filter(workspace=shop.workspace).count() == 2
    )
    # Ann logs in on the laptop: the anonymous profile is merged into hers.
    shop.send({"type": "identify", "userId": "ann", "anonymousId": "laptop-1"})
    from rapport.profiles.models import Profile

    live = Profile.objects.filter(workspace=shop.workspace, merged_into__isnull=True)
    assert live.count() == 1
    current = SegmentMembership.objects.filter(segment=visitors, left_at__isnull=True)
    assert list(current.values_list("profile_id", flat=True)) == [live.get().pk]
    assert list(
        LifecycleState.objects.filter(workspace=shop.workspace).values_list("profile_id", flat=True)
    ) == [live.get().pk]
