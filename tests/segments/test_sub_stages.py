"""The shipped lifecycle sub-stages: valid rules in the segment language, in English and
Russian, written for new workspaces and (by a data migration) for existing ones, and
customers placed in them as their stage is computed."""

import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.utils import timezone, translation

from rapport.segments import services
from rapport.segments.lifecycle import default_stages, default_sub_stages, stage_label
from rapport.segments.models import LifecycleStage, LifecycleState
from rapport.segments.rules import rule_describe, rule_parse
from rapport.tenancy.commerce import commerce_settings_get, commerce_settings_update
from rapport.tenancy.services import Actor
from tests.segments.conftest import profile_of

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("tests")
FIVE = ["preboarding", "onboarding", "relationship_development", "positive_development"]
FIVE += ["reboarding"]


def test_twenty_to_thirty_sub_stages_of_the_five_stages_each_a_valid_rule():
    subs = default_sub_stages("Order Completed", "Brew Planner Used")
    assert sorted(subs) == sorted(FIVE)
    every = [sub for children in subs.values() for sub in children]
    assert 20 <= len(every) <= 30
    keys = [sub["key"] for sub in every] + [s["key"] for s in default_stages("Order Completed")]
    assert len(set(keys)) == len(keys)
    for sub in every:
        parsed = rule_parse(sub["rule"], field=sub["key"])
        assert rule_describe(parsed)
        with translation.override("ru"):
            # Every name and description has its Russian.
            assert stage_label(sub["key"], sub["name"]) != sub["name"], sub["name"]
            assert translation.gettext(sub["description"]) != sub["description"]
    assert any("Brew Planner Used" in str(sub["rule"]) for sub in subs["onboarding"])


def test_a_new_workspace_gets_them_with_the_workspace_key_event(shop):
    commerce_settings_update(workspace=shop.workspace, actor=ACTOR, key_event="Brew Planner Used")
    stages = services.lifecycle_stages_ensure(workspace_id=shop.workspace.pk)
    by_key = {s.key: s for s in stages}
    assert by_key["onb_key_feature"].parent == by_key["onboarding"]
    assert "Brew Planner Used" in str(by_key["onb_key_feature"].rule)
    assert [s.key for s in stages if s.parent_id == by_key["reboarding"].pk][:4] == [
        "rb_won_back",
        "rb_cant_lose",
        "rb_slipping",
        "rb_at_risk",
    ]
    # Editable like any sub-stage.
    services.lifecycle_stage_update(
        stage=by_key["onb_stalled"], actor=ACTOR, name="Needs a nudge", rule={"all": []}
    )
    assert LifecycleStage.objects.get(pk=by_key["onb_stalled"].pk).name == "Needs a nudge"


def test_the_key_event_is_a_commerce_setting(shop):
    assert commerce_settings_get(workspace=shop.workspace).key_event == "Key Feature Used"
    commerce_settings_update(workspace=shop.workspace, actor=ACTOR, key_event=" Brew Planner Used ")
    assert commerce_settings_get(workspace=shop.workspace).key_event == "Brew Planner Used"
    from rapport.core.errors import InvalidInputError

    with pytest.raises(InvalidInputError) as refused:
        commerce_settings_update(workspace=shop.workspace, actor=ACTOR, key_event="  ")
    assert refused.value.field == "key_event"


def test_the_migration_adds_them_to_an_existing_lifecycle(shop):
    stages = services.lifecycle_stages_ensure(workspace_id=shop.workspace.pk)
    onboarding = next(s for s in stages if s.key == "onboarding")
    # A lifecycle from before they shipped, with a sub-stage of its own.
    LifecycleStage.objects.filter(workspace=shop.workspace, parent__isnull=False).delete()
    own = services.lifecycle_sub_stage_create(
        parent=onboarding, key="first_week", name="First week", rule={"all": []}, actor=ACTOR
    )
    migration = importlib.import_module("rapport.segments.migrations.0005_default_sub_stages")
    migration.add_sub_stages(apps, None)
    migration.add_sub_stages(apps, None)  # twice: nothing twice
    children = list(onboarding.children.order_by("position").values_list("key", flat=True))
    assert children[0] == own.key and children[1:] == [
        sub["key"] for sub in default_sub_stages("x", "y")["onboarding"]
    ]
    assert LifecycleStage.objects.filter(workspace=shop.workspace).count() == 6 + 26 + 1


