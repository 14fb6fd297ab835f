"""A broadcast whose content the decision engine chooses per recipient, in the send
batch: each recipient mailed the action given them (checked at a real SMTP server), the
decision on the message, opens and clicks recorded as outcomes; those given nothing get
the broadcast's own content, or are skipped when it has none."""

import re
from decimal import Decimal
from html import unescape

import pytest
from django.test import Client

from rapport.channels import services
from rapport.channels.models import Broadcast, Message
from rapport.decisions.models import Decision, DecisionAction, Outcome
from rapport.segments import services as segments
from tests.channels.conftest import ACTOR, customer
from tests.channels.test_api import _run_tasks
from tests.decisions.conftest import action_add, settings_set

BASE = "https://crm.example.com"


@pytest.fixture
def smtp(settings, mailbox):
    settings.RAPPORT_EMAIL_URL = f"smtp://{mailbox.host}:{mailbox.port}"
    settings.RAPPORT_PUBLIC_URL = BASE
    return mailbox


def _segment(shop, user_ids):
    listed = segments.segment_create(
        workspace=shop.workspace, name="Newsletter", kind="static", actor=ACTOR
    )
    if user_ids:
        segments.segment_members_add(segment=listed, values=user_ids, actor=ACTOR)
    return listed


def _catalogue(shop):
    action_add(
        shop,
        "pro-upgrade",
        channels=["email"],
        placements=["newsletter"],
        value=Decimal("1000000"),
        eligibility={"trait": "plan", "op": "eq", "value": "pro"},
        content={
            "email": {
                "subject": "{{ customer.first_name }}: Pro, half price",
                "html": '<p>Half price: <a href="https://shop.example.com/pro">upgrade</a></p>',
            }
        },
    )
    action_add(
        shop,
        "brew-tutorial",
        channels=["email"],
        value=Decimal("1"),
        eligibility={"trait": "plan", "op": "eq", "value": "basic"},
        content={"email": {"title": "Brew Planner tutorial", "body": "Start here."}},
    )


def _html(mail) -> str:
    return mail.get_body(preferencelist=("html",)).get_content()


