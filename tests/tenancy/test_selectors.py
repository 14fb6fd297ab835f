import uuid

import pytest

from rapport.core.errors import NotFoundError
from rapport.tenancy import selectors


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("selector", "param"),
    [
        (selectors.member_get, "member_id"),
        (selectors.api_token_get, "token_id"),
        (selectors.source_get, "source_id"),
    ],
)
def test_getting_another_workspaces_row_is_not_found(selector, param, tenant, other_tenant):
    theirs = other_tenant.path_objects()[param]
    with pytest.raises(NotFoundError):
        selector(workspace=tenant.workspace, **{param: uuid.UUID(theirs)})
    assert selector(workspace=other_tenant.workspace, **{param: uuid.UUID(theirs)})


@pytest.mark.django_db
def test_write_key_of_another_source_is_not_found(tenant, other_tenant):
    ours = tenant.path_objects()
    theirs = other_tenant.path_objects()
    with pytest.raises(NotFoundError):
        selectors.write_key_get(
            workspace=tenant.workspace, source_id=ours["source_id"], key_id=theirs["key_id"]
        )


@pytest.mark.django_db
@pytest.mark.parametrize("raw", ["", "rpt_", "rpt_" + "a" * 39, "rpt_" + "-" * 40, "x" * 1000])
def test_malformed_secrets_are_not_looked_up(raw, tenant, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert selectors.api_token_get_by_secret(raw=raw) is None
        assert selectors.write_key_get_by_secret(raw=raw) is None


@pytest.mark.django_db
def test_audit_log_filters(tenant):
    everything = selectors.audit_log_list(workspace=tenant.workspace)
    tokens = selectors.audit_log_list(workspace=tenant.workspace, action="token")
    created = selectors.audit_log_list(workspace=tenant.workspace, action="token.create")
    assert tokens.count() == created.count() == 5
    assert everything.count() > tokens.count()
    assert selectors.audit_log_list(workspace=tenant.workspace, actor="nobody").count() == 0
