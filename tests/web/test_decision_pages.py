"""Next best action in the UI (rapport/web/decisions.py): the catalogue (list, filters,
new, edit, delete, each error beside its field, saved through the services), the
levers, an action's report, the person page's simulator, the side bar, roles, other
workspaces' actions (404), and the pages in Russian."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from rapport.decisions import selectors, services
from rapport.decisions.models import Action
from rapport.profiles.models import Profile
from rapport.tenancy.permissions import Role, role_has_permission
from rapport.tenancy.services import Actor
from tests.conftest import tenant_create
from tests.decisions.conftest import given_plant
from tests.web.clients import signed_in
from tests.web.test_russian_pages import VisibleText, english_words, json_texts

ACTOR = Actor.system("tests")


@pytest.fixture
def shop(db):
    return tenant_create("Shop", sample_data=False)


def make(tenant, key="spring-sale", **extra) -> Action:
    data = {"key": key, "name": "Spring sale", "channels": ["web", "email"], "value": 20}
    data.update(extra)
    return services.action_create(workspace=tenant.workspace, actor=ACTOR, data=data)


def form(**extra) -> dict:
    posted = {
        "key": "brew-planner",
        "name": "Brew Planner tutorial",
        "description": "Send the tutorial",
        "kind": "message",
        "channels": ["web", "email"],
        "placements": "home_banner, cart",
        "content.web.title": "Plan your brew",
        "content.web.link_url": "https://example.com/planner",
        "content.email.body": "Here is how",
        "template": "",
        "value": "12.5",
        "currency": "eur",
        "starts_at": "2026-01-01T09:00",
        "ends_at": "",
        "budget": "1000",
        "daily_capacity": "",
        "eligibility": json.dumps({"all": [{"trait": "plan", "op": "eq", "value": "gold"}]}),
        "lever": "1.5",
        "lever.web": "2",
        "prior_propensity": "0.1",
        "enabled": "on",
    }
    posted.update(extra)
    return posted


def test_the_catalogue_lists_filters_and_links_each_action(shop):
    client = signed_in(shop, Role.MARKETER)
    make(shop)
    make(shop, key="call-back", name="Call back", channels=["assisted"])
    page = client.get("/decisions/actions/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'href="/decisions/actions/"' in html  # the side bar's Act group
    assert 'href="/decisions/actions/spring-sale/"' in html
    assert "Call back" in html and 'href="/decisions/new/"' in html
    found = client.get("/decisions/actions/?q=call").content.decode()
    assert "Call back" in found and "Spring sale" not in found
    assert "Spring sale" in client.get("/decisions/actions/?channel=email").content.decode()


def test_a_new_action_is_saved_through_the_service(shop):
    client = signed_in(shop, Role.MARKETER)
    page = client.get("/decisions/new/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="rule-builder-options"' in html and "rule-builder.js" in html
    response = client.post("/decisions/new/", form())
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == "/decisions/actions/brew-planner/?saved=1"
    action = selectors.action_get(workspace=shop.workspace, key="brew-planner")
    assert action.name == "Brew Planner tutorial" and action.kind == "message"
    assert sorted(action.channels) == ["email", "web"]
    assert action.placements == ["home_banner", "cart"]
    assert action.content["web"] == {
        "title": "Plan your brew",
        "link_url": "https://example.com/planner",
    }
    assert action.content["email"] == {"body": "Here is how"}
    assert action.value == Decimal("12.5") and action.currency == "EUR"
    assert action.budget == 1000 and action.daily_capacity is None
    assert action.lever == 1.5 and action.channel_levers == {"web": 2.0}
    assert action.prior_propensity == pytest.approx(0.1)
    assert action.eligibility["all"][0]["trait"] == "plan"
    assert action.starts_at is not None and action.ends_at is None
    assert action.enabled is True
    saved = client.get(response["Location"]).content.decode()
    assert "Brew Planner tutorial" in saved and 'role="status"' in saved


@pytest.mark.parametrize(
    ("field", "typed", "shown_beside"),
    [
        ("value", "lots", "a-value-error"),
        ("budget", "1.5", "a-budget-error"),
        ("lever", "", "a-lever-error"),
        ("starts_at", "next week", "a-starts-error"),
        ("eligibility", "{not json", "rule-json-error"),
        ("template", "6f1c1d6e-0000-4000-8000-000000000000", "a-template-error"),
    ],
)
def test_a_bad_field_is_shown_beside_it_and_nothing_is_saved(shop, field, typed, shown_beside):
    client = signed_in(shop, Role.MARKETER)
    response = client.post("/decisions/new/", form(**{field: typed}))
    assert response.status_code == 422
    html = response.content.decode()
    assert f'id="{shown_beside}"' in html
    # What was typed stays in the form.
    assert "Brew Planner tutorial" in html
    assert not Action.objects.filter(workspace=shop.workspace).exists()


def test_the_services_errors_are_shown_too(shop):
    client = signed_in(shop, Role.MARKETER)
    make(shop, key="brew-planner")
    response = client.post("/decisions/new/", form())
    assert response.status_code >= 400
    assert 'id="a-key-error"' in response.content.decode()
    response = client.post("/decisions/new/", form(key="other", channels=[]))
    assert response.status_code >= 400
    assert Action.objects.filter(workspace=shop.workspace).count() == 1


def test_editing_keeps_what_the_form_does_not_show(shop):
    client = signed_in(shop, Role.MARKETER)
    action = make(shop, content={"web": {"title": "Old", "badge": "new"}})
    page = client.get(f"/decisions/actions/{action.key}/edit/")
    assert page.status_code == 200 and 'value="Old"' in page.content.decode()
    response = client.post(
        f"/decisions/actions/{action.key}/edit/",
        form(key=action.key, **{"content.web.title": "New", "enabled": ""}),
    )
    assert response.status_code == 302
    action.refresh_from_db()
    assert action.content["web"] == {
        "title": "New",
        "badge": "new",
        "link_url": ("https://example.com/planner"),
    }
    assert action.enabled is False


def test_delete_asks_first(shop):
    client = signed_in(shop, Role.MARKETER)
    action = make(shop)
    page = client.get(f"/decisions/actions/{action.key}/delete/")
    assert page.status_code == 200 and 'id="action-delete-confirm"' in page.content.decode()
    assert Action.objects.filter(pk=action.pk).exists()
    response = client.post(f"/decisions/actions/{action.key}/delete/")
    assert response.status_code == 302
    assert not Action.objects.filter(pk=action.pk).exists()


def test_another_workspaces_action_is_not_found(shop):
    other = tenant_create("Elsewhere", sample_data=False)
    theirs = make(other, key="theirs")
    client = signed_in(shop, Role.ADMIN)
    for url in ("/", "edit/", "delete/"):
        assert (
            client.get(f"/decisions/actions/{theirs.key}/{url}".replace("//", "/")).status_code
            == 404
        )
    assert client.post(f"/decisions/actions/{theirs.key}/delete/").status_code == 404
    assert Action.objects.filter(pk=theirs.pk).exists()


def test_the_levers_are_saved_through_the_service(shop):
    client = signed_in(shop, Role.ADMIN)
    page = client.get("/decisions/settings/")
    assert page.status_code == 200
    response = client.post(
        "/decisions/settings/",
        {
            "control_percent": "10",
            "control_mode": "nothing",
            "weight.web": "1.2",
            "weight.email": "",
            "placement_name": ["home_banner", "", ""],
            "placement_weight": ["0.5", "", ""],
            "response_window_hours": "48",
            "half_life_days": "14",
        },
    )
    assert response.status_code == 302
    saved = selectors.decision_settings_get(shop.workspace)
    assert saved.control_percent == 10 and saved.control_mode == "nothing"
    assert saved.channel_weights == {"web": 1.2}
    assert saved.placement_weights == {"home_banner": 0.5}
    assert saved.response_window_hours == 48 and saved.half_life_days == 14
    bad = client.post(
        "/decisions/settings/",
        {
            "control_percent": "80",
            "control_mode": "random",
            "response_window_hours": "24",
            "half_life_days": "30",
        },
    )
    assert bad.status_code == 422 and 'id="s-control-error"' in bad.content.decode()
    assert selectors.decision_settings_get(shop.workspace).control_percent == 10


def test_a_reader_reads_and_writes_nothing(shop):
    readers = [r for r in Role if role_has_permission(role=r, code="decisions.read")]
    writers = [r for r in Role if role_has_permission(role=r, code="decisions.write")]
    reader = next((r for r in readers if r not in writers), None)
    if reader is None:
        pytest.skip("every role that reads decisions writes them too")
    client = signed_in(shop, reader)
    action = make(shop)
    html = client.get("/decisions/actions/").content.decode()
    assert "Spring sale" in html and 'href="/decisions/new/"' not in html
    assert client.get(f"/decisions/actions/{action.key}/").status_code == 200
    assert client.get("/decisions/settings/").status_code == 200
    assert client.get("/decisions/new/").status_code == 403
    assert client.get(f"/decisions/actions/{action.key}/edit/").status_code == 403
    assert client.post(f"/decisions/actions/{action.key}/delete/").status_code == 403
    assert client.post("/decisions/settings/", {"control_percent": "20"}).status_code == 403
    assert Action.objects.filter(pk=action.pk).exists()
    others = [r for r in Role if r not in readers]
    for role in others:
        client = signed_in(shop, role)
        assert client.get("/decisions/actions/").status_code == 403
        assert 'href="/decisions/actions/"' not in client.get("/").content.decode()


def _given(workspace, action, *, control, accepted, at):
    outcomes = ["impression", "accepted"] if accepted else ["impression"]
    given_plant(workspace, action, control=control, at=at, outcomes=outcomes)


def test_the_report_shows_uplift_with_its_interval_and_the_learning_curve(shop):
    action = make(shop)
    now = timezone.now()
    for i in range(20):
        _given(
            shop.workspace, action, control=False, accepted=i < 8, at=now - timedelta(days=i % 3)
        )
    for i in range(20):
        _given(shop.workspace, action, control=True, accepted=i < 2, at=now - timedelta(days=i % 3))
    client = signed_in(shop, Role.ANALYST)
    html = client.get(f"/decisions/actions/{action.key}/").content.decode()
    assert 'data-kpi="decisions">40<' in html
    assert 'data-kpi="impressions">40<' in html
    assert "+30.0" in html  # 40% against 10%
    assert "data-interval" in html and "95%" in html
    assert 'data-chart="decision-learning-curve"' in html
    spec = json.loads(
        html.split('id="decision-learning-curve" type="application/json">')[1].split("</script>")[0]
    )
    model, control = spec["option"]["series"]
    assert len(model["data"]) == 30
    assert any(v is not None for v in model["data"]) and any(v is not None for v in control["data"])


def test_the_person_page_simulates_the_next_best_action(shop, monkeypatch):
    # No control group: one customer in twenty would get a random action.
    services.decision_settings_update(
        workspace=shop.workspace, actor=Actor.system("tests"), data={"control_percent": 0}
    )
    person = Profile.objects.create(workspace=shop.workspace, traits={"plan": "gold"})
    make(shop, key="spring-sale")
    make(shop, key="call-back", name="Call back", channels=["assisted"])
    client = signed_in(shop, Role.MARKETER)
    html = client.get(f"/customers/{person.pk}/").content.decode()
    assert 'id="next-action"' in html and 'id="nba-channel"' in html
    assert 'data-candidate="spring-sale"' in html
    # Asked for in place, on another channel.
    part = client.get(
        f"/customers/{person.pk}/next-best-action/?nba_channel=assisted&nba_placement=x"
    )
    assert part.status_code == 200
    text = part.content.decode()
    assert text.lstrip().startswith('<section class="card next-action"')
    assert 'data-chosen="call-back"' in text
    assert 'data-control="false"' in text

    # Email reaches out: without consent nobody can be given anything there, and the
    # panel says why.
    text = client.get(f"/customers/{person.pk}/next-best-action/?nba_channel=email").content
    assert b"data-blocked" in text and b"data-chosen" not in text

    from rapport.decisions import engine

    real = engine.decision_simulate

    def in_control(**kwargs):
        found = real(**kwargs)
        found.control = True
        return found

    monkeypatch.setattr(engine, "decision_simulate", in_control)
    text = client.get(f"/customers/{person.pk}/next-best-action/").content.decode()
    assert 'data-control="true"' in text and "data-chosen" not in text


def test_the_simulator_is_for_those_who_may_read_decisions(shop):
    other = tenant_create("Elsewhere", sample_data=False)
    stranger = Profile.objects.create(workspace=other.workspace)
    client = signed_in(shop, Role.ADMIN)
    assert client.get(f"/customers/{stranger.pk}/next-best-action/").status_code == 404
    for role in Role:
        if role_has_permission(role=role, code="decisions.read"):
            continue
        person = Profile.objects.create(workspace=shop.workspace)
        html = signed_in(shop, role).get(f"/customers/{person.pk}/").content.decode()
        assert 'id="next-action"' not in html


def test_the_pages_speak_russian(shop):
    action = make(shop)
    person = Profile.objects.create(workspace=shop.workspace)
    client = signed_in(shop, Role.ADMIN)
    client.post("/preferences/language/", {"language": "ru", "next": "/"})
    urls = (
        "/decisions/actions/",
        "/decisions/new/",
        f"/decisions/actions/{action.key}/",
        f"/decisions/actions/{action.key}/edit/",
        f"/decisions/actions/{action.key}/delete/",
        "/decisions/settings/",
        f"/customers/{person.pk}/next-best-action/",
    )
    pages = {url: client.get(url).content.decode() for url in urls}
    pages["bad form"] = client.post("/decisions/new/", form(value="lots")).content.decode()
    data = {
        "Spring",
        "sale",
        "spring-sale",
        "Brew",
        "Planner",
        "tutorial",
        "Send",
        "the",
        "Plan",
        "your",
        "brew",
        "Here",
        "is",
        "how",
        "home_banner",
        "EUR",
        "eur",
    }
    for url, html in pages.items():
        parser = VisibleText()
        parser.feed(html)
        texts = [*parser.texts, *json_texts(parser.json)]
        words = english_words(texts, frozenset(w.lower() for w in data), frozenset(data))
        assert " ".join(sorted(words - data)) == "", url
