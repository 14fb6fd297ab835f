"""Segments over the API: the rule's errors name the part, a preview counts, the
members, history and trend, exports, a customer's scores, RFM and the lifecycle."""

import pytest

from rapport.segments import services
from rapport.segments.models import Segment

pytestmark = pytest.mark.django_db


def test_create_preview_and_read_a_segment(tenant):
    api = tenant.api("marketer")
    name = tenant.workspace.name
    tenant.send({"type": "identify", "userId": f"{name}-u1", "traits": {"plan": "pro"}})
    rule = {"all": [{"trait": "plan", "op": "eq", "value": "pro"}]}
    preview = api.post("/api/v1/segments/preview", {"rule": rule}).json()
    assert preview["count"] == 1 and len(preview["sample"]) == 1

    created = api.post("/api/v1/segments", {"name": "Pros", "rule": rule})
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["rule_text"] == "plan is pro" and body["kind"] == "dynamic"
    segment = Segment.objects.get(pk=body["id"])
    services.segment_refresh(segment=segment)  # what the queued task does
    members = api.get(f"/api/v1/segments/{segment.pk}/members").json()
    assert members["count"] == 1
    history = api.get(f"/api/v1/segments/{segment.pk}/history").json()
    assert history["count"] == 1 and history["items"][0]["left_at"] is None
    trend = api.get(f"/api/v1/segments/{segment.pk}/trend?days=7").json()
    assert len(trend) == 7 and trend[-1]["size"] == 1
    profile_id = members["items"][0]["id"]
    scores = api.get(f"/api/v1/segments/profile/{profile_id}").json()
    assert [s["name"] for s in scores["segments"]] == ["Pros", "Trade fair leads"]
    assert scores["lifecycle"]["stage"] == "preboarding"

    listed = Segment.objects.get(workspace=tenant.workspace, kind="static")
    url = f"/api/v1/segments/{listed.pk}/members"
    assert tenant.api("admin").get(url).json()["items"][0]["traits"]["email"] == (
        "jane.doe@example.com"
    )
    assert tenant.api("analyst").get(url).json()["items"][0]["traits"]["email"] != (
        "jane.doe@example.com"
    )


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"all": [{"trait": "plan", "op": "is", "value": "x"}]}, "rule.all.0.op"),
        ({"any": [{"event": "X", "window": {"last_days": -1}}]}, "rule.any.0.window.last_days"),
        ({"all": [{"segment": "00000000-0000-0000-0000-000000000000"}]}, "rule.segment"),
    ],
)
def test_a_bad_rule_is_422_naming_the_part(tenant, rule, field):
    before = Segment.objects.count()
    response = tenant.api().post("/api/v1/segments", {"name": "Bad", "rule": rule})
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["details"][0]["field"] == field and field in error["message"]
    assert Segment.objects.count() == before
    preview = tenant.api().post("/api/v1/segments/preview", {"rule": rule})
    assert preview.status_code == 422


def test_another_workspace_segment_cannot_be_referred_to(tenant, other_tenant):
    theirs = Segment.objects.get(workspace=other_tenant.workspace, kind="static")
    response = tenant.api().post(
        "/api/v1/segments", {"name": "Sneaky", "rule": {"segment": str(theirs.pk)}}
    )
    assert response.status_code == 422
    assert "no segment" in response.json()["error"]["message"]


def test_exports(tenant):
    segment = Segment.objects.get(workspace=tenant.workspace, kind="static")
    hashed = tenant.api("marketer").post(f"/api/v1/segments/{segment.pk}/export?format=meta")
    assert hashed.status_code == 200
    text = b"".join(hashed.streaming_content).decode()
    assert text.splitlines()[0] == "EMAIL,PHONE" and "jane" not in text
    refused = tenant.api("marketer").post(f"/api/v1/segments/{segment.pk}/export?format=csv")
    assert refused.status_code == 403
    readable = tenant.api("admin").post(f"/api/v1/segments/{segment.pk}/export?format=csv")
    assert "jane.doe@example.com" in b"".join(readable.streaming_content).decode()


def test_rfm_and_lifecycle_endpoints(tenant):
    name = tenant.workspace.name
    tenant.send(
        {
            "type": "track",
            "userId": f"{name}-u1",
            "event": "Order Completed",
            "properties": {"revenue": 42},
        }
    )
    services.rfm_refresh(workspace_id=tenant.workspace.pk)
    grid = tenant.api("analyst").get("/api/v1/rfm").json()
    assert grid["buyers"] == 1 and sum(map(sum, grid["grid"])) == 1
    assert {c["cell"] for c in grid["cells"]} >= {"Champions", "Lost"}
    stages = tenant.api("analyst").get("/api/v1/lifecycle").json()
    assert [s["key"] for s in stages][:3] == ["churned", "preboarding", "onboarding"]
    onboarding = stages[2]
    # The shipped sub-stages, then the workspace's own (tried after them).
    keys = [sub["key"] for sub in onboarding["sub_stages"]]
    assert keys[0] == "onb_repeat" and keys[-1] == "first_week"
    assert sum(s["count"] for s in stages) >= 1
    renamed = tenant.api("marketer").patch(
        f"/api/v1/lifecycle/stages/{onboarding['id']}", {"name": "Welcome"}
    )
    assert renamed.json()["name"] == "Welcome"
    bad = tenant.api("marketer").patch(
        f"/api/v1/lifecycle/stages/{onboarding['id']}", {"rule": {"trait": 1}}
    )
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"].startswith("rule")


def test_a_taken_name_is_409_and_changes_nothing(tenant):
    body = {"name": "Trade fair leads", "kind": "static"}
    before = Segment.objects.count()
    response = tenant.api().post("/api/v1/segments", body)
    assert response.status_code == 409 and response.json()["error"]["code"] == "name_taken"
    assert Segment.objects.count() == before
