from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from rapport.core.errors import InvalidInputError, NotFoundError
from rapport.decisions import learner
from rapport.decisions.engine import decision_make, decision_simulate
from rapport.decisions.models import ActionModel, DecisionAction, Outcome
from rapport.decisions.outcomes import decisions_learn, outcome_record
from rapport.profiles.models import Profile
from tests.conftest import tenant_create
from tests.decisions.conftest import action_add, settings_set


def person(tenant, **traits) -> Profile:
    now = timezone.now()
    return Profile.objects.create(
        workspace=tenant.workspace, traits=traits, first_seen_at=now, last_seen_at=now
    )


def decided(tenant, **traits):
    p = person(tenant, **traits)
    return p, decision_make(workspace=tenant.workspace, profile=p, channel="web")


def test_outcomes_are_recorded_once_and_label_the_row(shop):
    action_add(shop, "offer")
    settings_set(shop, control_percent=0)
    _, result = decided(shop)
    ws = shop.workspace
    first, created = outcome_record(
        workspace=ws, decision_id=result.decision_id, action_key="offer", outcome="impression"
    )
    again, created_again = outcome_record(
        workspace=ws, decision_id=result.decision_id, action_key="offer", outcome="impression"
    )
    assert created and not created_again and first.pk == again.pk
    outcome_record(
        workspace=ws, decision_id=result.decision_id, action_key="offer", outcome="accepted"
    )
    outcome_record(
        workspace=ws, decision_id=result.decision_id, action_key="offer", outcome="declined"
    )
    assert Outcome.objects.filter(decision_id=result.decision_id).count() == 3
    row = DecisionAction.objects.get(decision_id=result.decision_id)
    assert row.impression_at is not None
    assert row.label == 1  # the first label stays


def test_outcomes_refuse_unknown_and_foreign_ids(shop):
    action_add(shop, "offer")
    action_add(shop, "other")
    settings_set(shop, control_percent=0)
    _, result = decided(shop)
    ws = shop.workspace
    given = result.actions[0].key
    not_given = "other" if given == "offer" else "offer"
    with pytest.raises(InvalidInputError) as e:
        outcome_record(
            workspace=ws, decision_id=result.decision_id, action_key=given, outcome="liked"
        )
    assert e.value.field == "outcome"
    with pytest.raises(InvalidInputError) as e:
        outcome_record(
            workspace=ws, decision_id=result.decision_id, action_key=not_given, outcome="clicked"
        )
    assert e.value.field == "action"
    with pytest.raises(NotFoundError):
        outcome_record(
            workspace=ws, decision_id=result.decision_id, action_key="nope", outcome="clicked"
        )
    other = tenant_create("Other", sample_data=False)
    with pytest.raises(NotFoundError):
        outcome_record(
            workspace=other.workspace,
            decision_id=result.decision_id,
            action_key=given,
            outcome="clicked",
        )
    assert Outcome.objects.count() == 0


def test_learning_folds_each_outcome_once_and_moves_the_propensity(shop):
    action_add(shop, "offer", value=Decimal("1"))
    settings_set(shop, control_percent=0, half_life_days=1000)
    ws = shop.workspace
    gold = person(shop, plan="gold")
    before = decision_simulate(workspace=ws, profile=gold, channel="web").candidates[0].propensity
    for _ in range(40):
        _p, result = decided(shop, plan="gold")
        outcome_record(
            workspace=ws, decision_id=result.decision_id, action_key="offer", outcome="impression"
        )
        outcome_record(
            workspace=ws, decision_id=result.decision_id, action_key="offer", outcome="accepted"
        )
    for _ in range(40):
        _p, result = decided(shop, plan="silver")
        outcome_record(
            workspace=ws, decision_id=result.decision_id, action_key="offer", outcome="impression"
        )
        outcome_record(
            workspace=ws, decision_id=result.decision_id, action_key="offer", outcome="declined"
        )
    counts = decisions_learn(workspace_id=ws.pk)
    assert counts["learned"] == 80
    assert decisions_learn(workspace_id=ws.pk)["learned"] == 0  # once
    model = ActionModel.objects.get(action__key="offer")
    assert model.learned == 80 and model.version == 1
    after_gold = (
        decision_simulate(workspace=ws, profile=gold, channel="web").candidates[0].propensity
    )
    silver = person(shop, plan="silver")
    after_silver = (
        decision_simulate(workspace=ws, profile=silver, channel="web").candidates[0].propensity
    )
    assert after_gold > before and after_gold > 2 * after_silver


def test_an_impression_with_no_answer_in_the_window_is_a_failure(shop):
    action_add(shop, "offer")
    settings_set(shop, control_percent=0, response_window_hours=24)
    _, result = decided(shop)
    ws = shop.workspace
    now = timezone.now()
    outcome_record(
        workspace=ws,
        decision_id=result.decision_id,
        action_key="offer",
        outcome="impression",
        at=now,
    )
    assert decisions_learn(workspace_id=ws.pk, now=now + timedelta(hours=1)) == {
        "expired": 0,
        "learned": 0,
    }
    assert decisions_learn(workspace_id=ws.pk, now=now + timedelta(hours=25)) == {
        "expired": 1,
        "learned": 1,
    }
    assert DecisionAction.objects.get(decision_id=result.decision_id).label == 0


def test_old_evidence_fades_towards_the_prior(shop):
    action_add(shop, "offer", prior_propensity=0.05)
    settings_set(shop, control_percent=0, half_life_days=1)
    ws = shop.workspace
    now = timezone.now()
    for _ in range(30):
        _, result = decided(shop)
        outcome_record(
            workspace=ws,
            decision_id=result.decision_id,
            action_key="offer",
            outcome="accepted",
            at=now,
        )
    decisions_learn(workspace_id=ws.pk, now=now)
    model = ActionModel.objects.get(action__key="offer")
    learned_bias = learner.from_bytes(model.mean)[learner.BIAS]
    _, result = decided(shop)
    outcome_record(
        workspace=ws, decision_id=result.decision_id, action_key="offer", outcome="declined", at=now
    )
    decisions_learn(workspace_id=ws.pk, now=now + timedelta(days=10))
    model.refresh_from_db()
    prior_bias = learner.prior(prior_propensity=0.05)[0][learner.BIAS]
    faded = learner.from_bytes(model.mean)[learner.BIAS]
    assert abs(faded - prior_bias) < 0.1 * abs(learned_bias - prior_bias)
