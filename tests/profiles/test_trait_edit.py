"""People editing a customer's traits: kept as a change by that person (the trait's
source, the timeline, the audit log), validated, masked, and never a merge."""

import uuid

import pytest

from rapport.core.errors import ConflictError, InvalidInputError, PermissionDeniedError
from rapport.identity.models import Identifier
from rapport.identity.services import profile_merge, profile_unmerge
from rapport.profiles import selectors
from rapport.profiles.models import Profile, TraitEdit
from rapport.profiles.services import profile_traits_edit
from rapport.tenancy.models import AuditLogEntry, User
from rapport.tenancy.services import Actor
from tests.conftest import tenant_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    tenant = tenant_create("Shop", sample_data=False)
    tenant.send(
        {
            "type": "identify",
            "userId": "kai-1",
            "traits": {"name": "Kai", "email": "kai@example.com", "plan": "basic", "visits": 3},
            "timestamp": "2026-01-01T10:00:00Z",
        }
    )
    return tenant


def _kai(tenant) -> Profile:
    return Profile.objects.get(workspace=tenant.workspace, identifiers__value="kai-1")


def _alice(tenant) -> Actor:
    user = User.objects.create_user(email="alice@shop.example.com")
    return Actor.for_user(user)


def test_an_edit_is_kept_as_the_persons_change(shop):
    kai, actor = _kai(shop), _alice(shop)
    edit = profile_traits_edit(
        workspace=shop.workspace,
        profile=kai,
        changes={"name": "Kai Ito", "plan": None, "company": "Northwind"},
        actor=actor,
        can_see_pii=True,
    )
    kai.refresh_from_db()
    assert kai.traits["name"] == "Kai Ito" and kai.traits["company"] == "Northwind"
    assert "plan" not in kai.traits
    source = kai.trait_sources["name"]
    assert source["actor"] == "alice@shop.example.com" and source["edit_id"] == str(edit.pk)
    assert kai.trait_sources["plan"]["removed"] is True
    assert edit.changes["name"] == {"from": "Kai", "to": "Kai Ito"}
    assert edit.changes["plan"] == {"from": "basic", "removed": True}

    page = selectors.profile_timeline(workspace=shop.workspace, profile_id=kai.pk)
    assert page.items[0].kind == "trait_change" and page.items[0].data["trait_edit"] == edit
    entry = AuditLogEntry.objects.get(workspace=shop.workspace, action="profile.traits_edit")
    assert entry.actor_label == "alice@shop.example.com" and entry.target_id == str(kai.pk)
    # Names only: the audit log keeps no customer's data.
    assert entry.details == {"changed": ["company", "name"], "removed": ["plan"]}


def test_nothing_changed_writes_nothing(shop):
    kai = _kai(shop)
    result = profile_traits_edit(
        workspace=shop.workspace,
        profile=kai,
        changes={"name": "Kai", "absent": None},
        actor=Actor.system(),
        can_see_pii=True,
    )
    assert result is None
    assert not TraitEdit.objects.exists()
    assert not AuditLogEntry.objects.filter(action="profile.traits_edit").exists()


def test_editing_the_email_changes_the_trait_not_the_identity_graph(shop):
    shop.send({"type": "identify", "userId": "lin-1", "traits": {"email": "lin@example.com"}})
    kai = _kai(shop)
    profile_traits_edit(
        workspace=shop.workspace,
        profile=kai,
        changes={"email": "lin@example.com"},
        actor=Actor.system(),
        can_see_pii=True,
    )
    kai.refresh_from_db()
    assert kai.traits["email"] == "lin@example.com"
    # Two customers still: an edit never merges, and Kai's identifiers are unchanged.
    assert Profile.objects.filter(workspace=shop.workspace, merged_into__isnull=True).count() == 2
    assert set(Identifier.objects.filter(profile=kai).values_list("value", flat=True)) == {
        "kai-1",
        "kai@example.com",
    }


