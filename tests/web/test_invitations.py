"""Taking up an invitation through the mailed link (a real SMTP server): once, before
it expires or is withdrawn, only by the person it was sent to, signing in or creating
their login; wrong passwords count against the sign-in throttle."""

from datetime import timedelta

import time_machine
from django.test import Client
from django.utils import timezone

from rapport.tenancy.models import AuditLogEntry, Invitation, Membership, User
from rapport.tenancy.permissions import Role
from tests.tenancy.test_invitations import NEW_PASSWORD, PASSWORD, invite, link_in


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


def test_a_garbage_link_is_not_valid(db):
    assert Client().get("/invitations/nonsense/").status_code == 410
    assert Client().post("/invitations/" + "A" * 40 + "/").status_code == 410


def test_wrong_passwords_on_the_invitation_are_throttled(tenant, other_tenant, mailbox, settings):
    settings.RAPPORT_SIGN_IN_RATE_ACCOUNT = "10/5m"
    person = other_tenant.extra_member.user
    invite(tenant, person.email)
    link = link_in(mailbox, person.email)
    for attempt in range(10):
        client = Client(REMOTE_ADDR=f"10.1.0.{attempt}")
        assert client.post(link, {"password": "wrong-password"}).status_code == 200
    response = Client(REMOTE_ADDR="10.1.1.1").post(link, {"password": PASSWORD})
    assert response.status_code == 429
    assert not Membership.objects.filter(workspace=tenant.workspace, user=person).exists()
    # The web sign-in counts the same tries.
    response = Client(REMOTE_ADDR="10.1.1.2").post(
        "/login/", {"username": person.email, "password": PASSWORD}
    )
    assert response.status_code == 429


def test_the_invitation_page_speaks_russian(tenant, mailbox):
    invite(tenant, "ru@example.com")
    link = link_in(mailbox, "ru@example.com")
    html = Client(HTTP_ACCEPT_LANGUAGE="ru").get(link).content.decode()
    assert "Создать учётную запись и принять" in html
