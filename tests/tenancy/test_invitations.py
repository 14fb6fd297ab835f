"""Members join by invitation: mailed through a real SMTP server, taken up once through
the link, never added without their consent, and the answer to the admin never says
whether an address has a login somewhere."""

import re

import pytest

from rapport.tenancy.models import AuditLogEntry, Invitation, Membership, User
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


@pytest.mark.django_db(transaction=True)
def test_one_link_used_twice_at_once_joins_once(tenant, mailbox):
    import threading

    from django.db import connection

    from rapport.tenancy import services

    if connection.vendor == "sqlite":
        # The test database is SQLite in memory with a shared cache, whose table locks
        # fail at once instead of waiting; a file database queues writers (IMMEDIATE).
        pytest.skip("concurrent writers need PostgreSQL or a SQLite file")

    invite(tenant, "racer@example.com")
    secret = link_in(mailbox, "racer@example.com").split("/")[2]
    start, outcomes = threading.Barrier(2), []

    def accept() -> None:
        try:
            start.wait()
            services.invitation_accept_new_user(raw=secret, password=NEW_PASSWORD)
            outcomes.append("joined")
        except services.RapportError as error:
            outcomes.append(error.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=accept) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["invitation_closed", "joined"]
    assert Membership.objects.filter(user__email="racer@example.com").count() == 1


def test_the_invitation_status_is_documented_as_itself():
    from rapport.api import api

    schema = api.get_openapi_schema()["components"]["schemas"]["InvitationOut"]
    assert schema["properties"]["status"]["enum"] == ["pending", "accepted", "revoked", "expired"]
