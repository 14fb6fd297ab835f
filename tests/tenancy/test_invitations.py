"""Members join by invitation: mailed through a real SMTP server, taken up once through
the link, never added without their consent, and the answer to the admin never says
whether an address has a login somewhere."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from rapport.tenancy.models import AuditLogEntry, Invitation, Membership, User
from rapport.tenancy.permissions import Role
from tests.smtp_server import free_port

PASSWORD = "correct-horse-battery"
NEW_PASSWORD = "a-long-passphrase-42"


def link_in(mailbox, to: str) -> str:
    index = max(i for i, rcpt in enumerate(mailbox.recipients) if rcpt == [to])
    match = re.search(r"http://testserver(/invitations/[A-Za-z0-9]+/)", mailbox.body(index))
    assert match, mailbox.body(index)
    return match.group(1)


def invite(tenant, email: str, role: str = "analyst"):
    return tenant.api().post("/api/v1/invitations", {"email": email, "role": role})


def comparable(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k not in {"id", "email", "created_at", "expires_at"}}


def test_inviting_never_adds_a_login_of_another_workspace(tenant, other_tenant, mailbox):
    theirs = other_tenant.extra_member.user
    with_login = invite(tenant, theirs.email)
    without_login = invite(tenant, "nobody.yet@example.com")

    # The same answer either way: nothing tells the admin who has a login.
    assert with_login.status_code == without_login.status_code == 201
    assert comparable(with_login.json()) == comparable(without_login.json())
    assert comparable(with_login.json()) == {
        "role": "analyst",
        "status": "pending",
        "invited_by": "token:Admin token",
        "accepted_at": None,
        "revoked_at": None,
    }
    # Nobody joined: the person has not said yes.
    assert not Membership.objects.filter(workspace=tenant.workspace, user=theirs).exists()
    assert not User.objects.filter(email="nobody.yet@example.com").exists()
    # Each got an email, from the real server's point of view.
    assert sorted(r[0] for r in mailbox.recipients) == sorted(
        [theirs.email, "nobody.yet@example.com"]
    )
    message = mailbox.messages[0]
    assert "Alpha" in message["Subject"]
    assert "Alpha" in mailbox.body(0) and "Analyst" in mailbox.body(0)


def test_the_old_way_of_adding_members_is_gone(tenant, other_tenant):
    response = tenant.api().post(
        "/api/v1/members", {"email": other_tenant.extra_member.user.email, "role": "admin"}
    )
    assert response.status_code in {404, 405}
    assert not Membership.objects.filter(
        workspace=tenant.workspace, user=other_tenant.extra_member.user
    ).exists()


def test_a_new_person_creates_their_login_and_joins_once(tenant, mailbox):
    assert invite(tenant, "New.Person@Example.com", "agent").status_code == 201
    link = link_in(mailbox, "new.person@example.com")
    client = Client()
    page = client.get(link)
    assert page.status_code == 200
    assert "Create my login and accept" in page.content.decode()

    # A too-short password or two that differ are refused with nothing created.
    assert client.post(link, {"password": "short", "password_again": "short"}).status_code == 422
    assert client.post(link, {"password": NEW_PASSWORD, "password_again": "x"}).status_code == 422
    assert not User.objects.filter(email="new.person@example.com").exists()

    response = client.post(
        link, {"name": "Nia", "password": NEW_PASSWORD, "password_again": NEW_PASSWORD}
    )
    assert response.status_code == 302
    user = User.objects.get(email="new.person@example.com")
    assert user.name == "Nia" and user.check_password(NEW_PASSWORD)
    assert Membership.objects.get(workspace=tenant.workspace, user=user).role == Role.AGENT
    assert client.get("/api/v1/me").json()["workspace"]["name"] == "Alpha"
    actions = set(
        AuditLogEntry.objects.filter(workspace=tenant.workspace).values_list("action", flat=True)
    )
    assert {"invitation.create", "invitation.accept", "member.add"} <= actions

    # The link works once.
    again = Client().post(
        link, {"name": "X", "password": NEW_PASSWORD, "password_again": NEW_PASSWORD}
    )
    assert again.status_code == 410
    assert Client().get(link).status_code == 410


def test_a_person_with_a_login_signs_in_to_accept(tenant, other_tenant, mailbox):
    person = other_tenant.extra_member.user
    assert invite(tenant, person.email, "sales").status_code == 201
    link = link_in(mailbox, person.email)
    client = Client()
    assert "Sign in and accept" in client.get(link).content.decode()
    assert client.post(link, {"password": "wrong-password"}).status_code == 200
    assert not Membership.objects.filter(workspace=tenant.workspace, user=person).exists()

    assert client.post(link, {"password": PASSWORD}).status_code == 302
    assert Membership.objects.get(workspace=tenant.workspace, user=person).role == Role.SALES
    # Joined, and opened in the workspace they just joined.
    assert client.get("/api/v1/workspace").json()["name"] == "Alpha"


def test_accepting_while_signed_in(tenant, other_tenant, mailbox):
    person = other_tenant.extra_member.user
    invite(tenant, person.email)
    link = link_in(mailbox, person.email)
    client = Client()
    client.force_login(person)
    assert "Accept the invitation" in client.get(link).content.decode()
    assert client.post(link).status_code == 302
    assert Membership.objects.filter(workspace=tenant.workspace, user=person).exists()


def test_someone_else_signed_in_cannot_take_the_invitation(tenant, other_tenant, mailbox):
    invite(tenant, "meant.for@example.com")
    link = link_in(mailbox, "meant.for@example.com")
    intruder = other_tenant.extra_member.user
    client = Client()
    client.force_login(intruder)
    assert client.get(link).status_code == 403
    assert client.post(link).status_code == 403
    assert not Membership.objects.filter(workspace=tenant.workspace, user=intruder).exists()
    assert Invitation.objects.get(email="meant.for@example.com").accepted_at is None


def test_a_withdrawn_invitation_cannot_be_accepted(tenant, mailbox):
    created = invite(tenant, "withdrawn@example.com").json()
    link = link_in(mailbox, "withdrawn@example.com")
    assert tenant.api().delete(f"/api/v1/invitations/{created['id']}").status_code == 204
    response = Client().post(link, {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
    assert response.status_code == 410
    assert "no longer valid" in response.content.decode()
    assert not User.objects.filter(email="withdrawn@example.com").exists()
    entry = AuditLogEntry.objects.get(workspace=tenant.workspace, action="invitation.revoke")
    assert entry.details["email"] == "withdrawn@example.com"


def test_an_invitation_expires(tenant, mailbox, settings):
    invite(tenant, "late@example.com")
    link = link_in(mailbox, "late@example.com")
    later = timezone.now() + timedelta(hours=settings.RAPPORT_INVITATION_HOURS, minutes=1)
    with time_machine.travel(later):
        response = Client().post(link, {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
    assert response.status_code == 410
    assert not User.objects.filter(email="late@example.com").exists()
    listed = tenant.api().get("/api/v1/invitations?include_closed=true").json()["items"]
    assert {i["email"]: i["status"] for i in listed}["late@example.com"] == "pending"


def test_inviting_again_replaces_the_earlier_link(tenant, mailbox):
    invite(tenant, "twice@example.com")
    first = link_in(mailbox, "twice@example.com")
    invite(tenant, "twice@example.com", "marketer")
    second = link_in(mailbox, "twice@example.com")
    assert first != second
    assert Client().get(first).status_code == 410
    response = Client().post(second, {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
    assert response.status_code == 302
    assert Membership.objects.get(user__email="twice@example.com").role == Role.MARKETER


def test_invitations_are_listed_for_admins(tenant, mailbox):
    invite(tenant, "listed@example.com")
    pending = tenant.api().get("/api/v1/invitations").json()["items"]
    assert "listed@example.com" in {i["email"] for i in pending}
    invitation_id = next(i["id"] for i in pending if i["email"] == "listed@example.com")
    tenant.api().delete(f"/api/v1/invitations/{invitation_id}")
    pending = tenant.api().get("/api/v1/invitations").json()["items"]
    assert "listed@example.com" not in {i["email"] for i in pending}
    everything = tenant.api().get("/api/v1/invitations?include_closed=true").json()["items"]
    assert {i["email"]: i["status"] for i in everything}["listed@example.com"] == "revoked"
    assert tenant.api().get(f"/api/v1/invitations/{invitation_id}").json()["status"] == "revoked"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "role": "analyst"}, "email"),
        ({"email": "a@b.example", "role": "god"}, "role"),
        ({"email": "a@b.example"}, "role"),
        ({"email": "a@b.example", "role": "analyst", "password": "x"}, "password"),
    ],
)
def test_bad_invitations_name_the_field(tenant, body, field, mailbox):
    before = Invitation.objects.count()
    response = tenant.api().post("/api/v1/invitations", body)
    assert response.status_code == 422
    assert field in response.json()["error"]["message"]
    assert Invitation.objects.count() == before
    assert mailbox.messages == []


def test_a_member_is_not_invited_again(tenant, mailbox):
    response = invite(tenant, tenant.extra_member.user.email)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "member_exists"


def test_when_mail_cannot_be_sent_nothing_is_kept(tenant, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    before = Invitation.objects.count(), AuditLogEntry.objects.count()
    response = invite(tenant, "unreachable@example.com")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "email_unavailable"
    assert (Invitation.objects.count(), AuditLogEntry.objects.count()) == before


def test_a_garbage_link_is_not_valid(db):
    assert Client().get("/invitations/nonsense/").status_code == 410
    assert Client().post("/invitations/" + "A" * 40 + "/").status_code == 410
