"""A journey's send step whose content the decision engine chooses: validated before
start, each customer sent the action the engine gives them (mail checked at a real SMTP
server), the decision on the message, its opens and clicks recorded as the action's
outcomes; a control customer given nothing is logged and goes on."""

import re
from decimal import Decimal
from html import unescape

import pytest
from django.test import Client

from rapport.channels.models import Message
from rapport.decisions import engine
from rapport.decisions.models import Decision, DecisionAction, Outcome
from rapport.journeys import services as journeys
from rapport.journeys.graph import journey_validate
from rapport.journeys.models import Enrolment, StepRun
from rapport.profiles.models import Profile
from tests.channels.test_api import _run_tasks
from tests.decisions.conftest import action_add, settings_set
from tests.journeys.conftest import ACTOR, advance

BASE = "https://crm.example.com"


@pytest.fixture
def smtp(settings, mailbox):
    settings.RAPPORT_EMAIL_URL = f"smtp://{mailbox.host}:{mailbox.port}"
    settings.RAPPORT_PUBLIC_URL = BASE
    settings.RAPPORT_JOURNEYS_ENQUEUE = False
    return mailbox


def customer(tenant, user_id: str, **traits) -> Profile:
    traits.setdefault("email", f"{user_id}@example.com")
    traits["consent"] = {"email": {"marketing": "granted"}}
    tenant.send({"type": "identify", "userId": user_id, "traits": traits})
    return Profile.objects.get(workspace=tenant.workspace, identifiers__value=user_id)


def catalogue(tenant):
    action_add(
        tenant,
        "pro-upgrade",
        channels=["email"],
        value=Decimal("1000000"),
        eligibility={"trait": "plan", "op": "eq", "value": "pro"},
        content={
            "email": {
                "subject": "{{ customer.first_name }}, your Pro upgrade",
                "html": '<p>Upgrade now: <a href="https://shop.example.com/pro">see it</a></p>',
            }
        },
    )
    action_add(
        tenant,
        "brew-tutorial",
        channels=["email"],
        value=Decimal("1"),
        content={
            "email": {
                "title": "The Brew Planner tutorial",
                "body": "Ten minutes to your first plan.",
                "link_url": "https://shop.example.com/tutorial",
            }
        },
    )


def decided_step(**extra):
    return {
        "type": "send",
        "channel": "email",
        "purpose": "marketing",
        "decide": {"placement": "journey_email"},
        "next": "done",
        **extra,
    }


def make_journey(tenant, step, name="Decided"):
    graph = {
        "name": name,
        "trigger": {"type": "manual"},
        "start": "hi",
        "steps": {
            "hi": step,
            "done": {"type": "update_trait", "trait": "reached", "value": True, "next": None},
        },
    }
    made = journeys.journey_create(workspace=tenant.workspace, graph=graph, actor=ACTOR)
    return journeys.journey_start(journey=made, actor=ACTOR)


def _html(mail) -> str:
    return mail.get_body(preferencelist=("html",)).get_content()


def _path(url: str) -> str:
    return unescape(url).removeprefix(BASE)


def test_validation_accepts_a_decided_send_and_refuses_a_send_with_nothing(shop):
    def problems(step):
        graph = {"name": "J", "start": "hi", "steps": {"hi": {**step, "next": None}}}
        return journey_validate(workspace=shop.workspace, graph=graph)

    base = {"type": "send", "channel": "email", "purpose": "marketing"}
    assert problems({**base, "decide": True}) == []
    assert problems({**base, "decide": {"placement": "journey_email"}}) == []
    # With content of its own: the fallback for those the engine gives nothing.
    assert problems({**base, "decide": True, "content": {"subject": "S", "html": "<p>x</p>"}}) == []
    [nothing] = problems(base)
    assert nothing["path"] == "steps.hi" and "decided by the engine" in nothing["message"]
    assert problems({**base, "decide": False})[0]["path"] == "steps.hi"
    [hook] = problems({**base, "channel": "webhook", "decide": True})
    assert hook["path"] == "steps.hi.decide"
    # The shape: an unknown key in decide is refused before anything else.
    [shape] = problems({**base, "decide": {"where": "x"}})
    assert shape["path"].startswith("steps.hi.decide")


