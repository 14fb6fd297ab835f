"""The middleware refuses a NUL character in a query string once, for every page and
every API path, before any filter reaches the database (PostgreSQL cannot hold one)."""

import pytest
from django.test import Client

from rapport.tenancy.permissions import Role


@pytest.mark.parametrize("query", ["q=a%00b", "a%00=1", "page=1&q=%00"])
def test_a_page_with_nul_in_its_query_is_400(query, tenant):
    client = Client()
    client.force_login(tenant.extra_member.user)
    response = client.get(f"/customers/?{query}")
    assert response.status_code == 400
    assert b"NUL" in response.content


@pytest.mark.parametrize(
    "path", ["/api/v1/profiles", "/api/v1/events", "/api/v1/segments", "/api/v1/audit-log"]
)
def test_an_api_list_with_nul_in_its_query_is_422_naming_the_parameter(path, tenant):
    response = tenant.api(Role.ADMIN).get(f"{path}?q=x&action=a%00b&user_id=%00&q=b%00")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error" and error["details"][0]["field"] in (
        "action",
        "user_id",
        "q",
    )
