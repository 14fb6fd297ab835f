"""Every operation the API exposes, read from its OpenAPI schema, so that the
cross-cutting tests (isolation, roles, bad input) cover new endpoints by themselves."""

from dataclasses import dataclass
from typing import Any

from rapport.api import api


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    path_params: tuple[str, ...]
    body_schema: dict | None
    multipart: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, self.path)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    def url(self, values: dict[str, str]) -> str:
        return self.path.format(**{name: values[name] for name in self.path_params})


def _resolve(schema: dict, ref_or_schema: dict) -> dict:
    ref = ref_or_schema.get("$ref")
    if ref is None:
        return ref_or_schema
    name = ref.rsplit("/", 1)[-1]
    return schema["components"]["schemas"][name]


def api_operations() -> list[Operation]:
    schema = api.get_openapi_schema()
    operations = []
    for path, methods in schema["paths"].items():
        for method, op in methods.items():
            params = tuple(p["name"] for p in op.get("parameters", []) if p["in"] == "path")
            content = (op.get("requestBody") or {}).get("content", {})
            multipart = "multipart/form-data" in content
            body = content.get("application/json") or content.get("multipart/form-data")
            body_schema = _resolve(schema, body["schema"]) if body else None
            operations.append(Operation(method.upper(), path, params, body_schema, multipart))
    return operations


OPERATIONS = api_operations()

# A journey graph (docs/journeys.md) that validates in any workspace.
JOURNEY_EXAMPLE: dict[str, Any] = {
    "name": "Welcome month",
    "trigger": {"type": "event", "event": "Signed Up", "where": []},
    "goal": {"event": "Order Completed", "within_days": 30},
    "holdout_percent": 10,
    "reentry": {"mode": "never"},
    "start": "welcome",
    "steps": {
        "welcome": {
            "type": "send",
            "channel": "email",
            "purpose": "marketing",
            "content": {"subject": "Welcome", "html": "<p>Glad to have you.</p>"},
            "next": "wait",
        },
        "wait": {"type": "wait", "seconds": 86400, "next": "done"},
        "done": {"type": "exit"},
    },
}

