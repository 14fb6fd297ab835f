"""Settings pages: members and roles, API tokens, identity rules; each change in the
audit log, bad input refused naming the field with nothing changed."""

import re

from rapport.identity.models import IdentityRules
from rapport.tenancy.models import ApiToken, AuditLogEntry, Invitation, Membership, User
from rapport.tenancy.permissions import Role
from rapport.tenancy.selectors import api_token_get_by_secret
from tests.web.clients import signed_in


def test_an_admin_invites_a_person_who_joins_only_by_accepting(tenant, other_tenant, mailbox):
    client = signed_in(tenant)
    theirs = other_tenant.extra_member.user
    answers = []
    for email in (theirs.email.upper(), "New.Agent@Example.com"):
        response = client.post("/settings/members/", {"email": email, "role": "agent"})
        assert response.status_code == 200
        html = response.content.decode()
        answers.append(html.replace(email.lower(), "EMAIL").replace(email, "EMAIL"))
        assert "was mailed to" in html
    # Whether the address has a login shows nowhere in the page.
    notice = [re.search(r'<p id="invitation-sent">(.*?)</p>', a).group(1) for a in answers]
    assert notice[0] == notice[1]
    assert not Membership.objects.filter(workspace=tenant.workspace, user=theirs).exists()
    assert not User.objects.filter(email__iexact="new.agent@example.com").exists()
    assert len(mailbox.messages) == 2

    page = client.get("/settings/members/").content.decode()
    assert theirs.email in page and "new.agent@example.com" in page
    invitation = Invitation.objects.get(workspace=tenant.workspace, email="new.agent@example.com")
    assert client.post(f"/settings/invitations/{invitation.pk}/revoke/").status_code == 302
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    assert "new.agent@example.com" not in client.get("/settings/members/").content.decode()
    assert AuditLogEntry.objects.filter(
        workspace=tenant.workspace, action="invitation.revoke"
    ).exists()


