"""A small closed-loop HTTP load generator: N threads, each on one keep-alive
connection, a fixed number of requests in all (bounded in count and time)."""

import http.client
import statistics
import threading
import time
from collections.abc import Callable
from urllib.parse import urlparse


def hammer(
    url: str,
    path: str,
    *,
    requests: int,
    threads: int = 8,
    method: str = "GET",
    body: bytes | None = None,
    body_for: Callable[[int], bytes] | None = None,
    headers: dict[str, str] | None = None,
    time_limit_s: float = 120.0,
) -> dict:
    """`body_for(i)` gives request i its own body (so that events are new ones)."""
    parsed = urlparse(url)
    per_thread = requests // threads
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.monotonic() + time_limit_s

    def worker(offset: int) -> None:
        nonlocal errors
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        mine, bad = [], 0
        for n in range(per_thread):
            if time.monotonic() > deadline:
                break
            payload = body_for(offset + n) if body_for is not None else body
            started = time.perf_counter()
            conn.request(method, path, body=payload, headers=headers or {})
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - started)
            if response.status >= 400:
                bad += 1
        conn.close()
        with lock:
            latencies.extend(mine)
            errors += bad

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(t * per_thread,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "seconds": round(elapsed, 3),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
    }


def open_loop(
    url: str,
    write_key: str,
    bodies: list[bytes],
    *,
    per_second: float,
    on_answer: Callable[[int, float, int], None],
    clients: int = 16,
    path: str = "/v1/batch",
) -> tuple[float, float]:
    """Open-loop load: body i is POSTed when due, `started + i / per_second`, whether or
    not the server has answered the ones before (a server that falls behind is not
    excused by a client that waits for it); `on_answer(i, due, status)` from the sending
    thread. (When the first was due, seconds until the last was sent.)"""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    pool = [httpx.Client(auth=(write_key, "")) for _ in range(clients)]
    started = time.monotonic() + 0.5

    def send(n: int) -> None:
        due = started + n / per_second
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        response = pool[n % clients].post(
            f"{url}{path}",
            content=bodies[n],
            headers={"Content-Type": "application/json"},
            timeout=60,
        )
        on_answer(n, due, response.status_code)

    try:
        with ThreadPoolExecutor(max_workers=clients) as executor:
            list(executor.map(send, range(len(bodies))))
    finally:
        for client in pool:
            client.close()
    return started, time.monotonic() - started
