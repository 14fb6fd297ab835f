"""The batch send path: one batch mixing every verdict, sent over one SMTP connection;
claims of other tasks left alone, a claim of this task resumed; the number of queries a
batch costs does not grow with its size; and the batch reads agree with the single
ones (consent, the text part made from the HTML template)."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from rapport.channels import render, services
from rapport.channels.models import Broadcast, Message
from rapport.core.leases import task_done, task_running
from rapport.profiles.models import ConsentChange, Profile
from rapport.profiles.selectors import consent_status, consent_statuses
from rapport.segments.models import SegmentMembership
from rapport.segments.services import segment_create
from tests.channels.conftest import ACTOR

SUBJECT = "News for {{ customer.first_name|default:'you' }}"
HTML = (
    "<style>p{color:#333}</style><p>Hello {{ customer.first_name }}</p>"
    '<p><a href="https://shop.example.com/">Shop</a></p>'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
)


def _people(workspace, count, *, consent="granted", start=0, **traits):
    people = Profile.objects.bulk_create(
        [
            Profile(
                workspace=workspace,
                traits={"email": f"p{i}@example.com", "first_name": f"P{i}", **traits},
            )
            for i in range(start, start + count)
        ]
    )
    if consent:
        ConsentChange.objects.bulk_create(
            [
                ConsentChange(
                    workspace=workspace,
                    profile=p,
                    origin_profile_id=p.pk,
                    channel="email",
                    purpose="marketing",
                    status=consent,
                    at=timezone.now() - timedelta(minutes=1),
                    source="test",
                )
                for p in people
            ]
        )
    return people


def _messages(workspace, people, *, purpose="marketing", broadcast=None, **fields):
    return Message.objects.bulk_create(
        [
            Message(
                workspace=workspace,
                profile=p,
                channel="email",
                purpose=purpose,
                broadcast=broadcast,
                content={} if broadcast else {"subject": SUBJECT, "html": HTML},
                **fields,
            )
            for p in people
        ]
    )


def _ids(messages):
    return [str(m.pk) for m in messages]


def test_a_mixed_batch_gets_each_verdict(shop, smtp):
    ws = shop.workspace
    services.contact_policy_set(
        workspace=ws,
        actor=ACTOR,
        caps={"email": {"max": 1, "days": 7}},
        quiet_start=21,
        quiet_end=8,
        timezone_name="UTC",
    )
    ok = _people(ws, 3)
    [denied] = _people(ws, 1, consent="denied", start=10)
    [unknown] = _people(ws, 1, consent=None, start=11)
    [suppressed] = _people(ws, 1, start=12)
    services.suppression_add(
        workspace_id=ws.pk, channel="email", address="P12@Example.com", reason="bounce"
    )
    [capped] = _people(ws, 1, start=13)
    Message.objects.create(
        workspace=ws,
        profile=capped,
        channel="email",
        purpose="marketing",
        status="sent",
        sent_at=timezone.now() - timedelta(days=1),
    )
    [tokyo] = _people(ws, 1, start=14, timezone="Asia/Tokyo")
    [twice] = _people(ws, 1, start=15)
    [erased] = _people(ws, 1, start=16)
    cancelled = Broadcast.objects.create(
        workspace=ws, name="Off", status="cancelled", subject="S", html="<p>x</p>"
    )
    [in_cancelled] = _people(ws, 1, start=17)
    [theirs] = _people(ws, 1, start=18)

    batch = (
        _messages(ws, ok)
        + _messages(ws, [denied, unknown, suppressed, capped, tokyo, erased])
        # Two for one customer under a cap of one: the batch counts its own sends.
        + _messages(ws, [twice, twice])
        + _messages(ws, [ok[0]], purpose="transactional")
        + _messages(ws, [in_cancelled], broadcast=cancelled)
        + _messages(ws, [theirs], status="sending", claimed_by="another-task")
    )
    Message.objects.filter(profile=erased).update(profile=None)
    by = {m.pk: m for m in batch}

    # 14:00 UTC is 23:00 in Tokyo: quiet there, not in the policy's UTC.
    with time_machine.travel(datetime(2026, 3, 2, 14, 0, tzinfo=UTC), tick=False):
        counts = services.messages_send(message_ids=_ids(batch))

    got = {pk: (m.status, m.skip_reason) for pk, m in Message.objects.in_bulk(list(by)).items()}
    want = {
        **{m.pk: ("sent", "") for m in batch[:3]},
        batch[3].pk: ("skipped", "no_consent"),
        batch[4].pk: ("skipped", "no_consent"),
        batch[5].pk: ("skipped", "suppressed"),
        batch[6].pk: ("skipped", "contact_policy"),
        batch[7].pk: ("queued", ""),
        batch[8].pk: ("skipped", "erased"),
        batch[11].pk: ("sent", ""),
        batch[12].pk: ("skipped", "cancelled"),
        # Claimed by another task: left alone.
        batch[13].pk: ("sending", ""),
    }
    assert {pk: got[pk] for pk in want} == want
    # One of the two to the capped customer went, the other was held by the cap.
    assert sorted(got[m.pk] for m in batch[9:11]) == [
        ("sent", ""),
        ("skipped", "contact_policy"),
    ]
    assert Message.objects.get(pk=batch[7].pk).next_attempt_at == datetime(
        2026, 3, 2, 23, 0, tzinfo=UTC
    )
    assert counts == {"sent": 5, "skipped": 7, "waiting": 1, "sending": 1}
    assert sorted(r[0] for r in smtp.recipients) == sorted(
        ["p0@example.com", "p0@example.com", "p1@example.com", "p15@example.com", "p2@example.com"]
    )
    # Each under its own id, personalised, with the attempt counted once.
    assert {m["Message-ID"] for m in smtp.messages} == {
        m.provider_id for m in Message.objects.filter(status="sent", workspace=ws) if m.subject
    }
    assert "News for P1" in [m["Subject"] for m in smtp.messages]
    assert set(
        Message.objects.filter(pk__in=[m.pk for m in batch[:3]]).values_list("attempts", flat=True)
    ) == {1}


def test_a_claim_left_by_this_task_is_resumed_by_it_alone(shop, smtp):
    ws = shop.workspace
    [jane] = _people(ws, 1)
    [message] = _messages(ws, [jane], status="sending", claimed_by="task-1", attempts=1)
    # Another task (or none) leaves it alone.
    assert services.message_send(message_id=message.pk) == "sending"
    token = task_running("task-2")
    try:
        assert services.message_send(message_id=message.pk) == "sending"
    finally:
        task_done(token)
    assert smtp.messages == []
    # The same task, taken over: sent under the same id, the attempt not counted again.
    token = task_running("task-1")
    try:
        assert services.message_send(message_id=message.pk) == "sent"
    finally:
        task_done(token)
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("sent", 1)
    assert str(message.pk) in smtp.messages[0]["Message-ID"]


def _batch_queries(workspace, count, start):
    people = _people(workspace, count, start=start)
    batch = _messages(workspace, people)
    with CaptureQueriesContext(connection) as queries:
        counts = services.messages_send(message_ids=_ids(batch))
    assert counts == {"sent": count}
    return len(queries)


def test_a_batch_costs_the_same_queries_whatever_its_size(shop, smtp, settings):
    ws = shop.workspace
    # Recording each send at once (the default) is the one write per message.
    small = _batch_queries(ws, 10, 0)
    large = _batch_queries(ws, 200, 100)
    assert large - small == 190
    assert large - 200 < 30
    # Sends recorded in bulk: constant.
    settings.RAPPORT_MESSAGE_RECORD_EVERY = 500
    small = _batch_queries(ws, 10, 1000)
    large = _batch_queries(ws, 200, 2000)
    assert small == large < 30
    assert Message.objects.filter(status="sent").count() == 420 == len(smtp.messages)
    assert len({m["Message-ID"] for m in smtp.messages}) == 420


def test_an_address_only_among_the_identifiers_is_found(shop, smtp):
    from rapport.identity.models import Identifier

    ws = shop.workspace
    with_trait = _people(ws, 2)
    without = _people(ws, 2, start=10)
    for person in without:
        person.traits.pop("email")
        person.save(update_fields=["traits"])
        Identifier.objects.create(
            workspace=ws, profile=person, kind="email", value=f"id-{person.pk}@example.com"
        )
    batch = _messages(ws, with_trait + without)
    with CaptureQueriesContext(connection) as queries:
        counts = services.messages_send(message_ids=_ids(batch))
    assert counts == {"sent": 4}
    assert sorted(r for [r] in smtp.recipients) == sorted(
        ["p0@example.com", "p1@example.com"] + [f"id-{p.pk}@example.com" for p in without]
    )
    # The identifiers read once, for the two who needed them.
    reads = [q["sql"] for q in queries if "identity_identifier" in q["sql"]]
    assert len(reads) == 1


def test_consent_statuses_agree_with_consent_status(shop):
    ws = shop.workspace
    now = timezone.now()
    people = _people(ws, 5, consent=None)
    rows = [
        (people[0], "granted", now - timedelta(days=2), None),
        (people[1], "granted", now - timedelta(days=2), None),
        (people[1], "denied", now - timedelta(days=1), None),
        (people[2], "granted", now - timedelta(days=2), now - timedelta(hours=1)),
        (people[3], "denied", now - timedelta(days=2), None),
        (people[3], "granted", now - timedelta(days=1), now + timedelta(days=9)),
    ]
    ConsentChange.objects.bulk_create(
        [
            ConsentChange(
                workspace=ws,
                profile=p,
                origin_profile_id=p.pk,
                channel="email",
                purpose="marketing",
                status=status,
                at=at,
                expires_at=expires,
                source="test",
            )
            for p, status, at, expires in rows
        ]
    )
    found = consent_statuses(
        profile_ids=[p.pk for p in people], channel="email", purpose="marketing", now=now
    )
    assert found == {
        p.pk: consent_status(profile_id=p.pk, channel="email", purpose="marketing", now=now)
        for p in people
    }
    assert [found[p.pk] for p in people] == ["granted", "denied", "unknown", "granted", "unknown"]


@pytest.mark.parametrize(
    "html",
    [
        HTML,
        "<p>Dear {{ customer.first_name|default:'customer' }},</p><p>Stage: "
        "{{ stage|default:'unknown' }}; CLV: {{ clv|default:'n/a' }}</p>"
        '<ul><li>one</li><li><a href="https://x.example/?a=1&amp;b=2">two</a></li></ul>',
        # Tags and HTML-making filters: each message's HTML is converted instead.
        "<p>{% if customer.first_name %}Hi {{ customer.first_name }}{% endif %}</p>",
        "<p>{{ customer.bio|linebreaks }}</p>",
    ],
)
def test_the_text_part_made_once_matches_the_one_made_per_message(html):
    context = {
        "customer": {"first_name": "Zoë & <Co>", "bio": "a\nb"},
        "stage": "",
        "clv": 12.5,
        "unsubscribe_url": "https://crm.example.com/m/unsubscribe/x",
    }
    made = render.render(subject="S", html=html, text="", context=context)
    assert made.text == render._text_from_html(made.html)


@pytest.mark.parametrize(
    ("html", "once"),
    [
        (HTML, True),
        (
            "<style>p { color: #c00 } li a { font-weight: bold }</style>"
            "<p>Dear {{ customer.first_name|default:'customer' }},</p>"
            '<ul><li><a href="{{ unsubscribe_url }}">two</a></li></ul>',
            True,
        ),
        # A variable in a declaration moves into the style attribute, where it renders
        # as it would have in the sheet.
        ("<style>p { color: {{ customer.colour }} }</style><p>Hi</p>", True),
        # A variable in a selector, tags, an HTML-making filter: inlined per message.
        ("<style>p.{{ customer.colour }} { color: red }</style><p>Hi</p>", False),
        ("<style>p { color: red }</style>{% if customer.first_name %}<p>Hi</p>{% endif %}", False),
        ("<style>p { color: red }</style><div>{{ customer.bio|linebreaks }}</div>", False),
    ],
)
def test_css_inlined_once_matches_css_inlined_per_message(html, once):
    context = {
        "customer": {"first_name": "Zoë & <Co> O'Neil", "bio": "a\nb", "colour": "blue"},
        "unsubscribe_url": "https://crm.example.com/m/unsubscribe/x?a=1&b=2",
    }
    assert render.compiled(subject="S", html=html, text="").html_inlined is once
    made = render.render(subject="S", html=html, text="", context=context)
    per_message = render._inliner().inline(
        render._engine().from_string(html).render(render.Context(context, autoescape=True))
    )
    # The same document (entities may be written differently, &#x27; or ': both are
    # written out again by the inliner's own serialiser before they are compared).
    assert render._inliner().inline(made.html) == per_message


def test_planning_agrees_with_itself_and_its_holdout(shop, smtp):
    ws = shop.workspace
    people = _people(ws, 300)
    segment = segment_create(workspace=ws, name="All", kind="static", actor=ACTOR)
    SegmentMembership.objects.bulk_create(
        [
            SegmentMembership(workspace=ws, segment=segment, profile=p, entered_at=timezone.now())
            for p in people
        ]
    )
    broadcast = services.broadcast_create(
        workspace=ws,
        name="B",
        channel="email",
        purpose="marketing",
        segment=segment,
        subject=SUBJECT,
        html=HTML,
        actor=ACTOR,
    )
    services.broadcast_send(broadcast=broadcast, actor=ACTOR, holdout=0.2)
    first = services.broadcast_plan(broadcast_id=broadcast.pk)
    rows = dict(Message.objects.filter(broadcast=broadcast).values_list("profile_id", "status"))
    assert first["planned"] == len(rows) == 300
    held = {pk for pk, status in rows.items() if status == "skipped"}
    assert held == {p.pk for p in people if services._held_out(broadcast.pk, p.pk, 0.2)}
    assert 30 <= len(held) <= 90
    # Planned again: the same rows, the queued ones handed out again, no new one.
    again = services.broadcast_plan(broadcast_id=broadcast.pk)
    assert again["batches"] == first["batches"] == 2
    assert (
        dict(Message.objects.filter(broadcast=broadcast).values_list("profile_id", "status"))
        == rows
    )
