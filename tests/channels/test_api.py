"""Single messages and broadcasts through the API, sent by the tasks a worker runs."""

from django_tasks_db.models import DBTaskResult

from rapport.channels import services
from rapport.channels.models import Broadcast, Message
from rapport.profiles.services import consent_set
from rapport.segments import services as segments
from tests.channels.conftest import ACTOR, customer


def _run_tasks() -> None:
    """Run the queued channel tasks (and those they enqueue) as a worker would."""
    from rapport.channels import tasks

    by_name = {
        "message_send": services.message_send,
        "messages_send": services.messages_send,
        "broadcast_plan": services.broadcast_plan,
    }
    done: set = set()
    while True:
        pending = [
            row
            for row in DBTaskResult.objects.filter(task_path__startswith=tasks.__name__).order_by(
                "enqueued_at"
            )
            if row.pk not in done
        ]
        if not pending:
            return
        for row in pending:
            done.add(row.pk)
            name = row.task_path.rsplit(".", 1)[-1]
            by_name[name](**row.args_kwargs["kwargs"])


def test_same_idempotency_key_same_message_one_send(shop, smtp):
    jane = customer(shop, "u1", email="jane@example.com", first_name="Jane")
    body = {
        "user_id": "u1",
        "channel": "email",
        "purpose": "transactional",
        "content": {"subject": "Receipt for {{ customer.first_name }}", "html": "<p>Thanks</p>"},
        "idempotency_key": "order-7",
    }
    first = shop.api().post("/api/v1/messages", body)
    again = shop.api().post("/api/v1/messages", body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert first.json()["profile_id"] == str(jane.pk)
    _run_tasks()
    assert [m["Subject"] for m in smtp.messages] == ["Receipt for Jane"]
    shown = shop.api().get(f"/api/v1/messages/{first.json()['id']}").json()
    assert shown["status"] == "sent" and shown["attempts"] == 1


def test_message_requests_name_what_is_wrong(shop):
    customer(shop, "u1", email="jane@example.com")
    api = shop.api()
    both = api.post(
        "/api/v1/messages", {"user_id": "u1", "profile_id": None, "content": {"subject": "x"}}
    )
    assert both.status_code == 422
    unknown = api.post("/api/v1/messages", {"user_id": "nobody", "content": {"html": "<p>x</p>"}})
    assert unknown.status_code == 404
    no_subject = api.post("/api/v1/messages", {"user_id": "u1", "content": {"html": "<p>x</p>"}})
    assert no_subject.status_code == 422
    assert no_subject.json()["error"]["details"][0]["field"] == "subject"
    bad_template = api.post(
        "/api/v1/messages", {"user_id": "u1", "content": {"subject": "{% if %}", "html": "x"}}
    )
    assert bad_template.status_code == 422
    assert Message.objects.filter(workspace=shop.workspace).count() == 0


def test_broadcast_to_a_segment_with_holdout_and_stats(shop, smtp):
    people = [
        customer(shop, f"u{i}", email=f"c{i}@example.com", first_name=f"C{i}") for i in range(40)
    ]
    no_consent = customer(shop, "late", email="late@example.com")
    listed = segments.segment_create(
        workspace=shop.workspace, name="Newsletter", kind="static", actor=ACTOR
    )
    segments.segment_members_add(
        segment=listed, values=[f"u{i}" for i in range(40)] + ["late"], actor=ACTOR
    )
    api = shop.api()
    created = api.post(
        "/api/v1/broadcasts",
        {
            "name": "April news",
            "segment_id": str(listed.pk),
            "subject": "News for {{ customer.first_name|default:'you' }}",
            "body": "<p>Hello</p>",
        },
    )
    assert created.status_code == 201, created.content
    broadcast_id = created.json()["id"]
    assert created.json()["status"] == "draft"
    sent = api.post(f"/api/v1/broadcasts/{broadcast_id}/send", {"holdout": 0.25})
    assert sent.status_code == 200 and sent.json()["status"] == "scheduled"
    # Consent withdrawn after the send was asked for: checked when the message goes.
    consent_set(
        profile=no_consent, channel="email", purpose="marketing", status="denied", actor=ACTOR
    )

    _run_tasks()

    shown = api.get(f"/api/v1/broadcasts/{broadcast_id}").json()
    stats = shown["stats"]
    assert shown["status"] == "sent"
    assert stats["targeted"] == 41
    held = stats["skipped"].get("holdout", 0)
    # The hold-out is a hash of broadcast and customer: exact, not a range that a
    # random broadcast id leaves once in a few hundred runs.
    assert held == sum(services._held_out(broadcast_id, p.pk, 0.25) for p in [*people, no_consent])
    assert 0 < held < 41
    assert stats["sent"] == len(smtp.messages) == 41 - held - stats["skipped"].get("no_consent", 0)
    assert "late@example.com" not in [r[0] for r in smtp.recipients]
    assert len({m["Message-ID"] for m in smtp.messages}) == len(smtp.messages)
    # Sending it again is refused; planning it again sends nothing more.
    again = api.post(f"/api/v1/broadcasts/{broadcast_id}/send", {})
    assert again.status_code == 409
    Broadcast.objects.filter(pk=broadcast_id).update(status="sending")
    services.broadcast_plan(broadcast_id=broadcast_id)
    _run_tasks()
    assert api.get(f"/api/v1/broadcasts/{broadcast_id}").json()["stats"]["sent"] == stats["sent"]
    assert len(smtp.messages) == stats["sent"]
    assert len(people) == 40


def test_cancelled_broadcast_sends_nothing_more(shop, smtp):
    customer(shop, "u1", email="a@example.com")
    listed = segments.segment_create(
        workspace=shop.workspace, name="All", kind="static", actor=ACTOR
    )
    segments.segment_members_add(segment=listed, values=["u1"], actor=ACTOR)
    broadcast = services.broadcast_create(
        workspace=shop.workspace,
        name="B",
        channel="email",
        purpose="marketing",
        segment=listed,
        subject="S",
        html="<p>x</p>",
        actor=ACTOR,
    )
    services.broadcast_send(broadcast=broadcast, actor=ACTOR)
    services.broadcast_plan(broadcast_id=broadcast.pk)
    response = shop.api().post(f"/api/v1/broadcasts/{broadcast.pk}/cancel")
    assert response.status_code == 200
    _run_tasks()
    assert smtp.messages == []
    assert response.json()["stats"]["skipped"] == {"cancelled": 1}


def test_settings_keep_the_transport_secret(shop):
    api = shop.api()
    changed = api.patch(
        "/api/v1/channels/settings",
        {
            "from_email": "news@shop.example.com",
            "transport_url": "smtp+tls://mailer:pa55word@mail.example.com:587",
            "caps": {"email": {"max": 2, "days": 7}},
            "quiet_start": 21,
            "quiet_end": 8,
            "timezone": "Europe/Paris",
        },
    )
    assert changed.status_code == 200, changed.content
    shown = api.get("/api/v1/channels/settings")
    assert b"pa55word" not in shown.content
    assert shown.json()["transport"] == "smtp+tls://mailer:***@mail.example.com:587"
    assert shown.json()["caps"] == {"email": {"max": 2, "days": 7}}
    for body, field in [
        ({"transport_url": "ftp://x"}, "transport_url"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"caps": {"fax": {"max": 1}}}, "caps"),
        ({"from_email": "not-an-address"}, "from_email"),
    ]:
        refused = api.patch("/api/v1/channels/settings", body)
        assert refused.status_code == 422, body
        assert refused.json()["error"]["details"][0]["field"] == field
