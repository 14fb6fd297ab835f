"""The profile page's data: GET /api/v1/profiles/{id} and the first timeline page, for a
customer with 100,000 events in a database of 1,000,000 profiles, over HTTP from a
running `rapport serve`.

Target (issue 4): under 100 ms for both requests together. Issue 23: the person page
itself (GET /customers/{id}/ as a signed-in admin: header card, traits, side column and
the first timeline page in sentences) under 300 ms p95. Also measured: a page deep
in the history (keyset paging keeps it as fast), a kind-filtered page, and the same
page for a customer with ten events (the cost of a long history, as a ratio).
BENCH_PROFILES (1,000,000) and BENCH_PROFILE_EVENTS (100,000) set the sizes.
"""

import json
import os
import statistics
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

PROFILES = int(os.environ.get("BENCH_PROFILES", "1000000"))
EVENTS = int(os.environ.get("BENCH_PROFILE_EVENTS", "100000"))
ROUNDS = 60
PAGE_EMAIL = "bench-person@example.com"
PAGE_PASSWORD = "bench-password-123"  # noqa: S105 - a throwaway bench database
CHUNK = 20000


def _fill(workspace_name: str) -> dict:
    """Profiles, identifiers and events straight into the tables (the ingestion path
    is benchmarked elsewhere); returns the ids to request."""
    import django

    django.setup()
    from rapport.core.bulk import rows_insert
    from rapport.identity.models import Identifier, ProfileMerge
    from rapport.ingest.models import Event
    from rapport.profiles.models import ConsentChange, Profile
    from rapport.tenancy.models import Source, Workspace

    workspace = Workspace.objects.get(name=workspace_name)
    source = Source.objects.filter(workspace=workspace).first()
    from rapport.tenancy.services import Actor, member_add

    member_add(
        workspace=workspace,
        email=PAGE_EMAIL,
        role="admin",
        password=PAGE_PASSWORD,
        actor=Actor.system(),
    )
    now = datetime.now(UTC)
    started = time.perf_counter()
    heavy, light = None, None
    for start in range(0, PROFILES, CHUNK):
        profiles, identifiers = [], []
        for n in range(start, min(start + CHUNK, PROFILES)):
            pk = uuid.uuid4()
            heavy = heavy or pk
            light = pk if n == 1 else light
            profiles.append(
                {
                    "id": pk,
                    "workspace_id": workspace.pk,
                    "traits": {"email": f"person{n}@example.com", "plan": "pro"},
                    "trait_sources": {},
                    "first_seen_at": now - timedelta(days=400),
                    "last_seen_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            identifiers.append(
                {
                    "id": uuid.uuid4(),
                    "workspace_id": workspace.pk,
                    "profile_id": pk,
                    "kind": "user_id",
                    "value": f"user-{n}",
                    "created_at": now,
                }
            )
        rows_insert(Profile, profiles, conflict=["id"])
        rows_insert(Identifier, identifiers, conflict=["workspace_id", "value", "kind"])

    def events(profile_id, count, prefix):
        for start in range(0, count, CHUNK):
            rows = []
            for n in range(start, min(start + CHUNK, count)):
                at = now - timedelta(minutes=count - n)
                identify = n % 50 == 0
                rows.append(
                    {
                        "id": uuid.uuid4(),
                        "workspace_id": workspace.pk,
                        "source_id": source.pk,
                        "profile_id": profile_id,
                        "message_id": f"{prefix}-{n}",
                        "type": "identify" if identify else "track",
                        "event": "" if identify else "Product Viewed",
                        "user_id": "user-0",
                        "anonymous_id": "",
                        "group_id": "",
                        "previous_id": "",
                        "timestamp": at,
                        "received_at": at,
                        "sent_at": None,
                        "original_timestamp": None,
                        "in_future": False,
                        "properties": {} if identify else {"sku": f"sku-{n % 300}", "price": 20},
                        "traits": {"plan": "pro", "visits": n} if identify else {},
                        "context": {"ip": "192.0.2.1", "userAgent": "bench"},
                    }
                )
            rows_insert(Event, rows, conflict=["id"])

    events(heavy, EVENTS, "heavy")
    events(light, 10, "light")
    ConsentChange.objects.bulk_create(
        ConsentChange(
            workspace=workspace,
            profile_id=heavy,
            origin_profile_id=heavy,
            channel="email",
            purpose="marketing",
            status=["granted", "denied"][n % 2],
            at=now - timedelta(days=n),
            source="bench",
        )
        for n in range(20)
    )
    ProfileMerge.objects.create(
        workspace=workspace, survivor_id=heavy, merged_id=light, reason="bench", automatic=True
    )
    ProfileMerge.objects.filter(merged_id=light).update(unmerged_at=now)
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    else:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return {"heavy": str(heavy), "light": str(light), "fill_seconds": time.perf_counter() - started}


def _get(url: str, token: str) -> tuple[float, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310 - local
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local
        body = json.loads(response.read())
        assert response.status == 200
    return (time.perf_counter() - started) * 1000, body


def _profile_page(server, profile_id: str, query: str = "") -> dict:
    """Both requests of the profile page, ROUNDS times; milliseconds."""
    totals = []
    for _ in range(ROUNDS):
        profile_ms, _ = _get(f"{server.url}/api/v1/profiles/{profile_id}", server.token)
        timeline_ms, page = _get(
            f"{server.url}/api/v1/profiles/{profile_id}/timeline?limit=50{query}", server.token
        )
        totals.append(profile_ms + timeline_ms)
    totals.sort()
    return {
        "p50_ms": round(statistics.median(totals), 1),
        "p95_ms": round(totals[int(len(totals) * 0.95) - 1], 1),
        "max_ms": round(totals[-1], 1),
        "items": len(page["items"]),
    }


def _person_page(server, profile_id: str) -> dict:
    """The person page as a signed-in admin's browser gets it (HTML, one request),
    ROUNDS times after a warm-up; milliseconds."""
    from bench import bench_ui_pages

    bench_ui_pages.EMAIL, bench_ui_pages.PASSWORD = PAGE_EMAIL, PAGE_PASSWORD
    browser = bench_ui_pages._Browser(server.url)
    path = f"/customers/{profile_id}/"
    _, body = browser.get(path)
    assert "timeline-entries" in body, "not the person page"
    times = sorted(browser.get(path)[0] for _ in range(ROUNDS))
    return {
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[int(len(times) * 0.95) - 1], 1),
        "max_ms": round(times[-1], 1),
    }


def run() -> dict:
    from bench.live import live_fill
    from tests.live_server import live_server

    # BENCH_PORT: a port of one's own on a shared machine (else any free one).
    port = int(os.environ["BENCH_PORT"]) if os.environ.get("BENCH_PORT") else None
    with live_server(
        workers=1, database_url=os.environ.get("BENCH_DATABASE_URL", ""), port=port
    ) as server:
        ids = live_fill(server, "bench.bench_profile_page")
        heavy = ids["heavy"]
        _profile_page(server, heavy)  # warm up
        first = _profile_page(server, heavy)
        light = _profile_page(server, ids["light"])
        # Page 100 of the history, through the cursor the API hands out.
        cursor = None
        for _ in range(100):
            _, body = _get(
                f"{server.url}/api/v1/profiles/{heavy}/timeline?limit=50"
                + (f"&cursor={cursor}" if cursor else ""),
                server.token,
            )
            cursor = body["next_cursor"]
        deep = _profile_page(server, heavy, f"&cursor={cursor}")
        changes = _profile_page(server, heavy, "&kind=trait_change,consent")
        person_page = _person_page(server, heavy)
        person_page_light = _person_page(server, ids["light"])
    return {
        "database": server.env["DATABASE_URL"].split(":", 1)[0],
        "profiles": PROFILES,
        "events_of_the_customer": EVENTS,
        "fill_seconds": round(ids["fill_seconds"], 1),
        "first_page": first,
        "page_100": deep,
        "trait_changes_and_consent": changes,
        "customer_with_10_events": light,
        "person_page_html": person_page,
        "person_page_html_10_events": person_page_light,
        "person_page_target_ms": 300,
        "target_ms": 100,
        "p95_vs_target": round(first["p95_ms"] / 100, 3),
        "long_vs_short_history_p50": round(first["p50_ms"] / light["p50_ms"], 2),
    }


if __name__ == "__main__" and "--fill" in sys.argv:
    print(json.dumps(_fill(sys.argv[sys.argv.index("--fill") + 1])))
