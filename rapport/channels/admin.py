from django.contrib import admin

from rapport.channels.models import Broadcast, Message, Suppression, Template
from rapport.tenancy.admin import ReadOnlyAdmin


@admin.register(Template)
class TemplateAdmin(ReadOnlyAdmin):
    list_display = ("name", "channel", "workspace", "updated_at")
    list_filter = ("channel",)


@admin.register(Broadcast)
class BroadcastAdmin(ReadOnlyAdmin):
    list_display = ("name", "channel", "purpose", "status", "workspace", "created_at")
    list_filter = ("status", "channel")


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ("id", "channel", "purpose", "status", "skip_reason", "attempts", "sent_at")
    list_filter = ("status", "channel", "purpose")
    raw_id_fields = ("profile", "broadcast", "template")


@admin.register(Suppression)
class SuppressionAdmin(ReadOnlyAdmin):
    list_display = ("address", "channel", "reason", "workspace", "created_at")
    list_filter = ("reason", "channel")
