"""Against a real server in its own processes: the official Segment and RudderStack
Python SDKs, concurrent replays, and a server killed while a client streams."""

import gzip
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import orjson
import pytest

from tests.live_server import live_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server():
    with live_server(workers=2) as running:
        yield running


def _sdk_calls(client, tag: str) -> None:
    client.identify(
        f"{tag}-user", {"email": f"{tag}@example.com", "plan": "pro"}, anonymous_id=f"{tag}-anon"
    )
    client.track(f"{tag}-user", "Order Completed", {"revenue": 42.5})
    client.page(f"{tag}-user", category="Docs", name="Pricing", properties={"path": "/pricing"})
    client.group(f"{tag}-user", f"{tag}-company", {"name": "Acme"})
    client.alias(f"{tag}-anon", f"{tag}-user")
    client.flush()


@pytest.mark.parametrize("sdk", ["segment", "rudderstack"])
def test_official_sdk_calls_all_arrive(sdk, server):
    tag = f"{sdk}-{uuid.uuid4().hex[:8]}"
    errors = []
    if sdk == "segment":
        from segment.analytics import Client
    else:
        from rudderstack.analytics import Client
    client = Client(
        write_key=server.write_key,
        host=server.url,
        on_error=lambda error, items: errors.append(error),
        sync_mode=True,
    )
    before = datetime.now(UTC)
    _sdk_calls(client, tag)
    after = datetime.now(UTC)

    assert errors == []
    events = server.all_events(f"user_id={tag}-user")
    assert sorted(e["type"] for e in events) == ["alias", "group", "identify", "page", "track"]
    me = server.api("/api/v1/me")
    for event in events:
        assert event["user_id"] == f"{tag}-user"
        stamped = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
        assert before.timestamp() - 1 <= stamped.timestamp() <= after.timestamp() + 1
        assert event["context"]["library"]["name"]
    assert me["workspace"]["name"] == "Live"
    by_type = {e["type"]: e for e in events}
    assert by_type["track"]["event"] == "Order Completed"
    assert by_type["track"]["properties"]["revenue"] == 42.5
    assert by_type["page"]["event"] == "Pricing"
    assert by_type["group"]["group_id"] == f"{tag}-company"
    assert by_type["alias"]["previous_id"] == f"{tag}-anon"
    assert by_type["identify"]["traits"]["email"] == f"{tag}@example.com"
    assert by_type["identify"]["anonymous_id"] == f"{tag}-anon"


def test_concurrent_replays_store_each_event_once(server):
    tag = uuid.uuid4().hex[:8]
    batch = {
        "batch": [
            {"type": "track", "userId": f"replay-{tag}", "event": "E", "messageId": f"{tag}-{i}"}
            for i in range(100)
        ]
    }

    def send(_):
        with httpx.Client(auth=(server.write_key, "")) as http:
            return http.post(f"{server.url}/v1/batch", json=batch, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(send, range(24)))

    assert statuses == [200] * 24
    assert server.api(f"/api/v1/events?user_id=replay-{tag}&limit=1")["count"] == 100


def test_killing_the_server_loses_no_acknowledged_event():
    with live_server(workers=2) as server:
        acknowledged: list[str] = []
        stop = threading.Event()

        def stream():
            with httpx.Client(auth=(server.write_key, "")) as http:
                i = 0
                while not stop.is_set() and i < 100_000:
                    message_ids = [f"k-{i}-{j}" for j in range(5)]
                    batch = [
                        {"type": "track", "userId": "streamer", "event": "Tick", "messageId": m}
                        for m in message_ids
                    ]
                    i += 1
                    try:
                        response = http.post(
                            f"{server.url}/v1/batch", json={"batch": batch}, timeout=5
                        )
                    except httpx.HTTPError:
                        continue
                    if response.status_code == 200:
                        acknowledged.extend(message_ids)

        sender = threading.Thread(target=stream)
        sender.start()
        deadline = time.monotonic() + 30
        while len(acknowledged) < 500 and time.monotonic() < deadline:
            time.sleep(0.05)
        server.kill()
        time.sleep(0.5)
        stop.set()
        sender.join(timeout=30)
        assert len(acknowledged) >= 500

        server.start()
        stored = {e["message_id"] for e in server.all_events("user_id=streamer")}

    missing = set(acknowledged) - stored
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:5]}"


def _post_chunked(server, path: str, pieces, headers: dict) -> tuple[int, dict]:
    """A POST whose body goes in chunks with no Content-Length, as analytics-kotlin
    streams its batches (HttpURLConnection.setChunkedStreamingMode)."""
    import http.client
    import json
    from urllib.parse import urlsplit

    parts = urlsplit(server.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("POST", path, body=iter(pieces), headers=headers, encode_chunked=True)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def _kotlin_batch(write_key: str, tag: str, count: int) -> bytes:
    items = ",".join(
        orjson.dumps(
            {"type": "track", "event": "Chunked", "userId": tag, "messageId": f"{tag}-{i}"}
        ).decode()
        for i in range(count)
    )
    return (
        f'{{"batch":[{items}],"sentAt":"2026-12-04T07:30:05Z","writeKey":"{write_key}"}}'.encode()
    )


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_a_chunked_body_without_content_length_is_read(compress, server):
    tag = f"chunked-{uuid.uuid4().hex[:8]}"
    body = _kotlin_batch(server.write_key, tag, 50)
    headers = {"Content-Type": "text/plain"}
    if compress:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    pieces = [body[i : i + 700] for i in range(0, len(body), 700)]

    status, answer = _post_chunked(server, "/v1/b", pieces, headers)

    assert (status, answer["accepted"]) == (200, 50), answer
    assert len(server.all_events(f"user_id={tag}")) == 50


def test_a_chunked_body_over_the_limit_is_still_413(server):
    # Over the Tracking API's 500 KB (what stops reading at a limit: tests/core).
    pieces = [b'{"batch":[', *([b" " * 65536] * 12), b"]}"]

    status, answer = _post_chunked(
        server,
        f"/v1/batch?writeKey={server.write_key}",
        pieces,
        {"Content-Type": "application/json"},
    )

    assert status == 413, answer
    assert answer["error"]["code"] == "payload_too_large"
