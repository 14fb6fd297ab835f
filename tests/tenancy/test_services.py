import pytest
from django.db import transaction

from rapport.core.errors import ConflictError, InvalidInputError
from rapport.tenancy import selectors, services
from rapport.tenancy.models import ApiToken, AuditLogEntry, Membership, Source, User, Workspace
from rapport.tenancy.permissions import Role

SYSTEM = services.Actor.system("tests")


def actions(workspace) -> list[str]:
    return list(
        AuditLogEntry.objects.filter(workspace=workspace)
        .order_by("created_at", "id")
        .values_list("action", flat=True)
    )


@pytest.mark.django_db
class TestWorkspaceCreate:
    def test_creates_what_is_needed_to_start(self):
        created = services.workspace_create(name="  Acme   Ltd ", actor=SYSTEM)

        assert created.workspace.name == "Acme Ltd"
        assert created.source.name == "Default"
        assert selectors.write_key_get_by_secret(raw=created.write_key).source == created.source
        token = selectors.api_token_get_by_secret(raw=created.token)
        assert token.workspace == created.workspace and token.role == Role.ADMIN
        assert set(actions(created.workspace)) == {
            "workspace.create",
            "source.create",
            "write_key.create",
            "token.create",
        }

    @pytest.mark.parametrize("name", ["", "   ", "x" * 101])
    def test_bad_names_are_refused(self, name):
        with pytest.raises(InvalidInputError) as exc:
            services.workspace_create(name=name, actor=SYSTEM)
        assert exc.value.field == "name"
        assert Workspace.objects.count() == 0

    def test_names_are_unique_ignoring_case(self):
        services.workspace_create(name="Acme", actor=SYSTEM)
        with pytest.raises(ConflictError):
            services.workspace_create(name="ACME", actor=SYSTEM)
        assert Workspace.objects.count() == 1

    def test_rename_records_before_and_after(self, tenant):
        services.workspace_update(workspace=tenant.workspace, name="Alpha 2", actor=SYSTEM)
        entry = AuditLogEntry.objects.filter(action="workspace.update").get()
        assert entry.details == {"name": ["Alpha", "Alpha 2"]}


@pytest.mark.django_db
class TestMembers:
    def test_add_creates_a_login_with_a_generated_password(self, tenant):
        membership, password = services.member_add(
            workspace=tenant.workspace, email="Ann@Example.COM ", role="sales", actor=SYSTEM
        )
        assert membership.user.email == "ann@example.com"
        assert password and membership.user.check_password(password)

    def test_add_existing_login_to_another_workspace(self, tenant, other_tenant):
        email = tenant.extra_member.user.email
        membership, password = services.member_add(
            workspace=other_tenant.workspace, email=email.upper(), role="agent", actor=SYSTEM
        )
        assert password is None
        assert membership.user == tenant.extra_member.user
        assert User.objects.filter(email=email).count() == 1

    def test_adding_twice_is_a_conflict(self, tenant):
        with pytest.raises(ConflictError):
            services.member_add(
                workspace=tenant.workspace,
                email=tenant.extra_member.user.email,
                role="agent",
                actor=SYSTEM,
            )

    @pytest.mark.parametrize(
        ("email", "role", "password", "field"),
        [
            ("not-an-email", "agent", None, "email"),
            ("a@example.com", "owner", None, "role"),
            ("a@example.com", "agent", "123", "password"),
            ("a@example.com", "agent", "password1", "password"),
        ],
    )
    def test_bad_input_changes_nothing(self, tenant, email, role, password, field):
        users = User.objects.count()
        with pytest.raises(InvalidInputError) as exc:
            services.member_add(
                workspace=tenant.workspace, email=email, role=role, password=password, actor=SYSTEM
            )
        assert exc.value.field == field
        assert User.objects.count() == users

    def test_last_admin_cannot_be_demoted_or_removed(self, tenant):
        admin, _ = services.member_add(
            workspace=tenant.workspace, email="boss@example.com", role="admin", actor=SYSTEM
        )
        with pytest.raises(ConflictError):
            services.member_change_role(membership=admin, role="agent", actor=SYSTEM)
        with pytest.raises(ConflictError):
            services.member_remove(membership=admin, actor=SYSTEM)
        admin.refresh_from_db()
        assert admin.role == Role.ADMIN

    def test_an_admin_can_step_down_once_another_exists(self, tenant):
        first, _ = services.member_add(
            workspace=tenant.workspace, email="one@example.com", role="admin", actor=SYSTEM
        )
        services.member_change_role(membership=tenant.extra_member, role="admin", actor=SYSTEM)
        services.member_change_role(membership=first, role="analyst", actor=SYSTEM)
        services.member_remove(membership=first, actor=SYSTEM)
        assert not Membership.objects.filter(pk=first.pk).exists()
        assert "member.remove" in actions(tenant.workspace)


