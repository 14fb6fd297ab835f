"""The sales pages: the board and its moves (a stale one told), the deal page, "My
tasks" in the person's time zone, the person page's sales panel, and the home card."""

from datetime import UTC, date, datetime, timedelta

import time_machine

from rapport.sales import selectors, services
from rapport.sales.models import Deal, Note, Owner
from rapport.tenancy.permissions import Role
from tests.sales.conftest import ACTOR, actor_of, team  # noqa: F401 - the fixture
from tests.web.clients import signed_in


def a_deal(team, **data):  # noqa: F811
    return services.deal_create(
        workspace=team.workspace,
        actor=ACTOR,
        data={"name": "Acme, 40 seats", "pipeline_id": team.pipeline.pk, "amount": "4800", **data},
    )


def test_the_board_shows_each_stage_with_its_deals_and_totals(team):  # noqa: F811
    deal = a_deal(team)
    html = signed_in(team).get("/deals/").content.decode()
    assert "Acme, 40 seats" in html and f'data-deal="{deal.pk}"' in html
    assert "4\u202f800.00 USD" in html
    for name in ("Qualified", "Negotiation", "Won", "Lost"):
        assert name in html


def test_a_move_from_the_board_answers_json_and_a_stale_one_is_refused(team):  # noqa: F811
    deal = a_deal(team)
    client = signed_in(team)
    target = team.pipeline.stages.get(name="Negotiation")
    url = f"/deals/{deal.pk}/move/"
    first = client.post(url, {"stage": target.pk, "version": 1}, HTTP_ACCEPT="application/json")
    assert first.status_code == 200 and first.json() == {
        "version": 2,
        "stage": "Negotiation",
        "status": "open",
    }
    won = team.pipeline.stages.get(name="Won")
    stale = client.post(url, {"stage": won.pk, "version": 1}, HTTP_ACCEPT="application/json")
    assert stale.status_code == 409 and "version 2" in stale.json()["error"]
    assert Deal.objects.get(pk=deal.pk).stage == target


def test_the_move_form_works_without_scripts(team):  # noqa: F811
    deal = a_deal(team)
    won = team.pipeline.stages.get(name="Won")
    response = signed_in(team).post(
        f"/deals/{deal.pk}/move/", {"stage": won.pk, "version": 1, "next": "/deals/"}
    )
    assert response.status_code == 302 and response["Location"] == "/deals/"
    assert Deal.objects.get(pk=deal.pk).status == "won"


def test_an_agent_reads_deals_but_cannot_move_them(team):  # noqa: F811
    deal = a_deal(team)
    agent = signed_in(team, Role.AGENT)
    assert agent.get(f"/deals/{deal.pk}/").status_code == 200
    won = team.pipeline.stages.get(name="Won")
    assert agent.post(f"/deals/{deal.pk}/move/", {"stage": won.pk}).status_code == 403
    assert Deal.objects.get(pk=deal.pk).status == "open"


def test_the_deal_page_shows_its_history_notes_and_tasks(team):  # noqa: F811
    deal = a_deal(team, profile_id=team.customer.pk)
    services.deal_move(
        deal=deal, actor=ACTOR, stage_id=team.pipeline.stages.get(name="Proposal sent").pk
    )
    client = signed_in(team)
    client.post(
        "/notes/new/",
        {"deal": deal.pk, "kind": "call", "body": "<script>x</script> wants a quote"},
    )
    client.post("/tasks/new/", {"deal": deal.pk, "title": "Send the quote", "due": "2027-01-10"})
    html = client.get(f"/deals/{deal.pk}/").content.decode()
    assert "Qualified → <strong>Proposal sent</strong>" in html
    assert "&lt;script&gt;x&lt;/script&gt; wants a quote" in html and "<script>x" not in html
    assert "Send the quote" in html
    assert Note.objects.get(deal=deal).kind == "call"


def test_my_tasks_are_read_in_my_time_zone(team):  # noqa: F811
    user = team.ann.user
    user.time_zone = "Asia/Tokyo"
    user.save()
    services.task_create(
        workspace=team.workspace,
        actor=actor_of(team.ann),
        data={
            "title": "Yesterday in Tokyo",
            "due_at": selectors.all_day_due(date(2026, 12, 4)),
            "all_day": True,
        },
    )
    from django.test import Client

    client = Client()
    client.force_login(user)
    with time_machine.travel(datetime(2026, 12, 4, 23, 30, tzinfo=UTC), tick=False):
        html = client.get("/tasks/").content.decode()
        home = client.get("/").content.decode()
    overdue = html[html.index('id="h-overdue"') : html.index('id="h-today"')]
    assert "Yesterday in Tokyo" in overdue and "Asia/Tokyo" in html
    assert 'id="home-tasks"' in home and "Yesterday in Tokyo" in home


def test_the_person_page_has_the_sales_panel_and_sets_the_owner(team):  # noqa: F811
    a_deal(team, profile_id=team.customer.pk)
    client = signed_in(team)
    url = f"/customers/{team.customer.pk}/"
    html = client.get(url).content.decode()
    assert 'id="h-sales"' in html and "Acme, 40 seats" in html
    response = client.post(f"/customers/{team.customer.pk}/owner/", {"owner": team.bob.pk})
    assert response.status_code == 302
    assert Owner.objects.get(profile=team.customer).member == team.bob
    assert "bob@team.example.com" in client.get(url).content.decode()


def test_a_task_done_from_the_list_leaves_the_open_views(team):  # noqa: F811
    task = services.task_create(
        workspace=team.workspace,
        actor=actor_of(team.ann),
        data={"title": "Call back", "due_at": datetime.now(UTC) - timedelta(hours=1)},
    )
    from django.test import Client

    client = Client()
    client.force_login(team.ann.user)
    client.post(f"/tasks/{task.pk}/complete/", {"done": "1", "next": "/tasks/"})
    task.refresh_from_db()
    assert task.done_at is not None
