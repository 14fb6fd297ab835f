"""Each role against each endpoint gets exactly the access the table below says."""

import pytest

from rapport.tenancy.models import AuditLogEntry
from rapport.tenancy.permissions import Role
from tests.api.operations import OPERATIONS, operation_call

ALL = {role.value for role in Role}
ADMIN = {"admin"}
SOURCE_READERS = {"admin", "marketer", "analyst"}

MERGERS = {"admin", "marketer", "sales", "agent"}
SEGMENT_MANAGERS = {"admin", "marketer", "analyst"}
# The example view is shared: changing it takes views.share.
VIEW_SHARERS = {"admin", "marketer", "analyst", "sales"}
MESSAGE_SENDERS = {"admin", "marketer"}
JOURNEY_WRITERS = {"admin", "marketer"}
SELLERS = {"admin", "sales"}
ACTIVITY_WRITERS = {"admin", "marketer", "sales", "agent"}
EXPECTED_ACCESS: dict[tuple[str, str], set[str]] = {
    ("GET", "/api/v1/me"): ALL,
    ("GET", "/api/v1/workspace"): ALL,
    ("PATCH", "/api/v1/workspace"): ADMIN,
    ("GET", "/api/v1/members"): ALL,
    ("GET", "/api/v1/invitations"): ADMIN,
    ("POST", "/api/v1/invitations"): ADMIN,
    ("GET", "/api/v1/invitations/{invitation_id}"): ADMIN,
    ("DELETE", "/api/v1/invitations/{invitation_id}"): ADMIN,
    ("GET", "/api/v1/members/{member_id}"): ALL,
    ("PATCH", "/api/v1/members/{member_id}"): ADMIN,
    ("DELETE", "/api/v1/members/{member_id}"): ADMIN,
    ("GET", "/api/v1/tokens"): ADMIN,
    ("POST", "/api/v1/tokens"): ADMIN,
    ("GET", "/api/v1/tokens/{token_id}"): ADMIN,
    ("DELETE", "/api/v1/tokens/{token_id}"): ADMIN,
    ("GET", "/api/v1/sources"): SOURCE_READERS,
    ("POST", "/api/v1/sources"): ADMIN,
    ("GET", "/api/v1/sources/{source_id}"): SOURCE_READERS,
    ("PATCH", "/api/v1/sources/{source_id}"): ADMIN,
    ("POST", "/api/v1/sources/{source_id}/disable"): ADMIN,
    ("POST", "/api/v1/sources/{source_id}/write-keys"): ADMIN,
    ("DELETE", "/api/v1/sources/{source_id}/write-keys/{key_id}"): ADMIN,
    ("GET", "/api/v1/audit-log"): ADMIN,
    ("GET", "/api/v1/events"): ALL,
    ("GET", "/api/v1/events/quarantine"): SOURCE_READERS,
    ("GET", "/api/v1/events/{event_id}"): ALL,
    ("GET", "/api/v1/imports"): {"admin", "marketer"},
    ("POST", "/api/v1/imports"): {"admin", "marketer"},
    ("GET", "/api/v1/imports/{import_id}"): {"admin", "marketer"},
    ("GET", "/api/v1/pipeline"): SOURCE_READERS,
    ("POST", "/api/v1/pipeline/retry"): ADMIN,
    ("POST", "/api/v1/pipeline/replay"): ADMIN,
    ("GET", "/api/v1/profiles"): ALL,
    # Every role searches; each kind of hit is shown only to roles that may read it.
    ("GET", "/api/v1/search"): ALL,
    ("GET", "/api/v1/profiles/{profile_id}"): ALL,
    ("GET", "/api/v1/profiles/{profile_id}/timeline"): ALL,
    ("GET", "/api/v1/profiles/{profile_id}/merges"): ALL,
    ("POST", "/api/v1/profiles/{profile_id}/merge"): {"admin", "marketer", "sales", "agent"},
    ("POST", "/api/v1/profiles/merges/{merge_id}/unmerge"): {"admin", "marketer", "sales", "agent"},
    ("POST", "/api/v1/profiles/{profile_id}/export"): ADMIN,
    ("POST", "/api/v1/profiles/{profile_id}/erase"): ADMIN,
    ("GET", "/api/v1/identity/rules"): ALL,
    ("GET", "/api/v1/profiles/{profile_id}/consents"): ALL,
    ("GET", "/api/v1/profiles/{profile_id}/consents/history"): ALL,
    ("POST", "/api/v1/profiles/{profile_id}/consents"): {"admin", "marketer", "sales", "agent"},
    ("PATCH", "/api/v1/profiles/{profile_id}/traits"): {"admin", "marketer", "sales", "agent"},
    ("GET", "/api/v1/accounts"): ALL,
    ("GET", "/api/v1/accounts/{account_id}"): ALL,
    ("GET", "/api/v1/accounts/{account_id}/members"): ALL,
    ("GET", "/api/v1/accounts/{account_id}/timeline"): ALL,
    ("PATCH", "/api/v1/identity/rules"): ADMIN,
    ("GET", "/api/v1/accounts/merges"): ALL,
    ("POST", "/api/v1/accounts/{account_id}/merge"): MERGERS,
    ("POST", "/api/v1/accounts/merges/{account_merge_id}/unmerge"): MERGERS,
    ("GET", "/api/v1/identity/duplicates"): ALL,
    ("POST", "/api/v1/identity/duplicates/scan"): MERGERS,
    ("POST", "/api/v1/identity/duplicates/{candidate_id}/merge"): MERGERS,
    ("POST", "/api/v1/identity/duplicates/{candidate_id}/dismiss"): MERGERS,
    ("GET", "/api/v1/segments/rule-schema"): ALL,
    ("POST", "/api/v1/messages"): MESSAGE_SENDERS,
    ("GET", "/api/v1/messages/{message_id}"): ALL,
    ("GET", "/api/v1/messages"): ALL,
    ("POST", "/api/v1/messages/{message_id}/retry"): MESSAGE_SENDERS,
    ("GET", "/api/v1/templates"): ALL,
    ("POST", "/api/v1/templates"): MESSAGE_SENDERS,
    ("GET", "/api/v1/templates/{template_id}"): ALL,
    ("GET", "/api/v1/broadcasts"): ALL,
    ("POST", "/api/v1/broadcasts"): MESSAGE_SENDERS,
    ("GET", "/api/v1/broadcasts/{broadcast_id}"): ALL,
    ("POST", "/api/v1/broadcasts/{broadcast_id}/send"): MESSAGE_SENDERS,
    ("POST", "/api/v1/broadcasts/{broadcast_id}/cancel"): MESSAGE_SENDERS,
    ("GET", "/api/v1/channels/settings"): ALL,
    ("PATCH", "/api/v1/channels/settings"): ADMIN,
    ("GET", "/api/v1/suppressions"): ALL,
    ("POST", "/api/v1/suppressions"): ADMIN,
    ("DELETE", "/api/v1/suppressions/{suppression_id}"): ADMIN,
    ("GET", "/api/v1/segments"): ALL,
    ("POST", "/api/v1/segments"): SEGMENT_MANAGERS,
    ("POST", "/api/v1/segments/preview"): ALL,
    ("GET", "/api/v1/workspace/commerce"): ALL,
    ("PATCH", "/api/v1/workspace/commerce"): ADMIN,
    ("GET", "/api/v1/exchange-rates"): ALL,
    ("POST", "/api/v1/exchange-rates"): ADMIN,
    ("POST", "/api/v1/exchange-rates/csv"): ADMIN,
    ("DELETE", "/api/v1/exchange-rates/{rate_id}"): ADMIN,
    ("GET", "/api/v1/segments/profile/{profile_id}"): ALL,
    ("GET", "/api/v1/segments/{segment_id}"): ALL,
    ("PATCH", "/api/v1/segments/{segment_id}"): SEGMENT_MANAGERS,
    ("DELETE", "/api/v1/segments/{segment_id}"): SEGMENT_MANAGERS,
    ("POST", "/api/v1/segments/{segment_id}/refresh"): SEGMENT_MANAGERS,
    ("GET", "/api/v1/segments/{segment_id}/members"): ALL,
    ("POST", "/api/v1/segments/{segment_id}/members"): SEGMENT_MANAGERS,
    ("GET", "/api/v1/segments/{segment_id}/history"): ALL,
    ("GET", "/api/v1/segments/{segment_id}/trend"): ALL,
    ("POST", "/api/v1/segments/{segment_id}/snapshot"): SEGMENT_MANAGERS,
    ("GET", "/api/v1/models"): ALL,
    ("GET", "/api/v1/models/clv/latest"): ALL,
    ("GET", "/api/v1/models/churn/latest"): ALL,
    ("POST", "/api/v1/models/clv/train"): SEGMENT_MANAGERS,
    ("POST", "/api/v1/models/churn/train"): SEGMENT_MANAGERS,
    ("POST", "/api/v1/models/score"): SEGMENT_MANAGERS,
    ("GET", "/api/v1/models/settings"): ALL,
    ("PATCH", "/api/v1/models/settings"): SEGMENT_MANAGERS,
    ("POST", "/api/v1/models/drivers/{driver_id}/segment"): SEGMENT_MANAGERS,
    ("GET", "/api/v1/models/profile/{profile_id}"): ALL,
    ("POST", "/api/v1/segments/{segment_id}/export"): {"admin", "marketer"},
    ("POST", "/api/v1/segments/{segment_id}/audience-schedules"): {"admin", "marketer"},
    ("GET", "/api/v1/segments/{segment_id}/audience-schedules"): {"admin", "marketer"},
    ("DELETE", "/api/v1/segments/{segment_id}/audience-schedules/{schedule_id}"): {
        "admin",
        "marketer",
    },
    ("GET", "/api/v1/segments/{segment_id}/audience-schedules/{schedule_id}/runs"): {
        "admin",
        "marketer",
    },
    (
        "GET",
        "/api/v1/segments/{segment_id}/audience-schedules/{schedule_id}/runs/{run_id}/download",
    ): {"admin", "marketer"},
    ("GET", "/api/v1/rfm"): ALL,
    ("POST", "/api/v1/rfm/refresh"): SEGMENT_MANAGERS,
    ("GET", "/api/v1/lifecycle"): ALL,
    ("GET", "/api/v1/lifecycle/changes"): ALL,
    ("POST", "/api/v1/lifecycle/refresh"): SEGMENT_MANAGERS,
    ("PATCH", "/api/v1/lifecycle/stages/{stage_id}"): {"admin", "marketer"},
    ("POST", "/api/v1/lifecycle/stages/{stage_id}/sub-stages"): {"admin", "marketer"},
    ("DELETE", "/api/v1/lifecycle/sub-stages/{sub_stage_id}"): {"admin", "marketer"},
    ("GET", "/api/v1/analytics/settings"): ALL,
    ("PATCH", "/api/v1/analytics/settings"): SEGMENT_MANAGERS,
    ("GET", "/api/v1/analytics/kpis"): ALL,
    ("GET", "/api/v1/analytics/kpis/history"): ALL,
    ("GET", "/api/v1/analytics/dashboard"): ALL,
    ("POST", "/api/v1/analytics/snapshots/take"): SEGMENT_MANAGERS,
    ("POST", "/api/v1/analytics/funnel"): ALL,
    ("GET", "/api/v1/analytics/cohorts"): ALL,
    ("GET", "/api/v1/analytics/lifecycle"): ALL,
    ("GET", "/api/v1/analytics/rfm"): ALL,
    ("POST", "/api/v1/analytics/customers"): ALL,
    ("POST", "/api/v1/analytics/segments"): SEGMENT_MANAGERS,
    ("GET", "/api/v1/saved-views"): ALL,
    ("POST", "/api/v1/saved-views"): VIEW_SHARERS,
    ("GET", "/api/v1/saved-views/{view_id}"): ALL,
    ("PATCH", "/api/v1/saved-views/{view_id}"): VIEW_SHARERS,
    ("DELETE", "/api/v1/saved-views/{view_id}"): VIEW_SHARERS,
    ("GET", "/api/v1/journeys"): ALL,
    ("POST", "/api/v1/journeys"): JOURNEY_WRITERS,
    ("GET", "/api/v1/journeys/{journey_id}"): ALL,
    ("PUT", "/api/v1/journeys/{journey_id}"): JOURNEY_WRITERS,
    ("PATCH", "/api/v1/journeys/{journey_id}"): JOURNEY_WRITERS,
    ("POST", "/api/v1/journeys/{journey_id}/validate"): ALL,
    ("POST", "/api/v1/journeys/{journey_id}/start"): JOURNEY_WRITERS,
    ("POST", "/api/v1/journeys/{journey_id}/pause"): JOURNEY_WRITERS,
    ("POST", "/api/v1/journeys/{journey_id}/stop"): JOURNEY_WRITERS,
    ("POST", "/api/v1/journeys/{journey_id}/migrate"): JOURNEY_WRITERS,
    ("POST", "/api/v1/decisions"): ALL,
    ("GET", "/api/v1/actions"): ALL,
    ("POST", "/api/v1/actions"): JOURNEY_WRITERS,
    ("GET", "/api/v1/actions/{action_key}"): ALL,
    ("PATCH", "/api/v1/actions/{action_key}"): JOURNEY_WRITERS,
    ("DELETE", "/api/v1/actions/{action_key}"): JOURNEY_WRITERS,
    ("GET", "/api/v1/decision-settings"): ALL,
    ("PATCH", "/api/v1/decision-settings"): JOURNEY_WRITERS,
    ("POST", "/api/v1/decisions/{decision_id}/outcomes"): ALL,
    ("POST", "/api/v1/journeys/{journey_id}/enrolments"): JOURNEY_WRITERS,
    ("GET", "/api/v1/pipelines"): ALL,
    ("POST", "/api/v1/pipelines"): ADMIN,
    ("GET", "/api/v1/pipelines/{pipeline_id}"): ALL,
    ("PATCH", "/api/v1/pipelines/{pipeline_id}"): ADMIN,
    ("DELETE", "/api/v1/pipelines/{pipeline_id}"): ADMIN,
    ("GET", "/api/v1/deals"): ALL,
    ("POST", "/api/v1/deals"): SELLERS,
    ("GET", "/api/v1/deals/{deal_id}"): ALL,
    ("PATCH", "/api/v1/deals/{deal_id}"): SELLERS,
    ("DELETE", "/api/v1/deals/{deal_id}"): SELLERS,
    ("POST", "/api/v1/deals/{deal_id}/move"): SELLERS,
    ("GET", "/api/v1/deals/{deal_id}/history"): ALL,
    ("GET", "/api/v1/forecast"): ALL,
    ("GET", "/api/v1/tasks"): ALL,
    ("POST", "/api/v1/tasks"): ACTIVITY_WRITERS,
    ("GET", "/api/v1/tasks/{task_id}"): ALL,
    ("PATCH", "/api/v1/tasks/{task_id}"): ACTIVITY_WRITERS,
    ("DELETE", "/api/v1/tasks/{task_id}"): ACTIVITY_WRITERS,
    ("POST", "/api/v1/tasks/{task_id}/complete"): ACTIVITY_WRITERS,
    ("GET", "/api/v1/notes"): ALL,
    ("POST", "/api/v1/notes"): ACTIVITY_WRITERS,
    ("GET", "/api/v1/notes/{note_id}"): ALL,
    ("DELETE", "/api/v1/notes/{note_id}"): ACTIVITY_WRITERS,
    ("PUT", "/api/v1/profiles/{profile_id}/owner"): SELLERS,
    ("PUT", "/api/v1/accounts/{account_id}/owner"): SELLERS,
    ("POST", "/api/v1/owners/assign"): SELLERS,
    # Each person's own notifications (a token has none).
    ("GET", "/api/v1/notifications"): ALL,
    ("POST", "/api/v1/notifications/read"): ALL,
    ("POST", "/api/v1/lead-models/train"): SELLERS,
    ("GET", "/api/v1/lead-models"): ALL,
    ("GET", "/api/v1/profiles/{profile_id}/lead-score"): ALL,
}


def test_every_endpoint_has_an_expected_access_row():
    assert {op.key for op in OPERATIONS} == set(EXPECTED_ACCESS)


@pytest.mark.parametrize("role", sorted(ALL))
@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
def test_role_gets_exactly_its_access(operation, role, tenant):
    allowed = role in EXPECTED_ACCESS[operation.key]
    if operation.key == ("POST", "/api/v1/messages/{message_id}/retry"):
        # Only a failed message can be retried (others answer 409).
        from rapport.channels.models import Message

        Message.objects.filter(workspace=tenant.workspace).update(status="failed")
    audit_before = AuditLogEntry.objects.count()

    response = operation_call(tenant.api(role), operation, tenant.path_objects())

    if allowed:
        assert 200 <= response.status_code < 300, response.content
    else:
        assert response.status_code == 403, response.content
        error = response.json()["error"]
        assert error["code"] == "forbidden"
        assert role in error["message"]
        assert AuditLogEntry.objects.count() == audit_before
