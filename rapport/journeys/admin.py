from django.contrib import admin

from rapport.journeys.models import Enrolment, Journey, StepRun
from rapport.tenancy.admin import ReadOnlyAdmin


@admin.register(Journey)
class JourneyAdmin(ReadOnlyAdmin):
    list_display = ("name", "status", "version", "trigger_type", "workspace", "created_at")
    list_filter = ("status", "trigger_type")


@admin.register(Enrolment)
class EnrolmentAdmin(ReadOnlyAdmin):
    list_display = ("id", "journey", "state", "step", "due_at", "holdout", "entered_at")
    list_filter = ("state", "holdout")
    raw_id_fields = ("journey", "version", "profile")


@admin.register(StepRun)
class StepRunAdmin(ReadOnlyAdmin):
    list_display = ("enrolment", "step", "visit", "outcome", "at")
    list_filter = ("outcome",)
    raw_id_fields = ("journey", "enrolment")