# A valid body for each operation that takes one. A new endpoint with a body must add
# one here (test_every_body_operation_has_an_example fails until it does).
EXAMPLE_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", "/api/v1/workspace"): {"name": "Renamed workspace"},
    ("POST", "/api/v1/saved-views"): {
        "list": "customers",
        "name": "High churn risk",
        "shared": True,
        "columns": ["email", "churn", "trait:plan"],
        "sort": "-churn",
        "filters": {"churn": "high"},
    },
    ("PATCH", "/api/v1/saved-views/{view_id}"): {"name": "Renamed view", "sort": "name"},
    ("POST", "/api/v1/invitations"): {"email": "new.person@example.com", "role": "analyst"},
    ("PATCH", "/api/v1/members/{member_id}"): {"role": "analyst"},
    ("POST", "/api/v1/tokens"): {"name": "Reporting", "role": "analyst"},
    ("POST", "/api/v1/sources"): {"name": "Website", "kind": "website"},
    ("PATCH", "/api/v1/sources/{source_id}"): {"name": "Renamed source"},
    ("PATCH", "/api/v1/identity/rules"): {
        "external_kinds": ["loyalty_card"],
        "limits": {"anonymous_id": 10, "loyalty_card": 1},
        "priorities": {"loyalty_card": 2},
        "blocked_values": ["n/a"],
        "default_phone_region": "GB",
    },
    ("POST", "/api/v1/profiles/{profile_id}/consents"): {
        "channel": "sms",
        "purpose": "marketing",
        "status": "denied",
    },
    ("PATCH", "/api/v1/profiles/{profile_id}/traits"): {"traits": {"plan": "pro"}},
    ("POST", "/api/v1/profiles/{profile_id}/merge"): {
        "other": "{other_profile_id}",
        "reason": "Same customer, two sign-ups",
    },
    ("POST", "/api/v1/accounts/{account_id}/merge"): {
        "other": "{other_account_id}",
        "reason": "The same company under a second legal name",
    },
    ("POST", "/api/v1/identity/duplicates/scan"): {"kind": "profile"},
    ("POST", "/api/v1/identity/duplicates/{candidate_id}/merge"): {
        "reason": "Same birthday and address",
        "survivor": "b",
    },
    ("POST", "/api/v1/identity/duplicates/{candidate_id}/dismiss"): {"reason": "Twins"},
    ("POST", "/api/v1/segments"): {
        "name": "Big spenders",
        "kind": "dynamic",
        "rule": {
            "all": [
                {"trait": "plan", "op": "eq", "value": "pro"},
                {"event": "Order Completed", "count": {"op": "gte", "value": 3}},
            ]
        },
    },
    ("POST", "/api/v1/segments/preview"): {"rule": {"trait": "plan", "op": "exists"}},
    ("PATCH", "/api/v1/workspace/commerce"): {
        "purchase_event": "Order Completed",
        "reporting_currency": "GBP",
    },
    ("POST", "/api/v1/exchange-rates"): {
        "rates": [{"currency": "EUR", "rate": "0.86", "valid_from": "2026-01-01"}]
    },
    ("PATCH", "/api/v1/segments/{segment_id}"): {"name": "Renamed segment"},
    ("POST", "/api/v1/models/clv/train"): {"time_unit": "week"},
    ("POST", "/api/v1/models/churn/train"): {"inactive_days": 30},
    ("PATCH", "/api/v1/models/settings"): {"churn_label": "inactive", "churn_inactive_days": 45},
    ("POST", "/api/v1/models/drivers/{driver_id}/segment"): {"name": "Free plan (driver)"},
    ("POST", "/api/v1/segments/{segment_id}/members"): {"values": ["jane.doe@example.com"]},
    ("POST", "/api/v1/segments/{segment_id}/snapshot"): {"name": "Snapshot of the list"},
    ("POST", "/api/v1/segments/{segment_id}/audience-schedules"): {
        "format": "meta",
        "every": "weekly",
        "hour": 4,
    },
    ("PATCH", "/api/v1/lifecycle/stages/{stage_id}"): {"name": "Getting started"},
    ("POST", "/api/v1/lifecycle/stages/{stage_id}/sub-stages"): {
        "key": "activated",
        "name": "Activated",
        "rule": {"event": "Feature Used"},
    },
    ("PATCH", "/api/v1/analytics/settings"): {
        "timezone": "Europe/London",
        "refund_event": "Order Refunded",
        "nps_event": "Survey Answered",
        "nps_property": "score",
        "message_events": ["Email Delivered"],
        "engagement_events": ["Email Opened", "Email Link Clicked"],
    },
    ("POST", "/api/v1/analytics/snapshots/take"): {"day": "2026-01-31", "backfill_days": 1},
    ("POST", "/api/v1/analytics/funnel"): {
        "steps": [{"page": "*"}, {"event": "Signed Up"}, {"event": "Order Completed"}],
        "start": "2026-01-01",
        "end": "2026-01-31",
        "conversion_days": 30,
        "breakdown": "utm_source",
        "segments": [],
    },
    ("POST", "/api/v1/analytics/customers"): {"kpi": {"figure": "customers"}},
    ("POST", "/api/v1/analytics/segments"): {
        "name": "Churned last month",
        "kpi": {"figure": "churned"},
    },
    ("POST", "/api/v1/pipeline/retry"): {"consumer": "identity"},
    ("POST", "/api/v1/messages"): {
        "profile_id": "{profile_id}",
        "channel": "email",
        "purpose": "transactional",
        "content": {"subject": "Your receipt", "html": "<p>Thank you for your order.</p>"},
        "idempotency_key": "order-1001-receipt",
    },
    ("POST", "/api/v1/templates"): {
        "name": "Order shipped",
        "channel": "email",
        "subject": "Your order is on its way",
        "html": "<p>It left our warehouse today.</p>",
    },
    ("POST", "/api/v1/broadcasts"): {
        "name": "Spring sale",
        "channel": "email",
        "purpose": "marketing",
        "segment_id": "{segment_id}",
        "subject": "Spring sale",
        "body": "<p>Twenty percent off everything.</p>",
    },
    ("POST", "/api/v1/broadcasts/{broadcast_id}/send"): {"holdout": 0.1},
    ("PATCH", "/api/v1/channels/settings"): {
        "from_email": "news@example.com",
        "from_name": "The News",
        "transport_url": "smtp://mailer:secret@mail.example.com:587",
        "caps": {"email": {"max": 2, "days": 7}},
        "quiet_start": 21,
        "quiet_end": 8,
        "timezone": "Europe/London",
    },
    ("POST", "/api/v1/suppressions"): {
        "channel": "email",
        "address": "asked.to.stop@example.com",
        "reason": "manual",
    },
    ("POST", "/api/v1/journeys"): JOURNEY_EXAMPLE,
    ("PUT", "/api/v1/journeys/{journey_id}"): JOURNEY_EXAMPLE,
    ("PATCH", "/api/v1/journeys/{journey_id}"): {"name": "Renamed journey"},
    ("POST", "/api/v1/journeys/{journey_id}/migrate"): {"from_version": 1},
    ("POST", "/api/v1/journeys/{journey_id}/enrolments"): {"profile_id": "{profile_id}"},
    ("POST", "/api/v1/decisions"): {
        "profile_id": "{profile_id}",
        "channel": "web",
        "placement": "home_banner",
        "context": {"device": "mobile"},
    },
    ("POST", "/api/v1/decisions/{decision_id}/outcomes"): {
        "action": "{action_key}",
        "outcome": "clicked",
    },
    ("POST", "/api/v1/actions"): {
        "key": "brew-planner-tutorial",
        "name": "Brew Planner tutorial",
        "kind": "message",
        "channels": ["web", "email"],
        "placements": ["home_banner"],
        "content": {"web": {"title": "Plan your week", "link_url": "/brew-planner"}},
        "value": "5",
        "eligibility": {"trait": "plan", "op": "eq", "value": "subscription"},
        "lever": 1.5,
        "channel_levers": {"email": 0.5},
        "budget": 1000,
    },
    ("PATCH", "/api/v1/actions/{action_key}"): {"name": "Renamed action", "lever": 2},
    ("PATCH", "/api/v1/decision-settings"): {
        "control_percent": 10,
        "control_mode": "nothing",
        "channel_weights": {"web": 1.2},
    },
    ("POST", "/api/v1/pipeline/replay"): {
        "consumer": "analytics",
        "since": "2020-01-01T00:00:00Z",
        "until": "2030-01-01T00:00:00Z",
    },
}


