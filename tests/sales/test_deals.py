import threading

import pytest
from django.db import connection

from rapport.core.errors import ConflictError, InvalidInputError
from rapport.profiles.selectors import profile_timeline
from rapport.sales import selectors, services
from rapport.sales.models import Deal, DealStageChange
from rapport.tenancy.models import AuditLogEntry
from tests.conftest import tenant_create
from tests.sales.conftest import ACTOR, actor_of, stage, team_create


def open_deal(team, **data):
    return services.deal_create(
        workspace=team.workspace,
        actor=actor_of(team.ann),
        data={
            "name": "40 seats",
            "pipeline_id": team.pipeline.pk,
            "profile_id": team.customer.pk,
            **data,
        },
    )


def test_a_new_deal_starts_at_the_first_stage_owned_by_its_creator(team):
    deal = open_deal(team, amount="4800.50")
    assert deal.stage.name == "Qualified" and deal.status == "open"
    assert deal.owner == team.ann
    assert deal.currency == "USD" and str(deal.amount) == "4800.50"
    assert deal.version == 1


def test_moving_a_deal_is_audited_kept_and_on_the_timeline(team):
    deal = open_deal(team)
    moved = services.deal_move(
        deal=deal,
        actor=actor_of(team.bob),
        stage_id=stage(team.pipeline, "Proposal sent").pk,
        version=1,
    )
    assert moved.stage.name == "Proposal sent" and moved.version == 2
    history = list(selectors.deal_history(deal=deal))
    assert [(c.from_name, c.to_name) for c in history] == [
        ("", "Qualified"),
        ("Qualified", "Proposal sent"),
    ]
    assert history[-1].actor_label == "bob@team.example.com"
    audit = AuditLogEntry.objects.get(workspace=team.workspace, action="deal.move")
    assert audit.details["from"] == "Qualified" and audit.details["to"] == "Proposal sent"
    assert audit.actor_label == "bob@team.example.com"
    page = profile_timeline(workspace=team.workspace, profile_id=team.customer.pk)
    titles = [e.title for e in page.items]
    assert "deal 40 seats: Proposal sent" in titles and "deal 40 seats: Qualified" in titles


def test_won_closes_the_deal_and_an_open_stage_reopens_it(team):
    deal = open_deal(team)
    won = services.deal_move(deal=deal, actor=ACTOR, stage_id=stage(team.pipeline, "Won").pk)
    assert won.status == "won" and won.closed_at is not None
    reopened = services.deal_move(
        deal=deal, actor=ACTOR, stage_id=stage(team.pipeline, "Negotiation").pk
    )
    assert reopened.status == "open" and reopened.closed_at is None


def test_of_two_people_moving_the_same_deal_one_wins_and_the_other_is_told(team):
    deal = open_deal(team)
    ann = team.api("admin")
    first = ann.post(
        f"/api/v1/deals/{deal.pk}/move",
        {"stage_id": str(stage(team.pipeline, "Proposal sent").pk), "version": 1},
    )
    assert first.status_code == 200 and first.json()["version"] == 2
    second = ann.post(
        f"/api/v1/deals/{deal.pk}/move",
        {"stage_id": str(stage(team.pipeline, "Lost").pk), "version": 1},
    )
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "stale_version"
    assert "version 2" in second.json()["error"]["message"]
    deal.refresh_from_db()
    assert deal.stage.name == "Proposal sent"
    assert DealStageChange.objects.filter(deal=deal).count() == 2


