from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from rapport.decisions import engine
from rapport.decisions.engine import decision_make, decision_simulate, in_control
from rapport.decisions.models import Decision, DecisionAction
from rapport.profiles.models import Profile
from tests.decisions.conftest import action_add, settings_set


def person(tenant, **traits) -> Profile:
    now = timezone.now()
    return Profile.objects.create(
        workspace=tenant.workspace, traits=traits, first_seen_at=now, last_seen_at=now
    )


def not_in_control(tenant, **traits) -> Profile:
    settings = engine.settings_of(tenant.workspace.pk)
    while True:
        p = person(tenant, **traits)
        if not in_control(workspace_id=tenant.workspace.pk, profile_id=p.pk, settings=settings):
            return p


def test_the_highest_priority_eligible_action_is_given_and_recorded(shop):
    # Values far apart, so that no Thompson draw reorders them.
    action_add(shop, "small", value=Decimal("0.0001"))
    action_add(shop, "big", value=Decimal("1000000000"))
    action_add(
        shop,
        "gold-only",
        value=Decimal("1"),
        eligibility={"trait": "plan", "op": "eq", "value": "gold"},
    )
    settings_set(shop, control_percent=0)
    p = person(shop, plan="silver")
    result = decision_make(workspace=shop.workspace, profile=p, channel="web", limit=2)
    assert [c.key for c in result.actions] == ["big", "small"]
    assert result.control is False
    decision = Decision.objects.get(pk=result.decision_id)
    assert decision.profile_id == p.pk and decision.features
    rows = list(DecisionAction.objects.filter(decision=decision).order_by("rank"))
    assert [r.action.key for r in rows] == ["big", "small"]
    assert rows[0].priority == pytest.approx(result.actions[0].priority)
    gold = person(shop, plan="gold")
    result = decision_make(workspace=shop.workspace, profile=gold, channel="web", limit=3)
    assert result.actions[0].key == "big"
    assert {c.key for c in result.actions} == {"big", "gold-only", "small"}
    gold_only = next(c for c in result.actions if c.key == "gold-only")
    assert any(r.startswith("eligibility holds") for r in gold_only.reasons)
    assert all(any(r.startswith("priority ") for r in c.reasons) for c in result.actions)


def test_every_priority_is_explained(shop):
    action_add(shop, "offer", value=Decimal("10"), lever=2.0, channel_levers={"web": 0.5})
    action_add(shop, "gold-only", eligibility={"trait": "plan", "op": "eq", "value": "gold"})
    settings_set(shop, control_percent=0, channel_weights={"web": 3})
    p = person(shop, plan="silver")
    sim = decision_simulate(workspace=shop.workspace, profile=p, channel="web")
    first, second = sim.candidates
    assert first.key == "offer" and first.eligible
    f = first.factors
    assert first.priority == pytest.approx(f["propensity"] * 3 * 10 * 2.0 * 0.5)
    assert any("eligibility: everyone" in r for r in first.reasons)
    assert any("priority" in r and "lever 2" in r for r in first.reasons)
    assert second.key == "gold-only" and not second.eligible
    assert any("eligibility fails" in r for r in second.reasons)
    assert Decision.objects.count() == 0  # a simulation writes nothing


def test_channel_placement_dates_and_disabled_actions(shop):
    now = timezone.now()
    action_add(shop, "email-only", channels=["email"])
    action_add(shop, "banner", placements=["home_banner"])
    action_add(shop, "later", starts_at=now + timedelta(days=1))
    action_add(shop, "over", ends_at=now - timedelta(days=1))
    action_add(shop, "off", enabled=False)
    action_add(shop, "always")
    settings_set(shop, control_percent=0)
    p = person(shop)
    keys = lambda placement: [  # noqa: E731
        c.key
        for c in decision_make(
            workspace=shop.workspace, profile=p, channel="web", placement=placement, limit=10
        ).actions
    ]
    assert sorted(keys("cart")) == ["always"]
    assert sorted(keys("home_banner")) == ["always", "banner"]


def test_a_budget_is_never_exceeded(shop):
    action_add(shop, "scarce", value=Decimal("1000000000"), budget=3)
    action_add(shop, "plenty", value=Decimal("0.0001"))
    settings_set(shop, control_percent=0)
    given = [
        decision_make(workspace=shop.workspace, profile=person(shop), channel="web").actions[0].key
        for _ in range(6)
    ]
    assert given.count("scarce") == 3
    assert given[3:] == ["plenty"] * 3
    assert DecisionAction.objects.filter(action__key="scarce").count() == 3


