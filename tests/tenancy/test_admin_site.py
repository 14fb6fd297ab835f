"""The Django admin's door: a TOTP code besides the password, the sign-in throttle,
and a switch to take it off."""

import importlib
import re
from datetime import UTC, datetime

import pytest
import time_machine
from django.test import Client
from django.urls import clear_url_caches

from rapport.cli import _run, cli
from rapport.tenancy.models import User
from tests.tenancy.totp import totp_code

PASSWORD = "correct-horse-battery"
NOW = datetime(2026, 12, 4, 9, 0, 10, tzinfo=UTC)


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser(email="root@example.com", password=PASSWORD)


def enrol(capsys, email: str) -> str:
    assert _run(cli.main, ["user", "totp-enrol", email]) == 0
    out = capsys.readouterr().out
    secret = re.search(r"Secret \(type it into the app\): ([A-Z2-7]+)", out).group(1)
    uri = re.search(r"Provisioning URI: (\S+)", out).group(1)
    assert uri.startswith("otpauth://totp/") and f"secret={secret}" in uri
    assert "issuer=Rapport" in uri
    return secret


def admin_sign_in(client: Client, *, password=PASSWORD, code="", email="root@example.com"):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": email, "password": password, "otp_token": code, "next": "/admin/"},
        REMOTE_ADDR=client.defaults.get("REMOTE_ADDR", "127.0.0.1"),
    )


def test_the_password_alone_does_not_open_the_admin(superuser):
    client = Client()
    response = admin_sign_in(client)
    assert response.status_code == 200  # the form again
    assert client.get("/admin/").status_code == 302  # to the login page


def test_signing_in_on_the_web_does_not_open_the_admin(superuser):
    client = Client()
    client.post("/login/", {"username": superuser.email, "password": PASSWORD})
    assert "_auth_user_id" in client.session
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_enrolled_totp_code_opens_the_admin_once(superuser, capsys):
    with time_machine.travel(NOW, tick=False) as clock:
        secret = enrol(capsys, superuser.email)
        # Not usable before it is confirmed.
        assert admin_sign_in(Client(), code=totp_code(secret)).status_code == 200
        assert _run(cli.main, ["user", "totp-confirm", superuser.email, "000000x"]) == 1
        previous = totp_code(secret, at=NOW.timestamp() - 30)
        assert _run(cli.main, ["user", "totp-confirm", superuser.email, previous]) == 0

        client = Client()
        wrong = "123456" if totp_code(secret) != "123456" else "654321"
        assert admin_sign_in(client, code=wrong).status_code == 200
        assert client.get("/admin/").status_code == 302

        # A wrong code makes the device wait before the next try (django-otp).
        clock.shift(60)
        response = admin_sign_in(client, code=totp_code(secret))
        assert response.status_code == 302 and response["Location"] == "/admin/"
        assert client.get("/admin/").status_code == 200

        # The same code again (replayed) does not open it for someone else.
        other = Client()
        assert admin_sign_in(other, code=totp_code(secret)).status_code == 200
        assert other.get("/admin/").status_code == 302


def test_a_removed_device_closes_the_admin(superuser, capsys):
    with time_machine.travel(NOW, tick=False):
        secret = enrol(capsys, superuser.email)
        assert _run(cli.main, ["user", "totp-confirm", superuser.email, totp_code(secret)]) == 0
        assert _run(cli.main, ["user", "totp-remove", superuser.email]) == 0
    with time_machine.travel(NOW.timestamp() + 60, tick=False):
        client = Client()
        admin_sign_in(client, code=totp_code(secret))
        assert client.get("/admin/").status_code == 302


def test_only_staff_enrol(db, capsys):
    User.objects.create_user(email="plain@example.com", password=PASSWORD)
    assert _run(cli.main, ["user", "totp-enrol", "plain@example.com"]) == 1
    assert "not staff" in capsys.readouterr().err


def test_admin_sign_in_is_throttled(superuser, capsys, settings):
    settings.RAPPORT_SIGN_IN_RATE_IP = "30/5m"
    settings.RAPPORT_SIGN_IN_RATE_ACCOUNT = "1000/5m"
    with time_machine.travel(NOW, tick=False):
        secret = enrol(capsys, superuser.email)
        previous = totp_code(secret, at=NOW.timestamp() - 30)
        assert _run(cli.main, ["user", "totp-confirm", superuser.email, previous]) == 0
        client = Client(REMOTE_ADDR="198.51.100.7")
        for _ in range(30):
            assert admin_sign_in(client, password="wrong-password").status_code == 200
        # The next try, with the right password and a valid code, waits.
        response = admin_sign_in(client, code=totp_code(secret))
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()
    assert client.get("/admin/").status_code == 302


def test_admin_and_web_sign_in_count_together(superuser, settings):
    settings.RAPPORT_SIGN_IN_RATE_ACCOUNT = "10/5m"
    for attempt in range(10):
        Client(REMOTE_ADDR=f"10.0.0.{attempt}").post(
            "/login/", {"username": superuser.email, "password": "wrong"}
        )
    response = admin_sign_in(Client(REMOTE_ADDR="10.0.9.9"))
    assert response.status_code == 429


@pytest.fixture
def admin_switched_off(settings):
    import rapport.urls

    settings.RAPPORT_ADMIN_ENABLED = False
    importlib.reload(rapport.urls)
    clear_url_caches()
    yield
    settings.RAPPORT_ADMIN_ENABLED = True
    importlib.reload(rapport.urls)
    clear_url_caches()


def test_the_admin_can_be_switched_off(superuser, admin_switched_off):
    assert Client().get("/admin/login/").status_code == 404
    assert Client().post("/admin/login/", {"username": "x", "password": "y"}).status_code == 404


def test_enrolling_again_replaces_the_old_device(superuser, capsys):
    with time_machine.travel(NOW, tick=False) as clock:
        old = enrol(capsys, superuser.email)
        assert _run(cli.main, ["user", "totp-confirm", superuser.email, totp_code(old)]) == 0
        clock.shift(60)
        new = enrol(capsys, superuser.email)
        # Until the new one is confirmed, the old one still opens the admin.
        client = Client()
        assert admin_sign_in(client, code=totp_code(old)).status_code == 302
        assert _run(cli.main, ["user", "totp-confirm", superuser.email, totp_code(new)]) == 0
        clock.shift(60)
        assert admin_sign_in(Client(), code=totp_code(old)).status_code == 200
        clock.shift(60)  # past the wait a wrong code costs
        fresh = Client()
        assert admin_sign_in(fresh, code=totp_code(new)).status_code == 302
        assert fresh.get("/admin/").status_code == 200