@pytest.mark.skipif(
    "connection.vendor != 'postgresql'",
    reason="moves at the same moment need PostgreSQL's row locks (SQLite writes one at a time)",
)
@pytest.mark.django_db(transaction=True)
def test_moves_at_the_same_moment_from_the_same_version_one_wins():
    tenant = team_create()
    deal = open_deal(tenant)
    stages = [s for s in tenant.pipeline.stages.all() if s.name != "Qualified"]
    start = threading.Barrier(len(stages))
    results: list[str] = []

    def mover(target):
        try:
            start.wait()
            services.deal_move(deal=deal, actor=ACTOR, stage_id=target.pk, version=1)
            results.append("moved")
        except ConflictError:
            results.append("told")
        except Exception as error:  # reported by the assertion below
            results.append(repr(error)[:200])
        finally:
            connection.close()

    threads = [threading.Thread(target=mover, args=(s,)) for s in stages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["moved"] + ["told"] * (len(stages) - 1)
    assert Deal.objects.get(pk=deal.pk).version == 2
    assert DealStageChange.objects.filter(deal=deal).count() == 2


def test_an_update_with_an_old_version_changes_nothing(team):
    deal = open_deal(team)
    services.deal_update(deal=deal, actor=ACTOR, data={"amount": "100"}, version=1)
    with pytest.raises(ConflictError):
        services.deal_update(deal=deal, actor=ACTOR, data={"amount": "999"}, version=1)
    deal.refresh_from_db()
    assert deal.amount == 100 and deal.version == 2


def test_a_deal_refuses_another_workspaces_customer_naming_the_field(team):
    other = tenant_create("Other", sample_data=True)
    from rapport.profiles.models import Profile

    theirs = Profile.objects.filter(workspace=other.workspace).first()
    with pytest.raises(InvalidInputError) as caught:
        open_deal(team, profile_id=theirs.pk)
    assert caught.value.field == "profile_id"
    response = team.api("admin").post(
        "/api/v1/deals",
        {"name": "x", "pipeline_id": str(team.pipeline.pk), "profile_id": str(theirs.pk)},
    )
    assert response.status_code == 422 and "profile_id" in response.json()["error"]["message"]
    assert not Deal.objects.filter(name="x").exists()


def test_a_stage_holding_deals_cannot_be_removed(team):
    open_deal(team)
    stages = [
        {"id": str(s.pk), "name": s.name, "kind": s.kind, "probability": s.probability}
        for s in team.pipeline.stages.all()
        if s.name != "Qualified"
    ]
    with pytest.raises(ConflictError):
        services.pipeline_update(pipeline=team.pipeline, actor=ACTOR, data={"stages": stages})
    assert team.pipeline.stages.filter(name="Qualified").exists()


def test_stages_are_renamed_reordered_and_added_in_one_change(team):
    qualified, *rest = list(team.pipeline.stages.all())
    stages = [{"id": str(s.pk), "name": s.name, "kind": s.kind} for s in rest]
    stages.insert(1, {"name": "Demo given", "probability": 40})
    stages.append({"id": str(qualified.pk), "name": "Lead in", "kind": "open"})
    services.pipeline_update(pipeline=team.pipeline, actor=ACTOR, data={"stages": stages})
    names = [s.name for s in team.pipeline.stages.order_by("position")]
    assert names[:2] == ["Meeting booked", "Demo given"] and names[-1] == "Lead in"
    assert team.pipeline.stages.get(name="Lead in").pk == qualified.pk


def test_a_pipeline_needs_open_won_and_lost_stages(team):
    with pytest.raises(InvalidInputError) as caught:
        services.pipeline_create(
            workspace=team.workspace,
            actor=ACTOR,
            name="Bad",
            stages=[{"name": "Only", "kind": "open"}],
        )
    assert caught.value.field == "stages"


def test_the_board_counts_every_deal_and_shows_the_first_of_each_stage(team, settings):
    monkey = selectors.BOARD_PER_STAGE
    selectors.BOARD_PER_STAGE = 3
    try:
        for n in range(5):
            open_deal(team, name=f"deal {n}", amount="10", currency="EUR")
        open_deal(team, name="dollars", amount="7")
        columns = selectors.board(workspace=team.workspace, pipeline=team.pipeline)
    finally:
        selectors.BOARD_PER_STAGE = monkey
    first = columns[0]
    assert first.stage.name == "Qualified" and first.count == 6 and len(first.deals) == 3
    assert first.total == {"EUR": 50, "USD": 7}


def test_the_forecast_weighs_each_deal_by_its_stage_and_never_mixes_currencies(team):
    from datetime import date

    open_deal(team, amount="1000", expected_close=date(2027, 1, 20))
    deal = open_deal(team, amount="500", expected_close=date(2027, 1, 5))
    services.deal_move(deal=deal, actor=ACTOR, stage_id=stage(team.pipeline, "Proposal sent").pk)
    open_deal(team, amount="300", currency="EUR", expected_close=date(2027, 1, 9))
    rows = selectors.forecast(workspace=team.workspace)
    usd = next(r for r in rows if r["currency"] == "USD")
    assert usd["deals"] == 2 and usd["amount"] == 1500
    assert usd["weighted"] == 1000 * 10 / 100 + 500 * 60 / 100
    assert next(r for r in rows if r["currency"] == "EUR")["amount"] == 300
