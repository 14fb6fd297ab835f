import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from rapport.tenancy.models import ApiToken, Membership
from rapport.tenancy.permissions import Role
from rapport.tenancy.services import Actor, NewWorkspace, api_token_create, member_add
from rapport.tenancy.services import workspace_create as _workspace_create


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's deliberate slowness is for attackers, not for the test suite.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


class ApiClient:
    """Django's test client speaking JSON with a bearer token."""

    def __init__(self, token: str | None) -> None:
        self.client = Client()
        self.token = token

    def request(
        self, method: str, path: str, body: Any = None, *, raw: bytes | None = None, **extra
    ):
        headers = {}
        if self.token is not None:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {self.token}"
        headers.update(extra)
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        kwargs = {"content_type": "application/json"} if data is not None else {}
        handler = getattr(self.client, method.lower())
        if data is None:
            return handler(path, **headers)
        return handler(path, data=data, **kwargs, **headers)

    def get(self, path: str, **extra):
        return self.request("GET", path, **extra)

    def post(self, path: str, body: Any = None, **extra):
        return self.request("POST", path, body, **extra)

    def patch(self, path: str, body: Any = None, **extra):
        return self.request("PATCH", path, body, **extra)

    def delete(self, path: str, **extra):
        return self.request("DELETE", path, **extra)


@dataclass
class Tenant:
    """A workspace with a token per role and a few objects to act on."""

    created: NewWorkspace
    tokens: dict[str, str]
    extra_member: Membership

    @property
    def workspace(self):
        return self.created.workspace

    def api(self, role: str = Role.ADMIN) -> ApiClient:
        return ApiClient(self.tokens[role])

    def path_objects(self) -> dict[str, str]:
        """A value of this workspace for every path parameter the API has."""
        source = self.created.source
        return {
            "member_id": str(self.extra_member.pk),
            "token_id": str(ApiToken.objects.get(workspace=self.workspace, name="Admin token").pk),
            "source_id": str(source.pk),
            "key_id": str(source.write_keys.order_by("created_at").first().pk),
        }


def tenant_create(name: str) -> Tenant:
    actor = Actor.system("tests")
    created = _workspace_create(name=name, actor=actor)
    tokens = {Role.ADMIN.value: created.token}
    for role in Role:
        if role != Role.ADMIN:
            _, raw = api_token_create(
                workspace=created.workspace, name=f"{role} token", role=role, actor=actor
            )
            tokens[role.value] = raw
    extra, _ = member_add(
        workspace=created.workspace,
        email=f"marketer@{name.lower().replace(' ', '-')}.example.com",
        role=Role.MARKETER,
        password="correct-horse-battery",
        actor=actor,
    )
    return Tenant(created=created, tokens=tokens, extra_member=extra)


@pytest.fixture
def tenant(db) -> Tenant:
    return tenant_create("Alpha")


@pytest.fixture
def other_tenant(db) -> Tenant:
    return tenant_create("Beta")


@pytest.fixture
def admin_api(tenant) -> ApiClient:
    return tenant.api(Role.ADMIN)
