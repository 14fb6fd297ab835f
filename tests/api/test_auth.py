"""Bearer tokens: missing, malformed, unknown, revoked and expired ones get 401; a
token is never stored in clear; a signed-in person reaches the API with the session."""

import hashlib
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from rapport.tenancy.models import ApiToken, AuditLogEntry
from rapport.tenancy.services import Actor, api_token_revoke
from tests.conftest import ApiClient

PROTECTED = ["/api/v1/me", "/api/v1/tokens", "/api/v1/sources", "/api/v1/audit-log"]


def _authorization_cases(valid: str) -> dict[str, str | None]:
    return {
        "no header": None,
        "empty bearer": "Bearer",
        "bearer and spaces": "Bearer    ",
        "too short": "Bearer rpt_abc",
        "unknown but well formed": "Bearer rpt_" + "A" * 40,
        "without prefix": "Bearer " + valid.removeprefix("rpt_"),
        "one character more": "Bearer " + valid + "x",
        "one character less": "Bearer " + valid[:-1],
        "wrong scheme": "Token " + valid,
        "basic scheme": "Basic " + valid,
        "sql in token": "Bearer rpt_' OR '1'='1",
        "non-ascii": "Bearer rpt_ÄÖÜ" + "a" * 37,
    }


@pytest.mark.parametrize("path", PROTECTED)
@pytest.mark.parametrize(
    "case", list(_authorization_cases("rpt_" + "x" * 40)), ids=lambda c: c.replace(" ", "-")
)
def test_bad_credentials_get_401_in_the_error_shape(case, path, tenant):
    header = _authorization_cases(tenant.tokens["admin"])[case]
    client = Client()
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}

    response = client.get(path, **extra)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_revoked_token_gets_401(tenant):
    api = tenant.api("analyst")
    assert api.get("/api/v1/me").status_code == 200
    token = ApiToken.objects.get(workspace=tenant.workspace, name="analyst token")
    api_token_revoke(token=token, actor=Actor.system("tests"))

    assert api.get("/api/v1/me").status_code == 401


def test_revoking_through_the_api_takes_effect_at_once(tenant):
    admin = tenant.api()
    token = ApiToken.objects.get(workspace=tenant.workspace, name="sales token")

    assert admin.delete(f"/api/v1/tokens/{token.pk}").status_code == 204
    assert tenant.api("sales").get("/api/v1/me").status_code == 401
    # Revoking again is harmless and does not log twice.
    assert admin.delete(f"/api/v1/tokens/{token.pk}").status_code == 204
    assert AuditLogEntry.objects.filter(action="token.revoke", target_id=str(token.pk)).count() == 1


def test_expired_token_gets_401(tenant, time_machine):
    created = tenant.api().post(
        "/api/v1/tokens",
        {
            "name": "short-lived",
            "role": "analyst",
            "expires_at": (timezone.now() + timedelta(hours=1)).isoformat(),
        },
    )
    assert created.status_code == 201
    api = ApiClient(created.json()["token"])
    assert api.get("/api/v1/me").status_code == 200

    time_machine.move_to(timezone.now() + timedelta(hours=2))

    assert api.get("/api/v1/me").status_code == 401


def test_token_is_stored_only_as_its_hash(tenant):
    response = tenant.api().post("/api/v1/tokens", {"name": "Exporter", "role": "analyst"})
    raw = response.json()["token"]
    stored = ApiToken.objects.get(pk=response.json()["id"])

    assert stored.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw.startswith(stored.prefix)
    every_value = [str(v) for v in ApiToken.objects.values_list().get(pk=stored.pk)]
    every_value += [str(v) for row in AuditLogEntry.objects.values_list() for v in row]
    assert not any(raw in value for value in every_value)


def test_token_is_shown_once(tenant):
    created = tenant.api().post("/api/v1/tokens", {"name": "Once", "role": "analyst"}).json()
    listed = tenant.api().get("/api/v1/tokens").json()["items"]
    shown = tenant.api().get(f"/api/v1/tokens/{created['id']}").json()

    assert "token" in created
    assert all("token" not in item and "token_hash" not in item for item in listed)
    assert "token" not in shown


def test_token_records_when_it_was_last_used(tenant):
    token = ApiToken.objects.get(workspace=tenant.workspace, name="agent token")
    assert token.last_used_at is None
    tenant.api("agent").get("/api/v1/me")
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_signed_in_person_uses_the_api_through_the_session(tenant):
    client = Client(enforce_csrf_checks=True)
    assert client.login(username=tenant.extra_member.user.email, password="correct-horse-battery")

    me = client.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json()["role"] == "marketer"
    assert me.json()["user"]["email"] == tenant.extra_member.user.email

    # Changes through the session need the CSRF token, as any form does.
    refused = client.patch("/api/v1/workspace", '{"name": "x"}', content_type="application/json")
    assert refused.status_code in (401, 403)


def test_bearer_token_decides_the_workspace_not_the_session(tenant, other_tenant):
    client = Client()
    client.login(username=tenant.extra_member.user.email, password="correct-horse-battery")
    response = client.get(
        "/api/v1/workspace", HTTP_AUTHORIZATION=f"Bearer {other_tenant.tokens['analyst']}"
    )
    assert response.json()["id"] == str(other_tenant.workspace.pk)
