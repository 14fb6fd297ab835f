"""Bulk actions beyond the customer list: on the accounts list (add the selected
accounts' people to a static segment, export the accounts) and on a segment's members
(add to another static segment, export, remove from this segment when it is static).
Every action is a confirmed POST; every id is checked against the workspace (and the
segment) on the server; permissions are those of the customer list's actions."""

import pytest

from rapport.profiles.models import Account, Profile
from rapport.segments import services as segment_services
from rapport.segments.models import Segment, SegmentMembership
from rapport.tenancy.models import AuditLogEntry
from rapport.tenancy.services import Actor
from tests.web.clients import signed_in

ACTOR = Actor.system("tests")


def _account(tenant, suffix: str) -> Account:
    return Account.objects.get(
        workspace=tenant.workspace, group_id=f"{tenant.workspace.name}-{suffix}"
    )


def _person(tenant, suffix: str) -> Profile:
    return Profile.objects.get(
        workspace=tenant.workspace,
        identifiers__value=f"{tenant.workspace.name}-{suffix}",
        merged_into__isnull=True,
    )


@pytest.fixture
def target(tenant) -> Segment:
    return segment_services.segment_create(
        workspace=tenant.workspace, name="Call list", kind="static", actor=ACTOR
    )


@pytest.fixture
def listed(tenant) -> Segment:
    """The sample's static segment, with u1 and u3 in it."""
    segment = Segment.objects.get(workspace=tenant.workspace, kind="static")
    name = tenant.workspace.name
    segment_services.segment_members_add(segment=segment, values=[f"{name}-u3"], actor=ACTOR)
    return segment


def _members(segment) -> set:
    return set(
        SegmentMembership.objects.filter(segment=segment, left_at__isnull=True).values_list(
            "profile_id", flat=True
        )
    )


# --- Accounts -------------------------------------------------------------------------


def test_the_accounts_list_offers_the_actions_by_permission(tenant):
    admin = signed_in(tenant).get("/accounts/").content.decode()
    assert 'action="/accounts/bulk/"' in admin and 'name="ids"' in admin
    assert 'value="segment_add"' in admin and 'value="export"' in admin
    agent = signed_in(tenant, "agent").get("/accounts/").content.decode()
    assert 'name="ids"' not in agent


def test_accounts_add_their_people_to_a_static_segment(tenant, target):
    client = signed_in(tenant)
    acme, globex = _account(tenant, "acme"), _account(tenant, "globex")
    ids = [str(acme.pk), str(globex.pk)]
    asked = client.post("/accounts/bulk/", {"action": "segment_add", "ids": ids, "state": ""})
    html = asked.content.decode()
    assert asked.status_code == 200 and "2 accounts" in html and "2 people" in html
    assert _members(target) == set()
    done = client.post(
        "/accounts/bulk/",
        {
            "action": "segment_add",
            "ids": ids,
            "state": "",
            "segment": str(target.pk),
            "confirm": "yes",
        },
    )
    assert done.status_code == 200
    assert _members(target) == {_person(tenant, "u1").pk, _person(tenant, "u3").pk}


def test_accounts_export_is_a_confirmed_post_in_the_audit_log(tenant):
    client = signed_in(tenant)
    assert client.get("/accounts/bulk/", {"action": "export"}).status_code == 405
    acme = _account(tenant, "acme")
    data = {"action": "export", "ids": [str(acme.pk)], "state": "col=domain&col=members"}
    asked = client.post("/accounts/bulk/", data)
    assert asked["Content-Type"].startswith("text/html")
    assert not AuditLogEntry.objects.filter(action="accounts.export").exists()
    response = client.post("/accounts/bulk/", {**data, "confirm": "yes"})
    assert response["Content-Type"].startswith("text/csv")
    lines = b"".join(response.streaming_content).decode().strip().splitlines()
    assert lines[0] == "id,Name,Group id,Domain,People"
    assert lines[1].startswith(f"{acme.pk},Acme,{acme.group_id},")
    assert len(lines) == 2
    entry = AuditLogEntry.objects.get(action="accounts.export")
    assert entry.details["accounts"] == 1


def test_every_matching_account_is_taken_with_the_filters(tenant):
    client = signed_in(tenant)
    state = f"q={tenant.workspace.name}-globex"
    response = client.post(
        "/accounts/bulk/", {"action": "export", "all": "1", "state": state, "confirm": "yes"}
    )
    lines = b"".join(response.streaming_content).decode().strip().splitlines()
    assert len(lines) == 2 and "globex" in lines[1]


def test_accounts_of_another_workspace_or_merged_away_are_not_found(tenant, other_tenant):
    client = signed_in(tenant)
    foreign = _account(other_tenant, "acme")
    merged = _account(tenant, "acme-2")
    for ids in ([str(foreign.pk)], [str(_account(tenant, "acme").pk), str(merged.pk)]):
        response = client.post(
            "/accounts/bulk/", {"action": "export", "ids": ids, "state": "", "confirm": "yes"}
        )
        assert response.status_code == 404
    assert not AuditLogEntry.objects.filter(action="accounts.export").exists()


