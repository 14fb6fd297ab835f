"""The real browser SDKs, from the npm registry (package.json), in Chromium, sending to
a live Rapport server from a page of another origin: CORS preflights, `text/plain`
bodies, the short paths, the settings each SDK fetches at start-up.

The page is served by a small server of its own on another port: `http://127.0.0.1:P`
is an origin the source allows, `http://localhost:P` one it can be told to refuse.
Without /usr/bin/chromium or the npm packages (`npm ci`) the tests are skipped, except
in CI (CI=true), where that is a failure.
"""

import json
import os
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.chromium import CHROMIUM, chromium_launched
from tests.live_server import _free_port, live_server

# The SDKs' JavaScript and the browser's CORS: the tracking API's storage is tested on
# both databases by tests/ingest; here it would only repeat itself on PostgreSQL.
pytestmark = [pytest.mark.slow, pytest.mark.one_database]

NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"
BUNDLES = {
    # The UMD build: the global `AnalyticsNext`, as a <script> tag would load it.
    "/analytics-next.js": NODE_MODULES / "@segment/analytics-next/dist/umd/index.js",
    # RudderStack's build with its plugins inside (the default build fetches them from
    # RudderStack's CDN at run time): the global `rudderanalytics`.
    "/rudderstack.js": NODE_MODULES
    / "@rudderstack/analytics-js/dist/npm/modern/bundled/umd/index.js",
}
PAGE = '<!doctype html><meta charset="utf-8"><title>shop</title><script src="{src}"></script>'

_missing = [
    what
    for what, present in [
        (CHROMIUM, Path(CHROMIUM).exists()),
        ("the npm packages (npm ci)", all(path.exists() for path in BUNDLES.values())),
    ]
    if not present
]
if _missing:
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"{', '.join(_missing)} missing: CI installs them")
    pytest.skip(f"{', '.join(_missing)} not installed", allow_module_level=True)


class _Site(BaseHTTPRequestHandler):
    """The shop's web site: two pages and the SDK bundles, nothing else."""

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/favicon.ico":
            self.send_response(204)
            self.end_headers()
            return
        if path in BUNDLES:
            body, kind = BUNDLES[path].read_bytes(), "text/javascript"
        elif path == "/segment.html":
            body, kind = PAGE.format(src="/analytics-next.js").encode(), "text/html"
        elif path == "/rudderstack.html":
            body, kind = PAGE.format(src="/rudderstack.js").encode(), "text/html"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site():
    port = _free_port()
    httpd = ThreadingHTTPServer(("127.0.0.1", port), _Site)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield port
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def server():
    # One worker: a change of the source's origins is seen at once by the process that
    # made it (the others would take up to the write-key cache's 5 s).
    with live_server(workers=1) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    with chromium_launched() as browser:
        yield browser


@pytest.fixture
def open_page(browser):
    contexts = []

    def make(url: str):
        context = browser.new_context()
        context.set_default_timeout(20_000)
        contexts.append(context)
        page = context.new_page()
        page.console_errors = []
        page.on(
            "console", lambda m: page.console_errors.append(m.text) if m.type == "error" else None
        )
        page.goto(url)
        return page

    yield make
    for context in contexts:
        context.close()


def _events(server, tag: str, count: int, timeout: float = 30) -> list[dict]:
    """The events of user `tag` once there are `count` of them (SDKs send
    asynchronously), or what there is when the time is up."""
    deadline = time.monotonic() + timeout
    while True:
        events = server.all_events(f"user_id={tag}")
        if len(events) >= count or time.monotonic() > deadline:
            return events
        time.sleep(0.3)


