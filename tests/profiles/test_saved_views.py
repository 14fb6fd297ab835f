"""Saved views of the lists: the services' validation, who sees which view, and the
API at /api/v1/saved-views."""

import pytest

from rapport.core.errors import InvalidInputError
from rapport.profiles import selectors, services
from rapport.profiles.models import SavedView
from rapport.tenancy.models import User
from rapport.tenancy.permissions import Role
from rapport.tenancy.services import Actor, member_add

pytestmark = pytest.mark.django_db


def _person(tenant, email: str, role=Role.MARKETER) -> User:
    membership, _ = member_add(
        workspace=tenant.workspace, email=email, role=role, password=None, actor=Actor.system()
    )
    return membership.user


@pytest.fixture
def two_people(tenant):
    return _person(tenant, "ann@example.com"), _person(tenant, "bo@example.com")


def test_a_private_view_is_its_owners_alone(tenant, two_people):
    ann, bo = two_people
    view = services.saved_view_create(
        workspace=tenant.workspace,
        actor=Actor.for_user(ann),
        list_name="customers",
        name="Mine",
        columns=["email", "trait:plan"],
        sort="-clv",
        filters={"churn": "high", "trait": ["plan:pro"]},
    )
    assert view in selectors.saved_view_list(workspace=tenant.workspace, user=ann)
    assert view not in selectors.saved_view_list(workspace=tenant.workspace, user=bo)
    assert view not in selectors.saved_view_list(workspace=tenant.workspace, user=None)
    with pytest.raises(Exception) as found:
        selectors.saved_view_get(workspace=tenant.workspace, user=bo, view_id=view.pk)
    assert getattr(found.value, "status", None) == 404
    services.saved_view_update(view=view, actor=Actor.for_user(ann), shared=True)
    assert view in selectors.saved_view_list(workspace=tenant.workspace, user=bo)


def test_names_are_unique_among_the_views_a_person_sees(tenant, two_people):
    ann, bo = two_people
    make = services.saved_view_create
    make(workspace=tenant.workspace, actor=Actor.for_user(ann), list_name="customers", name="A")
    # Another person's private view of the same name is no clash.
    make(workspace=tenant.workspace, actor=Actor.for_user(bo), list_name="customers", name="A")
    with pytest.raises(InvalidInputError) as clash:
        make(workspace=tenant.workspace, actor=Actor.for_user(ann), list_name="customers", name="a")
    assert clash.value.field == "name"


def test_the_default_view_follows_the_person(tenant, two_people):
    ann, bo = two_people
    view = services.saved_view_create(
        workspace=tenant.workspace,
        actor=Actor.for_user(ann),
        list_name="customers",
        name="Shared",
        shared=True,
    )
    services.saved_view_default_set(
        workspace=tenant.workspace, user=bo, list_name="customers", view=view
    )
    assert selectors.saved_view_default(workspace=tenant.workspace, user=bo, list_name="customers")
    assert not selectors.saved_view_default(
        workspace=tenant.workspace, user=ann, list_name="customers"
    )
    # Made private again, it no longer opens another person's list.
    services.saved_view_update(view=view, actor=Actor.for_user(ann), shared=False)
    assert not selectors.saved_view_default(
        workspace=tenant.workspace, user=bo, list_name="customers"
    )


def test_the_api_creates_reads_changes_and_deletes_a_shared_view(tenant):
    api = tenant.api()
    created = api.post(
        "/api/v1/saved-views",
        {
            "list": "customers",
            "name": "At risk",
            "shared": True,
            "columns": ["email", "churn", "trait:plan"],
            "sort": "-churn",
            "filters": {"churn": "high", "trait": ["plan:pro"]},
        },
    )
    assert created.status_code == 201, created.content
    view = created.json()
    assert view["columns"] == ["email", "churn", "trait:plan"] and view["shared"]
    url = f"/api/v1/saved-views/{view['id']}"
    assert api.get(url).json()["name"] == "At risk"
    changed = api.request("PATCH", url, {"name": "At risk (pro)", "sort": "trait:plan"})
    assert changed.json()["sort"] == "trait:plan"
    names = [v["name"] for v in api.get("/api/v1/saved-views?list=customers").json()]
    assert "At risk (pro)" in names
    assert api.request("DELETE", url).status_code == 204
    assert api.get(url).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"columns": ["password_hash"]}, "columns"),
        ({"sort": "traits__name"}, "sort"),
        ({"sort": "email"}, "sort"),
        ({"filters": {"raw_sql": "1=1"}}, "filters"),
        ({"filters": {"trait": ["plan"]}}, "filters.trait"),
        ({"filters": {"churn": ["high", "low"]}}, "filters.churn"),
        ({"list": "deals"}, "list"),
        ({"shared": False}, "shared"),
        ({"name": "   "}, "name"),
        ({"columns": [f"trait:t{n}" for n in range(20)]}, "columns"),
    ],
)
def test_bad_views_are_422_naming_the_field(tenant, body, field):
    before = SavedView.objects.count()
    response = tenant.api().post(
        "/api/v1/saved-views", {"list": "customers", "name": "X", "shared": True, **body}
    )
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert field in error["message"] or any(field in str(d) for d in error["details"])
    assert SavedView.objects.count() == before


def test_another_persons_private_view_is_not_found_through_the_api(tenant, two_people):
    ann, _ = two_people
    private = services.saved_view_create(
        workspace=tenant.workspace, actor=Actor.for_user(ann), list_name="customers", name="P"
    )
    api = tenant.api()
    url = f"/api/v1/saved-views/{private.pk}"
    assert api.get(url).status_code == 404
    assert api.request("PATCH", url, {"name": "Mine now"}).status_code == 404
    assert api.request("DELETE", url).status_code == 404
    private.refresh_from_db()
    assert private.name == "P"


def test_a_role_without_views_share_cannot_share(tenant):
    response = tenant.api(Role.AGENT).post(
        "/api/v1/saved-views", {"list": "customers", "name": "X", "shared": True}
    )
    assert response.status_code == 403
