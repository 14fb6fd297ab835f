"""The UI's pages with a signed-in person: what they show, and bad input, which gets a
clear 4xx page naming the field and changes nothing."""

import uuid

import pytest
from django.test import Client

from rapport.identity.models import ProfileMerge
from rapport.profiles.models import Profile
from rapport.tenancy.models import Source
from rapport.tenancy.permissions import Role
from tests.web.clients import signed_in


@pytest.fixture
def ada(tenant):
    tenant.send(
        {
            "type": "identify",
            "userId": "ada-1",
            "traits": {"name": "<b>Ada</b>", "email": "ada@example.com"},
            "messageId": "p-ada-1",
        }
    )
    return Profile.objects.get(workspace=tenant.workspace, identifiers__value="ada-1")


def test_the_list_finds_by_identifier_and_by_name(tenant, ada):
    client = signed_in(tenant)
    for q in ("ADA@example.com", "ada-1", "<b>a"):
        html = client.get("/customers/", {"q": q}).content.decode()
        assert f"/customers/{ada.pk}/" in html, q
    html = client.get("/customers/", {"q": "nobody@example.com"}).content.decode()
    assert f"/customers/{ada.pk}/" not in html


def test_pages_are_keyset_pages_without_gaps(tenant, ada, settings):
    import rapport.web.customers as customers

    client = signed_in(tenant)
    every = set(
        Profile.objects.filter(workspace=tenant.workspace, merged_into__isnull=True).values_list(
            "pk", flat=True
        )
    )
    Profile.objects.filter(pk=ada.pk).update(last_seen_at=None)  # never seen: listed last
    seen, cursor, original = [], None, customers.PAGE_SIZE
    customers.PAGE_SIZE = 1
    try:
        for _ in range(len(every) + 1):
            response = client.get("/customers/", {"cursor": cursor} if cursor else {})
            seen += [row["id"] for row in response.context["rows"]]
            cursor = response.context["next_cursor"]
            if cursor is None:
                break
    finally:
        customers.PAGE_SIZE = original
    assert len(seen) == len(set(seen)) and set(seen) == every
    assert seen[-1] == ada.pk


def test_user_supplied_text_is_escaped(tenant, ada):
    html = signed_in(tenant).get(f"/customers/{ada.pk}/").content.decode()
    assert "<b>Ada</b>" not in html and "&lt;b&gt;Ada&lt;/b&gt;" in html


def test_nested_traits_read_as_fields_not_json(tenant, ada):
    tenant.send(
        {
            "type": "identify",
            "userId": "ada-1",
            "traits": {"address": {"city": "Brighton", "lines": ["1 <Pier>"]}, "vip": True},
            "messageId": "p-ada-2",
        }
    )
    html = signed_in(tenant).get(f"/customers/{ada.pk}/").content.decode()
    html = html[html.index('id="h-traits"') : html.index('id="h-timeline"')]
    # `address` is a heading row, its fields indented rows under it.
    assert '<tr class="depth-0 group"' in html
    assert (
        '<th scope="row" translate="no">city</th>\n      <td translate="no">Brighton</td>' in html
    )
    assert '<td translate="no">1 &lt;Pier&gt;</td>' in html
    assert "&quot;city&quot;" not in html and "'city'" not in html
    assert '<th scope="row" translate="no">vip</th>\n      <td translate="no">Yes</td>' in html


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"sort": "name; DROP TABLE profiles_profile"}, "sort"),
        ({"q": "x" * 300}, "q"),
        ({"account": "42"}, "account"),
        ({"consent": "carrier-pigeon"}, "consent"),
    ],
)
def test_bad_list_input_is_a_422_naming_the_field(tenant, query, field):
    response = signed_in(tenant).get("/customers/", query)
    assert response.status_code == 422
    assert f"{field}:" in response.content.decode()


