"""The customer list as a person arranges it: chosen columns, sorting, the count,
filters in the address, saved views, and bulk actions on a selection."""

import uuid

import pytest

from rapport.profiles import lists
from rapport.profiles.models import Profile, SavedView
from rapport.segments.models import Segment, SegmentMembership
from rapport.segments.services import segment_create
from rapport.tenancy.models import AuditLogEntry
from rapport.tenancy.permissions import Role
from rapport.tenancy.services import Actor
from tests.web.clients import signed_in


@pytest.fixture
def people(tenant):
    tenant.send(
        *(
            {
                "type": "identify",
                "userId": f"list-{n}",
                "traits": {"name": f"Person {n}", "visits": visits, "plan": plan},
                "messageId": f"list-{n}",
            }
            for n, (visits, plan) in enumerate([(2, "pro"), (10, "pro"), (1, "free")])
        )
    )
    return {
        n: Profile.objects.get(workspace=tenant.workspace, identifiers__value=f"list-{n}")
        for n in range(3)
    }


def _ids(response) -> list:
    return [row["id"] for row in response.context["rows"]]


def test_chosen_columns_show_as_headers_and_values(tenant, people):
    client = signed_in(tenant)
    response = client.get(
        "/customers/", {"col": ["trait:visits", "stage", "churn"], "trait": "plan:pro"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert [h["key"] for h in response.context["headers"]] == ["trait:visits", "stage", "churn"]
    assert set(_ids(response)) == {people[0].pk, people[1].pk}
    assert ">10<" in html and 'data-label="visits"' in html
    # The links that sort keep the columns and the filter.
    assert "trait=plan%3Apro" in response.context["headers"][0]["link"]
    assert "col=trait%3Avisits" in response.context["headers"][0]["link"]


def test_a_trait_sorts_as_its_json_value_both_ways(tenant, people):
    client = signed_in(tenant)
    query = {"col": "trait:visits", "q": "", "trait": []}
    ascending = _ids(client.get("/customers/", {**query, "sort": "trait:visits"}))
    mine = [p.pk for p in (people[2], people[0], people[1])]
    assert [pk for pk in ascending if pk in mine] == mine
    descending = _ids(client.get("/customers/", {**query, "sort": "-trait:visits"}))
    assert [pk for pk in descending if pk in mine][:3] == mine[::-1]


def test_the_count_is_exact_when_cheap_and_capped_beyond(tenant, people, monkeypatch):
    client = signed_in(tenant)
    response = client.get("/customers/", {"trait": "plan:pro"})
    assert response.context["table"].count == 2
    assert response.context["table"].count_kind == "exact"
    assert "2 customers" in response.content.decode()
    monkeypatch.setitem(lists.COUNT_CAP, "customers", 1)
    response = client.get("/customers/", {"trait": "plan:pro", "sort": "trait:visits"})
    table = response.context["table"]
    assert table.count_kind in ("more", "estimate") and table.sort_refused
    assert "More than 1 customers" in response.content.decode() or "About" in (
        response.content.decode()
    )


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"col": "password"}, "col"),
        ({"col": "trait:a'); drop table x;--"}, "col"),
        ({"sort": "traits__name"}, "sort"),
        ({"sort": "-email"}, "sort"),
        ({"sort": "id; drop"}, "sort"),
        ({"trait": "no-colon"}, "trait"),
        ({"churn": "extreme"}, "churn"),
        ({"page": "x"}, "page"),
        ({"col": [f"trait:t{n}" for n in range(lists.MAX_COLUMNS + 1)]}, "col"),
    ],
)
def test_bad_arrangements_are_4xx_naming_the_parameter(tenant, query, field):
    response = signed_in(tenant).get("/customers/", query)
    assert response.status_code == 422
    assert f"{field}:" in response.content.decode()


def test_a_saved_view_is_private_unless_shared(tenant, people):
    mine, other = signed_in(tenant), signed_in(tenant, Role.MARKETER)
    state = "col=email&col=trait%3Avisits&sort=-trait%3Avisits&trait=plan%3Apro"
    response = mine.post("/customers/views/", {"name": "Pro users", "state": state})
    assert response.status_code == 302
    view = SavedView.objects.get(workspace=tenant.workspace, name="Pro users")
    assert (view.columns, view.sort, view.filters, view.shared) == (
        ["email", "trait:visits"],
        "-trait:visits",
        {"trait": ["plan:pro"]},
        False,
    )
    # Opening it gives its own address, so that the link reproduces it.
    opened = mine.get("/customers/", {"view": str(view.pk)})
    assert opened.status_code == 302 and "trait=plan%3Apro" in opened.url
    assert "Pro users" in mine.get(opened.url).content.decode()
    assert other.get("/customers/", {"view": str(view.pk)}).status_code == 404
    assert "Pro users" not in other.get("/customers/?view=none").content.decode()
    assert other.post(f"/customers/views/{view.pk}/", {"action": "delete"}).status_code == 404

    mine.post(f"/customers/views/{view.pk}/", {"action": "share"})
    assert "Pro users" in other.get("/customers/?view=none").content.decode()
    mine.post(f"/customers/views/{view.pk}/", {"action": "rename", "name": "Pro"})
    view.refresh_from_db()
    assert view.name == "Pro" and view.shared


