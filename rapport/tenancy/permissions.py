"""Roles and the permissions they grant.

Each app declares its own permissions here with `permission_register`, naming the roles
that hold them, so that a role's powers are read in one place and extended by the app
that needs a new one.
"""

from dataclasses import dataclass

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    ADMIN = "admin", _("Admin")
    MARKETER = "marketer", _("Marketer")
    ANALYST = "analyst", _("Analyst")
    SALES = "sales", _("Sales")
    AGENT = "agent", _("Support agent")


ALL_ROLES = frozenset(Role)


@dataclass(frozen=True)
class Permission:
    code: str
    description: str
    roles: frozenset[Role]


_PERMISSIONS: dict[str, Permission] = {}


def permission_register(*, code: str, description: str, roles: set[Role] | frozenset) -> None:
    if code in _PERMISSIONS and _PERMISSIONS[code].roles != frozenset(roles):
        raise ValueError(f"permission {code!r} registered twice with different roles")
    _PERMISSIONS[code] = Permission(code=code, description=description, roles=frozenset(roles))


def role_has_permission(*, role: str, code: str) -> bool:
    permission = _PERMISSIONS.get(code)
    if permission is None:
        # An unknown code is a programming error; refusing is the safe answer.
        raise KeyError(f"unknown permission {code!r}")
    return role in permission.roles


def role_permissions(*, role: str) -> list[str]:
    return sorted(code for code, perm in _PERMISSIONS.items() if role in perm.roles)


def permissions_all() -> list[Permission]:
    return sorted(_PERMISSIONS.values(), key=lambda p: p.code)


PII_READ = "pii.read"
PII_EXPORT = "pii.export"

permission_register(
    code="workspace.read", description="See the workspace and one's own access", roles=ALL_ROLES
)
permission_register(
    code="workspace.manage", description="Rename and configure the workspace", roles={Role.ADMIN}
)
permission_register(
    code="members.manage", description="Add, change and remove members", roles={Role.ADMIN}
)
permission_register(
    code="tokens.manage", description="Create, list and revoke API tokens", roles={Role.ADMIN}
)
permission_register(
    code="sources.read",
    description="See data sources (not their keys)",
    roles={Role.ADMIN, Role.MARKETER, Role.ANALYST},
)
permission_register(
    code="sources.manage",
    description="Create sources, rotate and revoke write keys",
    roles={Role.ADMIN},
)
permission_register(code="audit.read", description="Read the audit log", roles={Role.ADMIN})
permission_register(
    code=PII_READ,
    description="See customers' emails and phone numbers unmasked",
    roles={Role.ADMIN, Role.MARKETER, Role.SALES},
)
permission_register(
    code=PII_EXPORT,
    description="Export personal data (recorded in the audit log)",
    roles={Role.ADMIN},
)
