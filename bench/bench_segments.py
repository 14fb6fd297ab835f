"""Segments at scale (issue 7), on PostgreSQL: 1,000,000 profiles and 20,000,000 events.

Measured:
- a three-condition segment (trait + event count in a 90-day window + RFM cell):
  full evaluation (the first fill, then a refresh with nothing to change), target 10 s;
  a preview count, target 2 s;
- RFM and lifecycle recomputation for every profile, target 60 s together;
- freshness: the work the worker does for one new event (resolution, accounts,
  consent, lifecycle and every dynamic segment for that customer), to which the
  worker's poll interval (1 s) adds at most 1 s; target 2 s.

Rows are generated inside PostgreSQL (generate_series): the ingestion path has its own
benchmarks. BENCH_SEGMENT_PROFILES and BENCH_SEGMENT_EVENTS set the sizes.
"""

import os
import time
from datetime import UTC, datetime

from bench.filled import (
    event_indexes_dropped,
    postgresql_ready,
    profiles_generated,
    timed,
    workspace_filled,
)

PROFILES = int(os.environ.get("BENCH_SEGMENT_PROFILES", "1000000"))
EVENTS = int(os.environ.get("BENCH_SEGMENT_EVENTS", "20000000"))
PURCHASE_SHARE = 0.1
DAYS = 730


def _fill(workspace_id: str, source_id: str) -> float:
    """Rows straight into the tables; the event table's indexes are dropped for the
    load and built again after it (as a bulk load into PostgreSQL is done)."""
    from django.db import connection

    started = time.perf_counter()
    with event_indexes_dropped():
        now = datetime.now(UTC)
        with connection.cursor() as cursor:
            profiles_generated(cursor, workspace_id, PROFILES, DAYS, now)
            chunk = 2_000_000
            for start in range(0, EVENTS, chunk):
                cursor.execute(
                    """
                    INSERT INTO ingest_event
                      (id, workspace_id, source_id, message_id, profile_id, type, event, user_id,
                       anonymous_id, group_id, previous_id, timestamp, received_at, in_future,
                       properties, traits, context, integrations)
                    SELECT md5('e' || n)::uuid, %s, %s, 'bench-' || n,
                           md5('p' || (1 + (n * 7919) %% %s))::uuid, 'track',
                           CASE WHEN n %% 10 = 0 THEN 'Order Completed' ELSE 'Product Viewed' END,
                           'user-' || (1 + (n * 7919) %% %s), '', '', '',
                           %s - make_interval(secs => (n %% (%s * 86400))::float8),
                           %s, false,
                           CASE WHEN n %% 10 = 0
                                THEN jsonb_build_object('revenue', 5 + n %% 200, 'order_id', n)
                                ELSE jsonb_build_object('sku', 'sku-' || n %% 300) END,
                           '{}'::jsonb, '{}'::jsonb, '{}'::jsonb
                    FROM generate_series(%s::bigint, %s::bigint) AS n
                    """,
                    [
                        workspace_id,
                        source_id,
                        PROFILES,
                        PROFILES,
                        now,
                        DAYS,
                        now,
                        start + 1,
                        min(start + chunk, EVENTS),
                    ],
                )
    with connection.cursor() as cursor:
        # What autovacuum does after a bulk load (it is off on this machine's server);
        # the visibility map lets index-only scans skip the table.
        cursor.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


RULE = {
    "all": [
        {"trait": "plan", "op": "eq", "value": "pro"},
        {
            "event": "Order Completed",
            "count": {"op": "gte", "value": 2},
            "window": {"last_days": 90},
        },
        {"rfm": "cell", "op": "in", "value": ["Champions", "Loyal", "Potential loyalists"]},
    ]
}


