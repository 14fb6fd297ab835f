import base64
import gzip as gzip_module

import orjson
import pytest
from django.test import Client

from tests.conftest import Tenant, tenant_create


class Tracker:
    """Sends Segment-spec calls with a write key, as the SDKs do."""

    def __init__(self, write_key: str | None) -> None:
        self.client = Client()
        self.write_key = write_key

    def send(
        self,
        path: str,
        body=None,
        *,
        raw: bytes | None = None,
        gzip: bool = False,
        headers: dict | None = None,
    ):
        data = raw if raw is not None else orjson.dumps(body)
        headers = dict(headers or {})
        if gzip:
            data = gzip_module.compress(data)
            headers["HTTP_CONTENT_ENCODING"] = "gzip"
        if self.write_key is not None:
            token = base64.b64encode(f"{self.write_key}:".encode()).decode()
            headers["HTTP_AUTHORIZATION"] = f"Basic {token}"
        return self.client.post(path, data=data, content_type="application/json", **headers)


@pytest.fixture(autouse=True)
def _fresh_write_key_cache():
    """What a write key may do (its source's origins included) is cached per process;
    a test starts from nothing another test cached."""
    from rapport.tenancy.selectors import write_key_cache_clear

    write_key_cache_clear()
    yield
    write_key_cache_clear()


@pytest.fixture
def tenant(db) -> Tenant:
    """Ingestion tests start from a workspace with no events at all."""
    return tenant_create("Alpha", sample_data=False)


@pytest.fixture
def other_tenant(db) -> Tenant:
    return tenant_create("Beta", sample_data=False)


@pytest.fixture
def tracker(tenant) -> Tracker:
    return Tracker(tenant.created.write_key)
