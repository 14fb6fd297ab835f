"""The messages' operational pages: the outbox (mail kept when no transport is set),
the channel settings (secrets write-only, a refused form writes nothing), the failed
messages with their retry, one by one and in bulk, and the suppression list."""

import re

import pytest

from rapport.channels import services
from rapport.channels.models import ContactPolicy, EmailSettings, Message, OutboxMail, Suppression
from rapport.profiles.models import Profile
from rapport.tenancy.models import AuditLogEntry
from rapport.tenancy.permissions import Role
from rapport.tenancy.services import Actor
from tests.web.clients import signed_in

ACTOR = Actor.system("tests")
HOSTILE_HTML = (
    '<p onclick="steal()">Hi there</p><script>alert("pwned")</script>'
    "<img src=\"https://tracker.example.net/x.gif\"> & 'quotes'"
)


def _customer(tenant, user_id: str, email: str) -> Profile:
    tenant.send(
        {
            "type": "identify",
            "userId": user_id,
            "traits": {
                "email": email,
                "name": "Jane Doe",
                "consent": {"email": {"marketing": "granted"}},
            },
        }
    )
    return Profile.objects.get(workspace=tenant.workspace, identifiers__value=user_id)


def _kept_mail(tenant, settings) -> tuple[Message, OutboxMail]:
    """A marketing email sent through the real send path with no transport set."""
    settings.RAPPORT_EMAIL_URL = ""
    settings.RAPPORT_PUBLIC_URL = "https://crm.example.com"
    profile = _customer(tenant, f"{tenant.workspace.name}-jane", "jane.doe@example.com")
    message, _ = services.message_create(
        workspace=tenant.workspace,
        profile=profile,
        channel="email",
        purpose="marketing",
        content={
            "subject": '<b>Deal</b> & "more"',
            "html": HOSTILE_HTML,
            "text": "Plain words for Jane",
        },
        actor=ACTOR,
    )
    assert services.message_send(message_id=message.pk) == "sent"
    return message, OutboxMail.objects.get(
        workspace=tenant.workspace, message_id__contains=str(message.pk)
    )