def test_a_later_event_wins_an_older_one_does_not(shop):
    kai = _kai(shop)
    profile_traits_edit(
        workspace=shop.workspace,
        profile=kai,
        changes={"plan": "gold", "visits": None},
        actor=Actor.system(),
        can_see_pii=True,
    )
    # A late event stamped before the edit: the person's values stand.
    shop.send(
        {
            "type": "identify",
            "userId": "kai-1",
            "traits": {"plan": "old", "visits": 1},
            "timestamp": "2026-01-02T10:00:00Z",
        }
    )
    kai.refresh_from_db()
    assert kai.traits["plan"] == "gold" and "visits" not in kai.traits


def test_edits_survive_merge_and_unmerge(shop):
    shop.send({"type": "identify", "userId": "kai-2", "traits": {"name": "K. Ito"}})
    kai = _kai(shop)
    other = Profile.objects.get(workspace=shop.workspace, identifiers__value="kai-2")
    profile_traits_edit(
        workspace=shop.workspace,
        profile=kai,
        changes={"nickname": "Kaiser"},
        actor=Actor.system(),
        can_see_pii=True,
    )
    merge = profile_merge(survivor=other, merged=kai, reason="same", actor=Actor.system())
    other.refresh_from_db()
    assert other.traits["nickname"] == "Kaiser"
    # The survivor's timeline shows the edit made on the profile merged into it.
    page = selectors.profile_timeline(
        workspace=shop.workspace, profile_id=other.pk, kinds=["trait_change"]
    )
    assert any("trait_edit" in e.data for e in page.items)
    profile_unmerge(merge=merge, actor=Actor.system())
    kai.refresh_from_db()
    other.refresh_from_db()
    # Traits recomputed from events keep the person's edit where it was made.
    assert kai.traits["nickname"] == "Kaiser" and "nickname" not in other.traits


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({}, "traits"),
        ({f"f{n}": n for n in range(51)}, "traits"),
        ({"": "x"}, "traits."),
        ({" name": "x"}, "traits. name"),
        ({"a.b": "x"}, "traits.a.b"),
        ({"$set": "x"}, "traits.$set"),
        ({"n" * 101: "x"}, "traits." + "n" * 101),
        ({"bio": "x" * 2001}, "traits.bio"),
        ({"big": 2**60}, "traits.big"),
        ({"ratio": float("nan")}, "traits.ratio"),
        ({"deep": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}}, "traits.deep"),
        ({"blob": ["x" * 100] * 200}, "traits.blob"),
        ({"thing": object()}, "traits.thing"),
    ],
)
def test_bad_edits_name_the_field_and_change_nothing(shop, changes, field):
    kai = _kai(shop)
    before = dict(kai.traits)
    with pytest.raises(InvalidInputError) as raised:
        profile_traits_edit(
            workspace=shop.workspace,
            profile=kai,
            changes=changes,
            actor=Actor.system(),
            can_see_pii=True,
        )
    assert raised.value.field == field
    kai.refresh_from_db()
    assert kai.traits == before and not TraitEdit.objects.exists()


@pytest.mark.parametrize(
    "changes",
    [
        {"email": "new@example.com"},
        {"mobile": "07700 900123"},
        {"note": "call me on +44 20 7946 0958"},
    ],
)
def test_without_pii_read_personal_fields_cannot_be_changed(shop, changes):
    kai = _kai(shop)
    with pytest.raises(PermissionDeniedError):
        profile_traits_edit(
            workspace=shop.workspace,
            profile=kai,
            changes=changes,
            actor=Actor.system(),
            can_see_pii=False,
        )
    assert not TraitEdit.objects.exists()


def test_without_pii_read_a_field_holding_personal_data_is_not_overwritten(shop):
    shop.send({"type": "identify", "userId": "kai-1", "traits": {"notes": "kai@example.com"}})
    kai = _kai(shop)
    with pytest.raises(PermissionDeniedError):
        # What a masked person would send back: the masked value.
        profile_traits_edit(
            workspace=shop.workspace,
            profile=kai,
            changes={"notes": "k•••@e••••••.com"},
            actor=Actor.system(),
            can_see_pii=False,
        )
    edit = profile_traits_edit(
        workspace=shop.workspace,
        profile=kai,
        changes={"plan": "pro"},
        actor=Actor.system(),
        can_see_pii=False,
    )
    assert edit is not None


