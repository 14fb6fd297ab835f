"""Journeys in the UI (rapport/web/journeys.py): the list and its filter, a new journey
blank or from a programme, the editor's save (a bad graph shows its error beside the
step and writes nothing), validate, start/pause/stop, per-step counts and the
conversion against the holdout, the person page's section, roles and other
workspaces' journeys (404)."""

import json
import re

import pytest

from rapport.channels.models import Template
from rapport.journeys import services
from rapport.journeys.models import Enrolment, Journey, JourneyVersion
from rapport.tenancy.permissions import Role
from rapport.web.journeys import errors_shown
from tests.conftest import tenant_create
from tests.journeys.conftest import ACTOR, advance, customers
from tests.web.clients import signed_in
from tests.web.test_russian_pages import VisibleText, english_words, json_texts


@pytest.fixture
def shop(db, settings):
    settings.RAPPORT_JOURNEYS_ENQUEUE = False
    return tenant_create("Shop", sample_data=False)


def graph(**extra) -> dict:
    made = {
        "name": "Welcome month",
        "description": "",
        "trigger": {"type": "manual"},
        "goal": {"event": "Order Completed", "where": [], "within_days": 30},
        "holdout_percent": 0,
        "reentry": {"mode": "never"},
        "start": "hello",
        "steps": {
            "hello": {
                "type": "send",
                "channel": "email",
                "purpose": "marketing",
                "content": {"subject": "Hi", "html": "<p>Hi</p>"},
                "next": "pause",
            },
            "pause": {"type": "wait", "seconds": 86400, "next": "done"},
            "done": {"type": "exit"},
        },
        "layout": {"hello": {"x": 300, "y": 40}},
    }
    made.update(extra)
    return made


def make(tenant, **extra) -> Journey:
    return services.journey_create(workspace=tenant.workspace, graph=graph(**extra), actor=ACTOR)


