import pytest

from rapport.tenancy.permissions import (
    PII_READ,
    Role,
    permission_register,
    role_has_permission,
    role_permissions,
)


@pytest.mark.parametrize(
    ("role", "sees_pii"),
    [("admin", True), ("marketer", True), ("sales", True), ("analyst", False), ("agent", False)],
)
def test_who_sees_personal_data(role, sees_pii):
    assert role_has_permission(role=role, code=PII_READ) is sees_pii


def test_only_admins_manage_access():
    for code in ["members.manage", "tokens.manage", "sources.manage", "audit.read", "pii.export"]:
        assert [r for r in Role if role_has_permission(role=r, code=code)] == [Role.ADMIN]


def test_unknown_permission_is_a_programming_error():
    with pytest.raises(KeyError):
        role_has_permission(role="admin", code="no.such.permission")


def test_apps_extend_the_permissions():
    permission_register(code="tests.extra", description="for a test", roles={Role.AGENT})
    assert "tests.extra" in role_permissions(role="agent")
    assert "tests.extra" not in role_permissions(role="admin")
    with pytest.raises(ValueError):
        permission_register(code="tests.extra", description="again", roles={Role.ADMIN})
