"""The segment pages: list, builder form and preview, detail, lists, exports, RFM and
lifecycle, and who may do what."""

import json

import pytest

from rapport.segments import services
from rapport.segments.models import LifecycleStage, Segment
from rapport.tenancy.models import AuditLogEntry
from tests.web.clients import signed_in

pytestmark = pytest.mark.django_db


def test_create_a_segment_from_the_form_and_see_it(tenant):
    client = signed_in(tenant, "marketer")
    name = tenant.workspace.name
    tenant.send({"type": "identify", "userId": f"{name}-u2", "traits": {"plan": "pro"}})
    rule = {"all": [{"trait": "plan", "op": "eq", "value": "pro"}]}
    preview = client.post("/segments/preview/", {"rule": json.dumps(rule)})
    assert b"1 customer matches" in preview.content
    bad = client.post("/segments/preview/", {"rule": '{"all": [{"trait": "plan"}]}'})
    assert b"rule.all.0" in bad.content
    refused = client.post(
        "/segments/new/", {"name": "Pros", "kind": "dynamic", "rule": '{"all": [{"x": 1}]}'}
    )
    assert refused.status_code == 422 and b"rule.all.0" in refused.content
    assert not Segment.objects.filter(name="Pros").exists()
    created = client.post(
        "/segments/new/", {"name": "Pros", "kind": "dynamic", "rule": json.dumps(rule)}
    )
    segment = Segment.objects.get(workspace=tenant.workspace, name="Pros")
    assert created.status_code == 302 and created["Location"] == f"/segments/{segment.pk}/"
    services.segment_refresh(segment=segment)
    page = client.get(f"/segments/{segment.pk}/")
    assert b"plan is pro" in page.content and b"1 customer" in page.content
    listing = client.get("/segments/")
    assert b"Pros" in listing.content and b"<polyline" in listing.content
    filtered = client.get(f"/customers/?segment={segment.pk}")
    assert filtered.status_code == 200 and filtered.content.count(b"/customers/") >= 1
    edited = client.post(
        f"/segments/{segment.pk}/edit/",
        {"name": "Pro plan", "rule": json.dumps({"trait": "plan", "op": "eq", "value": "free"})},
    )
    assert edited.status_code == 302
    segment.refresh_from_db()
    assert segment.name == "Pro plan" and segment.rule["value"] == "free"


def test_lists_exports_and_the_audit_log(tenant):
    client = signed_in(tenant, "admin")
    listed = Segment.objects.get(workspace=tenant.workspace, kind="static")
    name = tenant.workspace.name
    added = client.post(
        f"/segments/{listed.pk}/members/", {"values": f"{name}-u3\nnobody@example.com"}
    )
    assert b"Added 1 customers" in added.content
    assert AuditLogEntry.objects.filter(action="segment.export").count() == 0
    asked = client.get(f"/segments/{listed.pk}/export/?format=csv")
    assert asked.status_code == 200 and b"jane.doe@example.com" not in asked.content
    export = client.post(f"/segments/{listed.pk}/export/", {"format": "csv"})
    body = b"".join(export.streaming_content)
    assert b"jane.doe@example.com" in body
    assert AuditLogEntry.objects.filter(action="segment.export").count() == 1
    snapshot = client.post(f"/segments/{listed.pk}/snapshot/", {"name": "Frozen"})
    frozen = Segment.objects.get(workspace=tenant.workspace, name="Frozen")
    assert snapshot["Location"] == f"/segments/{frozen.pk}/" and frozen.size == 2


def test_roles_and_other_workspaces(tenant, other_tenant):
    agent = signed_in(tenant, "agent")
    assert agent.get("/segments/").status_code == 200
    assert agent.get("/segments/new/").status_code == 403
    listed = Segment.objects.get(workspace=tenant.workspace, kind="static")
    assert agent.get(f"/segments/{listed.pk}/export/?format=google").status_code == 403
    assert agent.post(f"/segments/{listed.pk}/export/", {"format": "google"}).status_code == 403
    marketer = signed_in(tenant, "marketer")
    assert marketer.get(f"/segments/{listed.pk}/export/?format=csv").status_code == 403
    theirs = Segment.objects.get(workspace=other_tenant.workspace, kind="static")
    admin = signed_in(tenant, "admin")
    assert admin.get(f"/segments/{theirs.pk}/").status_code == 404
    assert admin.get(f"/customers/?segment={theirs.pk}").status_code == 404
    assert admin.get("/customers/?stage=nonsense").status_code == 422
    assert admin.get("/customers/?rfm=%27%3B--").status_code == 422


def test_rfm_and_lifecycle_pages(tenant):
    name = tenant.workspace.name
    tenant.send(
        {
            "type": "track",
            "userId": f"{name}-u1",
            "event": "Order Completed",
            "properties": {"revenue": 10},
        }
    )
    services.rfm_refresh(workspace_id=tenant.workspace.pk)
    services.lifecycle_refresh(workspace_id=tenant.workspace.pk)
    client = signed_in(tenant, "marketer")
    rfm = client.get("/rfm/")
    assert b"rfm-grid" in rfm.content and b"1 buyers" in rfm.content
    assert client.get("/customers/?rfm=New").status_code == 200
    lifecycle = client.get("/lifecycle/")
    assert b"Onboarding" in lifecycle.content and b"First week" in lifecycle.content
    stage = LifecycleStage.objects.get(workspace=tenant.workspace, key="onboarding")
    client.post(f"/lifecycle/stages/{stage.pk}/rename/", {"name": "<b>Welcome</b>"})
    stage.refresh_from_db()
    assert stage.name == "<b>Welcome</b>"
    assert b"&lt;b&gt;Welcome&lt;/b&gt;" in client.get("/lifecycle/").content
    profile_page = client.get(f"/customers/{_profile(tenant, f'{name}-u1')}/")
    assert b"Champions" in profile_page.content and b"R5 F5 M5" in profile_page.content
    assert b"Trade fair leads" in profile_page.content


def _profile(tenant, user_id):
    from rapport.identity.models import Identifier

    return Identifier.objects.get(workspace=tenant.workspace, value=user_id).profile_id