def test_the_outbox_lists_kept_mail_and_shows_one_sealed(tenant, settings):
    message, mail = _kept_mail(tenant, settings)
    client = signed_in(tenant)
    page = client.get("/messages/outbox/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "jane.doe@example.com" in html
    assert "&lt;b&gt;Deal&lt;/b&gt; &amp; &quot;more&quot;" in html and "<b>Deal</b>" not in html
    assert f"/messages/outbox/{mail.pk}/" in html
    assert f"/customers/{message.profile_id}/" in html

    detail = client.get(f"/messages/outbox/{mail.pk}/")
    assert detail.status_code == 200
    html = detail.content.decode()
    # The HTML only inside the sandboxed frame, escaped as an attribute value.
    frame = re.search(r"<iframe[^>]*>", html).group(0)
    assert re.search(r"\ssandbox[\s>]", frame) and "allow-scripts" not in frame
    assert "srcdoc=" in frame and "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in frame
    assert "<script>alert" not in html and 'onclick="steal()"' not in html
    # The headers, the unsubscribe link among them, and the text part.
    assert "List-Unsubscribe" in html and "https://crm.example.com/m/unsubscribe/" in html
    assert "List-Unsubscribe-Post" in html and str(message.pk) in html
    assert "Plain words for Jane" in html
    # No script runs (the frame inherits the page's policy); the letter's styles do.
    policy = dict(
        part.strip().split(" ", 1) for part in detail["Content-Security-Policy"].split(";")
    )
    assert policy["script-src"] == "'self'" and "'unsafe-inline'" in policy["style-src"]
    assert "'unsafe-inline'" not in client.get("/messages/outbox/")["Content-Security-Policy"]


def test_a_role_without_pii_read_sees_the_outbox_masked(tenant, settings):
    _message, mail = _kept_mail(tenant, settings)
    client = signed_in(tenant, Role.ANALYST)
    assert "jane.doe@example.com" not in client.get("/messages/outbox/").content.decode()
    html = client.get(f"/messages/outbox/{mail.pk}/").content.decode()
    assert "jane.doe@example.com" not in html and "<iframe" not in html


def test_another_workspaces_mail_and_messages_are_not_found(tenant, other_tenant, settings):
    theirs, mail = _kept_mail(other_tenant, settings)
    Message.objects.filter(pk=theirs.pk).update(status="failed", error="boom")
    client = signed_in(tenant)
    assert client.get(f"/messages/outbox/{mail.pk}/").status_code == 404
    assert str(mail.pk) not in client.get("/messages/outbox/").content.decode()
    assert str(theirs.pk) not in client.get("/messages/failed/").content.decode()
    assert client.post(f"/messages/failed/{theirs.pk}/retry/").status_code == 404
    response = client.post("/messages/failed/retry/", {"ids": [str(theirs.pk)], "confirm": "yes"})
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "failed"
    suppression = Suppression.objects.filter(workspace=other_tenant.workspace).first()
    response = client.post(f"/messages/suppressions/{suppression.pk}/remove/")
    assert response.status_code == 404
    assert Suppression.objects.filter(pk=suppression.pk).exists()


def _settings_form(**changes) -> dict:
    form = {
        "from_email": "news@shop.example.com",
        "from_name": "The Shop",
        "reply_to": "help@shop.example.com",
        "transport_url": "smtp+tls://mailer:s3cret-pass@mail.example.com:587",
        "sms_provider": "twilio",
        "sms_twilio_account_sid": "AC0123456789",
        "sms_twilio_auth_token": "tok-very-secret",
        "sms_sender": "+447700900123",
        "sms_default_region": "gb",
        "cap_email_max": "2",
        "cap_email_days": "7",
        "cap_sms_max": "",
        "cap_sms_days": "",
        "quiet_start": "21",
        "quiet_end": "8",
        "timezone": "Europe/London",
    }
    form.update(changes)
    return form


def test_settings_are_saved_and_secrets_never_shown_back(tenant, settings):
    settings.RAPPORT_PUBLIC_URL = "https://crm.example.com"
    client = signed_in(tenant)
    assert client.get("/settings/channels/").status_code == 200
    response = client.post("/settings/channels/", _settings_form())
    assert response.status_code == 302, response.content.decode()
    found = EmailSettings.objects.get(workspace=tenant.workspace)
    assert (found.from_email, found.from_name, found.reply_to) == (
        "news@shop.example.com",
        "The Shop",
        "help@shop.example.com",
    )
    assert found.transport_label == "smtp+tls://mailer:***@mail.example.com:587"
    assert (found.sms_provider, found.sms_sender, found.sms_default_region) == (
        "twilio",
        "+447700900123",
        "GB",
    )
    policy = ContactPolicy.objects.get(workspace=tenant.workspace)
    assert policy.caps == {"email": {"max": 2, "days": 7}}
    assert (policy.quiet_start, policy.quiet_end, policy.timezone) == (21, 8, "Europe/London")

    html = client.get("/settings/channels/?saved=1").content.decode()
    assert "s3cret-pass" not in html and "tok-very-secret" not in html
    assert "AC0123456789" not in html
    assert "smtp+tls://mailer:***@mail.example.com:587" in html
    assert "auth_token" in html  # the names of the stored keys, not their values
    assert f"https://crm.example.com/m/sms/twilio/{found.sms_callback_token}/" in html

    # Saved again with the write-only fields empty: the secrets are kept, one typed
    # credential replaces its own value only.
    form = _settings_form(
        transport_url="", sms_twilio_account_sid="", sms_twilio_auth_token="tok-2", from_name="Shop"
    )
    assert client.post("/settings/channels/", form).status_code == 302
    found.refresh_from_db()
    assert found.transport_label == "smtp+tls://mailer:***@mail.example.com:587"
    from rapport.channels.sms import credentials_of

    assert credentials_of(found) == {"account_sid": "AC0123456789", "auth_token": "tok-2"}
    # The box goes back to the install's transport.
    form = _settings_form(transport_url="", transport_reset="1")
    assert client.post("/settings/channels/", form).status_code == 302
    found.refresh_from_db()
    assert found.transport_label == "" and found.transport_encrypted == ""


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"transport_url": "ftp://mail.example.com"}, "transport_url"),
        ({"from_email": "not-an-address"}, "from_email"),
        ({"cap_email_max": "lots"}, "cap_email"),
        ({"sms_default_region": "GBR"}, "sms_default_region"),
        ({"sms_provider": "pigeon"}, "sms_provider"),
        ({"quiet_start": "24"}, "quiet_start"),
    ],
)
def test_a_refused_settings_form_writes_nothing(tenant, changes, field):
    client = signed_in(tenant)
    assert client.post("/settings/channels/", _settings_form()).status_code == 302
    before = (
        list(EmailSettings.objects.filter(workspace=tenant.workspace).values()),
        list(ContactPolicy.objects.filter(workspace=tenant.workspace).values()),
        AuditLogEntry.objects.filter(workspace=tenant.workspace).count(),
    )
    form = _settings_form(from_name="Changed", **changes)
    form["transport_url"] = changes.get("transport_url", "smtp://other:pw-typed@x.example.com")
    response = client.post("/settings/channels/", form)
    assert response.status_code == 422
    html = response.content.decode()
    # The error sits beside its field, and the typed secret is not written back.
    assert f'id="{field}-error"' in html
    assert "pw-typed" not in html and "tok-very-secret" not in html
    assert 'value="Changed"' in html  # what was typed stays for correcting
    after = (
        list(EmailSettings.objects.filter(workspace=tenant.workspace).values()),
        list(ContactPolicy.objects.filter(workspace=tenant.workspace).values()),
        AuditLogEntry.objects.filter(workspace=tenant.workspace).count(),
    )
    assert after == before