def test_a_default_view_opens_the_bare_list_and_can_be_left(tenant, people):
    client = signed_in(tenant)
    client.post("/customers/views/", {"name": "Free", "state": "trait=plan%3Afree"})
    view = SavedView.objects.get(workspace=tenant.workspace, name="Free")
    client.post(f"/customers/views/{view.pk}/", {"action": "default"})
    bare = client.get("/customers/")
    assert bare.status_code == 302 and f"view={view.pk}" in bare.url
    assert client.get("/customers/?view=none").status_code == 200
    client.post(f"/customers/views/{view.pk}/", {"action": "update", "state": "col=email"})
    view.refresh_from_db()
    assert view.columns == ["email"] and view.filters == {}
    client.post(f"/customers/views/{view.pk}/", {"action": "delete"})
    assert not SavedView.objects.filter(pk=view.pk).exists()
    assert client.get("/customers/").status_code == 200


def test_views_of_another_workspace_are_not_found(tenant, other_tenant):
    theirs = SavedView.objects.get(workspace=other_tenant.workspace, shared=True)
    client = signed_in(tenant)
    assert client.get("/customers/", {"view": str(theirs.pk)}).status_code == 404
    response = client.post(f"/customers/views/{theirs.pk}/", {"action": "delete"})
    assert response.status_code == 404
    assert SavedView.objects.filter(pk=theirs.pk).exists()


@pytest.fixture
def static_segment(tenant):
    return segment_create(
        workspace=tenant.workspace, name="Hand-picked", kind="static", actor=Actor.system()
    )


def test_bulk_add_to_a_static_segment_asks_then_adds(tenant, people, static_segment):
    client = signed_in(tenant)
    ids = [str(people[0].pk), str(people[2].pk)]
    asked = client.post("/customers/bulk/", {"action": "segment_add", "ids": ids, "state": ""})
    assert asked.status_code == 200 and "2 customers" in asked.content.decode()
    current = SegmentMembership.objects.filter(segment=static_segment, left_at__isnull=True)
    assert not current.exists()
    done = client.post(
        "/customers/bulk/",
        {
            "action": "segment_add",
            "ids": ids,
            "state": "",
            "segment": str(static_segment.pk),
            "confirm": "yes",
        },
    )
    assert done.status_code == 200
    assert set(current.values_list("profile_id", flat=True)) == {people[0].pk, people[2].pk}


def test_bulk_select_all_matching_takes_the_filters(tenant, people, static_segment):
    client = signed_in(tenant)
    client.post(
        "/customers/bulk/",
        {
            "action": "segment_add",
            "all": "1",
            "state": "trait=plan%3Apro",
            "segment": str(static_segment.pk),
            "confirm": "yes",
        },
    )
    members = SegmentMembership.objects.filter(segment=static_segment)
    assert set(members.values_list("profile_id", flat=True)) == {people[0].pk, people[1].pk}


def test_bulk_export_is_a_confirmed_post_recorded_in_the_audit_log(tenant, people):
    client = signed_in(tenant)
    assert client.get("/customers/bulk/", {"action": "export"}).status_code == 405
    before = AuditLogEntry.objects.filter(action="customers.export").count()
    state = "col=trait%3Avisits&trait=plan%3Apro"
    asked = client.post("/customers/bulk/", {"action": "export", "all": "1", "state": state})
    assert asked.status_code == 200 and asked["Content-Type"].startswith("text/html")
    assert AuditLogEntry.objects.filter(action="customers.export").count() == before
    response = client.post(
        "/customers/bulk/", {"action": "export", "all": "1", "state": state, "confirm": "yes"}
    )
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    lines = text.strip().splitlines()
    assert lines[0] == "id,Name,visits" and len(lines) == 3
    assert f"{people[1].pk},Person 1,10" in lines
    entry = AuditLogEntry.objects.filter(action="customers.export").latest("created_at")
    assert entry.details["customers"] == 2


def test_bulk_export_needs_pii_export(tenant, people):
    response = signed_in(tenant, Role.ANALYST).post(
        "/customers/bulk/",
        {"action": "export", "ids": [str(people[0].pk)], "state": "", "confirm": "yes"},
    )
    assert response.status_code == 403


def test_the_cells_an_export_writes_are_masked_without_pii_read(tenant):
    tenant.send(
        {
            "type": "identify",
            "userId": "masked-1",
            "traits": {"email": "secret.person@example.com"},
            "messageId": "masked-1",
        }
    )
    masked = Profile.objects.get(workspace=tenant.workspace, identifiers__value="masked-1")
    # Rendered for an agent (no pii.read), the cells the export would write are masked.
    from rapport.tenancy.auth import Principal
    from rapport.web.lists import customer_cells

    agent = Principal(workspace=tenant.workspace, role=Role.AGENT)
    rows = customer_cells(agent, [masked], ["email", "trait:email"])
    assert "secret.person@example.com" not in str(rows)


