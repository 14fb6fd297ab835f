"""Accounts from group calls: traits, parent company, members, and memberships that
follow merges and unmerges."""

import pytest

from rapport.profiles.models import Account, AccountMember, Profile
from tests.conftest import tenant_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def b2b():
    tenant = tenant_create("B2B", sample_data=False)
    return tenant


def test_group_call_creates_the_account_with_its_member(b2b):
    b2b.send(
        {
            "type": "group",
            "userId": "ann",
            "groupId": "acme-uk",
            "traits": {"name": "Acme UK Ltd", "employees": 40},
        },
        {"type": "track", "userId": "ann", "event": "Seat Added"},
    )
    account = Account.objects.get(group_id="acme-uk")
    assert account.name == "Acme UK Ltd" and account.traits["employees"] == 40
    assert list(account.members.values_list("profile__identifiers__value", flat=True)) == ["ann"]

    body = b2b.api("sales").get(f"/api/v1/accounts/{account.pk}").json()
    assert body["members"] == 1 and body["name"] == "Acme UK Ltd"
    timeline = b2b.api("sales").get(f"/api/v1/accounts/{account.pk}/timeline").json()
    assert [e["type"] for e in timeline["items"]] == ["track", "group"]


def test_parent_company_and_hierarchy_without_cycles(b2b):
    b2b.send(
        {
            "type": "group",
            "userId": "ann",
            "groupId": "acme-uk",
            "traits": {"name": "Acme UK", "parent_group_id": "acme-group"},
        },
        {
            "type": "group",
            "userId": "bob",
            "groupId": "acme-de",
            "traits": {"name": "Acme DE", "parent_group_id": "acme-group"},
        },
        {
            "type": "group",
            "userId": "cat",
            "groupId": "acme-group",
            "traits": {"name": "Acme Holdings", "parent_group_id": "acme-uk"},
        },
    )
    holding = Account.objects.get(group_id="acme-group")
    assert holding.parent_id is None  # acme-uk's parent is acme-group: no cycle allowed
    body = b2b.api("admin").get(f"/api/v1/accounts/{holding.pk}").json()
    assert sorted(child["name"] for child in body["children"]) == ["Acme DE", "Acme UK"]
    uk = b2b.api("admin").get("/api/v1/accounts?q=acme-uk").json()["items"][0]
    assert uk["parent_id"] == str(holding.pk)
    assert b2b.api("admin").get("/api/v1/accounts?q=acme").json()["count"] == 3


def test_memberships_follow_a_merge_and_come_back_on_unmerge(b2b):
    b2b.send(
        {"type": "group", "userId": "ann-work", "groupId": "acme"},
        {"type": "identify", "userId": "ann"},
    )
    ann = Profile.objects.get(identifiers__value="ann")
    work = Profile.objects.get(identifiers__value="ann-work")
    merge = (
        b2b.api("admin")
        .post(f"/api/v1/profiles/{ann.pk}/merge", {"other": str(work.pk), "reason": "same"})
        .json()
    )
    assert list(AccountMember.objects.values_list("profile_id", flat=True)) == [ann.pk]

    b2b.api("admin").post(f"/api/v1/profiles/merges/{merge['id']}/unmerge")
    assert list(AccountMember.objects.values_list("profile_id", flat=True)) == [work.pk]


def test_members_are_masked_for_roles_without_pii_read(b2b):
    b2b.send(
        {"type": "identify", "userId": "ann", "traits": {"email": "ann@acme.example"}},
        {"type": "group", "userId": "ann", "groupId": "acme"},
    )
    account = Account.objects.get(group_id="acme")
    agent = b2b.api("agent").get(f"/api/v1/accounts/{account.pk}/members").json()
    sales = b2b.api("sales").get(f"/api/v1/accounts/{account.pk}/members").json()
    assert "ann@acme.example" not in str(agent) and "ann@acme.example" in str(sales)
