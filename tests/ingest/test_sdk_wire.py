"""Every SDK's wire format, as read in the SDKs' own sources, and CORS per source.

- analytics.js / analytics-next: one event per request to the short paths `/v1/i|t|p|
  s|g|a`, a `text/plain` JSON body with `writeKey` in it (analytics-next 1.8x also sends
  it as Basic auth, which costs a preflight); in batching mode `{batch, writeKey,
  sentAt}` to `/v1/b`.
- analytics-swift: `{"batch": [...], "sentAt", "writeKey"}` to `/v1/b`, JSON, no
  Authorization header.
- analytics-kotlin: the same body to `/v1/b`, `text/plain`, gzip, streamed chunked
  (the chunked part is tested against the real server in test_live.py).
- RudderStack Android/iOS: `{"sentAt", "batch"}` to `/v1/batch` with the key as Basic
  auth, an `AnonymousId` header, gzip; RudderStack JS: `/v1/<type>` with Basic auth,
  and `navigator.sendBeacon` batches to `/beacon/v1/batch?writeKey=…`.
"""

import base64
import gzip

import orjson
import pytest
from django.test import Client

from rapport.ingest.models import Event
from rapport.tenancy.models import AuditLogEntry, Source
from rapport.tenancy.origins import InvalidOrigin, origin_allowed, origin_patterns_clean
from rapport.tenancy.selectors import write_key_cache_clear
from rapport.tenancy.services import Actor, source_create, source_update

SHOP = "https://shop.example.com"
EVIL = "https://evil.example.net"


def _basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def _analytics_next_event(kind: str, write_key: str) -> dict:
    """An event as analytics-next's Segment.io plugin posts it (normalize.js)."""
    event = {
        "type": kind,
        "messageId": f"ajs-next-{kind}-1",
        "anonymousId": "2f1e9a3c-anon",
        "userId": None,
        "timestamp": "2026-12-04T07:36:30.123Z",
        "sentAt": "2026-12-04T07:36:30.200Z",
        "context": {
            "library": {"name": "analytics.js", "version": "next-1.84.3"},
            "page": {"url": "https://shop.example.com/pricing", "path": "/pricing"},
            "userAgent": "Mozilla/5.0",
        },
        "integrations": {},
        "properties": {},
        "writeKey": write_key,
        "_metadata": {"bundled": ["Segment.io"], "unbundled": [], "bundledIds": []},
    }
    extra = {
        "identify": {"userId": "u-1", "traits": {"email": "ann@example.com"}},
        "track": {"event": "Order Completed", "properties": {"revenue": 42}},
        "page": {"name": "Pricing", "category": "Docs"},
        "screen": {"name": "Home"},
        "group": {"userId": "u-1", "groupId": "acme", "traits": {"name": "Acme"}},
        "alias": {"previousId": "2f1e9a3c-anon", "userId": "u-1"},
    }[kind]
    return {**event, **extra}


@pytest.fixture
def client() -> Client:
    return Client()


@pytest.fixture
def key(tenant) -> str:
    return tenant.created.write_key


@pytest.fixture
def source(tenant) -> Source:
    return tenant.created.source


def _allow(source: Source, origins: list[str]) -> None:
    source_update(source=source, allowed_origins=origins, actor=Actor.system("tests"))
    # In a test the transaction never commits, so the on-commit cache clear is manual.
    write_key_cache_clear()


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/v1/i", "identify"),
        ("/v1/t", "track"),
        ("/v1/p", "page"),
        ("/v1/s", "screen"),
        ("/v1/g", "group"),
        ("/v1/a", "alias"),
    ],
)
def test_short_paths_take_text_plain_json_with_the_write_key_in_the_body(
    path, kind, client, key, tenant
):
    body = orjson.dumps(_analytics_next_event(kind, key))

    response = client.post(path, data=body, content_type="text/plain", HTTP_ORIGIN=SHOP)

    assert response.status_code == 200, response.content
    event = Event.objects.get()
    assert (event.type, event.workspace_id) == (kind, tenant.workspace.pk)
    assert event.context["library"]["name"] == "analytics.js"
    assert response["Access-Control-Allow-Origin"] == SHOP