def _place(shop, user):
    state = LifecycleState.objects.get(profile=profile_of(shop, user))
    return state.stage, state.sub_stage


def test_customers_are_placed_in_the_first_sub_stage_that_fits(shop, time_machine):
    commerce_settings_update(workspace=shop.workspace, actor=ACTOR, key_event="Brew Planner Used")
    start = timezone.now()
    time_machine.move_to(start, tick=False)
    shop.send(
        {"type": "identify", "userId": "lead", "traits": {"email": "lead@example.com"}},
        {"type": "track", "userId": "ann", "event": "Signed Up"},
        {"type": "track", "userId": "bob", "event": "Signed Up"},
        {"type": "track", "userId": "cy", "event": "Signed Up"},
    )
    assert _place(shop, "lead") == ("preboarding", "pre_lead")
    assert _place(shop, "ann") == ("onboarding", "onb_signed_up")
    time_machine.move_to(start + timedelta(days=4), tick=False)
    services.lifecycle_refresh(workspace_id=shop.workspace.pk)
    assert _place(shop, "ann") == ("onboarding", "onb_stalled")
    shop.send(
        {"type": "track", "userId": "ann", "event": "Brew Planner Used"},
        {"type": "track", "userId": "bob", "event": "Order Completed"},
        {"type": "track", "userId": "cy", "event": "Order Completed"},
        {"type": "track", "userId": "cy", "event": "Order Completed"},
    )
    assert _place(shop, "ann") == ("onboarding", "onb_key_feature")
    assert _place(shop, "bob") == ("onboarding", "onb_first_purchase")
    assert _place(shop, "cy") == ("onboarding", "onb_repeat")
    # Moves within onboarding are entries into its sub-stages, not into the stage again.
    from rapport.segments.selectors import lifecycle_overview

    overview = {i.stage.key: i for i in lifecycle_overview(workspace=shop.workspace)}
    assert overview["onboarding"].entered_30d == 3
    subs = {s.stage.key: s.entered_30d for s in overview["onboarding"].sub_stages}
    assert subs["onb_signed_up"] == 3 and subs["onb_stalled"] == 3
    # Past the first month: relationship development, by what they bought.
    time_machine.move_to(start + timedelta(days=40), tick=False)
    shop.send(
        {"type": "track", "userId": "ann", "event": "App Opened"},
        {"type": "track", "userId": "bob", "event": "App Opened"},
        {"type": "track", "userId": "cy", "event": "Order Completed"},
    )
    assert _place(shop, "ann") == ("relationship_development", "rd_never_bought")
    assert _place(shop, "bob") == ("relationship_development", "rd_one_purchase")
    assert _place(shop, "cy") == ("relationship_development", "rd_regular")
    # Not seen for 95 days: reboarding, lapsed.
    time_machine.move_to(start + timedelta(days=136), tick=False)
    services.lifecycle_refresh(workspace_id=shop.workspace.pk)
    assert _place(shop, "bob") == ("reboarding", "rb_lapsed")


def test_the_lifecycle_page_shows_them_in_english_and_russian(shop):
    from tests.web.clients import signed_in

    services.lifecycle_stages_ensure(workspace_id=shop.workspace.pk)
    client = signed_in(shop, "admin")
    page = client.get("/lifecycle/").content.decode()
    assert "Not activated after 3 days" in page and "Won back" in page
    assert "Signed up over 3 days ago" in page  # the description
    client.post("/preferences/language/", {"language": "ru", "next": "/"})
    page = client.get("/lifecycle/").content.decode()
    assert "Not activated after 3 days" not in page and "Won back" not in page