def test_the_webhook_secret_is_shown_once(tenant):
    client = signed_in(tenant)
    response = client.post("/settings/channels/webhook-secret/")
    assert response.status_code == 200
    secret = re.search(
        r'<pre id="new-webhook-secret">(whsec_[^<]+)</pre>', response.content.decode()
    )
    assert secret
    assert response["Cache-Control"] == "no-store"
    again = client.get("/settings/channels/").content.decode()
    assert secret.group(1) not in again and "A secret is set" in again
    from rapport.channels.webhook import webhook_secret_of

    assert webhook_secret_of(tenant.workspace.pk) == secret.group(1)


def test_a_role_without_channels_manage_cannot_change_settings(tenant):
    client = signed_in(tenant, Role.ANALYST)
    before = list(EmailSettings.objects.filter(workspace=tenant.workspace).values())
    assert client.get("/settings/channels/").status_code == 403
    assert client.post("/settings/channels/", _settings_form()).status_code == 403
    assert client.post("/settings/channels/webhook-secret/").status_code == 403
    assert list(EmailSettings.objects.filter(workspace=tenant.workspace).values()) == before
    # The side bar offers the pages it may open, not the settings.
    home = client.get("/messages/failed/").content.decode()
    assert "/messages/suppressions/" in home and "/settings/channels/" not in home
    # Nor may it retry.
    message = Message.objects.filter(workspace=tenant.workspace).first()
    Message.objects.filter(pk=message.pk).update(status="failed")
    assert client.post(f"/messages/failed/{message.pk}/retry/").status_code == 403
    message.refresh_from_db()
    assert message.status == "failed"


