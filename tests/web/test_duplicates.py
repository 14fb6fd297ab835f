"""The duplicates review page: pairs field by field, merged or dismissed by a person,
masked for roles without personal data, and refused cleanly on bad input."""

import pytest
from django_tasks_db.models import DBTaskResult

from rapport.identity.models import DuplicateCandidate
from rapport.profiles.models import Profile
from rapport.tenancy.permissions import Role
from tests.web.clients import signed_in


@pytest.fixture
def pair(tenant):
    name = tenant.workspace.name
    tenant.send(
        {
            "type": "identify",
            "userId": f"{name}-u3",
            "traits": {"firstName": "Jon", "lastName": "Smith", "email": "jon@example.com"},
        },
        {
            "type": "identify",
            "userId": f"{name}-c1",
            "traits": {"first_name": "John", "last_name": "Smith", "city": "Leeds"},
        },
    )
    return DuplicateCandidate.objects.get(workspace=tenant.workspace)


def _rows(response) -> dict:
    (shown,) = response.context["pairs"]
    return {row["field"]: row for row in shown["rows"]}


def test_a_pair_is_shown_field_by_field(tenant, pair):
    response = signed_in(tenant).get("/duplicates/")
    assert response.status_code == 200
    rows = _rows(response)
    assert rows["lastName"]["state"] == "agree"  # scoring said so (last_name)
    assert rows["firstName"]["state"] == "disagree"  # Jon and John
    assert rows["email"]["state"] == "disagree"  # c1 was imported with c1@example.com
    assert rows["city"]["state"] == "one-sided"
    html = response.content.decode()
    assert "97.0%" in html and "jon@example.com" in html


def test_roles_without_personal_data_see_it_masked_and_cannot_merge(tenant, pair):
    response = signed_in(tenant, Role.ANALYST).get("/duplicates/")
    html = response.content.decode()
    assert "jon@example.com" not in html and "j•••@e••••••.com" in html
    assert f"/duplicates/{pair.pk}/merge/" not in html
    analyst = signed_in(tenant, Role.ANALYST)
    response = analyst.post(f"/duplicates/{pair.pk}/merge/", {"reason": "same"})
    assert response.status_code == 403
    pair.refresh_from_db()
    assert pair.status == "open"


def test_merge_needs_a_reason_then_keeps_the_chosen_side(tenant, pair):
    client = signed_in(tenant)
    response = client.post(f"/duplicates/{pair.pk}/merge/", {"reason": " "})
    assert response.status_code == 422 and "reason:" in response.content.decode()
    response = client.post(f"/duplicates/{pair.pk}/merge/", {"reason": "x", "survivor": "c"})
    assert response.status_code == 422 and "survivor:" in response.content.decode()
    pair.refresh_from_db()
    assert pair.status == "open"
    response = client.post(f"/duplicates/{pair.pk}/merge/", {"reason": "typo", "survivor": "b"})
    assert response.status_code == 302
    pair.refresh_from_db()
    assert pair.status == "merged"
    assert Profile.objects.get(pk=pair.record_a).merged_into_id == pair.record_b
    assert client.get("/duplicates/").context["pairs"] == []
    merged = client.get("/duplicates/", {"status": "merged"}).context["pairs"]
    assert [p["candidate"].pk for p in merged] == [pair.pk]
    # Reviewed once: a second merge is refused and changes nothing.
    response = client.post(f"/duplicates/{pair.pk}/merge/", {"reason": "again"})
    assert response.status_code == 409


def test_dismiss_closes_the_pair(tenant, pair):
    client = signed_in(tenant)
    response = client.post(f"/duplicates/{pair.pk}/dismiss/", {"reason": "twins"})
    assert response.status_code == 302
    pair.refresh_from_db()
    assert pair.status == "dismissed" and pair.review_reason == "twins"
    assert Profile.objects.get(pk=pair.record_a).merged_into_id is None


def test_scan_is_queued_for_a_worker(tenant):
    response = signed_in(tenant).post("/duplicates/scan/", {"kind": "account"})
    assert response.status_code == 302 and "scan=queued" in response["Location"]
    task = DBTaskResult.objects.get(task_path="rapport.identity.tasks.duplicates_refresh")
    assert task.args_kwargs["kwargs"]["kind"] == "account"


def test_bad_input_and_foreign_pairs(tenant, other_tenant, pair):
    client = signed_in(tenant)
    for query, field in (({"kind": "cat"}, "kind"), ({"status": "1=1"}, "status")):
        response = client.get("/duplicates/", query)
        assert response.status_code == 422 and f"{field}:" in response.content.decode()
    response = client.post("/duplicates/scan/", {"kind": "people"})
    assert response.status_code == 422
    theirs = DuplicateCandidate.objects.get(workspace=other_tenant.workspace)
    assert client.post(f"/duplicates/{theirs.pk}/merge/", {"reason": "x"}).status_code == 404
    assert client.post(f"/duplicates/{theirs.pk}/dismiss/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "open"
