"""The analytics API: reports as JSON and CSV, the customers behind a number saved as a
segment, snapshots and the home dashboard, settings, and what it refuses."""

import csv
import io
import uuid
from datetime import date

from rapport.analytics.models import KpiSnapshot
from rapport.analytics.services import kpi_snapshots_take
from rapport.segments.models import Segment, SegmentMembership
from tests.analytics.conftest import user_ids

OCTOBER = "start=2026-10-01&end=2026-10-31"
FUNNEL = {
    "steps": [{"page": "*"}, {"event": "Signed Up"}, {"event": "Order Completed"}],
    "start": "2026-10-01",
    "end": "2026-10-31",
}


def _csv(response) -> list[dict]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_kpis_as_json_and_csv(shop):
    api = shop.api("analyst")
    body = api.get(f"/api/v1/analytics/kpis?{OCTOBER}").json()
    # Money as a decimal string, with its currency beside it.
    assert body["figures"]["revenue"] == "150.0000"
    assert body["currency"] == "USD"
    assert body["definitions"]["churn_rate"].startswith("Of the customers active")
    exported = _csv(api.get(f"/api/v1/analytics/kpis?{OCTOBER}&format=csv"))
    rows = {row["kpi"]: row for row in exported}
    assert rows["churn_rate"]["value"] == "0.5" and rows["customers"]["value"] == "6"
    assert rows["nps"]["definition"].startswith("Net Promoter Score")


def test_funnel_cohorts_lifecycle_rfm_as_csv(shop):
    api = shop.api("analyst")
    steps = _csv(api.post("/api/v1/analytics/funnel?format=csv", FUNNEL))
    assert [row["customers"] for row in steps] == ["3", "2", "1"]
    cells = _csv(api.get("/api/v1/analytics/cohorts?last_month=2026-10&months=3&format=csv"))
    assert {"cohort": "2026-09", "month": "1", "active": "1"}.items() <= cells[4].items()
    assert _csv(api.get("/api/v1/analytics/lifecycle?months=2&format=csv")) is not None
    assert len(_csv(api.get("/api/v1/analytics/rfm?format=csv"))) == 25


def test_the_customers_behind_a_number_saved_as_a_segment(shop):
    api = shop.api("marketer")
    drill = {"funnel": {"query": FUNNEL, "step": 2, "outcome": "dropped"}}
    listed = api.post("/api/v1/analytics/customers", drill).json()
    assert listed["count"] == 1
    response = api.post("/api/v1/analytics/segments", {**drill, "name": "Signed up, never bought"})
    assert response.status_code == 201, response.content
    segment = Segment.objects.get(pk=response.json()["id"])
    assert segment.kind == "static" and segment.size == 1
    members = SegmentMembership.objects.filter(segment=segment).values_list("profile_id", flat=True)
    assert user_ids(shop.workspace, members) == {"u5"}
    churned = {"kpi": {"figure": "churned", "start": "2026-10-01", "end": "2026-10-31"}}
    assert api.post("/api/v1/analytics/customers", churned).json()["count"] == 2
    cohort = {"cohort": {"month": "2026-09", "offset": 1}}
    assert api.post("/api/v1/analytics/customers", cohort).json()["count"] == 1
    # An agent may look but not save.
    agent = shop.api("agent")
    assert agent.post("/api/v1/analytics/customers", churned).status_code == 200
    assert agent.post("/api/v1/analytics/segments", {**churned, "name": "x"}).status_code == 403


def test_personal_data_is_masked_for_roles_without_it(shop):
    body = {"kpi": {"figure": "customers", "start": "2026-10-01", "end": "2026-10-31"}}
    shown = shop.api("admin").post("/api/v1/analytics/customers", body).json()["customers"]
    assert "u1@example.com" in str(shown)
    masked = shop.api("analyst").post("/api/v1/analytics/customers", body).json()["customers"]
    assert "u1@example.com" not in str(masked)


def test_snapshots_feed_the_home_dashboard(shop):
    taken = kpi_snapshots_take(
        workspace_id=shop.workspace.pk, day=date(2026, 10, 31), backfill_days=31
    )
    assert taken["snapshots"] == 32 * 3
    dashboard = shop.api("agent").get("/api/v1/analytics/dashboard?window=30").json()
    assert dashboard["latest"]["day"] == "2026-10-31"
    revenue = next(k for k in dashboard["kpis"] if k["name"] == "revenue")
    # The 30 days to 31 Oct (2-31 Oct) hold every October purchase.
    assert revenue["value"] == "150.0000"
    assert revenue["previous"] == "0.0000"  # the 30 days to 1 Oct
    assert len(revenue["series"]) == 32
    history = shop.api().get("/api/v1/analytics/kpis/history?window=7&days=5&format=csv")
    assert len(_csv(history)) == 5
    # Taking a day again replaces its snapshots.
    kpi_snapshots_take(workspace_id=shop.workspace.pk, day=date(2026, 10, 31))
    assert KpiSnapshot.objects.filter(workspace=shop.workspace, day="2026-10-31").count() == 3


def test_bad_input_names_the_field_and_changes_nothing(shop, other_tenant):
    api = shop.api()
    error = api.patch("/api/v1/analytics/settings", {"timezone": "Mars/Olympus"}).json()["error"]
    assert "timezone" in error["message"]
    assert api.get("/api/v1/analytics/settings").json()["timezone"] == "Europe/London"
    error = api.get("/api/v1/analytics/kpis?start=2026-10-31&end=2026-10-01").json()["error"]
    assert "end" in error["message"]
    error = api.get("/api/v1/analytics/kpis?start=2020-01-01&end=2026-10-01").json()["error"]
    assert "731 days" in error["message"]
    response = api.get("/api/v1/analytics/cohorts?last_month=2026-13")
    assert response.status_code == 422 and "last_month" in response.json()["error"]["message"]
    response = api.post("/api/v1/analytics/funnel", {**FUNNEL, "steps": [{"event": "A"}]})
    assert response.status_code == 422 and "steps" in response.json()["error"]["message"]
    # Another workspace's segment, or none at all: not found.
    theirs = Segment.objects.filter(workspace=other_tenant.workspace).first()
    for segment_id in (theirs.pk, uuid.uuid4()):
        response = api.get(f"/api/v1/analytics/kpis?segment={segment_id}")
        assert response.status_code == 404
        response = api.post("/api/v1/analytics/funnel", {**FUNNEL, "segment": str(segment_id)})
        assert response.status_code == 404
    before = Segment.objects.count()
    body = {"name": "x", "kpi": {}, "cohort": {"month": "2026-09"}}
    response = api.post("/api/v1/analytics/segments", body)
    assert response.status_code == 422 and "exactly one" in response.json()["error"]["message"]
    assert Segment.objects.count() == before


def test_hostile_text_in_a_funnel_is_data(shop):
    hostile = "'); DROP TABLE ingest_event; --<script>"
    body = {**FUNNEL, "steps": [{"event": hostile}, {"trait": hostile}]}
    response = shop.api().post("/api/v1/analytics/funnel", body)
    assert response.status_code == 200
    assert response.json()["steps"][0]["label"] == hostile
    assert shop.api().get(f"/api/v1/analytics/kpis?{OCTOBER}").status_code == 200
