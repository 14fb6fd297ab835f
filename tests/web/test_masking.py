"""Every page of the UI, opened by each role without pii.read on a workspace whose
personal data hides in every odd place: none of it is shown in clear. The pages come
from the URL configuration, so a new page is swept the day it lands."""

import json
import re

import pytest
from django.urls import URLPattern

from rapport.identity.models import ProfileMerge
from rapport.profiles.models import AccountMerge
from rapport.web.urls import urlpatterns
from tests.api.test_masking import MASKED_ROLES
from tests.tenancy.leaks import SECRETS, leaks_in, leaks_plant
from tests.web.clients import signed_in

pytestmark = pytest.mark.django_db

# Pages with a query that shows more than their bare address does.
WITH_QUERIES = {
    "customer_list": [{}, {"q": "example"}, {"sort": "oldest"}],
    "customer_detail": [{}, {"kind": "merge,unmerge"}, {"kind": "event"}],
    "customer_timeline": [{}, {"kind": "merge,unmerge"}],
    "analytics_customers": [{"of": json.dumps({"kpi": {"figure": "customers"}})}],
    "duplicate_list": [{}, {"status": "open", "kind": "profile"}],
}


def _page_arguments(tenant) -> dict[str, dict[str, str]]:
    values = tenant.path_objects()
    # The decisions pages name an action by its key.
    values["key"] = values["action_key"]
    profile_merges = ProfileMerge.objects.filter(workspace=tenant.workspace)
    account_merges = AccountMerge.objects.filter(workspace=tenant.workspace)
    return {
        "customer_unmerge": {"merge_id": str(profile_merges.order_by("-created_at").first().pk)},
        "account_unmerge": {"merge_id": str(account_merges.order_by("-created_at").first().pk)},
        "*": values,
    }


def _pages(tenant, role: str) -> dict[str, str]:
    client = signed_in(tenant, role)
    arguments = _page_arguments(tenant)
    bodies = {}
    for pattern in urlpatterns:
        assert isinstance(pattern, URLPattern)
        # Signing in and out, and an invitation's page (its link holds no customer).
        if pattern.name in ("logout", "login", "invitation_accept"):
            continue
        names = pattern.pattern.converters.keys()
        given = arguments.get(pattern.name, {})
        kwargs = {name: given.get(name) or arguments["*"][name] for name in names}
        path = "/" + str(pattern.pattern).format(**kwargs)
        for name in names:
            path = re.sub(rf"<\w+:{name}>", kwargs[name], path)
        for query in WITH_QUERIES.get(pattern.name, [{}]):
            for htmx in ({}, {"HTTP_HX_REQUEST": "true"}):
                response = client.get(path, query, **htmx)
                if response.status_code in (302, 403, 405):
                    continue  # elsewhere, not for this role, or a POST
                assert response.status_code == 200, (path, query, response.status_code)
                body = (
                    b"".join(response.streaming_content) if response.streaming else response.content
                )
                bodies[f"{path}?{query} {htmx}"] = body.decode()
    preview = client.post(
        "/segments/preview/", {"rule": json.dumps({"trait": "plan", "op": "exists"})}
    )
    bodies["segment preview"] = preview.content.decode()
    return bodies


@pytest.fixture
def planted(tenant):
    leaks_plant(tenant)
    return tenant


def test_the_planted_data_reaches_the_pages(planted):
    """The sweep below can fail: a role with pii.read sees every secret somewhere."""
    seen = "\n".join(_pages(planted, "admin").values())
    assert [s for s in SECRETS if s not in seen] == []


@pytest.mark.parametrize("role", MASKED_ROLES)
def test_no_page_shows_personal_data_to_a_role_without_pii_read(planted, role):
    pages = _pages(planted, role)
    leaked = {name: found for name, body in pages.items() if (found := leaks_in(body))}
    assert leaked == {}
