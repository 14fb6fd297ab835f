"""Schemathesis against the OpenAPI document, with every check: no server error, every
answer documented and matching its schema, valid requests accepted and invalid ones
refused, authentication not ignored. Requests go in process (WSGI) as the admin of a
workspace of their own, inside transactions that are rolled back, so nothing they
change reaches another test."""

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.conftest import tenant_create

# Examples per operation: bounded so that the whole sweep takes a minute or two.
MAX_EXAMPLES = 8

CONFIG = SchemathesisConfig.from_dict(
    {
        # NUL characters are refused on purpose (PostgreSQL cannot store them), as the
        # API's description says; tests/api/test_bad_input.py sends them everywhere.
        "generation": {"max-examples": MAX_EXAMPLES, "database": "none", "allow-x00": False},
        # Stateful runs and the coverage phase's boundary cases multiply the requests
        # tenfold; the run stays within CI's minutes without them.
        "phases": {"stateful": {"enabled": False}, "coverage": {"enabled": False}},
    }
)

# Rules that OpenAPI cannot state (an expiry in the future, a period of at most two
# years, one of several fields, the segment rule language): a request valid by the
# schema may be refused with a 422 that names the field. Every other check applies.
# Shrink this list when a schema learns to say the rule.
ACTION_RULES = (
    "a key not taken; an eligibility rule in the segment rule language; ends_at after "
    "starts_at; channel levers for the action's channels; a template of the workspace; "
    "strict integers (91.0 is refused); content's links are http(s) URLs or paths, its "
    "title at most 200 characters, its button 100, at most 20 fields of your own"
)
JOURNEY_RULES = (
    "the segment rule language (where, rule); strict integers (91.0 is refused); a running "
    "journey takes only a graph that validates"
)
RULES_BEYOND_THE_SCHEMA = {
    ("POST", "/api/v1/invitations"): "email is an address (the schema says string)",
    ("POST", "/api/v1/pipeline/replay"): "until comes after since",
    ("POST", "/api/v1/tokens"): "expires_at is in the future",
    ("POST", "/api/v1/imports"): "id_column is required for a customers import",
    ("PATCH", "/api/v1/identity/rules"): "priorities and limits name known identifier kinds",
    ("POST", "/api/v1/segments"): "a dynamic segment needs a rule; the rule language",
    ("POST", "/api/v1/segments/preview"): "the rule language",
    ("POST", "/api/v1/models/clv/train"): "the cut-off is not in the future",
    ("POST", "/api/v1/models/churn/train"): "strict integers (163.0 is refused)",
    ("PATCH", "/api/v1/models/settings"): "strict integers (163.0 is refused)",
    ("PATCH", "/api/v1/analytics/settings"): "event names are 1 to 255 characters",
    ("GET", "/api/v1/analytics/kpis"): "the period ends after it starts, at most 731 days",
    ("GET", "/api/v1/analytics/kpis/history"): "window is 7, 30 or 90",
    ("GET", "/api/v1/analytics/dashboard"): "window is 7, 30 or 90",
    ("POST", "/api/v1/analytics/snapshots/take"): "strict integers (1.0 is refused)",
    ("POST", "/api/v1/analytics/funnel"): "a step is exactly one of event, page, trait, stage",
    ("GET", "/api/v1/analytics/cohorts"): "last_month is a month like 2026-03",
    ("GET", "/api/v1/analytics/lifecycle"): "last_month and cohort are months like 2026-03",
    ("POST", "/api/v1/analytics/customers"): "exactly one of kpi, funnel or cohort",
    ("POST", "/api/v1/analytics/segments"): "exactly one of kpi, funnel or cohort",
    ("POST", "/api/v1/saved-views"): "columns, sort and filters are the list's own",
    ("PATCH", "/api/v1/saved-views/{view_id}"): "columns, sort and filters are the list's own",
    ("POST", "/api/v1/sources"): "allowed origins are https://host or http://host:port",
    (
        "PATCH",
        "/api/v1/sources/{source_id}",
    ): "allowed origins are https://host or http://host:port",
    ("POST", "/api/v1/exchange-rates"): "a currency is an ISO 4217 code; a rate is above 0",
    ("PATCH", "/api/v1/workspace/commerce"): "a currency is an ISO 4217 code",
    ("POST", "/api/v1/messages"): (
        "profile_id or user_id, template_id or content (one of each); an email has a subject "
        "and a body; the template language"
    ),
    ("POST", "/api/v1/templates"): "an email has a subject and a body; the template language",
    ("POST", "/api/v1/broadcasts"): (
        "an email has a subject and a body; the template language; a webhook has a public url; "
        "strict integers (7.0 is refused)"
    ),
    (
        "POST",
        "/api/v1/segments/{segment_id}/audience-schedules",
    ): "strict integers (18.0 is refused); a hashed format (google or meta)",
    ("PATCH", "/api/v1/channels/settings"): (
        "addresses, a transport URL, an IANA time zone; strict integers"
    ),
    (
        "POST",
        "/api/v1/exchange-rates/csv",
    ): "a CSV of currency,rate,valid_from",
    ("POST", "/api/v1/suppressions"): "the address is an email or a phone number, listed once",
    ("POST", "/api/v1/journeys"): JOURNEY_RULES,
    ("PUT", "/api/v1/journeys/{journey_id}"): JOURNEY_RULES,
    ("PATCH", "/api/v1/journeys/{journey_id}"): JOURNEY_RULES,
    ("POST", "/api/v1/journeys/{journey_id}/enrolments"): "profile_id or user_id (one of them)",
    ("POST", "/api/v1/decisions"): "profile_id, user_id or anonymous_id (one of them)",
    ("POST", "/api/v1/actions"): ACTION_RULES,
    ("PATCH", "/api/v1/actions/{action_key}"): ACTION_RULES,
    ("PATCH", "/api/v1/decision-settings"): "strict integers (91.0 is refused)",
    ("POST", "/api/v1/journeys/{journey_id}/migrate"): "strict integers; step keys of the graph",
    **{
        key: "ids of this workspace's members, customers, accounts, deals, pipelines and "
        "stages; strict integers (5.0 is refused); " + rule
        for key, rule in [
            (("POST", "/api/v1/pipelines"), "an open, a won and a lost stage, named once each"),
            (("PATCH", "/api/v1/pipelines/{pipeline_id}"), "stages of this pipeline"),
            (("POST", "/api/v1/deals"), "a pipeline or a stage"),
            (("PATCH", "/api/v1/deals/{deal_id}"), "the version read"),
            (("POST", "/api/v1/deals/{deal_id}/move"), "the version read"),
            (("POST", "/api/v1/tasks"), "due_at or due_date, not both"),
            (("PATCH", "/api/v1/tasks/{task_id}"), "due_at or due_date, not both"),
            (("POST", "/api/v1/notes"), "about a customer, an account or a deal; text in it"),
            (("POST", "/api/v1/owners/assign"), "customers or accounts named"),
            (("GET", "/api/v1/tasks"), "assignee is me or a member's id"),
            (("PUT", "/api/v1/profiles/{profile_id}/owner"), "a member"),
            (("PUT", "/api/v1/accounts/{account_id}/owner"), "a member"),
        ]
    },
}

