"""Signing in to the web UI, the home page, switching workspace, signing out."""

import re

import pytest
from django.test import Client

from rapport.tenancy.services import Actor, member_add

PASSWORD = "correct-horse-battery"


@pytest.fixture
def person(tenant):
    return tenant.extra_member.user


def test_pages_need_a_sign_in(db):
    response = Client().get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_sign_in_page_is_labelled_and_protected(db):
    response = Client().get("/login/")
    html = response.content.decode()
    assert response.status_code == 200
    assert '<label for="id_username">' in html and '<label for="id_password">' in html
    assert "csrfmiddlewaretoken" in html
    # Scripts only from Rapport's own files (the CSP forbids inline ones).
    assert re.findall(r"<script[^>]*>", html) == [
        '<script src="/static/django_htmx/htmx-2.min.js" defer>',
        '<script src="/static/web/layout.js" defer>',
    ]
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy


def test_wrong_password_is_refused(person):
    response = Client().post("/login/", {"username": person.email, "password": "wrong"})
    assert response.status_code == 200
    assert "do not match" in response.content.decode()


def test_sign_in_shows_the_workspace(person, tenant):
    client = Client()
    response = client.post("/login/", {"username": person.email, "password": PASSWORD}, follow=True)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<h1>Alpha</h1>" in html
    assert "Marketer" in html
    # A marketer sees sources but not the audit log.
    assert "Sources" in html and "Recent changes" not in html


def test_names_are_escaped(person, tenant):
    from rapport.tenancy.services import source_create

    source_create(
        workspace=tenant.workspace, name="<script>alert(1)</script>", actor=Actor.system()
    )
    client = Client()
    client.login(username=person.email, password=PASSWORD)
    html = client.get("/data/sources/").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_switching_to_a_workspace_one_belongs_to(person, tenant, other_tenant):
    member_add(
        workspace=other_tenant.workspace, email=person.email, role="agent", actor=Actor.system()
    )
    client = Client()
    client.login(username=person.email, password=PASSWORD)
    assert "<h1>Alpha</h1>" in client.get("/").content.decode()

    client.post("/workspace/switch/", {"workspace": str(other_tenant.workspace.pk)})
    html = client.get("/").content.decode()
    assert "<h1>Beta</h1>" in html and "Support agent" in html
    assert client.get("/api/v1/workspace").json()["name"] == "Beta"


def test_the_chosen_workspace_opens_at_the_next_sign_in(person, tenant, other_tenant):
    member_add(
        workspace=other_tenant.workspace, email=person.email, role="agent", actor=Actor.system()
    )
    first = Client()
    first.post("/login/", {"username": person.email, "password": PASSWORD})
    first.post("/workspace/switch/", {"workspace": str(other_tenant.workspace.pk)})
    first.post("/logout/")

    # Signed in again (another browser, a new session): Beta, not the alphabetically first.
    later = Client()
    later.post("/login/", {"username": person.email, "password": PASSWORD})
    assert "<h1>Beta</h1>" in later.get("/").content.decode()
    assert later.get("/api/v1/workspace").json()["name"] == "Beta"
    # The switcher in the top bar lists both, Beta chosen.
    html = later.get("/").content.decode()
    assert re.search(rf'<option value="{other_tenant.workspace.pk}"\s+selected>Beta</option>', html)
    assert f'<option value="{tenant.workspace.pk}" >Alpha</option>' in html


def test_a_remembered_workspace_one_left_is_not_opened(person, tenant, other_tenant):
    membership, _ = member_add(
        workspace=other_tenant.workspace, email=person.email, role="agent", actor=Actor.system()
    )
    client = Client()
    client.post("/login/", {"username": person.email, "password": PASSWORD})
    client.post("/workspace/switch/", {"workspace": str(other_tenant.workspace.pk)})
    membership.delete()
    later = Client()
    later.post("/login/", {"username": person.email, "password": PASSWORD})
    assert later.get("/api/v1/workspace").json()["name"] == "Alpha"


def test_cannot_switch_to_a_workspace_one_does_not_belong_to(person, tenant, other_tenant):
    client = Client()
    client.login(username=person.email, password=PASSWORD)
    client.post("/workspace/switch/", {"workspace": str(other_tenant.workspace.pk)})
    client.post("/workspace/switch/", {"workspace": "'; DROP TABLE x;--"})
    assert "<h1>Alpha</h1>" in client.get("/").content.decode()
    assert client.get("/api/v1/workspace").json()["name"] == "Alpha"


def test_sign_out(person):
    client = Client()
    client.login(username=person.email, password=PASSWORD)
    assert client.post("/logout/").status_code == 302
    assert client.get("/").status_code == 302


def test_api_docs_are_served_without_a_cdn(db):
    html = Client().get("/api/docs").content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html
    # Nothing loaded from another site (a bare "cdn" can turn up inside a CSRF token).
    assert re.search(r"""(src|href)=["']?(https?:)?//""", html) is None
    assert "cdn." not in html.lower()


def test_sign_in_is_throttled_per_account(person, settings):
    settings.RAPPORT_SIGN_IN_RATE_ACCOUNT = "10/5m"
    for attempt in range(10):
        response = Client(REMOTE_ADDR=f"10.0.0.{attempt}").post(
            "/login/", {"username": person.email, "password": "wrong"}
        )
        assert response.status_code == 200
    # The eleventh try, even with the right password and from another address, waits.
    response = Client(REMOTE_ADDR="10.0.1.1").post(
        "/login/", {"username": person.email, "password": PASSWORD}
    )
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()
    assert "_auth_user_id" not in response.client.session
    # Another account is not held up.
    other = Client(REMOTE_ADDR="10.0.1.2").post(
        "/login/", {"username": "someone@else.example.com", "password": "x"}
    )
    assert other.status_code == 200
