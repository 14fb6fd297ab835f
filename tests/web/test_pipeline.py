"""Data → Pipeline: each consumer's waiting and parked events, the last error, and a
retry button (a POST with the CSRF token) for roles that manage the pipeline."""

import re

import pytest
from django.test import Client
from django_tasks_db.models import DBTaskResult

from rapport.ingest.models import PipelineStep
from rapport.ingest.pipeline import Consumer, pipeline_override
from rapport.tenancy.permissions import Role
from tests.ingest.test_pipeline import calls, ingest, work
from tests.web.clients import signed_in


@pytest.fixture
def parked(tenant, settings):
    """A pipeline whose second step always fails: parked after its tries."""
    settings.RAPPORT_PIPELINE_RETRY_SECONDS = 0
    settings.RAPPORT_PIPELINE_ATTEMPTS = 2
    state = {"broken": True}

    def fails(workspace_id, events):
        if state["broken"]:
            raise ValueError("bad rule for ada@example.com")

    consumers = [Consumer("first", lambda w, e: None), Consumer("second", fails)]
    with pipeline_override(consumers):
        ingest(tenant, calls(4))
        work()
        yield state


def _rows(html: str) -> dict[str, str]:
    return dict(re.findall(r'<tr data-consumer="(\w+)">(.*?)</tr>', html, re.S))


def test_the_page_shows_each_step_and_masks_errors_for_roles_without_pii(tenant, parked):
    html = signed_in(tenant, Role.ADMIN).get("/data/pipeline/").content.decode()
    rows = _rows(html)
    assert list(rows) == ["first", "second"]
    assert '<td class="lag">0</td>' in rows["first"] and "Retry" not in rows["first"]
    assert (
        '<td class="lag">4</td>' in rows["second"] and '<td class="failed">4</td>' in rows["second"]
    )
    assert "ValueError: bad rule for ada@example.com" in rows["second"]
    assert "Retry" in rows["second"]
    assert "<script>" not in html  # the strict CSP allows no inline script

    analyst = signed_in(tenant, Role.ANALYST).get("/data/pipeline/").content.decode()
    assert "ada@example.com" not in analyst and "bad rule for" in analyst
    assert "Retry" not in analyst  # reads, does not manage
    assert signed_in(tenant, Role.AGENT).get("/data/pipeline/").status_code == 403
    assert (
        signed_in(tenant, Role.ANALYST)
        .post("/data/pipeline/retry/", {"consumer": "second"})
        .status_code
        == 403
    )


def test_retry_needs_the_csrf_token_and_runs_the_parked_work_again(tenant, parked):
    client = Client(enforce_csrf_checks=True)
    signed = signed_in(tenant, Role.ADMIN)
    client.cookies = signed.cookies
    assert client.post("/data/pipeline/retry/", {"consumer": "second"}).status_code == 403
    assert PipelineStep.objects.get(consumer="second", batch__size=4).parked_at

    html = client.get("/data/pipeline/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)[1]
    parked["broken"] = False
    response = client.post(
        "/data/pipeline/retry/", {"consumer": "second", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302 and response["Location"] == "/data/pipeline/?retried=1"
    assert DBTaskResult.objects.filter(status="READY").exists()
    work()
    page = client.get(response["Location"]).content.decode()
    assert "1 batch handed to a worker again." in page
    assert '<td class="lag">4</td>' not in page and not PipelineStep.objects.exists()
    assert (
        client.post(
            "/data/pipeline/retry/", {"consumer": "nobody", "csrfmiddlewaretoken": token}
        ).status_code
        == 422
    )


def test_the_page_speaks_russian(tenant, parked):
    client = signed_in(tenant, Role.ADMIN)
    client.post("/preferences/language/", {"language": "ru", "next": "/data/pipeline/"})
    html = client.get("/data/pipeline/").content.decode()
    assert "Конвейер" in html and "Повторить" in html and "Ожидают" in html
