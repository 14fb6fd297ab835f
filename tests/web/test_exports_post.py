"""Nothing that discloses personal data in bulk is a GET: a segment's exports (readable
CSV, hashed Google / Meta audiences) and a person's export answer a GET with a
confirmation page (UI) or a 405 (API), give no file and write no audit entry; the POST
gives the file and one audit entry; who may export is unchanged."""

import pytest

from rapport.profiles.models import Profile
from rapport.segments.models import Segment
from rapport.tenancy.models import AuditLogEntry
from tests.web.clients import signed_in


def _static(tenant) -> Segment:
    return Segment.objects.get(workspace=tenant.workspace, kind="static")


def _person(tenant) -> Profile:
    return Profile.objects.filter(workspace=tenant.workspace, merged_into__isnull=True).first()


def _body(response) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def _audits(tenant, action: str) -> int:
    return AuditLogEntry.objects.filter(workspace=tenant.workspace, action=action).count()


@pytest.mark.parametrize("format", ["csv", "google", "meta"])
def test_api_segment_export_get_is_405_with_no_file_and_no_audit(tenant, format):
    segment = _static(tenant)
    response = tenant.api("admin").get(f"/api/v1/segments/{segment.pk}/export?format={format}")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    error = response.json()["error"]
    assert error["code"] == "method_not_allowed" and "POST" in error["message"]
    assert "jane" not in response.content.decode()
    assert _audits(tenant, "segment.export") == 0


@pytest.mark.parametrize("format", ["csv", "google", "meta"])
def test_api_segment_export_post_gives_the_file_and_one_audit_entry(tenant, format):
    segment = _static(tenant)
    response = tenant.api("admin").post(f"/api/v1/segments/{segment.pk}/export?format={format}")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert _body(response).strip()
    assert _audits(tenant, "segment.export") == 1


def test_api_profile_export_get_is_405_and_post_exports(tenant):
    person = _person(tenant)
    refused = tenant.api("admin").get(f"/api/v1/profiles/{person.pk}/export")
    assert refused.status_code == 405
    assert refused.json()["error"]["code"] == "method_not_allowed"
    assert "POST" in refused.json()["error"]["message"]
    assert _audits(tenant, "pii.export") == 0
    done = tenant.api("admin").post(f"/api/v1/profiles/{person.pk}/export")
    assert done.status_code == 200 and done.json()["identifiers"]
    assert _audits(tenant, "pii.export") == 1


@pytest.mark.parametrize(
    "role,format,allowed",
    [
        ("admin", "csv", True),
        ("marketer", "google", True),
        ("marketer", "csv", False),  # readable needs pii.export
        ("analyst", "meta", False),  # no segments.export
        ("sales", "google", False),
    ],
)
def test_api_permissions_are_unchanged(tenant, role, format, allowed):
    segment = _static(tenant)
    response = tenant.api(role).post(f"/api/v1/segments/{segment.pk}/export?format={format}")
    assert response.status_code == (200 if allowed else 403)
    assert _audits(tenant, "segment.export") == (1 if allowed else 0)


@pytest.mark.parametrize("format", ["csv", "google", "meta"])
def test_ui_segment_export_asks_then_downloads_on_post(tenant, format):
    segment = _static(tenant)
    client = signed_in(tenant, "admin")
    page = client.get(f"/segments/{segment.pk}/")
    assert f"/segments/{segment.pk}/export/?format={format}" in page.content.decode()
    confirm = client.get(f"/segments/{segment.pk}/export/", {"format": format})
    assert confirm.status_code == 200
    assert confirm["Content-Type"].startswith("text/html")
    assert "Content-Disposition" not in confirm
    html = confirm.content.decode()
    assert 'method="post"' in html and f'name="format" value="{format}"' in html
    assert _audits(tenant, "segment.export") == 0
    download = client.post(f"/segments/{segment.pk}/export/", {"format": format})
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith("attachment;")
    assert _body(download).strip()
    assert _audits(tenant, "segment.export") == 1


def test_ui_readable_export_still_needs_pii_export(tenant):
    segment = _static(tenant)
    client = signed_in(tenant, "marketer")
    assert client.get(f"/segments/{segment.pk}/export/", {"format": "csv"}).status_code == 403
    assert client.post(f"/segments/{segment.pk}/export/", {"format": "csv"}).status_code == 403
    assert client.post(f"/segments/{segment.pk}/export/", {"format": "meta"}).status_code == 200
    analyst = signed_in(tenant, "analyst")
    assert analyst.post(f"/segments/{segment.pk}/export/", {"format": "meta"}).status_code == 403
    assert _audits(tenant, "segment.export") == 1


def test_ui_unknown_format_is_refused(tenant):
    segment = _static(tenant)
    client = signed_in(tenant, "admin")
    response = client.post(f"/segments/{segment.pk}/export/", {"format": "xlsx"})
    assert response.status_code == 422
    assert _audits(tenant, "segment.export") == 0


def test_ui_other_workspace_segment_is_not_found(tenant, other_tenant):
    segment = _static(other_tenant)
    client = signed_in(tenant, "admin")
    assert client.post(f"/segments/{segment.pk}/export/", {"format": "meta"}).status_code == 404
    assert not AuditLogEntry.objects.filter(action="segment.export").exists()