def test_analytics_next_batching_mode_posts_to_v1_b(client, key):
    items = [_analytics_next_event(kind, key) for kind in ("identify", "track", "page")]
    for item in items:
        del item["sentAt"]  # batched-dispatcher.js strips it; one sentAt for the batch
    body = {"writeKey": key, "batch": items, "sentAt": "2026-12-04T07:36:31.000Z"}

    response = client.post(
        "/v1/b",
        data=orjson.dumps(body),
        content_type="text/plain",
        HTTP_AUTHORIZATION=_basic(key),
    )

    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 3
    assert sorted(Event.objects.values_list("type", flat=True)) == ["identify", "page", "track"]


def _mobile_batch(write_key: str, library: str) -> bytes:
    """The file analytics-swift's DirectoryStore and analytics-kotlin's StorageImpl
    write and upload as it is: items one per line between a header and a footer."""
    items = [
        {
            "type": "track",
            "event": "Song Played",
            "userId": f"{library}-user",
            "anonymousId": "anon-m",
            "messageId": f"{library}-{i}",
            "timestamp": "2026-12-04T07:30:00.000Z",
            "context": {"library": {"name": library, "version": "1.0"}},
            "integrations": {},
            "properties": {"n": i},
        }
        for i in range(3)
    ]
    lines = ",\n".join(orjson.dumps(item).decode() for item in items)
    return (
        f'{{ "batch": [{lines}],"sentAt":"2026-12-04T07:30:05.000Z","writeKey":"{write_key}"}}'
    ).encode()


@pytest.mark.parametrize(
    ("library", "content_type", "compress"),
    [
        ("analytics-swift", "application/json; charset=utf-8", False),
        ("analytics-kotlin", "text/plain", True),
    ],
)
def test_segment_mobile_batches_with_the_write_key_in_the_body(
    library, content_type, compress, client, key
):
    body = _mobile_batch(key, library)
    extra = {"HTTP_CONTENT_ENCODING": "gzip"} if compress else {}

    response = client.post(
        "/v1/b",
        data=gzip.compress(body) if compress else body,
        content_type=content_type,
        **extra,
    )

    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 3
    assert set(Event.objects.values_list("user_id", flat=True)) == {f"{library}-user"}


def test_rudderstack_mobile_batch_with_basic_auth_gzip_and_anonymous_id_header(client, key):
    body = {
        "sentAt": "2026-12-04T07:30:05.000Z",
        "batch": [
            {
                "type": "identify",
                "anonymousId": "rs-anon",
                "userId": "rs-user",
                "messageId": "rs-1",
                "channel": "mobile",
                "originalTimestamp": "2026-12-04T07:30:00.000Z",
                "sentAt": "2026-12-04T07:30:05.000Z",
                "context": {
                    "traits": {"email": "rs@example.com"},
                    "library": {"name": "com.rudderstack.android.sdk.core"},
                },
            }
        ],
    }

    response = client.post(
        "/v1/batch",
        data=gzip.compress(orjson.dumps(body)),
        content_type="application/json",
        HTTP_AUTHORIZATION=_basic(key),
        HTTP_CONTENT_ENCODING="gzip",
        HTTP_ANONYMOUSID=base64.b64encode(b"rs-anon").decode(),
    )

    assert response.status_code == 200, response.content
    event = Event.objects.get()
    assert event.traits["email"] == "rs@example.com"


def test_rudderstack_beacon_batch_with_the_write_key_in_the_query_string(client, key):
    body = {"batch": [{"type": "track", "event": "Left", "anonymousId": "b-1"}], "sentAt": None}

    response = client.post(
        f"/beacon/v1/batch?writeKey={key}",
        data=orjson.dumps(body),
        content_type="text/plain",
        HTTP_ORIGIN=SHOP,
    )

    assert response.status_code == 200, response.content
    assert Event.objects.get().event == "Left"


def test_short_path_with_an_unknown_write_key_in_the_body_is_401(client, key):
    body = orjson.dumps(_analytics_next_event("track", "x" * 40))

    response = client.post("/v1/t", data=body, content_type="text/plain")

    assert response.status_code == 401
    assert Event.objects.count() == 0


# --- CORS --------------------------------------------------------------------------


def _preflight(client, path: str, origin: str, headers: str = "authorization,content-type"):
    return client.options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS=headers,
    )


