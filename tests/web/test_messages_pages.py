"""Broadcasts and templates in the UI (rapport/web/messages.py): lists, a new broadcast
whose bad input is shown beside its fields and writes nothing, the detail page with
its preview (sandboxed, escaped), test sends to a real SMTP server, send, cancel,
results and conversions against the holdout, other workspaces' ids and roles."""

import re

import pytest
from django.utils import timezone

from rapport.channels import selectors, services
from rapport.channels.models import Broadcast, Message, Template
from rapport.segments import services as segments
from rapport.tenancy.permissions import Role
from tests.channels.conftest import ACTOR, customer
from tests.channels.test_api import _run_tasks
from tests.conftest import tenant_create
from tests.web.clients import signed_in


@pytest.fixture
def shop(db):
    return tenant_create("Shop", sample_data=False)


@pytest.fixture
def smtp(settings, mailbox):
    settings.RAPPORT_EMAIL_URL = f"smtp://{mailbox.host}:{mailbox.port}"
    settings.RAPPORT_PUBLIC_URL = "https://crm.example.com"
    return mailbox


@pytest.fixture
def listed(shop):
    for i in range(6):
        customer(shop, f"u{i}", email=f"c{i}@example.com", first_name=f"Ann{i}")
    segment = segments.segment_create(
        workspace=shop.workspace, name="Newsletter", kind="static", actor=ACTOR
    )
    segments.segment_members_add(segment=segment, values=[f"u{i}" for i in range(6)], actor=ACTOR)
    return segment


def draft(shop, segment, **fields) -> Broadcast:
    fields.setdefault("subject", "News for {{ customer.first_name|default:'you' }}")
    fields.setdefault("html", "<p>Hello {{ customer.first_name|default:'you' }}</p>")
    return services.broadcast_create(
        workspace=shop.workspace,
        name=fields.pop("name", "April news"),
        channel="email",
        purpose="marketing",
        segment=segment,
        actor=ACTOR,
        **fields,
    )