def test_another_workspaces_ids_are_not_found(tenant, other_tenant):
    client = signed_in(tenant)
    theirs = Profile.objects.filter(workspace=other_tenant.workspace).first()
    merge = ProfileMerge.objects.filter(workspace=other_tenant.workspace).first()
    source = Source.objects.filter(workspace=other_tenant.workspace).first()
    for path in (
        f"/customers/{theirs.pk}/",
        f"/customers/{theirs.pk}/timeline/",
        f"/customers/{theirs.pk}/merge/",
        f"/customers/{theirs.pk}/export/",
        f"/customers/{theirs.pk}/erase/",
        f"/merges/{merge.pk}/unmerge/",
        f"/data/sources/{source.pk}/",
        f"/data/debugger/?source={source.pk}",
        f"/customers/?account={uuid.uuid4()}",
    ):
        assert client.get(path).status_code == 404, path
    assert client.post(f"/customers/{theirs.pk}/erase/", {"confirm_id": "x"}).status_code == 404
    assert Profile.objects.filter(pk=theirs.pk).exists()
    assert client.post(f"/merges/{merge.pk}/unmerge/").status_code == 404
    merge.refresh_from_db()
    assert merge.unmerged_at is None


def test_merging_with_another_workspaces_profile_changes_nothing(tenant, other_tenant, ada):
    client = signed_in(tenant)
    theirs = Profile.objects.filter(workspace=other_tenant.workspace).first()
    before = ProfileMerge.objects.count()
    response = client.post(
        f"/customers/{ada.pk}/merge/", {"other": str(theirs.pk), "reason": "x", "confirm": "yes"}
    )
    assert response.status_code == 404
    response = client.post(
        f"/customers/{ada.pk}/merge/", {"other": "nobody@example.com", "confirm": "yes"}
    )
    assert response.status_code == 422
    assert ProfileMerge.objects.count() == before


def test_erase_needs_the_id_typed_in(tenant, ada):
    client = signed_in(tenant)
    response = client.post(f"/customers/{ada.pk}/erase/", {"confirm_id": "wrong"})
    assert response.status_code == 422
    assert Profile.objects.filter(pk=ada.pk).exists()
    response = client.post(f"/customers/{ada.pk}/erase/", {"confirm_id": str(ada.pk)[:8]})
    assert response.status_code == 302
    assert not Profile.objects.filter(pk=ada.pk).exists()


def test_bad_source_input(tenant):
    client = signed_in(tenant)
    before = Source.objects.count()
    response = client.post("/data/sources/new/", {"name": "  ", "kind": "http"})
    assert response.status_code == 422 and "name:" in response.content.decode()
    response = client.post("/data/sources/new/", {"name": "Site", "kind": "fax"})
    assert response.status_code == 422 and "kind:" in response.content.decode()
    response = client.post("/data/sources/new/", {"name": "Default", "kind": "http"})
    assert response.status_code == 409
    assert Source.objects.count() == before
    response = client.get("/data/debugger/", {"source": "1 OR 1=1"})
    assert response.status_code == 422 and "source:" in response.content.decode()


def test_forms_need_the_csrf_token(tenant, ada):
    client = Client(enforce_csrf_checks=True)
    client.force_login(tenant.extra_member.user)
    response = client.post(f"/customers/{ada.pk}/erase/", {"confirm_id": str(ada.pk)[:8]})
    assert response.status_code == 403
    assert Profile.objects.filter(pk=ada.pk).exists()


def test_roles_without_the_permission_get_403(tenant, ada):
    agent = signed_in(tenant, Role.AGENT)
    for path in (f"/customers/{ada.pk}/erase/", f"/customers/{ada.pk}/export/", "/data/sources/"):
        assert agent.get(path).status_code == 403, path
    response = agent.post(f"/customers/{ada.pk}/erase/", {"confirm_id": str(ada.pk)[:8]})
    assert response.status_code == 403
    assert Profile.objects.filter(pk=ada.pk).exists()
    # Analysts read; they do not merge.
    analyst = signed_in(tenant, Role.ANALYST)
    assert analyst.get(f"/customers/{ada.pk}/merge/").status_code == 403