def test_each_customer_is_sent_the_action_decided_and_its_answers_are_learned(shop, smtp):
    catalogue(shop)
    settings_set(shop, control_percent=0)
    ann = customer(shop, "ann", first_name="Ann", plan="pro")
    bob = customer(shop, "bob", first_name="Bob", plan="basic")
    journey = make_journey(shop, decided_step())
    for person in (ann, bob):
        journeys.enrolment_create(journey=journey, profile=person, actor=ACTOR)
    advance(shop)
    _run_tasks()

    by_to = {r[0]: m for r, m in zip(smtp.recipients, smtp.messages, strict=True)}
    assert set(by_to) == {"ann@example.com", "bob@example.com"}
    assert by_to["ann@example.com"]["Subject"] == "Ann, your Pro upgrade"
    assert by_to["bob@example.com"]["Subject"] == "The Brew Planner tutorial"
    assert "Ten minutes to your first plan." in _html(by_to["bob@example.com"])

    for person, key in ((ann, "pro-upgrade"), (bob, "brew-tutorial")):
        message = Message.objects.get(profile=person)
        assert message.decision_action == key and message.status == "sent"
        decision = Decision.objects.get(pk=message.decision_id)
        assert decision.origin == "journey" and decision.placement == "journey_email"
        assert decision.profile_id == person.pk and decision.context["step"] == "hi"
        run = StepRun.objects.get(enrolment__profile=person, step="hi")
        assert run.outcome == "sent"
        assert run.detail["decision_id"] == str(decision.pk) and run.detail["action"] == key
    assert Enrolment.objects.filter(state="completed").count() == 2

    # Ann opens the mail (the tracking pixel) and clicks its link: the action's
    # impression and click, once each however often she does.
    html = _html(by_to["ann@example.com"])
    pixel = re.search(r'src="([^"]*/m/o/[^"]+)"', html).group(1)
    link = re.search(r'href="([^"]*/m/c/[^"]+)"', html).group(1)
    client = Client()
    for _ in range(2):
        assert client.get(_path(pixel)).status_code == 200
    message = Message.objects.get(profile=ann)
    assert set(
        Outcome.objects.filter(decision_id=message.decision_id).values_list("outcome", flat=True)
    ) == {"impression"}
    clicked = client.get(_path(link))
    assert clicked.status_code == 302 and clicked["Location"] == "https://shop.example.com/pro"
    client.get(_path(link))
    assert sorted(
        Outcome.objects.filter(decision_id=message.decision_id).values_list("outcome", flat=True)
    ) == ["clicked", "impression"]
    row = DecisionAction.objects.get(decision_id=message.decision_id)
    assert row.label == 1 and row.impression_at is not None
    # Bob's decision has heard nothing.
    bob_message = Message.objects.get(profile=bob)
    assert not Outcome.objects.filter(decision_id=bob_message.decision_id).exists()


def _in_control(shop, *, inside: bool, n: int = 40) -> list[Profile]:
    settings = engine.settings_of(shop.workspace.pk)
    found = []
    for i in range(n):
        p = customer(shop, f"c{i}", first_name=f"C{i}", plan="pro")
        if engine.in_control(workspace_id=shop.workspace.pk, profile_id=p.pk, settings=settings):
            if inside:
                found.append(p)
        elif not inside:
            found.append(p)
    return found


def test_a_control_customer_given_nothing_is_logged_and_goes_on(shop, smtp):
    catalogue(shop)
    settings_set(shop, control_percent=50, control_mode="nothing")
    controlled = _in_control(shop, inside=True)[:2]
    assert controlled
    journey = make_journey(shop, decided_step())
    for person in controlled:
        journeys.enrolment_create(journey=journey, profile=person, actor=ACTOR)
    advance(shop)
    _run_tasks()

    assert smtp.messages == [] and not Message.objects.exists()
    for person in controlled:
        e = Enrolment.objects.get(profile=person)
        logged = dict(StepRun.objects.filter(enrolment=e).values_list("step", "outcome"))
        assert logged == {"hi": "no_action", "done": "updated"}
        assert e.state == "completed"
        detail = StepRun.objects.get(enrolment=e, step="hi").detail
        decision = Decision.objects.get(pk=detail["decision_id"])
        assert decision.control and detail["control"] is True
        assert not DecisionAction.objects.filter(decision=decision).exists()


