"""In-app messages: sent through the send path (a single message and a broadcast), polled
by the customer's app with its source's write key, and what the customer did with them
coming back as events of the customer (for segments)."""

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from django.test import Client

import rapport
from rapport.channels.models import Message
from rapport.ingest.models import Event
from rapport.ingest.services import events_dispatch
from rapport.segments import services as segments
from tests.channels.conftest import ACTOR, customer
from tests.channels.test_api import _run_tasks
from tests.conftest import tenant_create


def _basic(write_key: str) -> dict:
    token = base64.b64encode(f"{write_key}:".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


def _poll(tenant, query: str, *, key: str | None = None, **extra):
    key = tenant.created.write_key if key is None else key
    return Client().get(f"/v1/in-app/messages?{query}", **_basic(key), **extra)


def _report(tenant, message_id, kind: str, *, key: str | None = None, **who):
    key = tenant.created.write_key if key is None else key
    return Client().post(
        f"/v1/in-app/messages/{message_id}/events",
        data={"type": kind, **who},
        content_type="application/json",
        **_basic(key),
    )


def _single(tenant, user_id: str, *, purpose="transactional", **content):
    content.setdefault("subject", "Hello {{ customer.first_name|default:'you' }}")
    content.setdefault("html", "<p>Your order shipped, {{ customer.first_name }}</p>")
    answer = tenant.api().post(
        "/api/v1/messages",
        {"user_id": user_id, "channel": "in_app", "purpose": purpose, "content": content},
    )
    assert answer.status_code == 201, answer.content
    return answer.json()["id"]


def test_single_message_is_polled_shown_clicked_and_dismissed(shop):
    jane = customer(shop, "jane", marketing=None, first_name="Jane")
    customer(shop, "bob", marketing=None, first_name="Bob")
    message_id = _single(shop, "jane", url="https://shop.example/orders/1")
    _run_tasks()
    message = Message.objects.get(pk=message_id)
    assert message.status == "sent" and message.profile_id == jane.pk

    polled = _poll(shop, "user_id=jane")
    assert polled.status_code == 200, polled.content
    assert polled["Cache-Control"] == "no-store"
    [item] = polled.json()["messages"]
    assert item["id"] == message_id
    assert item["title"] == "Hello Jane"
    assert item["html"] == "<p>Your order shipped, Jane</p>"
    assert item["text"].strip() == "Your order shipped, Jane"
    assert item["url"] == "https://shop.example/orders/1"
    assert item["broadcast_id"] is None
    message.refresh_from_db()
    assert message.status == "delivered" and message.delivered_at is not None
    # Bob has nothing; an unknown customer has nothing either.
    assert _poll(shop, "user_id=bob").json() == {"messages": []}
    assert _poll(shop, "anonymous_id=nobody").json() == {"messages": []}

    assert _report(shop, message_id, "shown", user_id="jane").status_code == 204
    assert _report(shop, message_id, "shown", user_id="jane").status_code == 204  # once
    assert _report(shop, message_id, "clicked", user_id="jane").status_code == 204
    message.refresh_from_db()
    assert message.opened_at is not None and message.clicked_at is not None
    assert message.dismissed_at is None
    assert _report(shop, message_id, "dismissed", user_id="jane").status_code == 204
    message.refresh_from_db()
    assert message.dismissed_at is not None
    assert _poll(shop, "user_id=jane").json() == {"messages": []}

    events = Event.objects.filter(workspace=shop.workspace, event__startswith="In-App Message")
    assert sorted(e.event for e in events) == [
        "In-App Message Clicked",
        "In-App Message Dismissed",
        "In-App Message Shown",
    ]
    for event in events:
        assert event.user_id == "jane"
        assert event.properties == {"message_id": message_id, "broadcast_id": None}
        assert event.source_id == shop.created.source.pk
    # Through the pipeline, the events are the customer's.
    events_dispatch(workspace_id=shop.workspace.pk, message_ids=[e.message_id for e in events])
    assert {e.profile_id for e in Event.objects.filter(pk__in=[e.pk for e in events])} == {jane.pk}


def test_broadcast_in_app_reaches_each_member(shop):
    for name in ("ann", "ben", "cid"):
        customer(shop, name, marketing=None, first_name=name.title())
    listed = segments.segment_create(
        workspace=shop.workspace, name="App users", kind="static", actor=ACTOR
    )
    segments.segment_members_add(segment=listed, values=["ann", "ben"], actor=ACTOR)
    api = shop.api()
    created = api.post(
        "/api/v1/broadcasts",
        {
            "name": "Spring sale",
            "channel": "in_app",
            "segment_id": str(listed.pk),
            "subject": "Sale, {{ customer.first_name }}",
            "text": "20 % off today",
            "url": "https://shop.example/sale",
        },
    )
    assert created.status_code == 201, created.content
    broadcast_id = created.json()["id"]
    assert api.post(f"/api/v1/broadcasts/{broadcast_id}/send", {}).status_code == 200
    _run_tasks()
    stats = api.get(f"/api/v1/broadcasts/{broadcast_id}").json()["stats"]
    # No consent asked for in-app marketing: both members have it.
    assert stats["sent"] == 2, stats

    [ann_item] = _poll(shop, "user_id=ann").json()["messages"]
    assert ann_item["title"] == "Sale, Ann"
    assert ann_item["text"] == "20 % off today"
    assert ann_item["url"] == "https://shop.example/sale"
    assert ann_item["broadcast_id"] == broadcast_id
    assert _poll(shop, "user_id=cid").json() == {"messages": []}
    assert _report(shop, ann_item["id"], "clicked", user_id="ann").status_code == 204
    clicked = Event.objects.get(workspace=shop.workspace, event="In-App Message Clicked")
    assert clicked.properties == {"message_id": ann_item["id"], "broadcast_id": broadcast_id}
    assert api.get(f"/api/v1/broadcasts/{broadcast_id}").json()["stats"]["clicked"] == 1


def test_write_key_customer_and_workspace_are_checked(shop, other_shop):
    customer(shop, "jane", marketing=None)
    customer(shop, "bob", marketing=None)
    message_id = _single(shop, "jane")
    _run_tasks()

    # No key, a wrong key: 401.
    assert Client().get("/v1/in-app/messages?user_id=jane").status_code == 401
    assert _poll(shop, "user_id=jane", key="wk_not-a-key").status_code == 401
    assert _report(shop, message_id, "shown", key="nonsense", user_id="jane").status_code == 401
    # The key in the query string works as well (no preflight for a GET).
    by_query = Client().get(f"/v1/in-app/messages?user_id=jane&writeKey={shop.created.write_key}")
    assert by_query.status_code == 200 and len(by_query.json()["messages"]) == 1
    # Another customer's message, another workspace's key: 404, nothing recorded.
    assert _report(shop, message_id, "shown", user_id="bob").status_code == 404
    other = _report(
        other_shop, message_id, "shown", key=other_shop.created.write_key, user_id="jane"
    )
    assert other.status_code == 404
    assert _poll(other_shop, "user_id=jane").json() == {"messages": []}
    message = Message.objects.get(pk=message_id)
    assert message.opened_at is None
    assert not Event.objects.filter(event__startswith="In-App").exists()
    # Bad input names the field.
    bad = _report(shop, message_id, "liked", user_id="jane")
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["field"] == "type"
    nobody = _poll(shop, "")
    assert nobody.status_code == 422
    assert nobody.json()["error"]["details"][0]["field"] == "user_id"
    broken = Client().post(
        f"/v1/in-app/messages/{message_id}/events",
        data=b"{not json",
        content_type="application/json",
        **_basic(shop.created.write_key),
    )
    assert broken.status_code == 400


def test_browser_cors_follows_the_source(shop):
    customer(shop, "jane", marketing=None)
    preflight = Client().options(
        f"/v1/in-app/messages?user_id=jane&writeKey={shop.created.write_key}",
        HTTP_ORIGIN="https://shop.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
    )
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == "https://shop.example"
    answer = _poll(shop, "user_id=jane", HTTP_ORIGIN="https://shop.example")
    assert answer.status_code == 200
    assert answer["Access-Control-Allow-Origin"] == "https://shop.example"


@pytest.fixture
def other_shop(db):
    return tenant_create("Other shop", sample_data=False)


NODE = shutil.which("node")
SNIPPET = Path(rapport.__file__).parent / "channels/static/channels/rapport-inapp.js"
NODE_SCRIPT = """
globalThis.self = globalThis;
require(process.argv[1]);
const [host, writeKey] = process.argv.slice(2);
const seen = [];
const inApp = RapportInApp.start({
  host, writeKey, userId: "jane", interval: 3600000,
  render(message, actions) {
    seen.push(message);
    setTimeout(() => { actions.click(); setTimeout(() => actions.dismiss(), 200); }, 200);
    return () => {};
  },
});
setTimeout(async () => {
  const again = await inApp.poll();
  inApp.stop();
  console.log(JSON.stringify({ seen, again }));
}, 2000);
"""


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_the_snippet_polls_shows_and_reports(transactional_db, live_server):
    """rapport-inapp.js (run by node, the page's rendering replaced) against a live
    server: its poll and its reports are what the endpoints take."""
    tenant = tenant_create("Snippet shop", sample_data=False)
    customer(tenant, "jane", marketing=None, first_name="Jane")
    message_id = _single(tenant, "jane", subject="Welcome {{ customer.first_name }}")
    _run_tasks()
    done = subprocess.run(
        [NODE, "-e", NODE_SCRIPT, str(SNIPPET), live_server.url, tenant.created.write_key],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(done.stdout)
    assert [m["id"] for m in result["seen"]] == [message_id]
    assert result["seen"][0]["title"] == "Welcome Jane"
    assert result["again"] == []  # dismissed
    message = Message.objects.get(pk=message_id)
    assert message.opened_at and message.clicked_at and message.dismissed_at
    assert (
        Event.objects.filter(
            workspace=tenant.workspace, event__startswith="In-App Message", user_id="jane"
        ).count()
        == 3
    )