def test_each_recipient_gets_the_action_decided_for_them(shop, smtp):
    _catalogue(shop)
    settings_set(shop, control_percent=0)
    people = {
        "ann": customer(shop, "ann", email="ann@example.com", first_name="Ann", plan="pro"),
        "bob": customer(shop, "bob", email="bob@example.com", first_name="Bob", plan="basic"),
        # Eligible for nothing: the broadcast's own content.
        "cid": customer(shop, "cid", email="cid@example.com", first_name="Cid", plan="free"),
    }
    listed = _segment(shop, list(people))
    api = shop.api()
    created = api.post(
        "/api/v1/broadcasts",
        {
            "name": "Monthly pick",
            "channel": "email",
            "purpose": "marketing",
            "segment_id": str(listed.pk),
            "decide": True,
            "decide_placement": "newsletter",
            "subject": "Our news",
            "body": "<p>News for {{ customer.first_name }}</p>",
        },
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["decide"] is True and body["decide_placement"] == "newsletter"
    assert api.post(f"/api/v1/broadcasts/{body['id']}/send", {}).status_code == 200
    _run_tasks()

    by_to = {r[0]: m for r, m in zip(smtp.recipients, smtp.messages, strict=True)}
    assert by_to["ann@example.com"]["Subject"] == "Ann: Pro, half price"
    assert by_to["bob@example.com"]["Subject"] == "Brew Planner tutorial"
    assert "Start here." in _html(by_to["bob@example.com"])
    assert by_to["cid@example.com"]["Subject"] == "Our news"
    assert "News for Cid" in _html(by_to["cid@example.com"])

    messages = {m.profile_id: m for m in Message.objects.filter(broadcast_id=body["id"])}
    assert {m.status for m in messages.values()} == {"sent"}
    for name, key in (("ann", "pro-upgrade"), ("bob", "brew-tutorial"), ("cid", "")):
        message = messages[people[name].pk]
        assert message.decision_action == key
        decision = Decision.objects.get(pk=message.decision_id)
        assert decision.origin == "broadcast" and decision.placement == "newsletter"
        assert decision.context == {"broadcast_id": body["id"]}
    assert Broadcast.objects.get(pk=body["id"]).status == "sent"

    # Ann clicks (a click is an open too): impression and click; Bob only opens.
    ann_html = _html(by_to["ann@example.com"])
    link = unescape(re.search(r'href="([^"]*/m/c/[^"]+)"', ann_html).group(1))
    clicked = Client().get(link.removeprefix(BASE))
    assert clicked.status_code == 302 and clicked["Location"] == "https://shop.example.com/pro"
    bob_html = _html(by_to["bob@example.com"])
    pixel = unescape(re.search(r'src="([^"]*/m/o/[^"]+)"', bob_html).group(1))
    assert Client().get(pixel.removeprefix(BASE)).status_code == 200
    ann_decision = messages[people["ann"].pk].decision_id
    bob_decision = messages[people["bob"].pk].decision_id
    assert sorted(
        Outcome.objects.filter(decision_id=ann_decision).values_list("outcome", flat=True)
    ) == ["clicked", "impression"]
    assert list(
        Outcome.objects.filter(decision_id=bob_decision).values_list("outcome", flat=True)
    ) == ["impression"]
    assert DecisionAction.objects.get(decision_id=ann_decision).label == 1


def test_recipients_given_nothing_are_skipped_without_content_of_its_own(shop, smtp):
    _catalogue(shop)
    settings_set(shop, control_percent=0)
    ann = customer(shop, "ann", email="ann@example.com", first_name="Ann", plan="pro")
    cid = customer(shop, "cid", email="cid@example.com", first_name="Cid", plan="free")
    broadcast = services.broadcast_create(
        workspace=shop.workspace,
        name="Only the decided",
        channel="email",
        purpose="marketing",
        segment=_segment(shop, ["ann", "cid"]),
        decide=True,
        decide_placement="newsletter",
        actor=ACTOR,
    )
    services.broadcast_send(broadcast=broadcast, actor=ACTOR)
    _run_tasks()

    assert smtp.recipients == [["ann@example.com"]]
    skipped = Message.objects.get(profile=cid)
    assert skipped.status == "skipped" and skipped.skip_reason == "no_action"
    assert Decision.objects.filter(pk=skipped.decision_id, origin="broadcast").exists()
    assert Message.objects.get(profile=ann).decision_action == "pro-upgrade"
    assert Broadcast.objects.get(pk=broadcast.pk).status == "sent"


def test_a_broadcast_without_decide_decides_nothing(shop, smtp):
    _catalogue(shop)
    customer(shop, "ann", email="ann@example.com", first_name="Ann", plan="pro")
    broadcast = services.broadcast_create(
        workspace=shop.workspace,
        name="Plain",
        channel="email",
        purpose="marketing",
        segment=_segment(shop, ["ann"]),
        subject="Plain news",
        html="<p>News</p>",
        actor=ACTOR,
    )
    services.broadcast_send(broadcast=broadcast, actor=ACTOR)
    _run_tasks()
    assert smtp.messages[0]["Subject"] == "Plain news"
    assert not Decision.objects.exists()
    assert Message.objects.get().decision_id is None


def test_a_placement_needs_decide_and_decide_needs_no_content(shop):
    from rapport.core.errors import InvalidInputError

    listed = _segment(shop, [])
    with pytest.raises(InvalidInputError) as error:
        services.broadcast_create(
            workspace=shop.workspace,
            name="Wrong",
            channel="email",
            purpose="marketing",
            segment=listed,
            subject="S",
            html="<p>x</p>",
            decide_placement="newsletter",
            actor=ACTOR,
        )
    assert error.value.field == "decide_placement"
    with pytest.raises(InvalidInputError):
        services.broadcast_create(
            workspace=shop.workspace,
            name="No content",
            channel="email",
            purpose="marketing",
            segment=listed,
            actor=ACTOR,
        )