EXAMPLE_BODIES.update(
    {
        ("POST", "/api/v1/pipelines"): {"name": "Partnerships", "currency": "EUR"},
        ("PATCH", "/api/v1/pipelines/{pipeline_id}"): {"name": "Renamed pipeline"},
        ("POST", "/api/v1/deals"): {
            "name": "Office plan for 40 seats",
            "pipeline_id": "{deal_pipeline_id}",
            "amount": "4800.00",
            "currency": "GBP",
            "profile_id": "{profile_id}",
        },
        ("PATCH", "/api/v1/deals/{deal_id}"): {"amount": "5200", "expected_close": "2027-03-31"},
        ("POST", "/api/v1/deals/{deal_id}/move"): {"stage_id": "{deal_stage_id}"},
        ("POST", "/api/v1/tasks"): {
            "title": "Call about the renewal",
            "due_at": "2027-01-15T10:00:00+00:00",
            "profile_id": "{profile_id}",
        },
        ("PATCH", "/api/v1/tasks/{task_id}"): {"due_date": "2027-01-20"},
        ("POST", "/api/v1/tasks/{task_id}/complete"): {"done": True},
        ("POST", "/api/v1/notes"): {
            "kind": "call",
            "body": "<p>Wants a <b>quote</b> for 40 seats.</p>",
            "profile_id": "{profile_id}",
            "mentions": ["{member_id}"],
        },
        ("PUT", "/api/v1/profiles/{profile_id}/owner"): {"member_id": "{member_id}"},
        ("PUT", "/api/v1/accounts/{account_id}/owner"): {"member_id": "{member_id}"},
        ("POST", "/api/v1/owners/assign"): {
            "member_ids": ["{member_id}"],
            "profile_ids": ["{profile_id}", "{other_profile_id}"],
        },
        ("POST", "/api/v1/notifications/read"): {},
    }
)

# Multipart operations (file uploads): their form fields, and a file.
EXAMPLE_FORMS: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/imports"): {"kind": "customers", "id_column": "id"},
    ("POST", "/api/v1/exchange-rates/csv"): {},
}
# The file each multipart operation sends (name, content); people.csv by default.
EXAMPLE_FILES: dict[tuple[str, str], tuple[str, bytes]] = {
    ("POST", "/api/v1/exchange-rates/csv"): (
        "rates.csv",
        b"currency,rate,valid_from\nEUR,0.86,2026-01-01\n",
    ),
}


def example_body(
    operation: Operation, values: dict[str, str] | None = None
) -> dict[str, Any] | None:
    """A valid body; "{name}" strings are filled from the path objects in `values`."""
    if operation.body_schema is None or operation.multipart:
        return None
    body = EXAMPLE_BODIES[operation.key]
    if values is None:
        return body

    def filled(value):
        if isinstance(value, str) and "{" in value:
            return value.format(**values)
        if isinstance(value, list):
            return [filled(v) for v in value]
        return value

    return {key: filled(value) for key, value in body.items()}


def operation_call(client, operation: Operation, path_values: dict[str, str]):
    """Call an operation with a valid body (JSON, or a form with a file)."""
    url = operation.url(path_values)
    if operation.multipart:
        from django.core.files.uploadedfile import SimpleUploadedFile

        form = {
            **EXAMPLE_FORMS[operation.key],
            "file": SimpleUploadedFile(
                *EXAMPLE_FILES.get(operation.key, ("people.csv", b"id,email\nx1,x1@example.com\n"))
            ),
        }
        headers = {"HTTP_AUTHORIZATION": f"Bearer {client.token}"} if client.token else {}
        return client.client.post(url, data=form, **headers)
    return client.request(operation.method, url, example_body(operation, path_values))
