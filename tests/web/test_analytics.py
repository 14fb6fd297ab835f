"""The analytics pages with a signed-in person: every page for every role, the
figures the hand-computed shop gives, CSV export, the customers behind a number saved
as a segment, and bad input (a clear 4xx page, nothing changed)."""

import csv
import io
import json
from datetime import date

import pytest

from rapport.analytics.services import kpi_snapshots_take
from rapport.segments.models import Segment
from rapport.tenancy.permissions import Role
from tests.analytics.conftest import shop  # noqa: F401 - the fixture
from tests.web.clients import signed_in

OCTOBER = {"start": "2026-10-01", "end": "2026-10-31"}
PAGES = [
    "/analytics/",
    "/analytics/period/",
    "/analytics/funnel/",
    "/analytics/cohorts/",
    "/analytics/lifecycle/",
    "/analytics/rfm/",
]


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_every_role_reads_every_page(shop, role):  # noqa: F811
    client = signed_in(shop, role)
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        assert 'data-chart="' in response.content.decode() or path in (
            "/analytics/",
            "/analytics/period/",
        )


def test_the_dashboard_shows_snapshots_and_their_definitions(shop):  # noqa: F811
    client = signed_in(shop, Role.ANALYST)
    html = client.get("/analytics/").content.decode()
    assert "No KPI snapshot has been taken yet" in html
    kpi_snapshots_take(workspace_id=shop.workspace.pk, day=date(2026, 10, 31), backfill_days=31)
    html = client.get("/analytics/", {"window": 30, "kpi": "churn_rate"}).content.decode()
    assert "The 30 days to 2026-10-31" in html
    assert "150.00" in html  # revenue
    assert "Of the customers active in the previous period" in html
    assert 'id="trend"' in html and "Churn rate over time" in html


def test_any_period_with_csv(shop):  # noqa: F811
    client = signed_in(shop)
    html = client.get("/analytics/period/", OCTOBER).content.decode()
    assert "50.0%" in html and "150.00" in html and "+33.3" in html
    response = client.get("/analytics/period/", {**OCTOBER, "format": "csv"})
    rows = {r["kpi"]: r for r in csv.DictReader(io.StringIO(response.content.decode()))}
    assert rows["engagement_rate"]["value"].startswith("0.833")


def test_the_funnel_page_its_csv_and_its_drill_down_saved(shop):  # noqa: F811
    client = signed_in(shop, Role.MARKETER)
    params = {
        **OCTOBER,
        "kind1": "page",
        "value1": "*",
        "kind2": "event",
        "value2": "Signed Up",
        "kind3": "event",
        "value3": "Order Completed",
        "breakdown": "utm_source",
    }
    html = client.get("/analytics/funnel/", params).content.decode()
    assert "66.7%" in html and "google" in html
    exported = client.get("/analytics/funnel/", {**params, "format": "csv"}).content.decode()
    counts = [r["customers"] for r in csv.DictReader(io.StringIO(exported)) if r["group"] == "all"]
    assert counts == ["3", "2", "1"]
    drill = {
        "funnel": {
            "query": {
                "steps": [{"page": "*"}, {"event": "Signed Up"}, {"event": "Order Completed"}],
                **OCTOBER,
            },
            "step": 2,
            "outcome": "dropped",
        }
    }
    html = client.get("/analytics/customers/", {"of": json.dumps(drill)}).content.decode()
    assert "1 customer" in html and "u5" in html
    response = client.post(
        "/analytics/customers/save/", {"of": json.dumps(drill), "name": "Signed up, no order"}
    )
    segment = Segment.objects.get(workspace=shop.workspace, name="Signed up, no order")
    assert response.status_code == 302 and response["Location"] == f"/segments/{segment.pk}/"
    assert segment.size == 1 and segment.kind == "static"


def test_cohort_cells_open_their_customers(shop):  # noqa: F811
    client = signed_in(shop)
    html = client.get("/analytics/cohorts/", {"last_month": "2026-10", "months": 3}).content
    assert b"33.3%" in html
    drill = {"cohort": {"month": "2026-09", "offset": 1}}
    html = client.get("/analytics/customers/", {"of": json.dumps(drill)}).content.decode()
    # The user ids in their cells (a bare "u2" can turn up inside a CSRF token).
    assert '<span translate="no">u4</span>' in html
    assert '<span translate="no">u2</span>' not in html


@pytest.mark.parametrize(
    "path, params, field",
    [
        ("/analytics/", {"window": "14"}, "window"),
        ("/analytics/", {"segment": "not-a-uuid"}, "segment"),
        ("/analytics/period/", {"start": "2026-13-01"}, "start"),
        ("/analytics/period/", {"start": "2026-10-31", "end": "2026-10-01"}, "end"),
        ("/analytics/cohorts/", {"months": "99"}, "months"),
        ("/analytics/cohorts/", {"by": "astrology"}, "by"),
        ("/analytics/lifecycle/", {"cohort": "May"}, "cohort"),
        ("/analytics/funnel/", {"kind1": "x", "value1": "y"}, "kind1"),
        ("/analytics/customers/", {"of": "{not json"}, "of"),
        ("/analytics/customers/", {"of": '{"kpi": {"figure": "drop table"}}'}, "of"),
    ],
)
def test_bad_input_gets_a_page_naming_the_field(shop, path, params, field):  # noqa: F811
    response = signed_in(shop).get(path, params)
    assert 400 <= response.status_code < 500, response.status_code
    assert field in response.content.decode()


def test_only_segment_managers_save_and_nothing_is_half_written(shop):  # noqa: F811
    drill = json.dumps({"kpi": {"figure": "customers", **OCTOBER}})
    agent = signed_in(shop, Role.AGENT)
    assert agent.post("/analytics/customers/save/", {"of": drill, "name": "x"}).status_code == 403
    admin = signed_in(shop)
    before = Segment.objects.count()
    response = admin.post("/analytics/customers/save/", {"of": drill, "name": ""})
    assert response.status_code == 422 and Segment.objects.count() == before
    admin.post("/analytics/customers/save/", {"of": drill, "name": "Everyone"})
    response = admin.post("/analytics/customers/save/", {"of": drill, "name": "Everyone"})
    assert response.status_code == 409 and Segment.objects.count() == before + 1


def test_hostile_names_are_escaped(shop):  # noqa: F811
    client = signed_in(shop)
    html = client.get(
        "/analytics/funnel/",
        {
            **OCTOBER,
            "kind1": "event",
            "value1": "<script>alert(1)</script>",
            "kind2": "page",
            "value2": "*",
        },
    ).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html or "\\u003Cscript" in html
