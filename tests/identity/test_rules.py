"""Per-workspace identity rules: what they accept, and that resolution follows them."""

import pytest

from rapport.ingest.models import Event
from rapport.tenancy.models import AuditLogEntry
from tests.conftest import tenant_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    tenant = tenant_create("Rules", sample_data=False)
    return tenant


def test_defaults(shop):
    rules = shop.api("analyst").get("/api/v1/identity/rules").json()
    assert rules["limits"] == {"user_id": 1}
    assert (
        rules["priorities"]["user_id"]
        < rules["priorities"]["email"]
        < rules["priorities"]["anonymous_id"]
    )
    assert "undefined" in rules["blocked_values"]


def test_a_declared_external_id_joins_profiles(shop):
    patched = shop.api("admin").patch(
        "/api/v1/identity/rules",
        {"external_kinds": ["loyalty_card"], "limits": {"loyalty_card": 1}},
    )
    assert patched.status_code == 200, patched.content
    shop.send(
        {
            "type": "page",
            "anonymousId": "kiosk-1",
            "messageId": "k1",
            "context": {"externalIds": [{"id": "LC-9", "type": "loyalty_card"}]},
        },
        {"type": "identify", "userId": "u9", "messageId": "k2", "traits": {"loyalty_card": "LC-9"}},
    )
    assert (
        Event.objects.get(message_id="k1").profile_id
        == Event.objects.get(message_id="k2").profile_id
    )
    assert AuditLogEntry.objects.filter(action="identity.rules.update").exists()


def test_a_blocked_value_added_by_the_workspace(shop):
    shop.api("admin").patch("/api/v1/identity/rules", {"blocked_values": ["shared-terminal"]})
    shop.send(
        {"type": "identify", "anonymousId": "shared-terminal", "userId": "a", "messageId": "s1"},
        {"type": "identify", "anonymousId": "shared-terminal", "userId": "b", "messageId": "s2"},
    )
    assert (
        Event.objects.get(message_id="s1").profile_id
        != Event.objects.get(message_id="s2").profile_id
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"external_kinds": ["Bad Kind"]}, "external_kinds"),
        ({"external_kinds": ["email"]}, "external_kinds"),
        ({"limits": {"nonexistent": 2}}, "limits"),
        ({"limits": {"user_id": 0}}, "limits"),
        ({"priorities": {"email": 1000}}, "priorities"),
        ({"default_phone_region": "XX"}, "default_phone_region"),
    ],
)
def test_bad_rules_are_refused_naming_the_field(body, field, shop):
    before = shop.api("admin").get("/api/v1/identity/rules").json()
    response = shop.api("admin").patch("/api/v1/identity/rules", body)
    assert response.status_code == 422
    assert field in response.json()["error"]["message"]
    assert shop.api("admin").get("/api/v1/identity/rules").json() == before
