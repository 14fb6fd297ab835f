"""The predictions page (metrics, calibration curve, importance, drivers saved as
segments, training on demand), churn risk and lifetime value on the customer's page,
the customer list filtered by churn risk, and who may do what."""

import pytest
from django_tasks_db.models import DBTaskResult

from rapport.predictions.models import ChurnDriver, ChurnScore
from rapport.segments.models import Segment
from tests.web.clients import signed_in

pytestmark = pytest.mark.django_db


def test_the_models_page_shows_metrics_curve_importance_and_drivers(tenant):
    page = signed_in(tenant, "agent").get("/models/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "ROC AUC" in body and "0.8" in body
    assert "plan is free" in body and "3.0\u00d7" in body
    assert "r = 0.243" in body and "\u03b3 = 15.44" in body
    assert "<polyline" in body and "Days since last activity" in body
    # An agent reads but neither trains nor saves drivers.
    assert "Retrain churn" not in body and "Save as segment" not in body


def test_a_driver_becomes_a_segment_in_one_step(tenant):
    client = signed_in(tenant, "marketer")
    assert "Save as segment" in client.get("/models/").content.decode()
    driver = ChurnDriver.objects.get(workspace=tenant.workspace)
    saved = client.post(f"/models/drivers/{driver.pk}/segment/")
    segment = Segment.objects.get(workspace=tenant.workspace, name="Churn driver: plan is free")
    assert saved.status_code == 302 and saved["Location"] == f"/segments/{segment.pk}/"
    assert segment.rule == {"trait": "plan", "op": "eq", "value": "free"}
    # The same again is a conflict, and nothing more is made.
    again = client.post(f"/models/drivers/{driver.pk}/segment/")
    assert again.status_code == 409
    assert Segment.objects.filter(workspace=tenant.workspace, name__startswith="Churn").count() == 1


def test_training_is_queued_for_a_worker(tenant):
    client = signed_in(tenant, "analyst")
    before = DBTaskResult.objects.count()
    queued = client.post("/models/churn/train/")
    assert queued.status_code == 302 and queued["Location"] == "/models/?queued=1"
    assert DBTaskResult.objects.count() == before + 1
    assert signed_in(tenant, "agent").post("/models/clv/train/").status_code == 403


def test_the_customer_page_shows_risk_reasons_and_value(tenant):
    score = ChurnScore.objects.get(workspace=tenant.workspace)
    body = signed_in(tenant, "agent").get(f"/customers/{score.profile_id}/").content.decode()
    assert "81%" in body and "High" in body
    assert "Days since last activity: 45" in body
    # Money with its currency's sign: the lifetime value and the expected order value.
    assert "$120.50" in body and "$42.00 per order" in body


def test_the_customer_list_filters_by_churn_risk(tenant, other_tenant):
    client = signed_in(tenant, "agent")
    score = ChurnScore.objects.get(workspace=tenant.workspace)
    high = client.get("/customers/?churn=high").content.decode()
    assert f"/customers/{score.profile_id}/" in high
    low = client.get("/customers/?churn=low").content.decode()
    assert f"/customers/{score.profile_id}/" not in low
    bad = client.get("/customers/?churn=%3Cscript%3E")
    assert bad.status_code == 422 and b"churn" in bad.content
    # Another workspace's scored customer never shows.
    theirs = ChurnScore.objects.get(workspace=other_tenant.workspace)
    assert f"/customers/{theirs.profile_id}/" not in high