def test_an_invitation_of_another_workspace_cannot_be_withdrawn(tenant, other_tenant):
    theirs = Invitation.objects.get(workspace=other_tenant.workspace)
    client = signed_in(tenant)
    assert client.post(f"/settings/invitations/{theirs.pk}/revoke/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_changing_a_role_and_removing_a_member(tenant):
    client = signed_in(tenant)
    member = tenant.extra_member
    response = client.post(f"/settings/members/{member.pk}/role/", {"role": "analyst"})
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.role == Role.ANALYST
    assert client.get(f"/settings/members/{member.pk}/remove/").status_code == 200
    assert Membership.objects.filter(pk=member.pk).exists()  # asked, not yet done
    assert client.post(f"/settings/members/{member.pk}/remove/").status_code == 302
    assert not Membership.objects.filter(pk=member.pk).exists()


def test_the_last_admin_cannot_be_demoted_or_removed(tenant):
    client = signed_in(tenant)
    admins = Membership.objects.filter(workspace=tenant.workspace, role=Role.ADMIN)
    for admin in admins.exclude(user__email="admin-pages@example.com"):
        admin.delete()
    me = admins.get()
    response = client.post(f"/settings/members/{me.pk}/role/", {"role": "agent"})
    assert response.status_code == 409
    response = client.post(f"/settings/members/{me.pk}/remove/")
    assert response.status_code == 409
    me.refresh_from_db()
    assert me.role == Role.ADMIN


def test_bad_member_input(tenant, other_tenant):
    client = signed_in(tenant)
    before = Membership.objects.count()
    response = client.post("/settings/members/", {"email": "not-an-email", "role": "agent"})
    assert response.status_code == 422 and "email:" in response.content.decode()
    response = client.post("/settings/members/", {"email": "a@b.example", "role": "god"})
    assert response.status_code == 422 and "role:" in response.content.decode()
    response = client.post(
        "/settings/members/", {"email": tenant.extra_member.user.email, "role": "agent"}
    )
    assert response.status_code == 409
    theirs = other_tenant.extra_member
    assert client.post(f"/settings/members/{theirs.pk}/role/", {"role": "admin"}).status_code == 404
    assert client.post(f"/settings/members/{theirs.pk}/remove/").status_code == 404
    assert Membership.objects.count() == before
    theirs.refresh_from_db()
    assert theirs.role == Role.MARKETER


def test_api_tokens_are_shown_once_and_revoked(tenant):
    client = signed_in(tenant)
    response = client.post(
        "/settings/tokens/",
        {"name": "Nightly export", "role": "analyst", "expires_at": "2099-01-31"},
    )
    assert response.status_code == 200
    raw = response.context["new_token"]["raw"]
    token = api_token_get_by_secret(raw=raw)
    assert token.name == "Nightly export" and token.role == Role.ANALYST
    assert token.expires_at.date().isoformat() == "2099-01-31"
    again = client.get("/settings/tokens/").content.decode()
    assert raw not in again and token.prefix in again
    assert client.post(f"/settings/tokens/{token.pk}/revoke/").status_code == 302
    assert api_token_get_by_secret(raw=raw) is None


def test_bad_token_input_creates_nothing(tenant, other_tenant):
    client = signed_in(tenant)
    before = ApiToken.objects.count()
    for form, field in (
        ({"name": "", "role": "agent"}, "name"),
        ({"name": "x", "role": "root"}, "role"),
        ({"name": "x", "role": "agent", "expires_at": "tomorrow"}, "expires_at"),
        ({"name": "x", "role": "agent", "expires_at": "2001-01-01"}, "expires_at"),
    ):
        response = client.post("/settings/tokens/", form)
        assert response.status_code == 422 and f"{field}:" in response.content.decode(), form
    theirs = ApiToken.objects.filter(workspace=other_tenant.workspace).first()
    assert client.post(f"/settings/tokens/{theirs.pk}/revoke/").status_code == 404
    assert ApiToken.objects.count() == before
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_settings_pages_need_their_permission(tenant):
    marketer = signed_in(tenant, Role.MARKETER)
    assert marketer.get("/settings/members/").status_code == 403
    assert marketer.get("/settings/tokens/").status_code == 403
    assert marketer.post("/settings/tokens/", {"name": "x", "role": "admin"}).status_code == 403
    # Everyone may read the identity rules; only admins change them.
    response = marketer.get("/settings/identity/")
    assert response.status_code == 200 and "disabled" in response.content.decode()
    response = marketer.post("/settings/identity/", {"duplicate_min_probability": "0.6"})
    assert response.status_code == 403


def _rules_form(**changes) -> dict:
    form = {
        "external_kinds": "loyalty_card",
        "priority_user_id": "1",
        "priority_email": "2",
        "priority_phone": "3",
        "priority_anonymous_id": "5",
        "priority_loyalty_card": "4",
        "limit_user_id": "1",
        "limit_email": "3",
        "limit_loyalty_card": "1",
        "blocked_values": "null\nanonymous\nnoreply@example.com",
        "default_phone_region": "gb",
        "duplicate_min_probability": "0.8",
        "duplicate_auto_merge_probability": "",
        "duplicate_fields": "membership_no = code",
    }
    return {**form, **changes}


def test_identity_rules_are_changed_from_the_form(tenant):
    client = signed_in(tenant)
    response = client.post("/settings/identity/", _rules_form())
    assert response.status_code == 200 and response.context["saved"]
    rules = IdentityRules.objects.get(workspace=tenant.workspace)
    assert rules.external_kinds == ["loyalty_card"]
    assert rules.priorities["loyalty_card"] == 4 and rules.limits["email"] == 3
    assert rules.blocked_values == ["anonymous", "noreply@example.com", "null"]
    assert rules.default_phone_region == "GB"
    assert rules.duplicate_min_probability == 0.8
    assert rules.duplicate_auto_merge_probability is None
    assert rules.duplicate_fields == {"membership_no": "code"}
    html = client.get("/settings/identity/").content.decode()
    assert 'name="priority_loyalty_card" value="4"' in html


def test_bad_identity_rules_name_the_field_and_change_nothing(tenant):
    client = signed_in(tenant)
    client.post("/settings/identity/", _rules_form())
    before = IdentityRules.objects.get(workspace=tenant.workspace)
    for changes, field in (
        ({"priority_email": "first"}, "priorities"),
        ({"limit_email": "0"}, "limits"),
        ({"external_kinds": "Loyalty Card"}, "external_kinds"),
        ({"default_phone_region": "XX"}, "default_phone_region"),
        ({"duplicate_min_probability": "0.1"}, "duplicate_min_probability"),
        ({"duplicate_auto_merge_probability": "lots"}, "duplicate_auto_merge_probability"),
        ({"duplicate_fields": "membership_no"}, "duplicate_fields"),
        ({"duplicate_fields": "x = telepathy"}, "duplicate_fields"),
    ):
        response = client.post("/settings/identity/", _rules_form(**changes))
        assert response.status_code == 422, changes
        assert f"{field}:" in response.content.decode(), changes
    after = IdentityRules.objects.get(workspace=tenant.workspace)
    fields = ("priorities", "limits", "external_kinds", "default_phone_region", "duplicate_fields")
    assert all(getattr(after, f) == getattr(before, f) for f in fields)


def test_the_identity_rules_form_saved_as_shown_is_accepted(tenant):
    """The textareas hold the values as plain text (a marker element inside a textarea
    is text too, and came back as part of the values, refused)."""
    client = signed_in(tenant)
    before = IdentityRules.objects.get(workspace=tenant.workspace).blocked_values
    html = client.get("/settings/identity/").content.decode()
    areas = dict(re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', html, re.S))
    assert set(areas) == {"blocked_values", "duplicate_fields"}
    assert all("<" not in text for text in areas.values())
    fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', html))
    response = client.post("/settings/identity/", {**fields, **areas})
    assert response.status_code == 200 and "Saved." in response.content.decode()
    after = IdentityRules.objects.get(workspace=tenant.workspace).blocked_values
    assert set(after) == {v for v in before if v}
