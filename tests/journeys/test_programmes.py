"""The programmes shipped as templates: each a journey graph that validates as it is,
in English and Russian, with the workspace's own events; installed, its messages are
channel templates that render for a customer and the journey is a valid draft."""

import pytest
from django.utils import translation

from rapport.channels.models import Template
from rapport.channels.render import render
from rapport.core.errors import InvalidInputError
from rapport.journeys.graph import journey_validate
from rapport.journeys.models import Journey
from rapport.journeys.programmes import programme_install, programme_templates
from rapport.tenancy.commerce import commerce_settings_update
from rapport.tenancy.services import Actor
from tests.conftest import tenant_create

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("tests")
KEYS = ["onboarding_month", "win_back", "after_ticket"]


@pytest.fixture
def shop(db):
    tenant = tenant_create("Roasters", sample_data=False)
    # A name a template must not read as a tag.
    tenant.workspace.name = "Roasters {{ evil }} & Co"
    tenant.workspace.save()
    commerce_settings_update(workspace=tenant.workspace, actor=ACTOR, key_event="Brew Planner Used")
    return tenant


@pytest.mark.parametrize("language", ["en", "ru"])
def test_every_programme_validates_as_shipped(shop, language):
    with translation.override(language):
        programmes = programme_templates(workspace=shop.workspace)
    assert [p["key"] for p in programmes] == KEYS
    for programme in programmes:
        assert programme["name"] and programme["description"]
        assert journey_validate(workspace=shop.workspace, graph=programme["graph"]) == []
        sends = [s for s in programme["graph"]["steps"].values() if s["type"] == "send"]
        assert sends and all(s["content"]["subject"] and s["content"]["html"] for s in sends)
    english = programme_templates(workspace=shop.workspace)
    if language == "ru":
        # Translated: names, descriptions and the letters themselves.
        assert programmes[0]["name"] != english[0]["name"]
        welcome = programmes[0]["graph"]["steps"]["welcome"]["content"]
        assert welcome["subject"] != english[0]["graph"]["steps"]["welcome"]["content"]["subject"]


def test_the_onboarding_month_waits_for_the_workspace_key_feature(shop):
    onboarding = programme_templates(workspace=shop.workspace)[0]["graph"]
    assert onboarding["trigger"] == {"type": "event", "event": "Signed Up", "where": []}
    assert onboarding["goal"]["event"] == "Brew Planner Used"
    wait = onboarding["steps"]["wait_key_feature"]
    assert wait["event"] == "Brew Planner Used" and wait["timeout_seconds"] == 3 * 86400
    assert wait["timeout_next"] == "tutorial"
    commerce_settings_update(workspace=shop.workspace, actor=ACTOR, purchase_event="Bought")
    win_back = programme_templates(workspace=shop.workspace)[1]["graph"]
    assert "Bought" in str(win_back["goal"]["rule"])


@pytest.mark.parametrize("key", KEYS)
def test_install_makes_templates_and_a_valid_draft(shop, key):
    journey = programme_install(workspace=shop.workspace, key=key, actor=ACTOR)
    assert journey.status == Journey.Status.DRAFT
    from rapport.journeys.services import journey_version

    graph = journey_version(journey).graph
    assert journey_validate(workspace=shop.workspace, graph=graph) == []
    sends = [s for s in graph["steps"].values() if s["type"] == "send"]
    assert sends and all(s["template_id"] and not s.get("content") for s in sends)
    templates = Template.objects.filter(pk__in=[s["template_id"] for s in sends])
    assert templates.count() == len(sends)
    # Installed again: a second journey, its templates named apart.
    again = programme_install(workspace=shop.workspace, key=key, actor=ACTOR)
    assert again.pk != journey.pk
    assert Template.objects.filter(workspace=shop.workspace, name__endswith="(2)").count() == len(
        sends
    )


def test_the_messages_render_for_a_customer(shop):
    programme_install(workspace=shop.workspace, key="onboarding_month", actor=ACTOR)
    welcome = Template.objects.get(workspace=shop.workspace, name="Onboarding month: welcome")
    known = render(
        subject=welcome.subject,
        html=welcome.html,
        text=welcome.text,
        context={"customer": {"first_name": "Ann"}},
    )
    # The workspace's name is written as it is, never read as a tag.
    assert known.subject == "Welcome to Roasters {{ evil }} & Co"
    assert "Hello Ann," in known.html and "Roasters {{ evil }} &amp; Co" in known.html
    unknown = render(subject=welcome.subject, html=welcome.html, text="", context={"customer": {}})
    assert "Hello there," in unknown.html


def test_an_unknown_programme_is_refused(shop):
    with pytest.raises(InvalidInputError) as refused:
        programme_install(workspace=shop.workspace, key="nope", actor=ACTOR)
    assert refused.value.field == "key"
    assert not Journey.objects.filter(workspace=shop.workspace).exists()