@pytest.mark.django_db
class TestTokens:
    def test_create_returns_the_secret_once_and_stores_its_hash(self, tenant):
        token, raw = services.api_token_create(
            workspace=tenant.workspace, name="BI", role="analyst", actor=SYSTEM
        )
        assert raw.startswith("rpt_") and len(raw) == 44
        assert token.token_hash != raw and raw not in token.prefix + token.token_hash
        assert selectors.api_token_get_by_secret(raw=raw) == token

    def test_revoke_is_final_and_logged_once(self, tenant):
        token, raw = services.api_token_create(
            workspace=tenant.workspace, name="BI", role="analyst", actor=SYSTEM
        )
        services.api_token_revoke(token=token, actor=SYSTEM)
        services.api_token_revoke(token=token, actor=SYSTEM)
        assert selectors.api_token_get_by_secret(raw=raw) is None
        assert actions(tenant.workspace).count("token.revoke") == 1

    def test_expiry_must_be_in_the_future(self, tenant):
        from django.utils import timezone

        with pytest.raises(InvalidInputError):
            services.api_token_create(
                workspace=tenant.workspace,
                name="old",
                role="agent",
                expires_at=timezone.now(),
                actor=SYSTEM,
            )


@pytest.mark.django_db
class TestSources:
    def test_rotation_keeps_the_old_key_until_it_is_revoked(self, tenant):
        source = tenant.created.source
        old = tenant.created.write_key
        new_key, new = services.write_key_create(source=source, actor=SYSTEM)

        assert selectors.write_key_get_by_secret(raw=old) is not None
        assert selectors.write_key_get_by_secret(raw=new) == new_key

        services.write_key_revoke(
            write_key=selectors.write_key_get_by_secret(raw=old), actor=SYSTEM
        )
        assert selectors.write_key_get_by_secret(raw=old) is None
        assert selectors.write_key_get_by_secret(raw=new) is not None

    def test_disabling_revokes_every_key(self, tenant):
        source = tenant.created.source
        _, second = services.write_key_create(source=source, actor=SYSTEM)
        services.source_disable(source=source, actor=SYSTEM)

        assert selectors.write_key_get_by_secret(raw=tenant.created.write_key) is None
        assert selectors.write_key_get_by_secret(raw=second) is None
        with pytest.raises(ConflictError):
            services.write_key_create(source=source, actor=SYSTEM)

    def test_names_unique_within_a_workspace_only(self, tenant, other_tenant):
        services.source_create(workspace=tenant.workspace, name="Shop", actor=SYSTEM)
        services.source_create(workspace=other_tenant.workspace, name="shop", actor=SYSTEM)
        with pytest.raises(ConflictError):
            services.source_create(workspace=tenant.workspace, name="SHOP", actor=SYSTEM)
        with pytest.raises(InvalidInputError):
            services.source_create(workspace=tenant.workspace, name="X", kind="fax", actor=SYSTEM)


@pytest.mark.django_db
def test_a_change_and_its_audit_entry_commit_or_fail_together(tenant):
    tokens_before = ApiToken.objects.count()
    audit_before = AuditLogEntry.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.api_token_create(
            workspace=tenant.workspace, name="doomed", role="agent", actor=SYSTEM
        )
        raise RuntimeError("caller fails after the service")
    assert ApiToken.objects.count() == tokens_before
    assert AuditLogEntry.objects.count() == audit_before


@pytest.mark.django_db
def test_audit_prune_keeps_at_least_30_days(tenant):
    with pytest.raises(InvalidInputError):
        services.audit_log_prune(workspace=tenant.workspace, older_than_days=7)
    assert services.audit_log_prune(workspace=tenant.workspace, older_than_days=30) == 0


def test_source_kinds_are_the_documented_ones():
    assert set(Source.Kind.values) == {"http", "website", "mobile", "server", "import"}
