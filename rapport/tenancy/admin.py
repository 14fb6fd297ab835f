"""Read-only views for operators. Changes go through the services (the API, the UI
and the CLI), so that each one is validated and lands in the audit log."""

from django.contrib import admin

from rapport.tenancy.models import (
    ApiToken,
    AuditLogEntry,
    Invitation,
    Membership,
    Source,
    Workspace,
    WriteKey,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Workspace)
class WorkspaceAdmin(ReadOnlyAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdmin):
    list_display = ["user", "workspace", "role", "created_at"]
    list_filter = ["role"]


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdmin):
    list_display = ["email", "workspace", "role", "created_at", "expires_at", "accepted_at"]
    exclude = ["token_hash"]


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = ["name", "prefix", "workspace", "role", "last_used_at", "revoked_at"]
    exclude = ["token_hash"]


@admin.register(Source)
class SourceAdmin(ReadOnlyAdmin):
    list_display = ["name", "kind", "workspace", "disabled_at"]


@admin.register(WriteKey)
class WriteKeyAdmin(ReadOnlyAdmin):
    list_display = ["prefix", "source", "workspace", "last_used_at", "revoked_at"]
    exclude = ["key_hash"]


@admin.register(AuditLogEntry)
class AuditLogEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "workspace", "actor_label", "action", "target_type"]
    list_filter = ["action"]
    search_fields = ["actor_label", "target_id"]
