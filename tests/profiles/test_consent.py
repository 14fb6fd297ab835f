"""Consent per channel and purpose: from identify traits and context.consent, from a
person through the API, kept as history, expiring, and following merges exactly."""

from datetime import timedelta

import pytest
from django.utils import timezone

from rapport.profiles.consent import statements_in
from rapport.profiles.models import ConsentChange, Profile
from rapport.tenancy.models import AuditLogEntry
from tests.conftest import tenant_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    tenant = tenant_create("Consent", sample_data=False)
    return tenant


def current(shop, profile, role="admin") -> dict:
    rows = shop.api(role).get(f"/api/v1/profiles/{profile.pk}/consents").json()
    return {(r["channel"], r["purpose"]): r["status"] for r in rows}


@pytest.mark.parametrize(
    ("traits", "context", "expected"),
    [
        (
            {"consent": {"email": {"marketing": "granted", "transactional": True}}},
            {},
            {("email", "marketing", "granted"), ("email", "transactional", "granted")},
        ),
        (
            {"consent": {"sms": False, "fax": True, "push": "maybe"}},
            {},
            {("sms", "marketing", "denied")},
        ),
        (
            {},
            {
                "consent": {
                    "categoryPreferences": {
                        "email_marketing": False,
                        "direct_mail_transactional": True,
                        "ads": True,
                    }
                }
            },
            {("email", "marketing", "denied"), ("direct_mail", "transactional", "granted")},
        ),
        ({}, {"traits": {"consent": {"phone": "opted_out"}}}, {("phone", "marketing", "denied")}),
        ({"consent": "yes"}, {}, set()),
    ],
)
def test_statements_read_from_events(traits, context, expected):
    found = statements_in(traits=traits, context=context)
    assert {(s.channel, s.purpose, s.status) for s in found} == expected


def test_consent_from_events_latest_wins_and_history_is_kept(shop):
    shop.send(
        {
            "type": "identify",
            "userId": "u1",
            "traits": {"consent": {"email": "granted"}},
            "timestamp": "2026-01-01T00:00:00Z",
        },
        {
            "type": "track",
            "userId": "u1",
            "event": "Unsubscribed",
            "context": {"consent": {"categoryPreferences": {"email_marketing": False}}},
            "timestamp": "2026-02-01T00:00:00Z",
        },
    )
    profile = Profile.objects.get()
    now = current(shop, profile)
    assert now[("email", "marketing")] == "denied"
    assert now[("sms", "marketing")] == "unknown"
    history = shop.api("analyst").get(f"/api/v1/profiles/{profile.pk}/consents/history").json()
    assert [h["status"] for h in history["items"]] == ["denied", "granted"]
    # The same events again record nothing new.
    from rapport.ingest.models import Event
    from rapport.profiles.services import consents_from_events

    consents_from_events(shop.workspace.pk, list(Event.objects.all()))
    assert ConsentChange.objects.count() == 2


def test_a_person_records_consent_with_an_expiry(shop, time_machine):
    shop.send({"type": "identify", "userId": "u1"})
    profile = Profile.objects.get()
    expires = (timezone.now() + timedelta(days=30)).isoformat()
    response = shop.api("agent").post(
        f"/api/v1/profiles/{profile.pk}/consents",
        {"channel": "sms", "purpose": "marketing", "status": "granted", "expires_at": expires},
    )
    assert response.status_code == 201, response.content
    assert response.json()["source"].startswith("api:token:")
    assert current(shop, profile)[("sms", "marketing")] == "granted"
    assert AuditLogEntry.objects.filter(action="consent.set").exists()

    time_machine.move_to(timezone.now() + timedelta(days=31))
    rows = shop.api("admin").get(f"/api/v1/profiles/{profile.pk}/consents").json()
    sms = next(r for r in rows if (r["channel"], r["purpose"]) == ("sms", "marketing"))
    assert sms["status"] == "unknown" and sms["expired"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channel": "fax", "purpose": "marketing", "status": "granted"}, "channel"),
        ({"channel": "sms", "purpose": "fun", "status": "granted"}, "purpose"),
        ({"channel": "sms", "purpose": "marketing", "status": "maybe"}, "status"),
        (
            {
                "channel": "sms",
                "purpose": "marketing",
                "status": "granted",
                "expires_at": "2020-01-01T00:00:00Z",
            },
            "expires_at",
        ),
    ],
)
def test_bad_consent_is_refused(body, field, shop):
    shop.send({"type": "identify", "userId": "u1"})
    profile = Profile.objects.get()
    response = shop.api("admin").post(f"/api/v1/profiles/{profile.pk}/consents", body)
    assert response.status_code == 422
    assert field in response.json()["error"]["message"]
    assert ConsentChange.objects.count() == 0


def test_consent_follows_a_merge_and_comes_back_on_unmerge(shop):
    shop.send(
        {"type": "identify", "userId": "ann", "traits": {"consent": {"email": "granted"}}},
        {"type": "identify", "userId": "ann-2", "traits": {"consent": {"sms": "denied"}}},
    )
    ann = Profile.objects.get(identifiers__value="ann")
    other = Profile.objects.get(identifiers__value="ann-2")
    merge = (
        shop.api("admin")
        .post(f"/api/v1/profiles/{ann.pk}/merge", {"other": str(other.pk), "reason": "same"})
        .json()
    )
    merged_now = current(shop, ann)
    assert (
        merged_now[("email", "marketing")] == "granted"
        and merged_now[("sms", "marketing")] == "denied"
    )

    shop.api("admin").post(f"/api/v1/profiles/merges/{merge['id']}/unmerge")
    assert current(shop, ann)[("sms", "marketing")] == "unknown"
    assert current(shop, other)[("sms", "marketing")] == "denied"
    assert current(shop, other)[("email", "marketing")] == "unknown"
