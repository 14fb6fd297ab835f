"""Email end to end against a real SMTP server (aiosmtpd): content, personalisation and
its fallbacks, the RFC 8058 headers, unsubscribing, and the rules at send time."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client

from rapport.channels import services
from rapport.channels.models import EmailSettings, Message, OutboxMail
from rapport.identity.services import profile_erase
from rapport.profiles.selectors import consent_current, profile_timeline
from rapport.profiles.services import consent_set
from tests.channels.conftest import ACTOR, customer, single
from tests.smtp_server import free_port


def _consent(profile, channel="email", purpose="marketing"):
    rows = consent_current(workspace=profile.workspace, profile_id=profile.pk)
    return next(r["status"] for r in rows if r["channel"] == channel and r["purpose"] == purpose)


def test_marketing_email_is_personal_inlined_and_unsubscribable(shop, smtp):
    jane = customer(shop, "u1", email="jane@example.com", first_name="Jane", plan="pro")
    message = single(
        shop,
        jane,
        subject="{{ customer.first_name }}, your {{ customer.plan|upper }} plan",
        html=(
            "<style>p { color: #c00; }</style>"
            "<p>Dear {{ customer.first_name|default:'customer' }},</p>"
            "<p>Stage: {{ stage|default:'unknown' }}; CLV: {{ clv|default:'n/a' }}; "
            "city: {{ customer.city|default:'your town' }}</p>"
            '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
        ),
    )

    assert services.message_send(message_id=message.pk) == "sent"

    [mail] = smtp.messages
    assert smtp.recipients == [["jane@example.com"]]
    assert mail["Subject"] == "Jane, your PRO plan"
    assert str(message.pk) in mail["Message-ID"]
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert 'style="color: #c00' in html and "<style>" not in html
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert "Dear Jane," in text and "city: your town" in text and "CLV: n/a" in text
    # A computed attribute: the lifecycle stage the workspace's rules gave her.
    assert "Stage: preboarding" in text
    unsubscribe = str(mail["List-Unsubscribe"]).strip()
    assert unsubscribe.startswith("<https://crm.example.com/m/unsubscribe/")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    message.refresh_from_db()
    assert message.status == "sent" and message.sent_at and message.attempts == 1
    assert message.provider_id == mail["Message-ID"]

    # RFC 8058: one POST, no sign-in, no CSRF token, and the consent is withdrawn at once.
    path = unsubscribe.strip("<>").removeprefix("https://crm.example.com")
    response = Client(enforce_csrf_checks=True).post(
        path, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    assert _consent(jane) == "denied"
    message.refresh_from_db()
    assert message.unsubscribed_at is not None
    # The next marketing message is not sent.
    again = single(shop, jane)
    assert services.message_send(message_id=again.pk) == "skipped"
    again.refresh_from_db()
    assert again.skip_reason == "no_consent"
    assert len(smtp.messages) == 1

    # On the customer's timeline: the send and the unsubscription, as her events.
    from rapport.profiles.timeline_sentences import entry_sentence

    page = profile_timeline(workspace=shop.workspace, profile_id=jane.pk)
    said = [str(entry_sentence(e, e.data.get("event"))) for e in page.items]
    assert 'Sent email <em translate="no">Jane, your PRO plan</em>' in said
    assert "Unsubscribed" in said
    assert not [e for e in page.items if "message" in e.data]


def test_personalisation_falls_back_and_escapes(shop, smtp):
    anon = customer(shop, "u2", email="anon@example.com", nickname="<script>x</script>")
    message = single(
        shop,
        anon,
        purpose="transactional",
        html="<p>Hi {{ customer.first_name|default:'there' }} {{ customer.nickname }}</p>",
        text="Hi {{ customer.first_name|default:'there' }}",
    )
    services.message_send(message_id=message.pk)
    [mail] = smtp.messages
    assert mail["Subject"] == "Hello there"
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert mail.get_body(preferencelist=("plain",)).get_content().strip() == "Hi there"
    # Transactional mail carries no unsubscribe headers.
    assert mail["List-Unsubscribe"] is None


@pytest.mark.parametrize("source", ["{% load static %}", "{% debug %}", "{% include 'x' %}"])
def test_templates_cannot_reach_outside_the_message(shop, source):
    from rapport.core.errors import InvalidInputError

    with pytest.raises(InvalidInputError) as caught:
        services.template_create(
            workspace=shop.workspace,
            name="bad",
            channel="email",
            subject="s",
            html=source,
            actor=ACTOR,
        )
    assert caught.value.field == "html"


def test_preference_page_sets_each_purpose(shop, smtp):
    jane = customer(shop, "u1", email="jane@example.com")
    message = single(shop, jane)
    services.message_send(message_id=message.pk)
    path = f"/m/unsubscribe/{services.unsubscribe_token(message.pk)}"
    page = Client().get(path)
    assert page.status_code == 200 and b'name="purpose"' in page.content
    Client().post(path, {"preferences": "1", "purpose": ["transactional"]})
    assert _consent(jane) == "denied"
    assert _consent(jane, purpose="transactional") == "granted"
    assert Client().get("/m/unsubscribe/forged:token").status_code == 404


def test_preference_page_shows_what_the_send_rules_read(shop, smtp):
    """Transactional mail goes unless refused, so its box is ticked when the customer
    never said; saving the page untouched refuses nothing."""
    jane = customer(shop, "u1", email="jane@example.com")
    message = single(shop, jane)
    services.message_send(message_id=message.pk)
    path = f"/m/unsubscribe/{services.unsubscribe_token(message.pk)}"
    page = Client().get(path).content.decode()
    assert 'value="marketing" checked' in page
    assert 'value="transactional" checked' in page
    Client().post(path, {"preferences": "1", "purpose": ["marketing", "transactional"]})
    assert _consent(jane) == "granted"
    assert _consent(jane, purpose="transactional") == "granted"


def test_consent_withdrawn_after_planning_means_no_send(shop, smtp):
    jane = customer(shop, "u1", email="jane@example.com")
    message = single(shop, jane)
    consent_set(profile=jane, channel="email", purpose="marketing", status="denied", actor=ACTOR)
    assert services.message_send(message_id=message.pk) == "skipped"
    assert smtp.messages == []


def test_contact_policy_caps_marketing_not_transactional(shop, smtp):
    services.contact_policy_set(
        workspace=shop.workspace, actor=ACTOR, caps={"email": {"max": 1, "days": 7}}
    )
    jane = customer(shop, "u1", email="jane@example.com")
    first, second = single(shop, jane), single(shop, jane)
    receipt = single(shop, jane, purpose="transactional")
    assert services.message_send(message_id=first.pk) == "sent"
    assert services.message_send(message_id=second.pk) == "skipped"
    assert services.message_send(message_id=receipt.pk) == "sent"
    second.refresh_from_db()
    assert second.skip_reason == "contact_policy"
    assert len(smtp.messages) == 2
    # A week later the cap is free again.
    with time_machine.travel(datetime.now(UTC) + timedelta(days=8)):
        later = single(shop, jane)
        assert services.message_send(message_id=later.pk) == "sent"


def test_suppressed_and_erased_customers_get_nothing(shop, smtp):
    jane = customer(shop, "u1", email="Jane@Example.com")
    bob = customer(shop, "u2", email="bob@example.com")
    services.suppression_add(
        workspace_id=shop.workspace.pk, channel="email", address="jane@example.com", reason="bounce"
    )
    to_jane, to_bob = single(shop, jane, purpose="transactional"), single(shop, bob)
    profile_erase(profile=bob, actor=ACTOR)
    assert services.message_send(message_id=to_jane.pk) == "skipped"
    assert services.message_send(message_id=to_bob.pk) == "skipped"
    assert dict(Message.objects.values_list("pk", "skip_reason")) == {
        to_jane.pk: "suppressed",
        to_bob.pk: "erased",
    }
    assert smtp.messages == []


def test_quiet_hours_in_the_customers_time_zone_defer_marketing(shop, smtp):
    services.contact_policy_set(
        workspace=shop.workspace, actor=ACTOR, quiet_start=21, quiet_end=8, timezone_name="UTC"
    )
    tokyo = customer(shop, "u1", email="t@example.com", timezone="Asia/Tokyo")
    london = customer(shop, "u2", email="l@example.com")
    # 14:00 UTC is 23:00 in Tokyo (quiet) and 14:00 for the policy's UTC (not).
    with time_machine.travel(datetime(2026, 3, 2, 14, 0, tzinfo=UTC), tick=False):
        to_tokyo, to_london = single(shop, tokyo), single(shop, london)
        receipt = single(shop, tokyo, purpose="transactional")
        assert services.message_send(message_id=to_tokyo.pk) == "waiting"
        assert services.message_send(message_id=to_london.pk) == "sent"
        assert services.message_send(message_id=receipt.pk) == "sent"
    to_tokyo.refresh_from_db()
    assert to_tokyo.status == "queued"
    # 08:00 in Tokyo the next morning.
    assert to_tokyo.next_attempt_at == datetime(2026, 3, 2, 23, 0, tzinfo=UTC)
    with time_machine.travel(datetime(2026, 3, 2, 23, 0, 5, tzinfo=UTC)):
        assert services.message_send(message_id=to_tokyo.pk) == "sent"


def test_provider_errors_are_retried_with_backoff_then_failed(shop, settings):
    settings.RAPPORT_EMAIL_URL = f"smtp://127.0.0.1:{free_port()}"
    settings.RAPPORT_MESSAGE_MAX_ATTEMPTS = 3
    jane = customer(shop, "u1", email="jane@example.com")
    message = single(shop, jane, purpose="transactional")
    assert services.message_send(message_id=message.pk) == "queued"
    message.refresh_from_db()
    assert message.attempts == 1 and message.error
    first_wait = message.next_attempt_at
    # Not due yet: nothing happens.
    assert services.message_send(message_id=message.pk) == "waiting"
    for attempt in (2, 3):
        with time_machine.travel(message.next_attempt_at + timedelta(seconds=1)):
            status = services.message_send(message_id=message.pk)
        message.refresh_from_db()
        assert message.attempts == attempt
    assert status == "failed" and message.status == "failed"
    assert message.next_attempt_at - first_wait > timedelta(seconds=60)


def test_without_a_transport_mail_goes_to_the_outbox(shop, settings):
    settings.RAPPORT_EMAIL_URL = ""
    jane = customer(shop, "u1", email="jane@example.com", first_name="Jane")
    message = single(shop, jane)
    assert services.message_send(message_id=message.pk) == "sent"
    [row] = OutboxMail.objects.filter(workspace=shop.workspace)
    assert row.to == ["jane@example.com"] and row.subject == "Hello Jane"
    assert row.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert str(message.pk) in row.message_id


def test_workspace_transport_is_encrypted_and_used(shop, mailbox, settings):
    settings.RAPPORT_EMAIL_URL = ""
    url = f"smtp://mailer:s3cret-pass@{mailbox.host}:{mailbox.port}"
    found = services.email_settings_set(
        workspace=shop.workspace,
        actor=ACTOR,
        from_email="news@shop.example.com",
        from_name="The Shop",
        transport_url="smtp://127.0.0.1:1",
    )
    found = services.email_settings_set(workspace=shop.workspace, actor=ACTOR, transport_url=url)
    row = EmailSettings.objects.get(workspace=shop.workspace)
    assert "s3cret" not in row.transport_encrypted and "s3cret" not in row.transport_label
    assert row.transport_label == f"smtp://mailer:***@{mailbox.host}:{mailbox.port}"
    assert found.from_email == "news@shop.example.com"
    # aiosmtpd without AUTH: Django logs in only when a user is set, so clear it here.
    services.email_settings_set(
        workspace=shop.workspace,
        actor=ACTOR,
        transport_url=f"smtp://{mailbox.host}:{mailbox.port}",
    )
    jane = customer(shop, "u1", email="jane@example.com")
    services.message_send(message_id=single(shop, jane).pk)
    [mail] = mailbox.messages
    assert mail["From"] == "The Shop <news@shop.example.com>"


def test_anymail_transport(shop, settings):
    from django.core import mail

    settings.RAPPORT_EMAIL_URL = "anymail://test"
    jane = customer(shop, "u1", email="jane@example.com")
    message = single(shop, jane)
    assert services.message_send(message_id=message.pk) == "sent"
    [sent] = [m for m in mail.outbox if m.to == ["jane@example.com"]]
    assert sent.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert sent.metadata == {"rapport_message_id": str(message.pk)}
    message.refresh_from_db()
    assert message.provider_id


@pytest.mark.parametrize(
    "url", ["ftp://x", "smtp://", "anymail://no-such-esp", "anymail://../../os"]
)
def test_bad_transport_urls_are_refused_naming_the_field(shop, url):
    from rapport.core.errors import InvalidInputError

    with pytest.raises(InvalidInputError) as caught:
        services.email_settings_set(workspace=shop.workspace, actor=ACTOR, transport_url=url)
    assert caught.value.field == "transport_url"


def test_links_and_opens_are_tracked_with_signed_urls(shop, smtp):
    import re

    jane = customer(shop, "u1", email="jane@example.com")
    message = single(
        shop,
        jane,
        html='<p><a href="https://shop.example.com/spring?a=1&amp;b=2">Spring</a></p>'
        '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>',
    )
    services.message_send(message_id=message.pk)
    html = smtp.messages[0].get_body(preferencelist=("html",)).get_content()
    click = re.search(r'href="https://crm.example.com(/m/c/[^"]+)"', html).group(1)
    opened = re.search(r'src="https://crm.example.com(/m/o/[^"]+)"', html).group(1)
    # The unsubscribe link is left as it is (mail clients and RFC 8058 use it directly).
    assert 'href="https://crm.example.com/m/unsubscribe/' in html

    assert Client().get(opened)["Content-Type"] == "image/gif"
    response = Client().get(click)
    assert response.status_code == 302
    assert response["Location"] == "https://shop.example.com/spring?a=1&b=2"
    message.refresh_from_db()
    assert message.opened_at and message.clicked_at
    from rapport.profiles.timeline_sentences import entry_sentence

    page = profile_timeline(workspace=shop.workspace, profile_id=jane.pk)
    said = [
        str(entry_sentence(e, e.data["event"]))
        for e in page.items
        if "event" in e.data and e.data["event"].event.startswith("Email")
    ]
    assert sorted(said) == [
        'Clicked a link in email <em translate="no">Hello there</em>',
        'Opened email <em translate="no">Hello there</em>',
        'Sent email <em translate="no">Hello there</em>',
    ]
    # Opened again, clicked again: still one open and one click of that link.
    Client().get(opened)
    Client().get(click)
    from rapport.ingest.models import Event

    names = sorted(Event.objects.filter(profile=jane, type="track").values_list("event", flat=True))
    assert names == ["Email Link Clicked", "Email Opened", "Email Sent"]
    clicked = Event.objects.get(profile=jane, event="Email Link Clicked")
    assert clicked.properties["url"] == "https://shop.example.com/spring?a=1&b=2"
    assert clicked.properties["message_id"] == str(message.pk)
    assert clicked.properties["subject"] == "Hello there"
    # A token changed by hand leads nowhere.
    assert Client().get(click[:-3] + "abc").status_code == 404


def test_marketing_mail_without_an_unsubscribe_link_gets_one(shop, smtp):
    jane = customer(shop, "u1", email="jane@example.com")
    plain = single(shop, jane, text="Hello")
    placed = single(
        shop,
        jane,
        html='<p>Hi</p><p><a href="{{ unsubscribe_url }}">Leave</a></p>',
        text="Leave: {{ unsubscribe_url }}",
    )
    receipt = single(shop, jane, purpose="transactional")
    for message in (plain, placed, receipt):
        assert services.message_send(message_id=message.pk) == "sent"
    first, second, third = smtp.messages
    url = first["List-Unsubscribe"].strip().strip("<>")
    html = first.get_body(preferencelist=("html",)).get_content()
    text = first.get_body(preferencelist=("plain",)).get_content()
    assert html.count(url) == 1 and "Unsubscribe or choose" in html
    assert text.rstrip().endswith(url)
    # Placed by the template: not added a second time.
    url = second["List-Unsubscribe"].strip().strip("<>")
    assert second.get_body(preferencelist=("html",)).get_content().count(url) == 1
    assert second.get_body(preferencelist=("plain",)).get_content().count(url) == 1
    # Transactional mail has no unsubscribe line.
    assert "Unsubscribe" not in third.get_body(preferencelist=("html",)).get_content()
