from django.utils import timezone

from rapport.profiles.models import Profile
from rapport.sales import selectors, services
from rapport.sales.models import Owner
from rapport.tenancy.models import AuditLogEntry
from tests.sales.conftest import ACTOR


def customers(team, n):
    now = timezone.now()
    return Profile.objects.bulk_create(
        [
            Profile(workspace=team.workspace, traits={}, first_seen_at=now, last_seen_at=now)
            for _ in range(n)
        ]
    )


def test_round_robin_shares_customers_evenly_starting_with_the_least_loaded(team):
    services.owner_set(
        workspace=team.workspace, actor=ACTOR, member_id=team.ann.pk, profile=team.customer
    )
    people = customers(team, 5)
    services.owners_assign(
        workspace=team.workspace,
        actor=ACTOR,
        member_ids=[team.ann.pk, team.bob.pk],
        profile_ids=[p.pk for p in people],
    )
    counts = {
        member: selectors.owned_profile_ids(workspace=team.workspace, member_id=member.pk).count()
        for member in (team.ann, team.bob)
    }
    assert counts == {team.ann: 3, team.bob: 3}
    assert AuditLogEntry.objects.filter(action="owner.assign").count() == 1


def test_an_owner_is_set_changed_and_cleared(team):
    api = team.api("admin")
    url = f"/api/v1/profiles/{team.customer.pk}/owner"
    assert (
        api.request("PUT", url, {"member_id": str(team.ann.pk)}).json()["owner"]["email"]
        == "ann@team.example.com"
    )
    assert (
        api.request("PUT", url, {"member_id": str(team.bob.pk)}).json()["owner"]["email"]
        == "bob@team.example.com"
    )
    assert Owner.objects.filter(profile=team.customer).count() == 1
    assert api.request("PUT", url, {"member_id": None}).json()["owner"] is None
    assert not Owner.objects.filter(profile=team.customer).exists()


def test_assigning_with_one_unknown_customer_assigns_none(team, other_tenant):
    people = customers(team, 2)
    theirs = Profile.objects.filter(workspace=other_tenant.workspace).first()
    response = team.api("admin").post(
        "/api/v1/owners/assign",
        {"member_ids": [str(team.ann.pk)], "profile_ids": [str(people[0].pk), str(theirs.pk)]},
    )
    assert response.status_code == 422 and "profile_ids.1" in response.json()["error"]["message"]
    assert not Owner.objects.exists()


def test_a_salesperson_moves_deals_but_an_analyst_only_reads_them(team):
    deal = services.deal_create(
        workspace=team.workspace, actor=ACTOR, data={"name": "x", "pipeline_id": team.pipeline.pk}
    )
    target = str(team.pipeline.stages.get(name="Won").pk)
    analyst = team.api("analyst")
    assert analyst.get(f"/api/v1/deals/{deal.pk}").status_code == 200
    assert analyst.post(f"/api/v1/deals/{deal.pk}/move", {"stage_id": target}).status_code == 403
    assert (
        team.api("sales").post(f"/api/v1/deals/{deal.pk}/move", {"stage_id": target}).status_code
        == 200
    )
    assert team.api("sales").post("/api/v1/pipelines", {"name": "Mine"}).status_code == 403
