import json
import os
import subprocess
import sys

import pytest


@pytest.mark.django_db
def test_healthz_reports_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}
    assert "no-cache" in response["Cache-Control"]


def test_health_api_and_tracking_answer_503_when_the_database_is_unreachable(tmp_path):
    # A real unreachable server (nothing listens on port 9 of this machine), in a
    # process of its own so that this suite's database is untouched.
    code = """
import base64, django, json
django.setup()
from django.test import Client
c = Client()
h = c.get("/healthz")
a = c.get("/api/v1/me", HTTP_AUTHORIZATION="Bearer rpt_" + "a" * 40)
t = c.post(
    "/v1/track",
    '{"userId": "u", "event": "E"}',
    content_type="application/json",
    HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"k" * 40 + b":").decode(),
)
print(json.dumps([h.status_code, h.json(), a.status_code, a.json(), t.status_code, t.json()]))
"""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "rapport.settings",
        "RAPPORT_DATA_DIR": str(tmp_path),
        "DATABASE_URL": "postgres://nobody@127.0.0.1:9/none?connect_timeout=2",
        "ALLOWED_HOSTS": "testserver",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    health_status, health, api_status, api_body, track_status, track_body = answers
    assert health_status == 503
    assert health["status"] == "unavailable"
    assert api_status == 503
    assert api_body["error"]["code"] == "service_unavailable"
    # SDKs retry on 5xx: an event that could not be stored is never acknowledged.
    assert track_status == 503
    assert track_body["error"]["code"] == "service_unavailable"
