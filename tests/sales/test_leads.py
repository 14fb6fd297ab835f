"""Lead scoring on deals whose outcome depends on the customer's company (as the demo's
do): the model beats the prior-only baseline on deals it did not see, its reasons name
what drives it, the scores land on the customers, in the API and in segment rules."""

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from rapport.core.errors import ConflictError
from rapport.profiles.models import Account, AccountMember, Profile
from rapport.sales import services
from rapport.sales.models import Deal, LeadModel, LeadScore
from rapport.segments.compiler import Context, rule_profiles
from rapport.segments.rules import rule_parse
from tests.sales.conftest import ACTOR


def companies(team, n, seed=5):
    """n companies of 2 to 300 people, each with a contact and a closed deal: the bigger
    the company, the likelier the deal was won."""
    rng = random.Random(seed)
    now = timezone.now()
    won = team.pipeline.stages.get(name="Won")
    lost = team.pipeline.stages.get(name="Lost")
    contacts = []
    for k in range(n):
        employees = rng.choice([2, 4, 8, 15, 30, 60, 120, 300])
        account = Account.objects.create(
            workspace=team.workspace,
            group_id=f"co-{k}",
            name=f"Company {k}",
            traits={"employees": employees, "industry": rng.choice(["legal", "design"])},
            first_seen_at=now - timedelta(days=200),
        )
        contact = Profile.objects.create(
            workspace=team.workspace, traits={}, first_seen_at=now - timedelta(days=200)
        )
        AccountMember.objects.create(workspace=team.workspace, account=account, profile=contact)
        deal = services.deal_create(
            workspace=team.workspace,
            actor=ACTOR,
            data={"name": f"deal {k}", "pipeline_id": team.pipeline.pk, "profile_id": contact.pk},
        )
        chance = 0.1 + 0.8 * (employees >= 30)
        outcome = won if rng.random() < chance else lost
        services.deal_move(deal=deal, actor=ACTOR, stage_id=outcome.pk)
        contacts.append((contact, employees))
    return contacts


def test_the_lead_score_beats_the_prior_on_deals_it_did_not_see(team):
    contacts = companies(team, 80)
    model = services.lead_model_train(workspace=team.workspace, actor=ACTOR)
    metrics = model.metrics
    assert metrics["prior_roc_auc"] == 0.5
    assert metrics["roc_auc"] > 0.75, metrics
    assert metrics["brier"] < metrics["prior_brier"]
    assert model.deals == 80 and model.version == 1
    # Every contact scored; the big companies' above the small ones'.
    scores = {s.profile_id: s for s in LeadScore.objects.filter(workspace=team.workspace)}
    big = [scores[c.pk].probability for c, e in contacts if e >= 60]
    small = [scores[c.pk].probability for c, e in contacts if e <= 8]
    assert min(big) > max(small)
    top = max(scores.values(), key=lambda s: s.probability)
    assert top.reasons[0]["feature"] == "employees" and top.reasons[0]["contribution"] > 0


def test_too_few_closed_deals_is_told_and_keeps_no_model(team):
    companies(team, 6)
    with pytest.raises(ConflictError) as caught:
        services.lead_model_train(workspace=team.workspace, actor=ACTOR)
    assert "at least 10 won and 10 lost" in caught.value.message
    assert not LeadModel.objects.exists()


def test_the_score_is_a_segment_rule_an_api_answer_and_a_forecast_weight(team):
    contacts = companies(team, 60, seed=9)
    services.lead_model_train(workspace=team.workspace, actor=ACTOR)
    rule = rule_parse({"lead_score": "probability", "op": "gte", "value": 0.5})
    found = set(
        rule_profiles(
            rule, Context(workspace_id=team.workspace.pk, now=timezone.now())
        ).values_list("pk", flat=True)
    )
    expected = set(
        LeadScore.objects.filter(workspace=team.workspace, probability__gte=0.5).values_list(
            "profile_id", flat=True
        )
    )
    assert found == expected and found
    contact, _ = contacts[0]
    answer = team.api("analyst").get(f"/api/v1/profiles/{contact.pk}/lead-score").json()
    assert 0 < answer["probability"] < 1 and answer["model_version"] == 1
    assert team.api("analyst").get("/api/v1/lead-models").json()["items"][0]["deals"] == 60
    # An open deal with a scored customer is weighted by the score in the forecast.
    from datetime import date

    from rapport.sales.selectors import forecast

    deal = services.deal_create(
        workspace=team.workspace,
        actor=ACTOR,
        data={
            "name": "open",
            "pipeline_id": team.pipeline.pk,
            "profile_id": contact.pk,
            "amount": "1000",
            "expected_close": date(2027, 2, 1),
        },
    )
    (row,) = forecast(workspace=team.workspace)
    score = LeadScore.objects.get(profile=contact).probability
    assert abs(float(row["model_weighted"]) - 1000 * score) < 0.5
    assert Deal.objects.get(pk=deal.pk).status == "open"
