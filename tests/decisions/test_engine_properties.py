"""Eligibility, the contact rules and budgets can never be bypassed, whatever the
catalogue, the levers, the weights and the customer (Hypothesis)."""

from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rapport.channels.models import Suppression
from rapport.decisions import engine
from rapport.decisions.engine import decision_make, in_control
from rapport.decisions.models import Action, DecisionAction
from rapport.profiles.models import Profile
from tests.decisions.conftest import action_add, settings_set

PLANS = ["gold", "silver", "bronze"]
actions_st = st.lists(
    st.fixed_dictionaries(
        {
            "plan": st.none() | st.sampled_from(PLANS),
            "value": st.decimals(min_value=0, max_value=10_000, places=2),
            "lever": st.floats(min_value=0, max_value=100),
            "web_lever": st.floats(min_value=0, max_value=100),
            "budget": st.none() | st.integers(min_value=0, max_value=3),
            "enabled": st.booleans(),
            "channels": st.sampled_from([["web"], ["email"], ["web", "email"]]),
        }
    ),
    min_size=1,
    max_size=8,
)
run = settings(
    max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)


def _catalogue(tenant, specs):
    Action.objects.filter(workspace=tenant.workspace).delete()
    engine.catalogue_forget()
    for n, spec in enumerate(specs):
        action_add(
            tenant,
            f"a{n}",
            value=spec["value"],
            lever=spec["lever"],
            channel_levers={"web": spec["web_lever"]},
            budget=spec["budget"],
            enabled=spec["enabled"],
            channels=spec["channels"],
            eligibility={"trait": "plan", "op": "eq", "value": spec["plan"]}
            if spec["plan"]
            else {},
        )


@run
@given(
    specs=actions_st,
    plan=st.sampled_from(PLANS),
    control=st.sampled_from([0, 50]),
    tries=st.integers(1, 6),
)
def test_only_eligible_enabled_actions_within_budget_are_given(shop, specs, plan, control, tries):
    _catalogue(shop, specs)
    settings_set(shop, control_percent=control, control_mode="random")
    now = timezone.now()
    for _ in range(tries):
        p = Profile.objects.create(
            workspace=shop.workspace, traits={"plan": plan}, first_seen_at=now, last_seen_at=now
        )
        result = decision_make(workspace=shop.workspace, profile=p, channel="web", limit=3)
        for candidate in result.actions:
            spec = specs[int(candidate.key[1:])]
            assert spec["enabled"] and "web" in spec["channels"]
            assert spec["plan"] in (None, plan)
            assert candidate.control == result.control
    for n, spec in enumerate(specs):
        if spec["budget"] is not None:
            assert DecisionAction.objects.filter(action__key=f"a{n}").count() <= spec["budget"]


@run
@given(
    specs=actions_st,
    consent=st.sampled_from(["granted", "denied", None]),
    suppressed=st.booleans(),
    cap=st.none() | st.integers(min_value=0, max_value=2),
    control=st.sampled_from([0, 50]),
)
def test_email_actions_need_consent_no_suppression_and_room_under_the_cap(
    shop, specs, consent, suppressed, cap, control
):
    from rapport.channels.models import ContactPolicy, Message

    _catalogue(shop, specs)
    settings_set(shop, control_percent=control, control_mode="random")
    Suppression.objects.filter(workspace=shop.workspace).delete()
    ContactPolicy.objects.update_or_create(
        workspace=shop.workspace,
        defaults={"caps": {"email": {"max": cap, "days": 7}} if cap is not None else {}},
    )
    user = f"u{Profile.objects.count()}"
    traits = {"email": f"{user}@example.com", "plan": "gold"}
    if consent:
        traits["consent"] = {"email": {"marketing": consent}}
    shop.send({"type": "identify", "userId": user, "traits": traits})
    p = Profile.objects.get(workspace=shop.workspace, identifiers__value=user)
    if suppressed:
        Suppression.objects.create(
            workspace=shop.workspace, channel="email", address=f"{user}@example.com"
        )
    sent = 1 if cap else 0
    if sent:
        Message.objects.create(
            workspace=shop.workspace,
            profile=p,
            channel="email",
            purpose="marketing",
            status="sent",
            sent_at=timezone.now(),
        )
    result = decision_make(workspace=shop.workspace, profile=p, channel="email", limit=3)
    allowed = consent == "granted" and not suppressed and (cap is None or sent < cap)
    if not allowed:
        assert result.actions == []
    for candidate in result.actions:
        spec = specs[int(candidate.key[1:])]
        assert "email" in spec["channels"] and spec["enabled"]


@run
@given(control=st.integers(min_value=0, max_value=50))
def test_the_control_group_is_stable_and_its_share_holds(shop, control):
    s = settings_set(shop, control_percent=control)
    ids = list(range(2000))
    first = [in_control(workspace_id=shop.workspace.pk, profile_id=i, settings=s) for i in ids]
    again = [in_control(workspace_id=shop.workspace.pk, profile_id=i, settings=s) for i in ids]
    assert first == again
    assert abs(sum(first) / len(ids) - control / 100) < 0.05