def _failed(tenant, n: int, channel: str = "email") -> list[Message]:
    profile = Profile.objects.filter(workspace=tenant.workspace, merged_into__isnull=True).first()
    made = []
    for i in range(n):
        message, _ = services.message_create(
            workspace=tenant.workspace,
            profile=profile,
            channel=channel,
            purpose="transactional",
            content={
                "subject": f"Receipt {i}",
                "html": "<p>Thanks</p>",
                "url": "https://r.example.com/",
            }
            if channel == "email"
            else {"text": "Thanks", "url": "https://r.example.com/hook"},
            actor=ACTOR,
        )
        made.append(message)
    Message.objects.filter(pk__in=[m.pk for m in made]).update(
        status="failed", attempts=5, error="550 mailbox <x@example.com> unavailable"
    )
    return made


def test_failed_messages_are_listed_and_retried_one_by_one(tenant):
    [one, two] = _failed(tenant, 2)
    [hook] = _failed(tenant, 1, channel="webhook")
    client = signed_in(tenant)
    html = client.get("/messages/failed/").content.decode()
    assert all(str(m.pk) in html for m in (one, two, hook))
    assert "550 mailbox" in html
    only_hooks = client.get("/messages/failed/?channel=webhook").content.decode()
    assert str(hook.pk) in only_hooks and str(one.pk) not in only_hooks
    assert client.get("/messages/failed/?channel=pigeon").status_code == 422

    response = client.post(f"/messages/failed/{one.pk}/retry/", {"channel": "email"})
    assert response.status_code == 302 and "retried=1" in response["Location"]
    one.refresh_from_db()
    assert (one.status, one.attempts) == ("queued", 0)
    assert AuditLogEntry.objects.filter(action="message.retry", target_id=str(one.pk)).exists()
    # Not failed any more: a second retry is refused, nothing changes.
    assert client.post(f"/messages/failed/{one.pk}/retry/").status_code == 409


def test_failed_messages_are_retried_in_bulk_after_a_confirmation(tenant):
    emails = _failed(tenant, 3)
    [hook] = _failed(tenant, 1, channel="webhook")
    client = signed_in(tenant)
    ticked = {"ids": [str(emails[0].pk), str(emails[1].pk)]}
    confirm = client.post("/messages/failed/retry/", ticked)
    assert confirm.status_code == 200
    assert "2 failed messages are sent again" in confirm.content.decode()
    assert Message.objects.filter(pk__in=ticked["ids"], status="failed").count() == 2
    done = client.post("/messages/failed/retry/", {**ticked, "confirm": "yes"})
    assert done.status_code == 302 and "retried=2" in done["Location"]
    assert Message.objects.filter(pk__in=ticked["ids"], status="queued").count() == 2
    # Every failed one of a channel.
    done = client.post(
        "/messages/failed/retry/", {"all": "1", "channel": "email", "confirm": "yes"}
    )
    assert "retried=1" in done["Location"]
    emails[2].refresh_from_db()
    hook.refresh_from_db()
    assert emails[2].status == "queued" and hook.status == "failed"
    page = client.get(done["Location"]).content.decode()
    assert "1 message queued to be sent again" in page
    # Nothing ticked, or not an id: refused naming the field.
    assert client.post("/messages/failed/retry/", {}).status_code == 422
    assert client.post("/messages/failed/retry/", {"ids": ["nope"]}).status_code == 422


