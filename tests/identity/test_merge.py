"""Manual merge and unmerge: unmerge restores both profiles exactly."""

import pytest

from rapport.identity.models import Identifier, ProfileMerge
from rapport.ingest.models import Event
from rapport.profiles.models import Profile
from rapport.tenancy.models import AuditLogEntry
from tests.conftest import tenant_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    tenant = tenant_create("Merges", sample_data=False)
    return tenant


def state(workspace) -> dict:
    """Everything that merge and unmerge touch, comparable before and after."""
    return {
        "events": sorted(
            Event.objects.filter(workspace=workspace).values_list("message_id", "profile_id")
        ),
        "identifiers": sorted(
            Identifier.objects.filter(workspace=workspace).values_list(
                "kind", "value", "profile_id"
            )
        ),
        "profiles": sorted(
            Profile.objects.filter(workspace=workspace).values_list(
                "id", "traits", "first_seen_at", "last_seen_at", "merged_into_id"
            ),
            key=lambda row: str(row[0]),
        ),
    }


def _two_customers(shop):
    shop.send(
        {
            "type": "page",
            "anonymousId": "a-ann",
            "messageId": "m1",
            "timestamp": "2026-01-01T00:00:00Z",
        },
        {
            "type": "identify",
            "anonymousId": "a-ann",
            "userId": "ann",
            "messageId": "m2",
            "traits": {"email": "ann@example.com", "plan": "pro"},
            "timestamp": "2026-01-02T00:00:00Z",
        },
        {
            "type": "identify",
            "userId": "ann-2",
            "messageId": "m3",
            "traits": {"email": "ann.work@example.com", "plan": "free", "city": "Leeds"},
            "timestamp": "2026-02-01T00:00:00Z",
        },
        {
            "type": "track",
            "userId": "ann-2",
            "event": "Ticket Opened",
            "messageId": "m4",
            "timestamp": "2026-02-03T00:00:00Z",
        },
    )
    ann = Profile.objects.get(identifiers__value="ann")
    work = Profile.objects.get(identifiers__value="ann-2")
    return ann, work


def test_merge_then_unmerge_restores_both_profiles_exactly(shop):
    ann, work = _two_customers(shop)
    before = state(shop.workspace)

    api = shop.api("agent")
    merged = api.post(
        f"/api/v1/profiles/{ann.pk}/merge",
        {"other": str(work.pk), "reason": "Same person, work email"},
    )
    assert merged.status_code == 200, merged.content
    after_merge = Profile.objects.get(pk=ann.pk)
    assert after_merge.traits["plan"] == "free" and after_merge.traits["city"] == "Leeds"
    assert set(Event.objects.values_list("profile_id", flat=True)) == {ann.pk}
    assert Profile.objects.get(pk=work.pk).merged_into_id == ann.pk

    undone = api.post(f"/api/v1/profiles/merges/{merged.json()['id']}/unmerge")
    assert undone.status_code == 200, undone.content
    assert undone.json()["unmerged_at"]
    assert state(shop.workspace) == before
    actions = list(
        AuditLogEntry.objects.filter(workspace=shop.workspace).values_list("action", flat=True)
    )
    assert "profile.merge" in actions and "profile.unmerge" in actions


def test_events_that_arrive_after_a_merge_follow_their_identifier_on_unmerge(shop):
    ann, work = _two_customers(shop)
    merge = (
        shop.api("admin")
        .post(f"/api/v1/profiles/{ann.pk}/merge", {"other": str(work.pk), "reason": "x"})
        .json()
    )
    shop.send({"type": "track", "userId": "ann-2", "event": "Order Completed", "messageId": "m5"})
    assert Event.objects.get(message_id="m5").profile_id == ann.pk

    shop.api("admin").post(f"/api/v1/profiles/merges/{merge['id']}/unmerge")
    assert Event.objects.get(message_id="m5").profile_id == work.pk


def test_merge_refusals(shop, other_tenant):
    ann, work = _two_customers(shop)
    api = shop.api("admin")
    assert (
        api.post(
            f"/api/v1/profiles/{ann.pk}/merge", {"other": str(ann.pk), "reason": "x"}
        ).status_code
        == 422
    )
    assert (
        api.post(
            f"/api/v1/profiles/{ann.pk}/merge", {"other": str(work.pk), "reason": "  "}
        ).status_code
        == 422
    )
    theirs = Profile.objects.filter(workspace=other_tenant.workspace).first()
    assert (
        api.post(
            f"/api/v1/profiles/{ann.pk}/merge", {"other": str(theirs.pk), "reason": "x"}
        ).status_code
        == 404
    )
    first = api.post(f"/api/v1/profiles/{ann.pk}/merge", {"other": str(work.pk), "reason": "x"})
    assert first.status_code == 200
    again = api.post(f"/api/v1/profiles/{ann.pk}/merge", {"other": str(work.pk), "reason": "x"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_merged"
    api.post(f"/api/v1/profiles/merges/{first.json()['id']}/unmerge")
    twice = api.post(f"/api/v1/profiles/merges/{first.json()['id']}/unmerge")
    assert twice.status_code == 409
    assert ProfileMerge.objects.filter(workspace=shop.workspace).count() == 1


def test_analysts_cannot_merge(shop):
    ann, work = _two_customers(shop)
    response = shop.api("analyst").post(
        f"/api/v1/profiles/{ann.pk}/merge", {"other": str(work.pk), "reason": "x"}
    )
    assert response.status_code == 403
    assert Profile.objects.get(pk=work.pk).merged_into_id is None


def test_merge_history_of_a_profile(shop):
    ann, work = _two_customers(shop)
    shop.api("admin").post(
        f"/api/v1/profiles/{ann.pk}/merge", {"other": str(work.pk), "reason": "same"}
    )
    history = shop.api("admin").get(f"/api/v1/profiles/{work.pk}/merges").json()
    assert history["count"] == 1
    assert history["items"][0]["survivor"] == str(ann.pk)
    assert history["items"][0]["automatic"] is False
    assert sorted(map(tuple, history["items"][0]["identifiers"])) == [
        ("email", "ann.work@example.com"),
        ("user_id", "ann-2"),
    ]
    # An analyst reads the same history with the email masked.
    masked = shop.api("analyst").get(f"/api/v1/profiles/{work.pk}/merges").json()
    identifiers = dict(map(tuple, masked["items"][0]["identifiers"]))
    assert identifiers["email"] != "ann.work@example.com" and "•" in identifiers["email"]
