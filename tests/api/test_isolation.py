"""A token of workspace A never reaches an object of workspace B, on any endpoint."""

import pytest

from tests.api.operations import OPERATIONS, operation_call
from tests.api.snapshots import workspace_snapshot

WITH_IDS = [op for op in OPERATIONS if op.path_params]
WITHOUT_IDS = [op for op in OPERATIONS if not op.path_params]


def test_the_api_has_endpoints_with_ids_to_check():
    assert len(WITH_IDS) >= 8


@pytest.mark.parametrize("operation", WITH_IDS, ids=str)
def test_other_workspace_objects_are_not_found(operation, tenant, other_tenant):
    theirs = other_tenant.path_objects()
    missing = set(operation.path_params) - set(theirs)
    assert not missing, f"add a value for {missing} to Tenant.path_objects()"
    before = workspace_snapshot(other_tenant.workspace)

    response = operation_call(tenant.api(), operation, theirs)

    assert response.status_code == 404, response.content
    assert response.json()["error"]["code"] == "not_found"
    assert workspace_snapshot(other_tenant.workspace) == before


@pytest.mark.parametrize("operation", [op for op in WITH_IDS if len(op.path_params) > 1], ids=str)
def test_mixing_own_and_other_workspace_ids_is_not_found(operation, tenant, other_tenant):
    mixed = tenant.path_objects()
    mixed[operation.path_params[-1]] = other_tenant.path_objects()[operation.path_params[-1]]
    response = operation_call(tenant.api(), operation, mixed)
    assert response.status_code == 404


@pytest.mark.parametrize("operation", WITHOUT_IDS, ids=str)
def test_collection_endpoints_show_nothing_of_other_workspaces(operation, tenant, other_tenant):
    before = workspace_snapshot(other_tenant.workspace)
    # Its own objects (a body may name one, e.g. a broadcast's segment), none of theirs.
    response = operation_call(tenant.api(), operation, tenant.path_objects())

    assert response.status_code < 300, response.content
    text = response.content.decode()
    for value in other_tenant.path_objects().values():
        assert value not in text
    assert str(other_tenant.workspace.pk) not in text
    assert other_tenant.workspace.name not in text
    assert workspace_snapshot(other_tenant.workspace) == before
