"""Stitching scenarios on the in-memory resolver."""

import itertools
import uuid

import pytest

from rapport.identity.graph import Graph, Rules
from rapport.identity.normalize import Identity, identities_of


def graph(rules: Rules | None = None) -> Graph:
    counter = itertools.count(1)
    return Graph(
        rules=rules or Rules(),
        owner={},
        held={},
        new_profile_id=lambda: uuid.UUID(int=next(counter)),
    )


def ids(**kinds) -> list[Identity]:
    return [
        Identity(kind.replace("anon", "anonymous_id").replace("user", "user_id"), v)
        for kind, v in kinds.items()
    ]


def P(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def test_anonymous_browsing_then_sign_up_is_one_profile():
    g = graph()
    browse = g.resolve([Identity("anonymous_id", "a1")], event_key="e1")
    signup = g.resolve([Identity("anonymous_id", "a1"), Identity("user_id", "u1")], event_key="e2")
    later = g.resolve([Identity("user_id", "u1")], event_key="e3")
    assert browse == signup == later == P(1)
    assert g.merges == [] and g.dropped == []


def test_one_person_on_two_devices_is_merged_when_both_log_in():
    g = graph()
    laptop = g.resolve([Identity("anonymous_id", "laptop")], event_key="e1")
    phone = g.resolve([Identity("anonymous_id", "phone")], event_key="e2")
    assert laptop != phone
    g.resolve([Identity("anonymous_id", "phone"), Identity("user_id", "u1")], event_key="e3")
    merged = g.resolve(
        [Identity("anonymous_id", "laptop"), Identity("user_id", "u1")], event_key="e4"
    )

    assert merged == phone
    assert g.live(laptop) == phone
    assert [(m.survivor, m.merged) for m in g.merges] == [(phone, laptop)]
    assert g.merges[0].identities == (Identity("anonymous_id", "laptop"),)


def test_shared_family_computer_keeps_two_people_apart():
    g = graph()
    mum = g.resolve([Identity("anonymous_id", "pc"), Identity("user_id", "mum")], event_key="e1")
    son = g.resolve([Identity("anonymous_id", "pc"), Identity("user_id", "son")], event_key="e2")

    assert mum != son
    assert g.owner[Identity("anonymous_id", "pc")] == mum
    assert g.merges == []
    assert [(d.identity, d.profile) for d in g.dropped] == [(Identity("anonymous_id", "pc"), son)]
    assert g.dropped[0].reason == "one profile would hold 2 user_id values; the limit is 1"


def test_two_profiles_with_different_user_ids_are_never_merged_by_email():
    g = graph()
    a = g.resolve([Identity("user_id", "u1"), Identity("email", "x@example.com")], event_key="e1")
    b = g.resolve([Identity("user_id", "u2")], event_key="e2")
    third = g.resolve(
        [Identity("user_id", "u2"), Identity("email", "x@example.com")], event_key="e3"
    )
    assert third == b and a != b
    assert g.owner[Identity("email", "x@example.com")] == a
    assert len(g.dropped) == 1


def test_alias_joins_the_anonymous_history():
    g = graph()
    anon = g.resolve([Identity("anonymous_id", "a9")], event_key="e1")
    event = {"type": "alias", "user_id": "u9", "previous_id": "a9", "anonymous_id": ""}
    aliased = g.resolve(identities_of(event), event_key="e2")
    assert aliased == anon
    assert g.owner[Identity("user_id", "u9")] == anon


def test_limit_on_anonymous_ids_drops_the_sixth():
    g = graph()
    first = g.resolve([Identity("user_id", "u"), Identity("anonymous_id", "a0")], event_key="e0")
    for n in range(1, 6):
        assert (
            g.resolve(
                [Identity("user_id", "u"), Identity("anonymous_id", f"a{n}")], event_key=f"e{n}"
            )
            == first
        )
    held = {i.value for i in g.held[first] if i.kind == "anonymous_id"}
    assert held == {"a0", "a1", "a2", "a3", "a4"}
    assert [d.identity.value for d in g.dropped] == ["a5"]
    assert "6 anonymous_id values; the limit is 5" in g.dropped[0].reason
    assert g.dropped[0].profile == first


def test_merging_that_would_break_a_limit_does_not_happen():
    rules = Rules(limits={"user_id": 1, "email": 1})
    g = graph(rules)
    one = g.resolve(
        [Identity("anonymous_id", "a"), Identity("email", "one@example.com")], event_key="e1"
    )
    two = g.resolve(
        [Identity("anonymous_id", "b"), Identity("email", "two@example.com")], event_key="e2"
    )
    # Both anonymous ids in one event would merge two profiles with two emails: no.
    joined = g.resolve(
        [Identity("anonymous_id", "a"), Identity("anonymous_id", "b")], event_key="e3"
    )
    assert one != two and joined in (one, two)
    assert g.merges == []


def test_priority_decides_the_survivor_and_chains_follow():
    g = graph()
    p1 = g.resolve([Identity("anonymous_id", "a1")], event_key="e1")
    p2 = g.resolve([Identity("email", "e@example.com")], event_key="e2")
    p3 = g.resolve([Identity("user_id", "u")], event_key="e3")
    g.resolve([Identity("anonymous_id", "a1"), Identity("email", "e@example.com")], event_key="e4")
    final = g.resolve(
        [Identity("email", "e@example.com"), Identity("user_id", "u")], event_key="e5"
    )
    assert final == p3
    assert g.live(p1) == g.live(p2) == p3


def test_an_event_without_identifiers_has_no_profile():
    g = graph()
    assert g.resolve([], event_key="e1") is None


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"user_id": "u1", "anonymous_id": "a1"}, {("user_id", "u1"), ("anonymous_id", "a1")}),
        ({"user_id": "null", "anonymous_id": "undefined"}, set()),
        (
            {"user_id": "0", "traits": {"email": " Ann@Example.COM "}},
            {("email", "ann@example.com")},
        ),
        ({"anonymous_id": "a", "traits": {"email": "test@example.com"}}, {("anonymous_id", "a")}),
        ({"anonymous_id": "a", "traits": {"email": "not an email"}}, {("anonymous_id", "a")}),
        (
            {"anonymous_id": "a", "traits": {"phone": "+44 20 7946 0958"}},
            {("anonymous_id", "a"), ("phone", "+442079460958")},
        ),
        ({"anonymous_id": "a", "traits": {"phone": "12"}}, {("anonymous_id", "a")}),
        (
            {"anonymous_id": "a", "context": {"traits": {"email": "c@example.org"}}},
            {("anonymous_id", "a"), ("email", "c@example.org")},
        ),
        (
            {
                "anonymous_id": "a",
                "context": {
                    "externalIds": [
                        {"id": "L-77", "type": "loyalty_card"},
                        {"id": "x", "type": "other"},
                    ]
                },
            },
            {("anonymous_id", "a"), ("loyalty_card", "L-77")},
        ),
        (
            {"user_id": "u", "traits": {"loyalty_card": 1234}},
            {("user_id", "u"), ("loyalty_card", "1234")},
        ),
    ],
)
def test_identities_of_events(event, expected):
    found = identities_of(event, external_kinds=["loyalty_card"])
    assert {(i.kind, i.value) for i in found} == expected


def test_phone_with_a_default_region():
    found = identities_of(
        {"anonymous_id": "a", "traits": {"phone": "020 7946 0958"}}, default_region="GB"
    )
    assert Identity("phone", "+442079460958") in found


def test_a_profile_over_a_limit_still_takes_its_own_events():
    # A person merged two user ids by hand: the profile holds two, over the limit of one.
    profile = uuid.UUID(int=99)
    g = Graph(
        rules=Rules(),
        owner={Identity("user_id", "a"): profile, Identity("user_id", "b"): profile},
        held={profile: {Identity("user_id", "a"), Identity("user_id", "b")}},
    )
    assert g.resolve([Identity("user_id", "b")], event_key="e1") == profile
    assert g.dropped == []
    # ...but it does not grow further: the new user id is dropped, the event still joins.
    assert (
        g.resolve([Identity("user_id", "b"), Identity("user_id", "c")], event_key="e2") == profile
    )
    assert Identity("user_id", "c") not in g.held[profile]
    assert [d.identity for d in g.dropped] == [Identity("user_id", "c")]
