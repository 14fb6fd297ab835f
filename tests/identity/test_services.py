"""Identity resolution through the real path: events stored by ingestion, handed to
`events_dispatch`, resolved to profiles in the database."""

import pytest

from rapport.identity.models import Identifier, IdentityCase, ProfileMerge
from rapport.ingest.models import Event
from rapport.profiles.models import Profile
from tests.conftest import tenant_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def send():
    tenant = tenant_create("Ident", sample_data=False)
    counter = {"n": 0}

    def _send(*items):
        stamped = []
        for item in items:
            counter["n"] += 1
            stamped.append({"messageId": f"m{counter['n']}", **item})
        return [Event.objects.get(message_id=m) for m in tenant.send(*stamped)]

    _send.workspace = tenant.workspace
    return _send


def profile_of(message_id: str):
    return Event.objects.get(message_id=message_id).profile_id


def test_anonymous_browsing_then_sign_up_joins_the_history(send):
    send({"type": "page", "anonymousId": "a1", "name": "Pricing"})
    send({"type": "track", "anonymousId": "a1", "event": "Trial Started"})
    send(
        {
            "type": "identify",
            "anonymousId": "a1",
            "userId": "u1",
            "traits": {"email": "Ann@Example.com"},
        }
    )

    profiles = set(Event.objects.values_list("profile_id", flat=True))
    assert len(profiles) == 1 and None not in profiles
    profile = Profile.objects.get()
    assert set(Identifier.objects.values_list("kind", "value")) == {
        ("anonymous_id", "a1"),
        ("user_id", "u1"),
        ("email", "ann@example.com"),
    }
    assert profile.traits == {"email": "Ann@Example.com"}
    assert profile.trait_sources["email"]["message_id"] == "m3"


def test_two_devices_are_merged_and_earlier_events_follow(send):
    send({"type": "page", "anonymousId": "laptop"}, {"type": "page", "anonymousId": "phone"})
    send({"type": "identify", "anonymousId": "phone", "userId": "u1"})
    assert profile_of("m1") != profile_of("m2")

    send({"type": "track", "anonymousId": "laptop", "userId": "u1", "event": "Order Completed"})

    assert len(set(Event.objects.values_list("profile_id", flat=True))) == 1
    merge = ProfileMerge.objects.get()
    assert merge.identifiers == [["anonymous_id", "laptop"]]
    assert Profile.objects.get(pk=merge.merged_id).merged_into_id == merge.survivor_id
    assert Profile.objects.filter(merged_into__isnull=True).count() == 1


def test_shared_family_computer_is_not_merged_and_the_case_is_recorded(send):
    send({"type": "identify", "anonymousId": "pc", "userId": "mum"})
    send({"type": "identify", "anonymousId": "pc", "userId": "son"})

    assert profile_of("m1") != profile_of("m2")
    assert ProfileMerge.objects.count() == 0
    case = IdentityCase.objects.get()
    assert (case.kind, case.value, case.message_id) == ("anonymous_id", "pc", "m2")
    assert "user_id" in case.reason


def test_a_companys_group_traits_neither_join_its_people_nor_become_theirs(send):
    company = {"name": "Acme", "email": "billing@acme.example", "phone": "+44 20 7946 0000"}
    first = send({"type": "group", "anonymousId": "a-ann", "groupId": "acme", "traits": company})
    second = send({"type": "group", "anonymousId": "a-bob", "groupId": "acme", "traits": company})
    assert first[0].profile_id != second[0].profile_id
    assert not Identifier.objects.filter(kind__in=["email", "phone"]).exists()
    assert Profile.objects.get(pk=first[0].profile_id).traits == {}
    # The person's own identify still sets their traits.
    send({"type": "identify", "anonymousId": "a-ann", "traits": {"name": "Ann"}})
    assert Profile.objects.get(pk=first[0].profile_id).traits == {"name": "Ann"}


def test_blocked_placeholder_values_identify_nobody(send):
    send(
        {
            "type": "identify",
            "userId": "u1",
            "anonymousId": "undefined",
            "traits": {"email": "test@example.com"},
        }
    )
    send(
        {
            "type": "identify",
            "userId": "u2",
            "anonymousId": "undefined",
            "traits": {"email": "test@example.com"},
        }
    )
    assert profile_of("m1") != profile_of("m2")
    assert not Identifier.objects.filter(value__in=["undefined", "test@example.com"]).exists()


def test_latest_trait_wins_by_event_time_not_arrival(send):
    send(
        {
            "type": "identify",
            "userId": "u1",
            "traits": {"plan": "pro"},
            "timestamp": "2026-03-01T00:00:00Z",
        }
    )
    send(
        {
            "type": "identify",
            "userId": "u1",
            "traits": {"plan": "free"},
            "timestamp": "2026-01-01T00:00:00Z",
        }
    )
    profile = Profile.objects.get()
    assert profile.traits["plan"] == "pro"
    assert profile.trait_sources["plan"]["at"].startswith("2026-03-01")
    assert profile.first_seen_at.isoformat().startswith("2026-01-01")
    assert profile.last_seen_at.isoformat().startswith("2026-03-01")


def test_resolving_the_same_events_again_changes_nothing(send):
    events = send(
        {"type": "identify", "anonymousId": "a", "userId": "u"},
        {"type": "page", "anonymousId": "a"},
    )
    from rapport.identity.services import events_resolve

    before = list(Event.objects.order_by("id").values_list("id", "profile_id"))
    events_resolve(send.workspace.pk, events)
    assert list(Event.objects.order_by("id").values_list("id", "profile_id")) == before
    assert Profile.objects.count() == 1 and Identifier.objects.count() == 2


def test_profiles_of_two_workspaces_never_mix(send):
    send({"type": "identify", "userId": "same-id"})
    other = tenant_create("Other", sample_data=False)
    other.send({"type": "identify", "userId": "same-id", "messageId": "x"})
    assert Profile.objects.count() == 2
    assert (
        profile_of("m1") != Event.objects.get(workspace=other.workspace, message_id="x").profile_id
    )