def test_suppressions_are_listed_searched_added_and_removed(tenant):
    client = signed_in(tenant)
    page = client.get("/messages/suppressions/").content.decode()
    bounced = Suppression.objects.get(workspace=tenant.workspace)
    assert bounced.address in page and "Bounced" in page

    response = client.post(
        "/messages/suppressions/",
        {"channel": "email", "address": " Asked.To.Stop@Example.com ", "detail": "phoned us"},
    )
    assert response.status_code == 302
    added = Suppression.objects.get(workspace=tenant.workspace, address="asked.to.stop@example.com")
    assert added.reason == "manual"
    assert AuditLogEntry.objects.filter(action="suppression.add", target_id=str(added.pk)).exists()
    found = client.get("/messages/suppressions/?q=asked.to").content.decode()
    assert "asked.to.stop@example.com" in found and bounced.address not in found
    assert "Added by hand" in found

    # Twice, or not an address: refused beside the field, nothing added.
    again = client.post(
        "/messages/suppressions/", {"channel": "email", "address": "asked.to.stop@example.com"}
    )
    assert again.status_code == 409 and 'id="address-error"' in again.content.decode()
    bad = client.post("/messages/suppressions/", {"channel": "sms", "address": "call me"})
    assert bad.status_code == 422 and 'id="address-error"' in bad.content.decode()
    assert Suppression.objects.filter(workspace=tenant.workspace).count() == 2

    response = client.post(f"/messages/suppressions/{added.pk}/remove/")
    assert response.status_code == 302
    assert not Suppression.objects.filter(pk=added.pk).exists()
    assert AuditLogEntry.objects.filter(
        action="suppression.remove", target_id=str(added.pk)
    ).exists()
    assert client.get(f"/messages/suppressions/{added.pk}/remove/").status_code == 405


def test_a_reader_sees_suppressions_masked_and_cannot_change_them(tenant):
    bounced = Suppression.objects.get(workspace=tenant.workspace)
    client = signed_in(tenant, Role.ANALYST)
    page = client.get("/messages/suppressions/").content.decode()
    assert bounced.address not in page and "Suppress an address" not in page
    response = client.post(
        "/messages/suppressions/", {"channel": "email", "address": "a@b.example.com"}
    )
    assert response.status_code == 403
    assert client.post(f"/messages/suppressions/{bounced.pk}/remove/").status_code == 403
    assert Suppression.objects.filter(workspace=tenant.workspace).count() == 1


def test_the_pages_are_in_the_act_group_of_the_side_bar(tenant):
    html = signed_in(tenant).get("/").content.decode()
    group = re.search(r'<div class="nav-group nav-act">(.*?)</div>', html, re.S).group(1)
    for url in (
        "/messages/failed/",
        "/messages/suppressions/",
        "/messages/outbox/",
        "/settings/channels/",
    ):
        assert f'href="{url}"' in group


def test_the_pages_read_in_russian(tenant, settings):
    from tests.web.test_russian_pages import VisibleText, english_words

    _message, mail = _kept_mail(tenant, settings)
    _failed(tenant, 1)
    client = signed_in(tenant)
    client.post("/preferences/language/", {"language": "ru", "next": "/"})
    client.post("/settings/channels/", _settings_form())
    pages = {
        url: client.get(url)
        for url in (
            "/messages/outbox/",
            f"/messages/outbox/{mail.pk}/",
            "/messages/failed/",
            "/messages/suppressions/",
            "/messages/suppressions/?q=nobody",
            "/settings/channels/",
        )
    }
    pages["POST /settings/channels/"] = client.post(
        "/settings/channels/", _settings_form(timezone="Nowhere", from_email="x")
    )
    pages["POST /messages/failed/retry/"] = client.post("/messages/failed/retry/", {"all": "1"})
    pages["POST /messages/suppressions/"] = client.post(
        "/messages/suppressions/", {"channel": "email", "address": "nope"}
    )
    pages["POST /settings/channels/webhook-secret/"] = client.post(
        "/settings/channels/webhook-secret/"
    )
    # The customer's name, the mail's subject: data, not words of the page.
    values = frozenset({"Jane Doe", '<b>Deal</b> & "more"', "The Shop"})
    failures = {}
    for url, response in pages.items():
        assert response.status_code < 500, url
        html = response.content.decode()
        assert '<html lang="ru"' in html, url
        parser = VisibleText()
        parser.feed(html)
        words = english_words(parser.texts, values=values)
        if words:
            failures[url] = sorted(words)
    assert not failures, "\n".join(f"{u}: {' '.join(w)}" for u, w in failures.items())
