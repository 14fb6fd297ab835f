"""GET /api/v1/profiles (search by any identifier or trait), one profile with its
identities and trait sources, its timeline; masked for roles without pii.read."""

import pytest

from rapport.profiles.models import Profile
from tests.conftest import tenant_create


@pytest.fixture
def shop(db):
    tenant = tenant_create("Shop", sample_data=False)
    items = [
        {
            "type": "page",
            "anonymousId": "anon-1",
            "name": "Home",
            "timestamp": "2026-01-01T09:00:00Z",
        },
        {
            "type": "identify",
            "anonymousId": "anon-1",
            "userId": "cust-1",
            "traits": {
                "email": "Jane.Doe@Example.com",
                "phone": "+44 20 7946 0958",
                "plan": "pro",
                "age": 41,
            },
            "timestamp": "2026-01-02T09:00:00Z",
        },
        {
            "type": "track",
            "userId": "cust-1",
            "event": "Order Completed",
            "timestamp": "2026-01-03T09:00:00Z",
        },
        {
            "type": "identify",
            "userId": "cust-2",
            "traits": {"plan": "free"},
            "timestamp": "2026-01-04T09:00:00Z",
        },
    ]
    tenant.send(*[{**item, "messageId": f"s{i}"} for i, item in enumerate(items)])
    return tenant


def _ids(response) -> set[str]:
    return {item["id"] for item in response.json()["items"]}


@pytest.mark.parametrize(
    "query",
    [
        "q=cust-1",
        "q=anon-1",
        "q=jane.doe@example.com",
        "q=JANE.DOE@EXAMPLE.COM",
        "q=%2B442079460958",
        "trait=plan:pro",
        "trait=age:41",
    ],
)
def test_find_a_customer_by_any_identifier_or_trait(query, shop):
    jane = Profile.objects.get(workspace=shop.workspace, identifiers__value="cust-1")
    response = shop.api("admin").get(f"/api/v1/profiles?{query}")
    assert response.status_code == 200, response.content
    assert _ids(response) == {str(jane.pk)}


@pytest.mark.parametrize(
    "query",
    ["q=nobody", "q=' OR 1=1 --", "trait=plan__icontains:pr", "trait=plan:pr", "trait=traits:{}"],
)
def test_searches_that_match_nobody(query, shop):
    response = shop.api("admin").get(f"/api/v1/profiles?{query}")
    assert response.status_code == 200
    assert response.json()["count"] == 0


def test_bad_trait_filter_is_422(shop):
    response = shop.api("admin").get("/api/v1/profiles?trait=novalue")
    assert response.status_code == 422
    assert "trait" in response.json()["error"]["message"]


def test_profile_shows_identities_traits_and_where_they_came_from(shop):
    jane = Profile.objects.get(workspace=shop.workspace, identifiers__value="cust-1")
    body = shop.api("marketer").get(f"/api/v1/profiles/{jane.pk}").json()
    assert {(i["kind"], i["value"]) for i in body["identities"]} == {
        ("user_id", "cust-1"),
        ("anonymous_id", "anon-1"),
        ("email", "jane.doe@example.com"),
        ("phone", "+442079460958"),
    }
    assert body["traits"]["plan"] == "pro"
    assert body["trait_sources"]["plan"]["message_id"] == "s1"
    assert body["first_seen_at"].startswith("2026-01-01")
    assert body["last_seen_at"].startswith("2026-01-03")


@pytest.mark.parametrize("role", ["analyst", "agent"])
def test_roles_without_pii_read_see_masked_identities_and_traits(role, shop):
    jane = Profile.objects.get(workspace=shop.workspace, identifiers__value="cust-1")
    body = shop.api(role).get(f"/api/v1/profiles/{jane.pk}").json()
    text = str(body)
    assert "jane.doe@example.com" not in text.lower()
    assert "7946" not in text
    assert {i["kind"]: i["value"] for i in body["identities"]}["user_id"] == "cust-1"
    listed = shop.api(role).get("/api/v1/profiles?q=cust-1").json()["items"][0]
    assert "example.com" not in str(listed["traits"]).lower()


def test_timeline_is_everything_the_customer_did_newest_first(shop):
    jane = Profile.objects.get(workspace=shop.workspace, identifiers__value="cust-1")
    timeline = shop.api("admin").get(f"/api/v1/profiles/{jane.pk}/timeline").json()
    assert [(e["kind"], e["event"]["type"]) for e in timeline["items"]] == [
        ("event", "track"),
        ("trait_change", "identify"),
        ("event", "page"),
    ]
    assert timeline["items"][0]["title"] == "Order Completed"
    assert timeline["items"][1]["title"] == "Traits set: age, email, phone, plan"
    assert timeline["next_cursor"] is None
    tracks = shop.api("admin").get(f"/api/v1/profiles/{jane.pk}/timeline?type=track").json()
    assert [e["event"]["event"] for e in tracks["items"]] == ["Order Completed"]


def test_timeline_masks_personal_data_for_roles_without_pii_read(shop):
    jane = Profile.objects.get(workspace=shop.workspace, identifiers__value="cust-1")
    timeline = shop.api("analyst").get(f"/api/v1/profiles/{jane.pk}/timeline").json()
    assert "jane.doe@example.com" not in str(timeline).lower()