def _set_origins(server, origins: list[str]) -> None:
    source = server.api("/api/v1/sources")["items"][0]
    request = urllib.request.Request(  # noqa: S310 - local
        f"{server.url}/api/v1/sources/{source['id']}",
        data=json.dumps({"allowed_origins": origins}).encode(),
        method="PATCH",
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local
        assert json.loads(response.read())["allowed_origins"] == origins


SEGMENT_CALLS = """async ([rapport, writeKey, tag, how, wait]) => {
  const settings = how === 'cdnURL'
    // Rapport answers /v1/projects/<writeKey>/settings, as Segment's CDN would.
    ? {writeKey, cdnURL: rapport}
    // Or no settings request at all: the settings in the page.
    : {writeKey, cdnSettings: {
        integrations: {'Segment.io': {apiKey: writeKey, apiHost: new URL(rapport).host + '/v1',
                                      protocol: new URL(rapport).protocol.replace(':', '')}},
        metrics: {sampleRate: 0}}};
  const [analytics] = await AnalyticsNext.AnalyticsBrowser.load(settings);
  const sent = [
    analytics.identify(tag, {email: tag + '@example.com', plan: 'pro'}),
    analytics.track('Order Completed', {revenue: 42.5}),
    analytics.page('Docs', 'Pricing'),
  ];
  if (wait) await Promise.all(sent);
  return analytics.user().anonymousId();
}"""


@pytest.mark.parametrize("how", ["cdnURL", "cdnSettings"])
def test_analytics_next_delivers_from_another_origin(how, open_page, server, site):
    tag = f"ajs-{how}-{uuid.uuid4().hex[:8]}"
    page = open_page(f"http://127.0.0.1:{site}/segment.html")

    anonymous_id = page.evaluate(SEGMENT_CALLS, [server.url, server.write_key, tag, how, True])

    events = _events(server, tag, 3)
    by_type = {event["type"]: event for event in events}
    assert sorted(by_type) == ["identify", "page", "track"]
    assert by_type["identify"]["traits"]["email"] == f"{tag}@example.com"
    assert by_type["track"]["event"] == "Order Completed"
    assert by_type["track"]["properties"]["revenue"] == 42.5
    assert by_type["page"]["event"] == "Pricing"
    for event in events:
        assert event["anonymous_id"] == anonymous_id
        assert event["context"]["library"]["name"] == "analytics.js"
        assert event["context"]["page"]["url"] == f"http://127.0.0.1:{site}/segment.html"
    assert page.console_errors == []


RUDDERSTACK_CALLS = """([rapport, writeKey, tag, wait]) => new Promise((resolve) => {
  const analytics = new rudderanalytics.RudderAnalytics();
  // configUrl: Rapport answers /sourceConfig, as RudderStack's control plane would.
  analytics.load(writeKey, rapport, {configUrl: rapport});
  analytics.identify(tag, {email: tag + '@example.com'});
  analytics.track('Order Completed', {revenue: 42.5});
  analytics.page('Docs', 'Pricing');
  if (wait) analytics.ready(() => resolve(analytics.getAnonymousId()));
  else resolve(null);
})"""


def test_rudderstack_delivers_from_another_origin(open_page, server, site):
    tag = f"rs-{uuid.uuid4().hex[:8]}"
    page = open_page(f"http://127.0.0.1:{site}/rudderstack.html")

    anonymous_id = page.evaluate(RUDDERSTACK_CALLS, [server.url, server.write_key, tag, True])

    events = _events(server, tag, 3)
    by_type = {event["type"]: event for event in events}
    assert sorted(by_type) == ["identify", "page", "track"]
    assert by_type["identify"]["traits"]["email"] == f"{tag}@example.com"
    assert by_type["track"]["properties"]["revenue"] == 42.5
    assert by_type["page"]["event"] == "Pricing"
    for event in events:
        assert event["anonymous_id"] == anonymous_id
        assert event["context"]["library"]["name"] == "RudderLabs JavaScript SDK"
    assert page.console_errors == []


def test_an_origin_the_source_does_not_allow_gets_nothing_through(open_page, server, site):
    allowed, refused = f"http://127.0.0.1:{site}", f"http://localhost:{site}"
    _set_origins(server, [allowed])
    try:
        refused_tag = f"refused-{uuid.uuid4().hex[:8]}"
        pages = [
            open_page(f"{refused}/segment.html"),
            open_page(f"{refused}/rudderstack.html"),
        ]
        # Neither waits for a delivery that cannot happen.
        pages[0].evaluate(
            SEGMENT_CALLS, [server.url, server.write_key, refused_tag, "cdnSettings", False]
        )
        pages[1].evaluate(RUDDERSTACK_CALLS, [server.url, server.write_key, refused_tag, False])
        # Afterwards, from the allowed origin: once that has landed, the refused
        # would have too.
        witness = f"allowed-{uuid.uuid4().hex[:8]}"
        open_page(f"{allowed}/segment.html").evaluate(
            SEGMENT_CALLS, [server.url, server.write_key, witness, "cdnURL", True]
        )
        assert len(_events(server, witness, 3)) == 3
        for page in pages:
            page.wait_for_timeout(1000)
            assert any("blocked by CORS policy" in error for error in page.console_errors), (
                page.console_errors
            )
        assert server.all_events(f"user_id={refused_tag}") == []
    finally:
        _set_origins(server, ["*"])
