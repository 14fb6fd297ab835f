"""Export everything held about a person; erase a person so that nothing of them is
left and later events for their identifiers are dropped."""

import json

import pytest

from rapport.identity.models import Identifier, IdentityCase, ProfileMerge, Suppression
from rapport.ingest.models import Event
from rapport.profiles.models import Profile
from rapport.tenancy.models import AuditLogEntry
from tests.conftest import tenant_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    tenant = tenant_create("Privacy", sample_data=False)
    tenant.send(
        {"type": "page", "anonymousId": "laptop", "messageId": "p1"},
        {"type": "page", "anonymousId": "phone", "messageId": "p2"},
        {
            "type": "identify",
            "anonymousId": "phone",
            "userId": "eve",
            "messageId": "p3",
            "traits": {"email": "eve@example.com", "phone": "+44 20 7946 0958"},
        },
        {
            "type": "track",
            "anonymousId": "laptop",
            "userId": "eve",
            "event": "Order Completed",
            "messageId": "p4",
        },
        {
            "type": "identify",
            "userId": "bob",
            "messageId": "b1",
            "traits": {"email": "bob@example.com"},
        },
    )
    return tenant


def eve() -> Profile:
    return Profile.objects.get(identifiers__value="eve")


def test_export_has_everything_and_is_audited(shop):
    response = shop.api("admin").post(f"/api/v1/profiles/{eve().pk}/export")
    assert response.status_code == 200
    data = response.json()
    assert {(i["kind"], i["value"]) for i in data["identifiers"]} == {
        ("user_id", "eve"),
        ("anonymous_id", "laptop"),
        ("anonymous_id", "phone"),
        ("email", "eve@example.com"),
        ("phone", "+442079460958"),
    }
    assert sorted(e["message_id"] for e in data["events"]) == ["p1", "p2", "p3", "p4"]
    assert "bob" not in json.dumps(data)
    entry = AuditLogEntry.objects.get(action="pii.export")
    assert entry.target_id == str(eve().pk) and entry.details["events"] == 4


def test_erase_removes_the_person_and_suppresses_their_identifiers(shop):
    profile = eve()
    assert ProfileMerge.objects.filter(workspace=shop.workspace).exists()
    response = shop.api("admin").post(f"/api/v1/profiles/{profile.pk}/erase")
    assert response.status_code == 200, response.content
    assert response.json() == {"profiles": 2, "identifiers": 5, "events": 4}

    assert not Profile.objects.filter(identifiers__value="eve").exists()
    assert not Event.objects.filter(message_id__in=["p1", "p2", "p3", "p4"]).exists()
    assert not Identifier.objects.filter(value__in=["eve", "laptop", "phone"]).exists()
    assert not ProfileMerge.objects.filter(workspace=shop.workspace).exists()
    assert Suppression.objects.filter(workspace=shop.workspace).count() == 5
    everything = json.dumps(list(Suppression.objects.values_list("kind", "value_hash")))
    everything += json.dumps([e.details for e in AuditLogEntry.objects.all()])
    assert "eve@example.com" not in everything and "laptop" not in everything
    # Bob is untouched.
    assert Profile.objects.get(identifiers__value="bob").traits == {"email": "bob@example.com"}


def test_later_events_of_an_erased_person_are_dropped(shop):
    shop.api("admin").post(f"/api/v1/profiles/{eve().pk}/erase")
    shop.send(
        {"type": "track", "userId": "eve", "event": "Came Back", "messageId": "late-1"},
        {
            "type": "identify",
            "anonymousId": "new-device",
            "traits": {"email": "EVE@example.com"},
            "messageId": "late-2",
        },
        {"type": "track", "userId": "carol", "event": "Signed Up", "messageId": "c1"},
    )
    assert not Event.objects.filter(message_id__in=["late-1", "late-2"]).exists()
    assert Event.objects.get(message_id="c1").profile_id is not None
    assert not Profile.objects.filter(identifiers__value="eve").exists()


@pytest.mark.parametrize("role", ["marketer", "analyst", "sales", "agent"])
def test_only_admins_export_or_erase(role, shop):
    api = shop.api(role)
    assert api.post(f"/api/v1/profiles/{eve().pk}/export").status_code == 403
    assert api.post(f"/api/v1/profiles/{eve().pk}/erase").status_code == 403
    assert Profile.objects.filter(identifiers__value="eve").exists()
    assert not AuditLogEntry.objects.filter(action__in=["pii.export", "profile.erase"]).exists()
    assert IdentityCase.objects.count() == 0
