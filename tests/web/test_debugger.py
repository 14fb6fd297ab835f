"""The event debugger: the last events in the order they were received, newest first
(not the time the client says they happened), in one order on every refresh."""

from rapport.ingest.models import Event
from tests.web.clients import signed_in


def _track(message_id: str, at: str) -> dict:
    return {
        "type": "track",
        "userId": "dbg",
        "event": f"Event {message_id}",
        "timestamp": at,
        "messageId": message_id,
    }


def _shown(client, **params) -> list[str]:
    rows = client.get("/data/debugger/", params).context["rows"]
    return [row["event"].message_id for row in rows]


def test_newest_received_first_whatever_the_event_time(tenant):
    # A live event, then an import of last year's history, then a late mobile batch
    # whose events happened between them.
    tenant.send(_track("live", "2026-11-30T10:00:00Z"))
    tenant.send(_track("old-1", "2025-01-01T10:00:00Z"), _track("old-2", "2025-01-02T10:00:00Z"))
    tenant.send(_track("late", "2026-06-01T10:00:00Z"))
    client = signed_in(tenant)
    shown = [m for m in _shown(client) if m in {"live", "old-1", "old-2", "late"}]
    assert shown[0] == "late" and shown[-1] == "live"
    assert set(shown[1:3]) == {"old-1", "old-2"}
    received = [
        Event.objects.get(workspace=tenant.workspace, message_id=m).received_at for m in shown
    ]
    assert received == sorted(received, reverse=True)


def test_the_order_is_the_same_on_every_refresh(tenant):
    tenant.send(*[_track(f"same-{n}", "2026-11-30T10:00:00Z") for n in range(12)])
    client = signed_in(tenant)
    first = _shown(client)
    htmx = client.get("/data/debugger/", headers={"HX-Request": "true"})
    assert [row["event"].message_id for row in htmx.context["rows"]] == first
    assert _shown(client) == first


def test_each_payload_carries_its_event_id_so_it_stays_open(tenant):
    tenant.send(_track("kept-open", "2026-11-30T10:00:00Z"))
    event = Event.objects.get(workspace=tenant.workspace, message_id="kept-open")
    client = signed_in(tenant)
    page = client.get("/data/debugger/").content.decode()
    assert f'data-event="{event.pk}"' in page and "web/debugger.js" in page
    rows = client.get("/data/debugger/", headers={"HX-Request": "true"}).content.decode()
    assert f'data-event="{event.pk}"' in rows