def run() -> dict:
    if not postgresql_ready():
        return {"skipped": "needs DATABASE_URL pointing at PostgreSQL"}
    from rapport.identity.models import Identifier
    from rapport.ingest.services import Destination, events_dispatch, events_ingest, events_parse
    from rapport.segments import selectors, services
    from rapport.segments.models import Segment, SegmentMembership
    from rapport.tenancy.models import Source
    from rapport.tenancy.services import Actor

    actor = Actor.system("bench")
    # A database already filled by an earlier run is measured again as it is.
    workspace, fill = workspace_filled("bench-segments", _fill)
    Segment.objects.filter(workspace=workspace).delete()
    source = Source.objects.filter(workspace=workspace).first()

    rfm_s, rfm = timed(services.rfm_refresh, workspace_id=workspace.pk)
    life_first_s, _ = timed(services.lifecycle_refresh, workspace_id=workspace.pk)
    life_again_s, life_again = timed(services.lifecycle_refresh, workspace_id=workspace.pk)

    preview_s, preview = timed(
        selectors.segment_preview, workspace=workspace, rule=RULE, can_see_pii=True
    )
    preview_again_s, _ = timed(
        selectors.segment_preview, workspace=workspace, rule=RULE, can_see_pii=True
    )
    segment = services.segment_create(
        workspace=workspace, name="Bench three conditions", rule=RULE, actor=actor, refresh="none"
    )
    first_s, first = timed(services.segment_refresh, segment=segment)
    again_s, again = timed(services.segment_refresh, segment=segment)

    # Freshness: identify calls for a member (known by a user id) that take them out of
    # the segment and put them back, each through the consumers a worker runs.
    member = (
        SegmentMembership.objects.filter(segment=segment, left_at__isnull=True)
        .values_list("profile_id", flat=True)
        .first()
    )
    Identifier.objects.update_or_create(
        workspace=workspace, kind="user_id", value="bench-member", defaults={"profile_id": member}
    )
    timings = []
    for n in range(5):
        now = datetime.now(UTC)
        rows, refused = events_parse(
            [
                {
                    "type": "identify",
                    "userId": "bench-member",
                    "traits": {"plan": "free" if n % 2 == 0 else "pro"},
                    "messageId": f"bench-fresh-{n}-{time.time()}",
                }
            ],
            received_at=now,
        )
        destination = Destination(workspace_id=workspace.pk, source_id=source.pk)
        started = time.perf_counter()
        stored = events_ingest(destination=destination, rows=rows, refused=refused, received_at=now)
        events_dispatch(workspace_id=workspace.pk, message_ids=stored.message_ids)
        timings.append(time.perf_counter() - started)
        inside = SegmentMembership.objects.filter(
            segment=segment, profile_id=member, left_at__isnull=True
        ).exists()
        assert inside == (n % 2 == 1), "membership did not follow the event"
    fresh = sorted(timings)[len(timings) // 2]
    return {
        "profiles": PROFILES,
        "events": EVENTS,
        "fill_seconds": round(fill, 1) if fill is not None else "filled by an earlier run",
        "rfm_seconds": round(rfm_s, 2),
        "rfm_buyers": rfm["buyers"],
        "lifecycle_first_seconds": round(life_first_s, 2),
        "lifecycle_again_seconds": round(life_again_s, 2),
        "lifecycle_again_changed": life_again["changed"],
        "rfm_plus_lifecycle_ratio_to_60s": round((rfm_s + life_first_s) / 60, 3),
        "preview_seconds": round(preview_s, 2),
        "preview_again_seconds": round(preview_again_s, 2),
        "preview_count": preview.count,
        "preview_ratio_to_2s": round(preview_again_s / 2, 3),
        "segment_first_fill_seconds": round(first_s, 2),
        "segment_refresh_seconds": round(again_s, 2),
        "segment_size": first["size"],
        "segment_refresh_ratio_to_10s": round(max(first_s, again_s) / 10, 3),
        "fresh_event_work_seconds_median": round(fresh, 3),
        "fresh_worst_case_with_1s_poll_ratio_to_2s": round((fresh + 1.0) / 2, 3),
        "unchanged_refresh": again,
    }
