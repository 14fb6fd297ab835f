"""The accounts pages: the list, one account's hierarchy, people and combined timeline,
and undoing an account merge."""

import uuid

import pytest

from rapport.profiles.models import Account, AccountMerge
from rapport.tenancy.permissions import Role
from tests.web.clients import signed_in


@pytest.fixture
def holding(tenant):
    """Acme under a holding company, with a subsidiary of its own."""
    name = tenant.workspace.name
    tenant.send(
        {
            "type": "group",
            "userId": f"{name}-u1",
            "groupId": "hold",
            "traits": {"name": "Hold <i>Co</i>"},
        },
        {
            "type": "group",
            "userId": f"{name}-u1",
            "groupId": f"{name}-acme",
            "traits": {"parent_group_id": "hold"},
        },
        {
            "type": "group",
            "userId": f"{name}-u3",
            "groupId": "acme-de",
            "traits": {"name": "Acme GmbH", "parent_group_id": f"{name}-acme"},
        },
        {"type": "track", "userId": f"{name}-u1", "event": "Invoice Paid", "messageId": "acct-1"},
    )
    return Account.objects.get(workspace=tenant.workspace, group_id=f"{name}-acme")


def test_the_list_finds_accounts_by_name_and_group_id(tenant, holding):
    client = signed_in(tenant, Role.SALES)
    html = client.get("/accounts/").content.decode()
    assert f"/accounts/{holding.pk}/" in html and "Hold &lt;i&gt;Co&lt;/i&gt;" in html
    assert "<i>Co</i>" not in html
    found = client.get("/accounts/", {"q": "gmbh"}).context["page"].object_list
    assert [a.group_id for a in found] == ["acme-de"]
    found = client.get("/accounts/", {"q": "hold"}).context["page"].object_list
    assert [a.group_id for a in found] == ["hold"]
    html = client.get("/accounts/", {"q": "hold"}, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in html and "Hold" in html


def test_the_account_page_shows_hierarchy_people_and_combined_timeline(tenant, holding):
    response = signed_in(tenant, Role.SALES).get(f"/accounts/{holding.pk}/")
    html = response.content.decode()
    hold = Account.objects.get(workspace=tenant.workspace, group_id="hold")
    child = Account.objects.get(workspace=tenant.workspace, group_id="acme-de")
    assert f"/accounts/{hold.pk}/" in html and f"/accounts/{child.pk}/" in html
    assert response.context["member_count"] == 2  # u1, and u3 from the merged Acme Inc.
    titles = [item["title"] for item in response.context["items"]]
    assert "Invoice Paid" in titles  # a member's event
    assert "Group" in titles  # the account's own group calls


def test_the_combined_timeline_pages_without_gaps(tenant, holding):
    import rapport.web.accounts as accounts

    client = signed_in(tenant)
    whole = client.get(f"/accounts/{holding.pk}/").context
    assert whole["more_url"] is None
    everything = [(i["at"], i["title"]) for i in whole["items"]]
    original, accounts.TIMELINE_PAGE = accounts.TIMELINE_PAGE, 2
    try:
        response = client.get(f"/accounts/{holding.pk}/")
        seen = [(i["at"], i["title"]) for i in response.context["items"]]
        url = response.context["more_url"]
        while url:
            response = client.get(url)
            seen += [(i["at"], i["title"]) for i in response.context["items"]]
            url = response.context["more_url"]
    finally:
        accounts.TIMELINE_PAGE = original
    assert len(everything) >= 4
    assert seen == everything


def test_a_merged_account_redirects_to_the_survivor(tenant):
    merge = AccountMerge.objects.get(workspace=tenant.workspace)
    response = signed_in(tenant).get(f"/accounts/{merge.merged_id}/")
    assert response.status_code == 302 and str(merge.survivor_id) in response["Location"]


def test_unmerging_an_account_is_confirmed_then_done(tenant):
    client = signed_in(tenant)
    merge = AccountMerge.objects.get(workspace=tenant.workspace)
    assert client.get(f"/account-merges/{merge.pk}/unmerge/").status_code == 200
    merge.refresh_from_db()
    assert merge.unmerged_at is None
    assert client.post(f"/account-merges/{merge.pk}/unmerge/").status_code == 302
    merge.refresh_from_db()
    assert merge.unmerged_at is not None
    assert client.post(f"/account-merges/{merge.pk}/unmerge/").status_code == 409
    analyst = signed_in(tenant, Role.ANALYST)
    assert analyst.post(f"/account-merges/{merge.pk}/unmerge/").status_code == 403


def test_bad_and_foreign_ids(tenant, other_tenant):
    client = signed_in(tenant)
    theirs = Account.objects.filter(workspace=other_tenant.workspace).first()
    their_merge = AccountMerge.objects.get(workspace=other_tenant.workspace)
    for path in (
        f"/accounts/{theirs.pk}/",
        f"/accounts/{theirs.pk}/timeline/",
        f"/accounts/{uuid.uuid4()}/",
        f"/account-merges/{their_merge.pk}/unmerge/",
    ):
        assert client.get(path).status_code == 404, path
    assert client.post(f"/account-merges/{their_merge.pk}/unmerge/").status_code == 404
    their_merge.refresh_from_db()
    assert their_merge.unmerged_at is None
    ours = Account.objects.filter(workspace=tenant.workspace).first()
    response = client.get(f"/accounts/{ours.pk}/timeline/", {"cursor": "junk"})
    assert response.status_code == 422 and "cursor:" in response.content.decode()
    response = client.get("/accounts/", {"q": "x" * 300})
    assert response.status_code == 422 and "q:" in response.content.decode()