@pytest.mark.parametrize(
    ("form", "status", "field"),
    [
        ({"ids": ["not-an-id"]}, 422, "ids"),
        ({"ids": [str(uuid.uuid4()) for _ in range(501)]}, 422, "ids"),
        ({"ids": [str(uuid.uuid4()) for _ in range(1001)]}, 422, "ids"),
        ({}, 422, "ids"),
        ({"ids": [], "action": "launch_rockets"}, 422, "action"),
        ({"all": "1", "state": "sort=evil"}, 422, "sort"),
    ],
)
def test_bad_selections_are_4xx_naming_the_field(tenant, form, status, field):
    data = {"action": "segment_add", "state": "", **form}
    response = signed_in(tenant).post("/customers/bulk/", data)
    assert response.status_code == status
    assert f"{field}:" in response.content.decode()


def test_a_huge_select_all_is_refused_naming_the_field(tenant, people, monkeypatch):
    from rapport.web import bulk

    monkeypatch.setattr(bulk, "MAX_SELECTION", 1)
    response = signed_in(tenant).post(
        "/customers/bulk/", {"action": "export", "all": "1", "state": ""}
    )
    assert response.status_code == 422 and "all:" in response.content.decode()


def test_another_workspaces_customers_cannot_be_selected(tenant, other_tenant, static_segment):
    theirs = Profile.objects.filter(workspace=other_tenant.workspace).first()
    response = signed_in(tenant).post(
        "/customers/bulk/",
        {
            "action": "segment_add",
            "ids": [str(theirs.pk)],
            "state": "",
            "segment": str(static_segment.pk),
            "confirm": "yes",
        },
    )
    assert response.status_code == 404
    assert not SegmentMembership.objects.filter(segment=static_segment).exists()
    other_segment = Segment.objects.filter(workspace=other_tenant.workspace).first()
    mine = Profile.objects.filter(workspace=tenant.workspace, merged_into__isnull=True).first()
    response = signed_in(tenant).post(
        "/customers/bulk/",
        {
            "action": "segment_add",
            "ids": [str(mine.pk)],
            "state": "",
            "segment": str(other_segment.pk),
            "confirm": "yes",
        },
    )
    assert response.status_code == 404


def test_the_account_list_takes_columns_sorts_and_views(tenant):
    from rapport.profiles.models import Account

    Account.objects.filter(workspace=tenant.workspace).update(traits={"domain": "acme.test"})
    client = signed_in(tenant)
    response = client.get("/accounts/", {"col": ["domain", "members"], "sort": "-last_seen"})
    assert response.status_code == 200
    assert [h["key"] for h in response.context["headers"]] == ["domain", "members"]
    assert "acme.test" in response.content.decode()
    assert client.get("/accounts/", {"col": "email"}).status_code == 422
    client.post("/accounts/views/", {"name": "Quiet", "state": "col=domain&sort=last_seen"})
    view = SavedView.objects.get(workspace=tenant.workspace, list="accounts")
    assert view.sort == "last_seen"
    assert client.get("/accounts/", {"view": str(view.pk)}).status_code == 302


def test_a_segments_members_show_the_chosen_columns(tenant, people, static_segment):
    from rapport.segments.services import segment_members_add

    segment_members_add(segment=static_segment, values=["list-1"], actor=Actor.system())
    client = signed_in(tenant)
    response = client.get(f"/segments/{static_segment.pk}/", {"col": ["trait:visits", "stage"]})
    html = response.content.decode()
    assert response.status_code == 200 and ">10<" in html
    assert f"segment={static_segment.pk}" in response.context["members_list_query"]
    assert client.get(f"/segments/{static_segment.pk}/", {"col": "nope"}).status_code == 422


def test_a_filter_changed_in_place_keeps_the_save_form_in_step(tenant, people):
    """htmx swaps the results; the saved-view form and the column picker come along,
    so that saving keeps the filters now shown."""
    html = (
        signed_in(tenant)
        .get("/customers/", {"trait": "plan:pro"}, HTTP_HX_REQUEST="true")
        .content.decode()
    )
    assert 'id="list-views" hx-swap-oob="true"' in html
    assert 'name="state" value="col=email&amp;col=stage' in html
    assert "trait=plan%3Apro" in html.split('id="list-views"')[1].split("</form>")[0]


def test_postgresql_estimates_a_count_it_expects_to_be_large(tenant, people, monkeypatch):
    from django.db import connection

    from rapport.profiles import selectors

    live = Profile.objects.filter(workspace=tenant.workspace, merged_into__isnull=True)
    if connection.vendor != "postgresql":
        assert selectors.capped_count(live, 1) == (1, "more")
        return
    monkeypatch.setattr(selectors, "ESTIMATE_BEYOND", 0)
    count, kind = selectors.capped_count(live, 1)
    assert kind == "estimate" and count >= 1
