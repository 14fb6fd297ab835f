"""The timeline: events, trait changes, merges and unmerges, consent changes in one
stream, newest first; filtered by kind and channel; keyset-paged without gaps or
repeats, even across entries with the same time."""

import pytest

from rapport.identity.services import profile_merge, profile_unmerge
from rapport.profiles.models import Profile
from rapport.profiles.services import consent_set
from rapport.tenancy.services import Actor
from tests.conftest import tenant_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    tenant = tenant_create("Timeline", sample_data=False)
    tenant.send(
        {"type": "page", "anonymousId": "a1", "name": "Home", "timestamp": "2026-01-01T09:00:00Z"},
        {
            "type": "identify",
            "userId": "jane",
            "anonymousId": "a1",
            "traits": {"plan": "pro", "email": "jane@example.com"},
            "timestamp": "2026-01-02T09:00:00Z",
        },
        {
            "type": "identify",
            "userId": "jane",
            "traits": {"sms_opt_in": True},
            "context": {"consent": {"categoryPreferences": {"sms_marketing": True}}},
            "timestamp": "2026-01-03T09:00:00Z",
        },
        {"type": "identify", "userId": "jane-2", "timestamp": "2026-01-04T09:00:00Z"},
        *[
            {
                "type": "track",
                "userId": "jane",
                "event": f"Clicked {i}",
                # Ten events in the same second: the cursor must still not lose one.
                "timestamp": "2026-01-05T09:00:00Z",
            }
            for i in range(10)
        ],
    )
    return tenant


def _jane(shop):
    return Profile.objects.get(workspace=shop.workspace, identifiers__value="jane")


def _pages(api, url: str, limit: int) -> list[list[dict]]:
    pages, cursor = [], None
    while True:
        query = f"{url}{'&' if '?' in url else '?'}limit={limit}"
        if cursor:
            query += f"&cursor={cursor}"
        body = api.get(query).json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


def test_merges_unmerges_and_consent_changes_are_in_the_stream(shop):
    jane = _jane(shop)
    other = Profile.objects.get(workspace=shop.workspace, identifiers__value="jane-2")
    merge = profile_merge(survivor=jane, merged=other, reason="one person", actor=Actor.system())
    profile_unmerge(merge=merge, actor=Actor.system())
    consent_set(
        profile=jane,
        channel="email",
        purpose="marketing",
        status="denied",
        expires_at=None,
        actor=Actor.system(),
    )
    items = shop.api().get(f"/api/v1/profiles/{jane.pk}/timeline?limit=200").json()["items"]
    kinds = [item["kind"] for item in items]
    assert {"event", "trait_change", "merge", "unmerge", "consent"} <= set(kinds)
    times = [item["at"] for item in items]
    assert times == sorted(times, reverse=True)
    merge_entry = next(item for item in items if item["kind"] == "merge")
    assert merge_entry["merge"]["reason"] == "one person"
    consents = [item for item in items if item["kind"] == "consent"]
    assert {(c["channel"], c["consent"]["status"]) for c in consents} >= {
        ("sms", "granted"),
        ("email", "denied"),
    }


def test_kind_and_channel_filters(shop):
    jane = _jane(shop)
    api = shop.api()
    url = f"/api/v1/profiles/{jane.pk}/timeline"
    changes = api.get(f"{url}?kind=trait_change").json()["items"]
    assert [c["event"]["traits"] for c in changes] == [
        {"sms_opt_in": True},
        {"plan": "pro", "email": "jane@example.com"},
    ]
    only_events = api.get(f"{url}?kind=event&limit=200").json()["items"]
    assert {item["kind"] for item in only_events} == {"event"}
    assert len(only_events) == 11
    sms = api.get(f"{url}?channel=sms").json()["items"]
    assert [item["kind"] for item in sms] == ["consent"]
    source_kind = shop.created.source.kind
    by_source = api.get(f"{url}?channel={source_kind}&limit=200").json()["items"]
    assert len(by_source) == 13
    bad = api.get(f"{url}?kind=gossip")
    assert bad.status_code == 422
    assert "kind" in bad.json()["error"]["message"]


@pytest.mark.parametrize("limit", [1, 3, 7])
def test_pages_cover_everything_once_in_order(shop, limit):
    jane = _jane(shop)
    api = shop.api()
    url = f"/api/v1/profiles/{jane.pk}/timeline"
    everything = api.get(f"{url}?limit=200").json()["items"]
    pages = _pages(api, url, limit)
    paged = [item for page in pages for item in page]
    assert [(i["kind"], i["id"]) for i in paged] == [(i["kind"], i["id"]) for i in everything]
    assert all(len(page) <= limit for page in pages)


@pytest.mark.parametrize("cursor", ["nonsense", "bm90fGF8Y3Vyc29y", "x" * 299])
def test_a_forged_cursor_is_a_clear_422(shop, cursor):
    response = shop.api().get(f"/api/v1/profiles/{_jane(shop).pk}/timeline?cursor={cursor}")
    assert response.status_code == 422
    assert "cursor" in response.json()["error"]["message"]