def test_a_merged_profile_is_not_edited(shop):
    shop.send({"type": "identify", "userId": "kai-2", "traits": {"name": "K"}})
    kai = _kai(shop)
    other = Profile.objects.get(workspace=shop.workspace, identifiers__value="kai-2")
    profile_merge(survivor=other, merged=kai, reason="same", actor=Actor.system())
    with pytest.raises(ConflictError):
        profile_traits_edit(
            workspace=shop.workspace,
            profile=kai,
            changes={"plan": "x"},
            actor=Actor.system(),
            can_see_pii=True,
        )


# --- The API --------------------------------------------------------------------------


def test_patch_traits(shop):
    kai = _kai(shop)
    response = shop.api("marketer").patch(
        f"/api/v1/profiles/{kai.pk}/traits",
        {"traits": {"plan": "pro", "address": {"city": "Leeds"}, "visits": None}},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["traits"]["plan"] == "pro" and body["traits"]["address"] == {"city": "Leeds"}
    assert "visits" not in body["traits"]
    assert body["trait_sources"]["plan"]["actor"] == "token:marketer token"
    timeline = (
        shop.api("analyst").get(f"/api/v1/profiles/{kai.pk}/timeline?kind=trait_change").json()
    )
    edit = timeline["items"][0]["trait_edit"]
    assert edit["changes"]["plan"] == {"from": "basic", "to": "pro"}
    assert edit["actor"] == "token:marketer token"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"traits": {"a.b": 1}}, "traits.a.b"),
        ({"traits": {"bio": "x" * 2001}}, "traits.bio"),
        ({"traits": {}}, "traits"),
    ],
)
def test_patch_traits_bad_input_is_a_422_naming_the_field(shop, body, field):
    kai = _kai(shop)
    response = shop.api().patch(f"/api/v1/profiles/{kai.pk}/traits", body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert any(d.get("field") == field for d in error["details"]), error


def test_patch_traits_refuses_unknown_body_keys(shop):
    kai = _kai(shop)
    response = shop.api().patch(f"/api/v1/profiles/{kai.pk}/traits", {"trait": {"a": 1}})
    assert response.status_code == 422
    assert "error" in response.json()


def test_patch_traits_of_another_workspace_is_a_404(shop):
    other = tenant_create("Other shop", sample_data=False)
    other.send({"type": "identify", "userId": "zed", "traits": {"name": "Zed"}})
    zed = Profile.objects.get(workspace=other.workspace)
    response = shop.api().patch(f"/api/v1/profiles/{zed.pk}/traits", {"traits": {"a": 1}})
    assert response.status_code == 404
    assert (
        shop.api()
        .patch(f"/api/v1/profiles/{uuid.uuid4()}/traits", {"traits": {"a": 1}})
        .status_code
        == 404
    )
    zed.refresh_from_db()
    assert "a" not in zed.traits


def test_patch_traits_needs_profiles_write_and_pii_read_for_personal_fields(shop):
    kai = _kai(shop)
    analyst = shop.api("analyst").patch(f"/api/v1/profiles/{kai.pk}/traits", {"traits": {"a": 1}})
    assert analyst.status_code == 403
    agent = shop.api("agent")
    refused = agent.patch(f"/api/v1/profiles/{kai.pk}/traits", {"traits": {"email": "x@y.io"}})
    assert refused.status_code == 403
    assert refused.json()["error"]["details"][0]["field"] == "traits.email"
    allowed = agent.patch(f"/api/v1/profiles/{kai.pk}/traits", {"traits": {"plan": "pro"}})
    assert allowed.status_code == 200
    # What the agent gets back is masked as everything they read.
    assert allowed.json()["traits"]["email"] != "kai@example.com"