def test_the_steps_own_content_goes_to_those_given_nothing(shop, smtp):
    catalogue(shop)
    settings_set(shop, control_percent=50, control_mode="nothing")
    controlled = _in_control(shop, inside=True)[:1]
    journey = make_journey(
        shop,
        decided_step(content={"subject": "Our usual news", "html": "<p>News</p>"}),
        name="With a fallback",
    )
    journeys.enrolment_create(journey=journey, profile=controlled[0], actor=ACTOR)
    advance(shop)
    _run_tasks()

    [mail] = smtp.messages
    assert mail["Subject"] == "Our usual news"
    message = Message.objects.get()
    # The control decision is on record (uplift is measured against it), with no action.
    assert message.decision_id is not None and message.decision_action == ""
    pixel = re.search(r'src="([^"]*/m/o/[^"]+)"', _html(mail)).group(1)
    assert Client().get(_path(pixel)).status_code == 200
    assert not Outcome.objects.exists()


def test_a_step_run_again_decides_nothing_more(shop, smtp):
    catalogue(shop)
    settings_set(shop, control_percent=0)
    ann = customer(shop, "ann", first_name="Ann", plan="pro")
    journey = make_journey(shop, decided_step())
    (e,) = journeys.enrolments_create_many(journey=journey, profile_ids=[ann.pk])
    from rapport.journeys.services import _Run, _send_decided

    step = journeys._graph(e.version_id).steps["hi"]
    e.step, e.visit = "hi", 1
    from django.utils import timezone

    for _ in range(2):
        run = _Run(
            workspace_id=shop.workspace.pk,
            now=timezone.now(),
            enrolments=[e],
            journeys={journey.pk: journey},
        )
        _send_decided(run, [e], step)
        assert [r["outcome"] for r in run.runs] == ["sent"]
    assert Message.objects.count() == 1 and Decision.objects.count() == 1


def test_an_in_app_message_decided_shown_and_clicked(shop, settings):
    settings.RAPPORT_JOURNEYS_ENQUEUE = False
    import base64

    action_add(
        shop,
        "planner-tip",
        channels=["in_app"],
        content={
            "in_app": {
                "title": "Plan your week",
                "body": "The Brew Planner does it in a minute.",
                "link_url": "https://shop.example.com/planner",
            }
        },
    )
    settings_set(shop, control_percent=0)
    shop.send({"type": "identify", "userId": "jane", "traits": {"first_name": "Jane"}})
    jane = Profile.objects.get(workspace=shop.workspace, identifiers__value="jane")
    journey = make_journey(
        shop,
        {
            "type": "send",
            "channel": "in_app",
            "purpose": "marketing",
            "decide": True,
            "next": "done",
        },
    )
    journeys.enrolment_create(journey=journey, profile=jane, actor=ACTOR)
    advance(shop)
    _run_tasks()

    auth = {
        "HTTP_AUTHORIZATION": "Basic "
        + base64.b64encode(f"{shop.created.write_key}:".encode()).decode()
    }
    client = Client()
    [item] = client.get("/v1/in-app/messages?user_id=jane", **auth).json()["messages"]
    assert item["title"] == "Plan your week"
    assert item["text"].strip() == "The Brew Planner does it in a minute."
    assert item["url"] == "https://shop.example.com/planner"
    message = Message.objects.get(pk=item["id"])
    assert message.decision_action == "planner-tip"
    for kind in ("shown", "clicked"):
        answer = client.post(
            f"/v1/in-app/messages/{item['id']}/events",
            data={"type": kind, "user_id": "jane"},
            content_type="application/json",
            **auth,
        )
        assert answer.status_code == 204
    assert sorted(
        Outcome.objects.filter(decision_id=message.decision_id).values_list("outcome", flat=True)
    ) == ["clicked", "impression"]
