"""A revoked write key is refused at once by every server process, not after their
caches expire (796 events were stored after the revoke's 204)."""

import threading
import time
import uuid

import httpx
import pytest

from tests.live_server import live_server

pytestmark = pytest.mark.slow


def test_a_revoked_key_is_refused_at_once_by_every_process():
    with live_server(workers=2) as server:
        headers = {"Authorization": f"Bearer {server.token}"}
        source = server.api("/api/v1/sources")["items"][0]
        key_id = source["write_keys"][0]["id"]
        auth = (server.write_key, "")
        sent: list[tuple[float, str, int]] = []
        stop = threading.Event()

        def send() -> None:
            # A new connection each time, so that both processes answer.
            while not stop.is_set():
                message_id = uuid.uuid4().hex
                started = time.monotonic()
                response = httpx.post(
                    f"{server.url}/v1/track",
                    json={"userId": "u", "event": "Tick", "messageId": message_id},
                    auth=auth,
                    timeout=30,
                )
                sent.append((started, message_id, response.status_code))

        senders = [threading.Thread(target=send) for _ in range(6)]
        for thread in senders:
            thread.start()
        # Long enough for both processes to hold the key in their caches.
        time.sleep(2.0)
        assert {status for _, _, status in sent} == {200}
        revoked = httpx.delete(
            f"{server.url}/api/v1/sources/{source['id']}/write-keys/{key_id}", headers=headers
        )
        answered = time.monotonic()
        assert revoked.status_code == 204
        time.sleep(2.0)
        stop.set()
        for thread in senders:
            thread.join()

        after = [(mid, status) for started, mid, status in sent if started > answered]
        assert len(after) >= 10
        assert {status for _, status in after} == {401}, sum(s == 200 for _, s in after)
        stored = {e["message_id"] for e in server.all_events("type=track")}
        assert not stored & {mid for mid, _ in after}
