"""Analytics at scale (issue 9), on PostgreSQL: 1,000,000 profiles and 20,000,000
events over two years (orders, refunds, page views from campaigns, sign-ups, emails
delivered and opened, NPS answers, product views).

Measured:
- the home dashboard (`GET /analytics/`, rendered by Django for a signed-in analyst)
  from 90 days of snapshots, target under 1 s;
- a 4-step funnel over 90 days (any page, Signed Up, first and second purchase), first
  computed and then from the cache, target under 10 s;
- a 12-month cohort table by sign-up month, and by first purchase, the same way,
  target under 10 s;
- the nightly snapshot job (7, 30 and 90 days for every customer) and the KPIs of any
  30-day period computed live, for scale.

Rows are generated inside PostgreSQL (generate_series). The dashboard's 90 days of
history are one real snapshot taken now and copied to the 89 days before: the page's
cost is reading them, whatever they hold. BENCH_ANALYTICS_PROFILES and
BENCH_ANALYTICS_EVENTS set the sizes.
"""

import os
import time
from datetime import UTC, date, datetime, timedelta

from bench.filled import (
    event_indexes_dropped,
    postgresql_ready,
    profiles_generated,
    timed,
    workspace_filled,
)

PROFILES = int(os.environ.get("BENCH_ANALYTICS_PROFILES", "1000000"))
EVENTS = int(os.environ.get("BENCH_ANALYTICS_EVENTS", "20000000"))
DAYS = 730


