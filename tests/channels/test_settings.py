"""The workspace's channel settings: one row read or made, changed, saved and audited
the same way for email, SMS and the webhook secret; the secrets on it encrypted and
read back through one description each (rapport/channels/secrets.py); a refused
transport URL explained in the person's language."""

import re

import pytest

from rapport.channels import secrets, services
from rapport.channels.models import EmailSettings
from rapport.core.errors import InvalidInputError
from rapport.tenancy.models import AuditLogEntry
from tests.channels.conftest import ACTOR

SETTINGS_ACTIONS = ["email_settings.set", "sms_settings.set", "webhook_secret.create"]
CYRILLIC = re.compile("[\\u0400-\\u04ff]")
BAD_URLS = [
    "ftp://x",
    "smtp://",
    "anymail://?api_key=1",
    "anymail://no_such_esp_here?api_key=1",
]


def _row(tenant) -> EmailSettings:
    return EmailSettings.objects.get(workspace=tenant.workspace)


def _actions(tenant) -> list[str]:
    return list(
        AuditLogEntry.objects.filter(workspace=tenant.workspace, action__in=SETTINGS_ACTIONS)
        .order_by("created_at", "pk")
        .values_list("action", flat=True)
    )


def test_each_setting_is_saved_once_and_audited(shop):
    services.email_settings_set(workspace=shop.workspace, actor=ACTOR, from_name="The Shop")
    services.sms_settings_set(
        workspace=shop.workspace,
        actor=ACTOR,
        provider="twilio",
        credentials={"account_sid": "AC1", "auth_token": "t0ken"},
        default_region=" gb ",
    )
    secret = services.webhook_secret_create(workspace=shop.workspace, actor=ACTOR)
    assert EmailSettings.objects.filter(workspace=shop.workspace).count() == 1
    row = _row(shop)
    assert row.from_name == "The Shop" and row.sms_default_region == "GB"
    assert row.sms_callback_token
    assert secrets.secret_get(row, secrets.WEBHOOK_SECRET) == secret
    assert secrets.secret_get(row, secrets.SMS_CREDENTIALS) == {
        "account_sid": "AC1",
        "auth_token": "t0ken",
    }
    assert "t0ken" not in row.sms_credentials_encrypted and secret not in str(
        row.webhook_secret_encrypted
    )
    assert _actions(shop) == SETTINGS_ACTIONS
    sms_entry = AuditLogEntry.objects.get(workspace=shop.workspace, action="sms_settings.set")
    assert sms_entry.details == {"provider": "twilio", "credentials_changed": True}


def test_a_refused_setting_writes_nothing(shop):
    services.sms_settings_set(
        workspace=shop.workspace,
        actor=ACTOR,
        provider="twilio",
        credentials={"account_sid": "AC1", "auth_token": "t0ken"},
    )
    before = _row(shop).sms_credentials_encrypted
    for changes, field in [
        ({"credentials": {"password": "x"}}, "sms.credentials.password"),
        ({"provider": "pigeon"}, "sms.provider"),
        ({"default_region": "GBR", "sender": "+4470"}, "sms.default_region"),
    ]:
        with pytest.raises(InvalidInputError) as refused:
            services.sms_settings_set(workspace=shop.workspace, actor=ACTOR, **changes)
        assert refused.value.field == field
    with pytest.raises(InvalidInputError):
        services.email_settings_set(
            workspace=shop.workspace, actor=ACTOR, from_name="Changed", transport_url="ftp://x"
        )
    row = _row(shop)
    assert row.sms_credentials_encrypted == before and row.sms_sender == ""
    assert row.from_name == "" and row.transport_label == ""
    assert _actions(shop) == ["sms_settings.set"]


def test_a_new_provider_forgets_the_old_credentials(shop):
    services.sms_settings_set(
        workspace=shop.workspace,
        actor=ACTOR,
        provider="twilio",
        credentials={"account_sid": "AC1", "auth_token": "t0ken"},
    )
    services.sms_settings_set(workspace=shop.workspace, actor=ACTOR, provider="vonage")
    row = _row(shop)
    assert row.sms_credentials_encrypted == ""
    assert secrets.secret_get(row, secrets.SMS_CREDENTIALS) == {}
    assert not secrets.secret_is_set(row, secrets.SMS_CREDENTIALS)


def test_the_transport_is_stored_with_its_label_and_cleared_with_it(shop):
    url = "smtp+tls://mailer:pa55word@mail.example.com:587"
    services.email_settings_set(workspace=shop.workspace, actor=ACTOR, transport_url=url)
    row = _row(shop)
    assert row.transport_label == "smtp+tls://mailer:***@mail.example.com:587"
    assert secrets.secret_get(row, secrets.TRANSPORT) == url
    services.email_settings_set(workspace=shop.workspace, actor=ACTOR, transport_url="")
    row = _row(shop)
    assert row.transport_encrypted == row.transport_label == ""
    assert secrets.secret_get(row, secrets.TRANSPORT) == ""
    assert secrets.secret_get(None, secrets.TRANSPORT) == ""


def test_a_secret_under_another_key_reads_as_none(shop, settings):
    services.email_settings_set(
        workspace=shop.workspace, actor=ACTOR, transport_url="smtp://mail.example.com"
    )
    secret = services.webhook_secret_create(workspace=shop.workspace, actor=ACTOR)
    assert secrets.secret_get(_row(shop), secrets.WEBHOOK_SECRET) == secret
    settings.SECRET_KEY = "another-key-" + "x" * 40
    row = _row(shop)
    assert secrets.secret_get(row, secrets.TRANSPORT) is None
    assert secrets.secret_get(row, secrets.WEBHOOK_SECRET) is None
    assert secrets.secret_is_set(row, secrets.WEBHOOK_SECRET)


@pytest.mark.parametrize("url", BAD_URLS)
def test_a_refused_transport_url_is_explained_in_the_language_asked(shop, url):
    api = shop.api()
    english = api.patch("/api/v1/channels/settings", {"transport_url": url})
    russian = api.patch(
        "/api/v1/channels/settings", {"transport_url": url}, HTTP_ACCEPT_LANGUAGE="ru"
    )
    assert english.status_code == russian.status_code == 422, english.content
    en, ru = english.json()["error"], russian.json()["error"]
    assert en["details"][0]["field"] == ru["details"][0]["field"] == "transport_url"
    assert not CYRILLIC.search(en["message"]), en["message"]
    assert CYRILLIC.search(ru["message"]), ru["message"]
    # The sentence itself is Russian, not only the "Invalid value" around it.
    assert CYRILLIC.search(ru["details"][0]["message"]), ru["details"][0]
