"""Every endpoint that reads, called by each role without pii.read on a workspace whose
personal data hides in every odd place: none of it comes back in clear. Generated from
the OpenAPI document, so a new endpoint is swept the day it lands."""

import pytest

from rapport.tenancy.permissions import Role, role_has_permission
from tests.api.operations import OPERATIONS, operation_call
from tests.tenancy.leaks import SECRETS, leaks_in, leaks_plant

pytestmark = pytest.mark.django_db

# Operations that only read although they are POSTs (a preview, a report).
READING_POSTS = {
    ("POST", "/api/v1/segments/preview"),
    ("POST", "/api/v1/analytics/funnel"),
    ("POST", "/api/v1/analytics/customers"),
}
READING = [op for op in OPERATIONS if op.method == "GET" or op.key in READING_POSTS]
MASKED_ROLES = sorted(r.value for r in Role if not role_has_permission(role=r, code="pii.read"))


@pytest.fixture
def planted(tenant):
    leaks_plant(tenant)
    return tenant


def _bodies(tenant, role: str) -> dict[str, str]:
    client, values = tenant.api(role), tenant.path_objects()
    bodies = {}
    for operation in READING:
        response = operation_call(client, operation, values)
        if response.status_code == 403:
            continue  # the role may not read it at all
        assert response.status_code == 200, (str(operation), response.content)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        bodies[str(operation)] = body.decode()
    timeline = client.get(f"/api/v1/profiles/{values['profile_id']}/timeline?limit=200")
    bodies["timeline, every entry"] = timeline.content.decode()
    return bodies


def test_the_roles_without_pii_read_are_analyst_and_agent():
    assert set(MASKED_ROLES) == {"analyst", "agent"}


def test_the_planted_data_reaches_the_surfaces(planted):
    """The sweep below can fail: a role with pii.read sees every secret somewhere."""
    seen = "\n".join(_bodies(planted, "admin").values())
    assert [s for s in SECRETS if s not in seen] == []


@pytest.mark.parametrize("role", MASKED_ROLES)
def test_no_endpoint_shows_personal_data_to_a_role_without_pii_read(planted, role):
    bodies = _bodies(planted, role)
    leaked = {name: found for name, body in bodies.items() if (found := leaks_in(body))}
    assert leaked == {}


def _last(operation) -> bool:
    """Operations that remove what others act on run after them."""
    return operation.method == "DELETE" or operation.path.endswith(("/erase", "/unmerge"))


@pytest.mark.parametrize("role", MASKED_ROLES)
def test_no_answer_to_a_change_shows_personal_data_either(planted, role):
    """What a merge (the agent may merge) or any other change answers is masked too,
    and so is every refusal."""
    client, values = planted.api(role), planted.path_objects()
    changes = sorted((op for op in OPERATIONS if op not in READING), key=_last)
    leaked = {}
    for operation in changes:
        response = operation_call(client, operation, values)
        if found := leaks_in(response.content.decode()):
            leaked[str(operation)] = found
    assert leaked == {}