def test_the_list_shows_journeys_and_filters_by_status(shop):
    client = signed_in(shop, Role.ANALYST)
    make(shop, name="Welcome month")
    running = services.journey_start(journey=make(shop, name="Win back"), actor=ACTOR)
    page = client.get("/journeys/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'href="/journeys/"' in html  # in the side bar's Act group
    assert "Welcome month" in html and "Win back" in html
    # An analyst reads, and is not offered a new journey.
    assert 'href="/journeys/new/"' not in html
    active = client.get("/journeys/?status=active").content.decode()
    assert "Win back" in active and "Welcome month" not in active
    assert running.status == "active"
    assert "Welcome month" in client.get("/journeys/?status=draft").content.decode()
    # An unknown status is no filter.
    assert "Win back" in client.get("/journeys/?status=nonsense").content.decode()


def test_a_new_blank_journey_and_one_from_a_programme(shop):
    client = signed_in(shop, Role.MARKETER)
    page = client.get("/journeys/new/")
    assert page.status_code == 200
    response = client.post("/journeys/new/", {"name": "", "programme": ""})
    assert response.status_code == 422
    assert 'id="j-name-error"' in response.content.decode()
    assert not Journey.objects.filter(workspace=shop.workspace).exists()
    response = client.post("/journeys/new/", {"name": "From scratch", "programme": ""})
    assert response.status_code == 302
    journey = Journey.objects.get(workspace=shop.workspace, name="From scratch")
    assert response["Location"] == f"/journeys/{journey.pk}/"
    assert client.get(response["Location"]).status_code == 200
    response = client.post("/journeys/new/", {"name": "x", "programme": "no-such-programme"})
    assert response.status_code == 422
    html = client.get("/journeys/new/").content.decode()
    assert 'value="onboarding_month"' in html or 'name="programme" value="' in html
    keys = re.findall(r'name="programme" value="([^"]+)"', html)
    assert keys, "the shipped programmes are offered"
    response = client.post("/journeys/new/", {"name": "", "programme": keys[0]})
    assert response.status_code == 302, response.content.decode()[:2000]
    made = Journey.objects.get(pk=response["Location"].split("/")[2])
    graph_saved = services.journey_version(made).graph
    assert len(graph_saved["steps"]) > 2
    assert client.get(response["Location"]).status_code == 200
    response = client.post("/journeys/new/", {"name": "Our welcome", "programme": keys[0]})
    assert Journey.objects.get(pk=response["Location"].split("/")[2]).name == "Our welcome"
    # A name too long: nothing is made (neither the journey nor its letters).
    before = (Journey.objects.count(), Template.objects.count())
    response = client.post("/journeys/new/", {"name": "x" * 300, "programme": keys[0]})
    assert response.status_code == 422
    assert 'id="j-name-error"' in response.content.decode()
    assert (Journey.objects.count(), Template.objects.count()) == before


def test_save_from_the_editor_makes_a_version_and_keeps_the_layout(shop):
    journey = make(shop)
    client = signed_in(shop, Role.MARKETER)
    page = client.get(f"/journeys/{journey.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="journey-options"' in html and "vendor/drawflow/drawflow.min.js" in html
    changed = graph()
    changed["steps"]["pause"]["seconds"] = 3 * 86400
    changed["layout"] = {"hello": {"x": 10, "y": 20}, "pause": {"x": 280, "y": 20}}
    response = client.post(
        f"/journeys/{journey.pk}/",
        {"graph": json.dumps(changed), "name": "Renamed", "holdout_percent": "10"},
    )
    assert response.status_code == 302
    journey.refresh_from_db()
    assert journey.version == 2 and journey.name == "Renamed" and journey.holdout_percent == 10
    saved = services.journey_version(journey).graph
    assert saved["steps"]["pause"]["seconds"] == 3 * 86400
    assert saved["layout"]["pause"] == {"x": 280, "y": 20}


def test_a_bad_graph_is_shown_beside_its_step_and_writes_nothing(shop):
    journey = make(shop)
    client = signed_in(shop, Role.MARKETER)
    bad = graph()
    bad["steps"]["pause"]["seconds"] = "soon"
    response = client.post(f"/journeys/{journey.pk}/", {"graph": json.dumps(bad)})
    html = response.content.decode()
    assert response.status_code == 422
    assert 'data-error-path="steps.pause.seconds"' in html
    assert 'data-select-step="pause"' in html
    # What was typed stays in the form.
    assert "soon" in html
    for text in ("{not json", "[1, 2]", "x" * 1_100_000):
        response = client.post(f"/journeys/{journey.pk}/", {"graph": text})
        assert response.status_code == 422
        assert 'data-error-path="graph"' in response.content.decode()
    # A holdout that is not a number names its field.
    response = client.post(
        f"/journeys/{journey.pk}/", {"graph": json.dumps(graph()), "holdout_percent": "ten"}
    )
    assert response.status_code == 422
    assert 'id="j-holdout-error"' in response.content.decode()
    journey.refresh_from_db()
    assert journey.version == 1
    assert JourneyVersion.objects.filter(journey=journey).count() == 1


def test_html_in_a_graph_is_escaped(shop):
    journey = make(shop, name="<script>alert(1)</script>")
    html = signed_in(shop, Role.MARKETER).get(f"/journeys/{journey.pk}/").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "\\u003Cscript\\u003E" in html or "&lt;script&gt;" in html


def test_validate_lists_the_problems_of_the_graph_being_edited_without_saving(shop):
    journey = make(shop)
    client = signed_in(shop, Role.MARKETER)
    response = client.post(f"/journeys/{journey.pk}/validate/")
    assert response.status_code == 200
    assert "data-valid" in response.content.decode()
    broken = graph()
    broken["steps"]["pause"]["next"] = "nowhere"
    broken["steps"]["lonely"] = {"type": "exit"}
    response = client.post(f"/journeys/{journey.pk}/validate/", {"graph": json.dumps(broken)})
    html = response.content.decode()
    assert response.status_code == 422
    assert 'data-select-step="pause"' in html and 'data-select-step="lonely"' in html
    journey.refresh_from_db()
    assert journey.version == 1


def test_start_pause_and_stop_are_posts_for_writers(shop):
    journey = make(shop)
    reader = signed_in(shop, Role.ANALYST)
    assert reader.post(f"/journeys/{journey.pk}/start/").status_code == 403
    client = signed_in(shop, Role.MARKETER)
    assert client.get(f"/journeys/{journey.pk}/start/").status_code == 405
    assert client.post(f"/journeys/{journey.pk}/start/").status_code == 302
    journey.refresh_from_db()
    assert journey.status == "active"
    assert "data-confirm-pause" in client.get(f"/journeys/{journey.pk}/").content.decode()
    assert client.post(f"/journeys/{journey.pk}/pause/").status_code == 302
    journey.refresh_from_db()
    assert journey.status == "paused"
    assert client.post(f"/journeys/{journey.pk}/stop/").status_code == 302
    journey.refresh_from_db()
    assert journey.status == "stopped"


def test_a_journey_that_cannot_start_says_why(shop):
    broken = graph()
    broken["steps"]["hello"].pop("content")
    journey = make(shop, steps=broken["steps"])
    client = signed_in(shop, Role.MARKETER)
    response = client.post(f"/journeys/{journey.pk}/start/")
    assert response.status_code == 422
    assert 'data-select-step="hello"' in response.content.decode()
    journey.refresh_from_db()
    assert journey.status == "draft"


def test_roles_and_other_workspaces(shop):
    journey = make(shop)
    other = tenant_create("Other", sample_data=False)
    theirs = make(other, name="Their journey")
    client = signed_in(shop, Role.MARKETER)
    for url in (
        f"/journeys/{theirs.pk}/",
        f"/journeys/{theirs.pk}/validate/",
        f"/journeys/{theirs.pk}/start/",
        f"/journeys/{theirs.pk}/pause/",
        f"/journeys/{theirs.pk}/stop/",
    ):
        method = client.get if url.count("/") == 3 else client.post
        assert method(url).status_code == 404, url
    assert client.post(f"/journeys/{theirs.pk}/", {"graph": json.dumps(graph())}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.version == 1 and theirs.status == "draft"
    assert "Their journey" not in client.get("/journeys/").content.decode()
    # A reader sees the page read-only, and cannot save or make one.
    reader = signed_in(shop, Role.ANALYST)
    page = reader.get(f"/journeys/{journey.pk}/").content.decode()
    assert "data-save" not in page and '"readonly": true' in page
    response = reader.post(f"/journeys/{journey.pk}/", {"graph": json.dumps(graph())})
    assert response.status_code == 403
    assert reader.get("/journeys/new/").status_code == 403
    journey.refresh_from_db()
    assert journey.version == 1
    # Sales and support agents see journeys too (journeys.read is every role's).
    assert signed_in(shop, Role.AGENT).get("/journeys/").status_code == 200


def test_counts_per_step_and_conversion_against_the_holdout(shop):
    journey = services.journey_start(journey=make(shop, holdout_percent=20), actor=ACTOR)
    people = customers(shop, 30)
    for person in people:
        services.enrolment_create(journey=journey, profile=person, actor=ACTOR)
    advance(shop)
    page = signed_in(shop, Role.ANALYST).get(f"/journeys/{journey.pk}/")
    html = page.content.decode()
    marker = 'id="journey-options" type="application/json">'
    options = json.loads(html.split(marker)[1].split("<")[0])
    held = Enrolment.objects.filter(journey=journey, holdout=True).count()
    assert 0 < held < 30
    at_pause = Enrolment.objects.filter(journey=journey, step="pause", state="active").count()
    assert at_pause > 0
    assert options["counts"]["pause"]["waiting"] == at_pause
    assert options["counts"]["hello"]["passed"] >= 30 - held
    assert options["counts"]["done"] == {"entered": 0, "waiting": 0, "passed": 0, "exited": 0}
    # The nodes get the counts; the table under "Customers per step" too.
    assert f'<td class="number">{at_pause}</td>' in html
    # Conversion against the holdout, with the interval.
    assert "data-enrolled>30<" in html
    assert "95% confidence interval" in html


def test_errors_name_their_steps():
    shown = errors_shown(
        [
            {"path": "steps.wait3.timeout_next", "message": "unknown step"},
            {"field": "trigger.event", "message": "required"},
            {"path": "steps[ab].paths", "message": "100"},
        ]
    )
    assert [e["step"] for e in shown] == ["wait3", None, "ab"]
    assert shown[1]["panel"] == "trigger"


def test_the_person_page_shows_the_journeys_they_are_in(shop):
    journey = services.journey_start(journey=make(shop), actor=ACTOR)
    person = customers(shop, 1)[0]
    services.enrolment_create(journey=journey, profile=person, actor=ACTOR)
    advance(shop)
    html = signed_in(shop, Role.ANALYST).get(f"/customers/{person.pk}/").content.decode()
    assert 'id="h-journeys"' in html
    assert f'data-journey="{journey.pk}"' in html
    assert "data-step>pause<" in html


def _words_of(value) -> list[str]:
    if isinstance(value, dict):
        return [w for v in value.values() for w in _words_of(v)]
    return [str(value)]


def test_the_pages_and_the_editor_speak_russian(shop):
    journey = services.journey_start(journey=make(shop, holdout_percent=10), actor=ACTOR)
    for person in customers(shop, 5):
        services.enrolment_create(journey=journey, profile=person, actor=ACTOR)
    advance(shop)
    client = signed_in(shop, Role.MARKETER)
    client.post("/preferences/language/", {"language": "ru", "next": "/"})
    bad = graph()
    bad["steps"]["pause"]["next"] = "nowhere"
    pages = {
        url: client.get(url).content.decode()
        for url in ("/journeys/", "/journeys/new/", f"/journeys/{journey.pk}/")
    }
    pages["validate"] = client.post(
        f"/journeys/{journey.pk}/validate/", {"graph": json.dumps(bad)}
    ).content.decode()
    # What the graph holds (names, events, content) is data, not the page's words.
    data = {"Welcome", "month", "Order", "Completed", "Hi", "hello", "pause", "done", "nowhere"}
    # The shipped programmes' descriptions quote the events they use.
    data |= {"Key", "Feature", "Used", "Survey", "Answered", "survey", "csat", "CSAT"}
    for url, html in pages.items():
        assert '<html lang="ru"' in html, url
        parser = VisibleText()
        parser.feed(html)
        texts = [*parser.texts, *json_texts(parser.json)]
        for script in parser.json:
            found = json.loads(script)
            if isinstance(found, dict) and "words" in found:
                texts += _words_of(found["words"]) + _words_of(found["texts"])
        words = english_words(texts, frozenset(w.lower() for w in data), frozenset(data))
        assert " ".join(sorted(words - data)) == "", url