@pytest.mark.parametrize("role,action", [("analyst", "export"), ("agent", "segment_add")])
def test_accounts_actions_keep_their_permissions(tenant, target, role, action):
    acme = _account(tenant, "acme")
    response = signed_in(tenant, role).post(
        "/accounts/bulk/",
        {
            "action": action,
            "ids": [str(acme.pk)],
            "state": "",
            "segment": str(target.pk),
            "confirm": "yes",
        },
    )
    assert response.status_code == 403
    assert _members(target) == set()
    assert not AuditLogEntry.objects.filter(action="accounts.export").exists()


# --- A segment's members --------------------------------------------------------------


def test_a_static_segment_offers_remove_a_dynamic_one_does_not(tenant, listed):
    client = signed_in(tenant)
    html = client.get(f"/segments/{listed.pk}/").content.decode()
    assert f'action="/segments/{listed.pk}/bulk/"' in html
    assert 'value="segment_remove"' in html and 'value="export"' in html
    dynamic = segment_services.segment_create(
        workspace=tenant.workspace,
        name="Everyone",
        rule={"profile": "first_seen_at", "op": "within_last_days", "value": 3650},
        actor=ACTOR,
        refresh="now",
    )
    html = client.get(f"/segments/{dynamic.pk}/").content.decode()
    assert 'value="export"' in html and 'value="segment_remove"' not in html
    refused = client.post(
        f"/segments/{dynamic.pk}/bulk/",
        {"action": "segment_remove", "all": "1", "state": "", "confirm": "yes"},
    )
    assert refused.status_code == 422


def test_remove_from_this_segment_asks_then_removes(tenant, listed):
    client = signed_in(tenant)
    u1 = _person(tenant, "u1")
    data = {"action": "segment_remove", "ids": [str(u1.pk)], "state": ""}
    asked = client.post(f"/segments/{listed.pk}/bulk/", data)
    assert asked.status_code == 200 and "1 customer" in asked.content.decode()
    assert u1.pk in _members(listed)
    done = client.post(f"/segments/{listed.pk}/bulk/", {**data, "confirm": "yes"})
    assert done.status_code == 200
    assert _members(listed) == {_person(tenant, "u3").pk}
    listed.refresh_from_db()
    assert listed.size == 1
    assert AuditLogEntry.objects.filter(action="segment.members.remove").count() == 1
    # The history keeps the stay.
    assert (
        SegmentMembership.objects.filter(segment=listed, profile=u1).exclude(left_at=None).exists()
    )


def test_members_add_to_another_segment_and_export(tenant, listed, target):
    client = signed_in(tenant)
    client.post(
        f"/segments/{listed.pk}/bulk/",
        {
            "action": "segment_add",
            "all": "1",
            "state": "",
            "segment": str(target.pk),
            "confirm": "yes",
        },
    )
    assert _members(target) == _members(listed)
    response = client.post(
        f"/segments/{listed.pk}/bulk/",
        {"action": "export", "all": "1", "state": "col=email", "confirm": "yes"},
    )
    lines = b"".join(response.streaming_content).decode().strip().splitlines()
    assert lines[0] == "id,Name,Email" and len(lines) == 3
    entry = AuditLogEntry.objects.get(action="customers.export")
    assert entry.details["segment"] == str(listed.pk)


def test_ids_outside_the_segment_are_not_found(tenant, listed, other_tenant):
    client = signed_in(tenant)
    tenant.send({"type": "identify", "userId": f"{tenant.workspace.name}-u9"})
    outsider = _person(tenant, "u9")  # in the workspace, not in the segment
    foreign = _person(other_tenant, "u3")
    for pk in (outsider.pk, foreign.pk):
        response = client.post(
            f"/segments/{listed.pk}/bulk/",
            {"action": "segment_remove", "ids": [str(pk)], "state": "", "confirm": "yes"},
        )
        assert response.status_code == 404
    other_segment = Segment.objects.get(workspace=other_tenant.workspace, kind="static")
    response = client.post(
        f"/segments/{other_segment.pk}/bulk/",
        {"action": "export", "all": "1", "state": "", "confirm": "yes"},
    )
    assert response.status_code == 404
    assert len(_members(listed)) == 2
    assert not AuditLogEntry.objects.filter(
        action__in=["segment.members.remove", "customers.export"]
    ).exists()


@pytest.mark.parametrize(
    "role,action", [("analyst", "export"), ("agent", "segment_remove"), ("sales", "export")]
)
def test_member_actions_keep_their_permissions(tenant, listed, role, action):
    response = signed_in(tenant, role).post(
        f"/segments/{listed.pk}/bulk/",
        {"action": action, "all": "1", "state": "", "confirm": "yes"},
    )
    assert response.status_code == 403
    assert len(_members(listed)) == 2