def test_daily_capacity(shop):
    action_add(shop, "daily", value=Decimal("1000000000"), daily_capacity=2)
    action_add(shop, "fallback", value=Decimal("0.0001"))
    settings_set(shop, control_percent=0)
    now = timezone.now()
    keys = [
        decision_make(workspace=shop.workspace, profile=person(shop), channel="web", now=now)
        .actions[0]
        .key
        for _ in range(3)
    ]
    assert keys == ["daily", "daily", "fallback"]
    tomorrow = now + timedelta(days=1)
    result = decision_make(
        workspace=shop.workspace, profile=person(shop), channel="web", now=tomorrow
    )
    assert result.actions[0].key == "daily"


def test_outbound_channels_need_consent_and_no_suppression(shop):
    action_add(shop, "mail", channels=["email"])
    settings_set(shop, control_percent=0)
    no_consent = person(shop, email="a@example.com")
    assert (
        decision_make(workspace=shop.workspace, profile=no_consent, channel="email").actions == []
    )
    sim = decision_simulate(workspace=shop.workspace, profile=no_consent, channel="email")
    assert any("consent" in r for r in sim.candidates[0].reasons)
    shop.send(
        {
            "type": "identify",
            "userId": "u1",
            "traits": {"email": "b@example.com", "consent": {"email": {"marketing": "granted"}}},
        }
    )
    granted = Profile.objects.get(workspace=shop.workspace, identifiers__value="u1")
    assert [
        c.key
        for c in decision_make(workspace=shop.workspace, profile=granted, channel="email").actions
    ] == ["mail"]
    from rapport.channels.models import Suppression

    Suppression.objects.create(workspace=shop.workspace, channel="email", address="b@example.com")
    assert decision_make(workspace=shop.workspace, profile=granted, channel="email").actions == []


def test_control_group_is_stable_and_gets_no_model_choice(shop):
    action_add(shop, "best", value=Decimal("1000000000"))
    action_add(shop, "worst", value=Decimal("0.0001"))
    settings_set(shop, control_percent=50, control_mode="random")
    people = [person(shop) for _ in range(60)]
    settings = engine.settings_of(shop.workspace.pk)
    controlled = {
        p.pk
        for p in people
        if in_control(workspace_id=shop.workspace.pk, profile_id=p.pk, settings=settings)
    }
    assert 5 < len(controlled) < 55
    seen = set()
    for p in people:
        for _ in range(2):
            result = decision_make(workspace=shop.workspace, profile=p, channel="web")
            assert result.control == (p.pk in controlled)
            if result.control:
                assert all(c.control for c in result.actions)
                seen.add(result.actions[0].key)
            else:
                assert result.actions[0].key == "best"
    assert seen == {"best", "worst"}  # random, not the model's choice
    settings_set(shop, control_mode="nothing")
    for pk in list(controlled)[:5]:
        p = Profile.objects.get(pk=pk)
        assert decision_make(workspace=shop.workspace, profile=p, channel="web").actions == []
    assert DecisionAction.objects.filter(control=True).exclude(decision__control=True).count() == 0


def test_the_catalogue_cache_sees_changes(shop):
    a = action_add(shop, "one")
    settings_set(shop, control_percent=0)
    p = not_in_control(shop)
    assert decision_make(workspace=shop.workspace, profile=p, channel="web").actions[0].key == "one"
    a.enabled = False
    a.save()
    assert decision_make(workspace=shop.workspace, profile=p, channel="web").actions == []


def test_an_erased_customer_gets_nothing_on_any_channel(shop):
    from rapport.identity.services import profile_erase
    from tests.decisions.conftest import ACTOR

    action_add(shop, "offer", channels=["web", "app", "email"])
    settings_set(shop, control_percent=0)
    p = not_in_control(shop, plan="gold")
    stale = Profile.objects.get(pk=p.pk)
    profile_erase(profile=p, actor=ACTOR)
    for channel in ("web", "app", "email"):
        result = decision_make(workspace=shop.workspace, profile=stale, channel=channel)
        assert result.actions == [] and result.decision_id is None
        sim = decision_simulate(workspace=shop.workspace, profile=stale, channel=channel)
        assert not any(c.eligible for c in sim.candidates)
        assert any("erased" in r for c in sim.candidates for r in c.reasons)
    assert not Decision.objects.filter(profile_id=p.pk).exists()