# Read at collection (the document needs no database): one test per operation.
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application(), config=CONFIG)


@pytest.fixture(scope="module")
def _fuzzed_workspace(django_db_setup, django_db_blocker):
    """One workspace with sample data for every operation, made once: inside a
    transaction that is rolled back after the last operation (each operation's own
    test transaction nests inside it), so nothing outlives this module."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield tenant_create("Fuzzed", sample_data=True)
        transaction.set_rollback(True)


@pytest.fixture
def admin_token(_fuzzed_workspace, db) -> str:
    return _fuzzed_workspace.tokens["admin"]


@pytest.fixture(autouse=True)
def _connection_kept_across_requests():
    """Django's WSGI handler closes the database connection after each request (in a
    transaction that would end the test's): kept open, as Django's test client does."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    # The same examples on every run, so that CI's verdict does not depend on luck.
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_keeps_its_documented_promises(case, admin_token):
    beyond = (case.method.upper(), case.path) in RULES_BEYOND_THE_SCHEMA
    case.call_and_validate(
        headers={"Authorization": f"Bearer {admin_token}"},
        excluded_checks=[positive_data_acceptance] if beyond else [],
    )


def test_the_rules_beyond_the_schema_name_real_operations():
    operations = {
        (method.upper(), path)
        for path, methods in schema.raw_schema["paths"].items()
        for method in methods
    }
    assert set(RULES_BEYOND_THE_SCHEMA) <= operations