def _fill(workspace_id: str, source_id: str) -> float:
    from django.db import connection

    started = time.perf_counter()
    now = datetime.now(UTC)
    with event_indexes_dropped(), connection.cursor() as cursor:
        profiles_generated(cursor, workspace_id, PROFILES, DAYS, now)
        chunk = 2_000_000
        for start in range(0, EVENTS, chunk):
            # Each customer has 20 events (n / 20), spread over the two years; their kind
            # is (n * 13) %% 40: 0-3 orders, 4 a refund (one in five), 5-10 page views (a
            # third from a campaign), 11-12 sign-ups, 13-15 emails delivered, 16-17
            # opened, 18 an NPS answer, the rest product views.
            cursor.execute(
                """
                    INSERT INTO ingest_event
                      (id, workspace_id, source_id, message_id, profile_id, type, event,
                       user_id, anonymous_id, group_id, previous_id, timestamp, received_at,
                       in_future, properties, traits, context, integrations)
                    SELECT md5('e' || n)::uuid, %s, %s, 'bench-' || n,
                           md5('p' || (1 + ((n / 20) * 7919) %% %s))::uuid,
                           CASE WHEN k BETWEEN 5 AND 10 THEN 'page' ELSE 'track' END,
                           CASE WHEN k < 4 THEN 'Order Completed'
                                WHEN k = 4 AND (n / 40) %% 5 = 0 THEN 'Order Refunded'
                                WHEN k BETWEEN 5 AND 10 THEN '/'
                                WHEN k BETWEEN 11 AND 12 THEN 'Signed Up'
                                WHEN k BETWEEN 13 AND 15 THEN 'Email Delivered'
                                WHEN k BETWEEN 16 AND 17 THEN 'Email Opened'
                                WHEN k = 18 THEN 'Survey Answered'
                                ELSE 'Product Viewed' END,
                           'user-' || (1 + ((n / 20) * 7919) %% %s), '', '', '',
                           %s - make_interval(secs => ((n * 104729) %% (%s * 86400))::float8),
                           %s, false,
                           CASE WHEN k <= 4
                                THEN jsonb_build_object('revenue', 5 + n %% 200)
                                WHEN k = 18
                                THEN jsonb_build_object('score', n %% 11)
                                ELSE '{}'::jsonb END,
                           '{}'::jsonb,
                           CASE WHEN k BETWEEN 5 AND 10 AND n %% 3 = 0
                                THEN jsonb_build_object('campaign', jsonb_build_object(
                                  'source', (ARRAY['google','facebook','newsletter'])[1 + n %% 3]))
                                ELSE '{}'::jsonb END,
                           '{}'::jsonb
                    FROM (SELECT n, (n * 13) %% 40 AS k
                          FROM generate_series(%s::bigint, %s::bigint) AS n) AS g
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
        cursor.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def _dashboard_seconds(workspace, rounds: int = 10) -> tuple[float, float]:
    """The home dashboard as a signed-in analyst gets it: (median, worst) seconds."""
    from django.test import Client

    from rapport.tenancy.permissions import Role
    from rapport.tenancy.services import Actor, member_add

    email = f"analyst-{workspace.pk.hex[:8]}@bench.example.com"
    from rapport.tenancy.models import User

    if not User.objects.filter(email=email).exists():
        member_add(
            workspace=workspace,
            email=email,
            role=Role.ANALYST,
            password="x" * 20,
            actor=Actor.system("bench"),
        )
    client = Client()
    client.force_login(User.objects.get(email=email))
    times = []
    for _ in range(rounds + 1):
        began = time.perf_counter()
        response = client.get("/analytics/", {"window": 30})
        assert response.status_code == 200 and b'data-kpi="revenue"' in response.content
        times.append(time.perf_counter() - began)
    times = sorted(times[1:])
    return times[len(times) // 2], times[-1]


def run() -> dict:
    if not postgresql_ready():
        return {"skipped": "needs DATABASE_URL pointing at PostgreSQL"}
    from django.conf import settings

    settings.ALLOWED_HOSTS = ["*"]
    from rapport.analytics import selectors, services
    from rapport.analytics.funnel import FunnelQuery
    from rapport.analytics.models import KpiSnapshot

    workspace, fill = workspace_filled("bench-analytics", _fill)
    today = selectors.today(workspace)
    yesterday = today - timedelta(days=1)

    KpiSnapshot.objects.filter(workspace=workspace).delete()
    snapshot_s, snapshot = timed(
        services.kpi_snapshots_take, workspace_id=workspace.pk, day=yesterday
    )
    latest = list(KpiSnapshot.objects.filter(workspace=workspace, day=yesterday))
    KpiSnapshot.objects.bulk_create(
        [
            KpiSnapshot(
                workspace=workspace,
                segment_id=s.segment_id,
                window_days=s.window_days,
                day=yesterday - timedelta(days=k),
                figures=s.figures,
                backfilled=True,
                computed_at=s.computed_at,
            )
            for s in latest
            for k in range(1, 90)
        ]
    )
    dashboard_median, dashboard_worst = _dashboard_seconds(workspace)

    services.analytics_data_changed(workspace.pk, ())  # cold caches
    period_s, _ = timed(
        selectors.kpis_report,
        workspace=workspace,
        first=yesterday - timedelta(days=29),
        last=yesterday,
    )
    query = FunnelQuery(
        steps=[
            {"page": "*"},
            {"event": "Signed Up"},
            {"event": "Order Completed"},
            {"event": "Order Completed"},
        ],
        start=today - timedelta(days=90),
        end=yesterday,
    )
    funnel_s, funnel = timed(selectors.funnel_report, workspace=workspace, query=query)
    funnel_cached_s, _ = timed(selectors.funnel_report, workspace=workspace, query=query)
    broken = query.model_copy(update={"breakdown": "utm_source"})
    funnel_utm_s, _ = timed(selectors.funnel_report, workspace=workspace, query=broken)
    last_month = today.replace(day=1).strftime("%Y-%m")
    cohort_s, cohorts = timed(
        selectors.cohorts_report, workspace=workspace, by="signup", last_month=last_month
    )
    cohort_cached_s, _ = timed(
        selectors.cohorts_report, workspace=workspace, by="signup", last_month=last_month
    )
    first_purchase_s, _ = timed(
        selectors.cohorts_report, workspace=workspace, by="first_purchase", last_month=last_month
    )
    return {
        "profiles": PROFILES,
        "events": EVENTS,
        "fill_seconds": round(fill, 1) if fill else "reused",
        "home_dashboard_seconds_median": round(dashboard_median, 3),
        "home_dashboard_seconds_worst": round(dashboard_worst, 3),
        "home_dashboard_target": 1.0,
        "funnel_4_steps_90_days_seconds": round(funnel_s, 2),
        "funnel_cached_seconds": round(funnel_cached_s, 4),
        "funnel_by_utm_source_seconds": round(funnel_utm_s, 2),
        "funnel_steps": [s["customers"] for s in funnel["steps"]],
        "cohorts_12_months_signup_seconds": round(cohort_s, 2),
        "cohorts_cached_seconds": round(cohort_cached_s, 4),
        "cohorts_12_months_first_purchase_seconds": round(first_purchase_s, 2),
        "cohort_sizes": [row["customers"] for row in cohorts["rows"]],
        "funnel_and_cohort_target": 10.0,
        "nightly_snapshot_seconds": round(snapshot_s, 1),
        "nightly_snapshots": snapshot["snapshots"],
        "kpis_of_a_30_day_period_live_seconds": round(period_s, 2),
        "database": "postgresql",
        "day": date.today().isoformat(),
    }