@pytest.mark.parametrize("path", ["/v1/t", "/v1/track", "/v1/b", "/v1/batch"])
def test_preflight_is_granted_to_any_origin_by_default(path, client, source):
    assert source.allowed_origins == ["*"]

    response = _preflight(client, path, EVIL)

    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == EVIL
    assert "POST" in response["Access-Control-Allow-Methods"]
    assert response["Access-Control-Allow-Headers"] == "authorization,content-type"
    assert "Origin" in response["Vary"]


def test_preflight_is_refused_to_an_origin_no_source_allows(client, source):
    _allow(source, [SHOP, "https://*.example.org"])

    allowed = _preflight(client, "/v1/t", SHOP)
    subdomain = _preflight(client, "/v1/t", "https://www.example.org")
    refused = _preflight(client, "/v1/t", EVIL)

    assert allowed.status_code == 204
    assert allowed["Access-Control-Allow-Origin"] == SHOP
    assert subdomain["Access-Control-Allow-Origin"] == "https://www.example.org"
    assert refused.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused
    assert refused.json()["error"]["code"] == "origin_not_allowed"


def test_preflight_with_the_key_in_the_url_follows_that_source_alone(client, tenant, source, key):
    _allow(source, [SHOP])
    # Another source of the workspace still takes any origin.
    source_create(workspace=tenant.workspace, name="Open", actor=Actor.system("tests"))
    write_key_cache_clear()

    assert _preflight(client, "/v1/t", EVIL).status_code == 204
    beacon = _preflight(client, f"/beacon/v1/batch?writeKey={key}", EVIL)
    settings = _preflight(client, f"/v1/projects/{key}/settings", EVIL)

    assert beacon.status_code == settings.status_code == 403
    assert "Access-Control-Allow-Origin" not in beacon
    assert _preflight(client, f"/sourceConfig/?writeKey={key}", SHOP).status_code == 204


@pytest.mark.parametrize(
    "headers",
    [
        {"content_type": "text/plain"},  # analytics.js classic: a "simple" request, no preflight
        {"content_type": "application/json", "HTTP_AUTHORIZATION": "basic"},
    ],
)
def test_an_event_from_an_origin_its_source_refuses_is_403_and_not_stored(
    headers, client, source, key
):
    _allow(source, [SHOP])
    headers = dict(headers)
    if headers.get("HTTP_AUTHORIZATION"):
        headers["HTTP_AUTHORIZATION"] = _basic(key)
    body = orjson.dumps(_analytics_next_event("track", key))

    refused = client.post("/v1/t", data=body, HTTP_ORIGIN=EVIL, **headers)
    allowed = client.post("/v1/t", data=body, HTTP_ORIGIN=SHOP, **headers)

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in refused
    assert allowed.status_code == 200
    assert allowed["Access-Control-Allow-Origin"] == SHOP
    assert allowed["Access-Control-Expose-Headers"] == "Retry-After"
    assert Event.objects.count() == 1


def test_servers_apps_and_same_origin_pages_are_not_held_to_the_origins(client, source, key):
    _allow(source, [])  # no browser at all
    body = orjson.dumps(_analytics_next_event("track", key))

    from_server = client.post("/v1/track", data=body, content_type="application/json")
    same_origin = client.post(
        "/v1/track", data=body, content_type="text/plain", HTTP_ORIGIN="http://testserver"
    )
    from_page = client.post("/v1/track", data=body, content_type="text/plain", HTTP_ORIGIN=SHOP)

    assert (from_server.status_code, same_origin.status_code) == (200, 200)
    assert from_page.status_code == 403


# --- The SDKs' settings ---------------------------------------------------------------


def test_segment_settings_send_the_sdk_back_to_this_host(client, key):
    response = client.get(f"/v1/projects/{key}/settings", HTTP_ORIGIN=SHOP)

    assert response.status_code == 200
    segment = response.json()["integrations"]["Segment.io"]
    assert segment["apiKey"] == key
    assert (segment["apiHost"], segment["protocol"]) == ("testserver/v1", "http")
    # Nothing that would call Segment: no telemetry, no other destination to load.
    assert response.json()["metrics"]["sampleRate"] == 0
    assert list(response.json()["integrations"]) == ["Segment.io"]
    assert response["Access-Control-Allow-Origin"] == SHOP