def test_the_act_group_lists_broadcasts_and_templates(shop, listed):
    client = signed_in(shop, Role.MARKETER)
    draft(shop, listed, name="Spring sale")
    page = client.get("/messages/broadcasts/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'href="/messages/broadcasts/"' in html and 'href="/messages/templates/"' in html
    assert "Spring sale" in html and "Newsletter" in html
    assert "Spring sale" not in client.get("/messages/broadcasts/?status=sent").content.decode()
    assert "Spring sale" in client.get("/messages/broadcasts/?status=draft").content.decode()
    assert "Spring sale" not in client.get("/messages/broadcasts/?channel=sms").content.decode()
    assert client.get("/messages/templates/").status_code == 200


def test_a_new_broadcast_with_bad_input_shows_field_errors_and_writes_nothing(shop, listed):
    client = signed_in(shop, Role.MARKETER)
    assert client.get("/messages/broadcasts/new/").status_code == 200
    response = client.post(
        "/messages/broadcasts/new/", {"name": "April", "channel": "email", "purpose": "marketing"}
    )
    assert response.status_code == 422
    assert 'id="b-segment-error"' in response.content.decode()
    response = client.post(
        "/messages/broadcasts/new/",
        {
            "name": "April",
            "channel": "email",
            "purpose": "marketing",
            "segment": str(listed.pk),
            "html": "<p>hi</p>",
        },
    )
    html = response.content.decode()
    assert response.status_code == 422
    assert re.search(r'id="b-subject-error"[^>]*>[^<]*subject', html)
    # What was typed stays in the form.
    assert "&lt;p&gt;hi&lt;/p&gt;" in html
    response = client.post(
        "/messages/broadcasts/new/",
        {
            "name": "April",
            "channel": "email",
            "purpose": "marketing",
            "segment": str(listed.pk),
            "subject": "Hi {% if %}",
            "html": "<p>hi</p>",
        },
    )
    assert response.status_code == 422 and 'id="b-subject-error"' in response.content.decode()
    response = client.post(
        "/messages/broadcasts/new/",
        {
            "name": "April",
            "channel": "email",
            "purpose": "marketing",
            "segment": str(listed.pk),
            "subject": "Hi",
            "html": "<p>hi</p>",
            "conversion_days": "many",
        },
    )
    assert (
        response.status_code == 422 and 'id="b-conversion-days-error"' in response.content.decode()
    )
    assert not Broadcast.objects.filter(workspace=shop.workspace).exists()


def test_create_preview_send_and_see_results_with_conversions(shop, listed, smtp):
    client = signed_in(shop, Role.MARKETER)
    response = client.post(
        "/messages/broadcasts/new/",
        {
            "name": "April",
            "channel": "email",
            "purpose": "marketing",
            "segment": str(listed.pk),
            "subject": "News for {{ customer.first_name|default:'you' }}",
            "html": "<p>Hi {{ customer.first_name|default:'you' }}"
            " {{ customer.city|default:'x' }}</p>",
            "conversion_event": "Order Completed",
            "conversion_days": "3",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    broadcast = Broadcast.objects.get(workspace=shop.workspace)
    assert (broadcast.conversion_event, broadcast.conversion_days) == ("Order Completed", 3)
    page = client.get(response["Location"]).content.decode()
    # The preview as the segment's first member, the value they lack named.
    assert 'sandbox=""' in page and "srcdoc=" in page
    assert re.search(r"News for Ann\d", page)
    assert "customer.city" in page
    page = client.get(f"{response['Location']}?as=c4@example.com").content.decode()
    assert "News for Ann4" in page
    unknown = client.get(f"{response['Location']}?as=nobody@example.com").content.decode()
    assert "No customer has this email" in unknown

    response = client.post(
        f"/messages/broadcasts/{broadcast.pk}/send/", {"when": "now", "holdout": "80"}
    )
    assert response.status_code == 422
    assert 'id="send-holdout-error"' in response.content.decode()
    response = client.post(
        f"/messages/broadcasts/{broadcast.pk}/send/", {"when": "later", "at": "2001-01-01T09:00"}
    )
    assert response.status_code == 422 and 'id="send-at-error"' in response.content.decode()
    broadcast.refresh_from_db()
    assert broadcast.status == "draft"
    response = client.post(
        f"/messages/broadcasts/{broadcast.pk}/send/", {"when": "now", "holdout": "50"}
    )
    assert response.status_code == 302
    _run_tasks()
    broadcast.refresh_from_db()
    assert broadcast.status == "sent"
    stats = selectors.broadcast_stats(workspace=shop.workspace, broadcast_id=broadcast.pk)
    held = stats["skipped"].get("holdout", 0)
    assert stats["sent"] == len(smtp.messages) == 6 - held
    # Every customer orders after the send: recipients and holdout convert alike.
    for i in range(6):
        shop.send(
            {
                "type": "track",
                "userId": f"u{i}",
                "event": "Order Completed",
                "timestamp": timezone.now().isoformat(),
            }
        )
    page = client.get(f"/messages/broadcasts/{broadcast.pk}/").content.decode()
    assert "Sent, opened and clicked per hour" in page and 'data-chart="broadcast-timeline"' in page
    assert "Recipients" in page and "Holdout" in page
    shown = shop.api().get(f"/api/v1/broadcasts/{broadcast.pk}").json()
    conversions = shown["conversions"]
    assert conversions["event"] == "Order Completed"
    assert conversions["sent_rate"] == 1.0 and conversions["sent"] == stats["sent"]
    if held:
        assert conversions["holdout_rate"] == 1.0 and conversions["lift"] == 0.0
    timeline = selectors.broadcast_timeline(broadcast)
    assert sum(p["sent"] for p in timeline) == stats["sent"]


def test_cancel_a_scheduled_broadcast(shop, listed):
    client = signed_in(shop, Role.MARKETER)
    broadcast = draft(shop, listed)
    response = client.post(
        f"/messages/broadcasts/{broadcast.pk}/send/",
        {"when": "later", "at": "2099-05-01T09:00", "holdout": "0"},
    )
    assert response.status_code == 302
    broadcast.refresh_from_db()
    assert broadcast.status == "scheduled" and broadcast.send_at.year == 2099
    assert client.post(f"/messages/broadcasts/{broadcast.pk}/cancel/").status_code == 302
    broadcast.refresh_from_db()
    assert broadcast.status == "cancelled"
    again = client.post(f"/messages/broadcasts/{broadcast.pk}/cancel/")
    assert again.status_code == 409


def test_the_preview_is_escaped_and_sandboxed(shop, listed):
    client = signed_in(shop, Role.MARKETER)
    broadcast = draft(
        shop,
        listed,
        html='<p onclick="steal()">Hi</p><script>alert("x")</script>',
    )
    page = client.get(f"/messages/broadcasts/{broadcast.pk}/").content.decode()
    assert "<script>alert" not in page and 'onclick="steal()"' not in page
    frame = re.search(r"<iframe[^>]*>", page).group(0)
    assert 'sandbox=""' in frame and "&lt;script&gt;" in frame
    fragment = client.post(
        "/messages/preview/",
        {"subject": "S", "html": "<img src=x onerror=alert(1)><b>{{ customer.plan }}</b>"},
    ).content.decode()
    assert "<img src=x" not in fragment and 'sandbox=""' in fragment
    assert "customer.plan" in fragment  # no one chosen: the value is empty, named


def test_another_workspaces_broadcast_and_template_are_not_found(shop, listed):
    other = tenant_create("Other", sample_data=False)
    theirs = segments.segment_create(
        workspace=other.workspace, name="Theirs", kind="static", actor=ACTOR
    )
    their_broadcast = draft(other, theirs)
    their_template = services.template_create(
        workspace=other.workspace,
        name="T",
        channel="email",
        subject="S",
        html="<p>x</p>",
        actor=ACTOR,
    )
    client = signed_in(shop, Role.ADMIN)
    assert client.get(f"/messages/broadcasts/{their_broadcast.pk}/").status_code == 404
    assert client.post(f"/messages/broadcasts/{their_broadcast.pk}/send/", {}).status_code == 404
    assert client.post(f"/messages/broadcasts/{their_broadcast.pk}/cancel/").status_code == 404
    assert client.get(f"/messages/templates/{their_template.pk}/").status_code == 404
    # Their segment or template in our form: an error beside the field, nothing written.
    response = client.post(
        "/messages/broadcasts/new/",
        {"name": "X", "channel": "email", "purpose": "marketing", "segment": str(theirs.pk)},
    )
    assert response.status_code == 422 and 'id="b-segment-error"' in response.content.decode()
    response = client.post(
        "/messages/broadcasts/new/",
        {
            "name": "X",
            "channel": "email",
            "purpose": "marketing",
            "segment": str(listed.pk),
            "template": str(their_template.pk),
        },
    )
    assert response.status_code == 422 and 'id="b-template-error"' in response.content.decode()
    assert their_broadcast.status == "draft"
    assert Broadcast.objects.filter(workspace=shop.workspace).count() == 0


def test_an_analyst_sees_but_cannot_send_cancel_or_write(shop, listed):
    broadcast = draft(shop, listed)
    template = services.template_create(
        workspace=shop.workspace,
        name="T",
        channel="email",
        subject="S",
        html="<p>x</p>",
        actor=ACTOR,
    )
    viewer = signed_in(shop, Role.ANALYST)
    page = viewer.get(f"/messages/broadcasts/{broadcast.pk}/")
    assert page.status_code == 200
    assert "/send/" not in page.content.decode() and "/cancel/" not in page.content.decode()
    assert viewer.post(f"/messages/broadcasts/{broadcast.pk}/send/", {}).status_code == 403
    assert viewer.post(f"/messages/broadcasts/{broadcast.pk}/cancel/").status_code == 403
    assert viewer.post(f"/messages/broadcasts/{broadcast.pk}/test/", {}).status_code == 403
    assert viewer.get("/messages/broadcasts/new/").status_code == 403
    assert viewer.get(f"/messages/templates/{template.pk}/").status_code == 200
    changed = viewer.post(
        f"/messages/templates/{template.pk}/", {"name": "Mine", "subject": "S", "html": "<p>y</p>"}
    )
    assert changed.status_code == 403
    broadcast.refresh_from_db()
    template.refresh_from_db()
    assert broadcast.status == "draft" and template.name == "T"


def test_test_send_goes_to_the_address_marked_and_is_not_a_customer_message(shop, listed, smtp):
    client = signed_in(shop, Role.MARKETER)
    broadcast = draft(shop, listed)
    response = client.post(
        f"/messages/broadcasts/{broadcast.pk}/test/",
        {"as": "c2@example.com", "to": "proof@example.org"},
    )
    assert response.status_code == 200
    assert "A test was sent to proof@example.org" in response.content.decode()
    assert smtp.recipients == [["proof@example.org"]]
    assert smtp.messages[0]["Subject"] == "[Test] News for Ann2"
    assert "Hello Ann2" in smtp.body()
    assert not Message.objects.filter(workspace=shop.workspace).exists()
    bad = client.post(f"/messages/broadcasts/{broadcast.pk}/test/", {"to": "not an address"})
    assert bad.status_code == 422 and 'id="b-test-to-error"' in bad.content.decode()
    # Without an address: the signed-in person's.
    client.post(f"/messages/broadcasts/{broadcast.pk}/test/", {})
    assert smtp.recipients[-1] == ["marketer-pages@example.com"]


def test_templates_editor_mjml_compiled_errors_beside_the_field(shop, listed, smtp):
    client = signed_in(shop, Role.MARKETER)
    assert client.get("/messages/templates/new/").status_code == 200
    bad = client.post(
        "/messages/templates/new/",
        {
            "name": "Welcome",
            "channel": "email",
            "format": "mjml",
            "subject": "Hi",
            "html": "<mjml><mj-body>",
        },
    )
    assert bad.status_code == 422 and 'id="t-html-error"' in bad.content.decode()
    assert not Template.objects.filter(workspace=shop.workspace).exists()
    mjml = (
        "<mjml><mj-body><mj-section><mj-column><mj-text>"
        "Hi {{ customer.first_name|default:'there' }}</mj-text></mj-column>"
        "<mj-column><mj-text>Two</mj-text></mj-column></mj-section></mj-body></mjml>"
    )
    created = client.post(
        "/messages/templates/new/",
        {"name": "Welcome", "channel": "email", "format": "mjml", "subject": "Hi", "html": mjml},
    )
    assert created.status_code == 302
    template = Template.objects.get(workspace=shop.workspace)
    assert template.format == "mjml" and template.source == mjml
    assert "@media" in template.html and "mj-column-per-50" in template.html
    assert "{{ customer.first_name|default:'there' }}" in template.html
    page = client.get(created["Location"]).content.decode()
    assert "Saved." in page and "&lt;mjml&gt;" in page  # the MJML is what is edited
    taken = client.post(
        "/messages/templates/new/",
        {"name": "Welcome", "channel": "email", "subject": "Hi", "html": "<p>x</p>"},
    )
    assert taken.status_code == 409 and 'id="t-name-error"' in taken.content.decode()
    updated = client.post(
        f"/messages/templates/{template.pk}/",
        {
            "name": "Welcome",
            "format": "html",
            "subject": "Hey",
            "html": "<p>{{ customer.first_name }}</p>",
        },
    )
    assert updated.status_code == 302
    template.refresh_from_db()
    assert (template.format, template.source, template.subject) == ("html", "", "Hey")
    # The live preview as a chosen customer, and a test send of the saved template.
    fragment = client.post(
        "/messages/preview/",
        {"format": "mjml", "subject": "S {{ customer.first_name }}", "html": mjml, "as": "u3"},
    ).content.decode()
    assert "S Ann3" in fragment and "Hi Ann3" in fragment and 'sandbox=""' in fragment
    broken = client.post("/messages/preview/", {"format": "mjml", "html": "<mjml><mj-body>"})
    assert broken.status_code == 200 and "MJML error" in broken.content.decode()
    sent = client.post(
        f"/messages/templates/{template.pk}/test/", {"as": "u1", "to": "me@example.org"}
    )
    assert sent.status_code == 200
    assert smtp.messages[-1]["Subject"] == "[Test] Hey"


def test_the_api_takes_and_shows_the_conversion_event(shop, listed):
    api = shop.api()
    created = api.post(
        "/api/v1/broadcasts",
        {
            "name": "With goal",
            "segment_id": str(listed.pk),
            "subject": "S",
            "body": "<p>x</p>",
            "conversion_event": "Signed Up",
            "conversion_days": 14,
        },
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["conversion_event"], body["conversion_days"]) == ("Signed Up", 14)
    assert body["conversions"] is None
    bad = api.post(
        "/api/v1/broadcasts",
        {
            "name": "X",
            "segment_id": str(listed.pk),
            "subject": "S",
            "body": "<p>x</p>",
            "conversion_days": 0,
        },
    )
    assert bad.status_code == 422
    template = api.post(
        "/api/v1/templates",
        {
            "name": "M",
            "format": "mjml",
            "subject": "S",
            "html": "<mjml><mj-body><mj-text>x</mj-text></mj-body></mjml>",
        },
    )
    assert template.status_code == 201, template.content
    assert template.json()["format"] == "mjml" and template.json()["source"].startswith("<mjml>")