@pytest.mark.parametrize("how", ["query", "basic", "no-slash"])
def test_rudderstack_source_config_names_the_source(how, client, key, source):
    path = "/sourceConfig/?p=npm&v=3.34.1&build=modern"
    extra = {}
    if how == "query":
        path += f"&writeKey={key}"
    elif how == "basic":
        extra["HTTP_AUTHORIZATION"] = _basic(key)
    else:
        path = f"/sourceConfig?writeKey={key}"

    response = client.get(path, **extra)

    assert response.status_code == 200, response.content
    config = response.json()["source"]
    assert config["id"] == str(source.pk)
    assert config["enabled"] is True
    assert config["destinations"] == []
    assert isinstance(config["config"], dict)


def test_rudderstack_ad_blocker_probe_is_answered(client, key):
    response = client.head("/sourceConfig/?view=ad", HTTP_AUTHORIZATION=_basic(key))

    assert response.status_code == 200


@pytest.mark.parametrize(
    "path", ["/v1/projects/{bad}/settings", "/sourceConfig/?writeKey={bad}", "/sourceConfig/"]
)
def test_settings_for_an_unknown_key_are_404(path, client, key):
    response = client.get(path.format(bad="y" * 40))

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_settings_from_a_refused_origin_are_403(client, source, key):
    _allow(source, [SHOP])

    response = client.get(f"/v1/projects/{key}/settings", HTTP_ORIGIN=EVIL)

    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response


# --- The setting itself ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (["*"], ["*"]),
        ([], []),
        (["HTTPS://Shop.Example.com/"], ["https://shop.example.com"]),
        (["http://localhost:3000", "http://localhost:3000"], ["http://localhost:3000"]),
        (["https://*.example.com"], ["https://*.example.com"]),
        (["http://[::1]:8080"], ["http://[::1]:8080"]),
    ],
)
def test_origin_patterns_are_cleaned(given, stored):
    assert origin_patterns_clean(given) == stored


@pytest.mark.parametrize(
    "bad",
    [
        "shop.example.com",
        "ftp://shop.example.com",
        "https://shop.example.com/path",
        "https://shop.example.com?x=1",
        "https://user@shop.example.com",
        "https://*",
        "https://exa mple.com",
        "https://shop.example.com:99999",
        "https://a\x00b.example.com",
        "https://" + "a" * 300 + ".com",
        42,
    ],
)
def test_invalid_origin_patterns_are_refused(bad):
    with pytest.raises(InvalidOrigin):
        origin_patterns_clean([bad])


@pytest.mark.parametrize(
    ("origin", "patterns", "allowed"),
    [
        (EVIL, ["*"], True),
        (SHOP, [SHOP], True),
        ("https://shop.example.com:8443", [SHOP], False),
        ("http://shop.example.com", [SHOP], False),
        ("https://www.example.com", ["https://*.example.com"], True),
        ("https://a.b.example.com", ["https://*.example.com"], True),
        ("https://example.com", ["https://*.example.com"], False),
        ("https://badexample.com", ["https://*.example.com"], False),
        ("http://www.example.com", ["https://*.example.com"], False),
        ("null", [SHOP], False),
        (SHOP, [], False),
    ],
)
def test_origin_matching(origin, patterns, allowed):
    assert origin_allowed(origin, patterns) is allowed


def test_allowed_origins_are_set_through_the_source_api(tenant, source):
    api = tenant.api()
    assert api.get(f"/api/v1/sources/{source.pk}").json()["allowed_origins"] == ["*"]

    response = api.patch(
        f"/api/v1/sources/{source.pk}", {"allowed_origins": ["HTTPS://Shop.Example.com/"]}
    )
    invalid = api.patch(f"/api/v1/sources/{source.pk}", {"allowed_origins": ["shop.example"]})

    assert response.status_code == 200, response.content
    assert response.json()["allowed_origins"] == [SHOP]
    assert response.json()["name"] == source.name
    assert invalid.status_code == 422
    assert invalid.json()["error"]["details"][0]["field"] == "allowed_origins"
    source.refresh_from_db()
    assert source.allowed_origins == [SHOP]
    entry = AuditLogEntry.objects.filter(action="source.update").get()
    assert entry.details == {"allowed_origins": [["*"], [SHOP]]}


def test_a_source_can_be_created_with_its_origins(tenant):
    response = tenant.api().post(
        "/api/v1/sources", {"name": "Shop", "kind": "website", "allowed_origins": [SHOP]}
    )

    assert response.status_code == 201, response.content
    assert response.json()["allowed_origins"] == [SHOP]
