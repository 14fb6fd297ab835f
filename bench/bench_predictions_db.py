"""Predictions through the database (issue 8), on PostgreSQL: 1,000,000 profiles and
20,000,000 events, every step as `rapport models train` and `rapport models score` run it.

Measured:
- lifetime value: reading the purchases, fitting BG/NBD and Gamma-Gamma, and writing
  every buyer's scores (target: 60 s together);
- churn: training with the out-of-time validation (the feature query twice, the fit
  twice, metrics, importance and the driver scan; target 5 minutes), and scoring every
  customer at risk with the probability, the band and three TreeSHAP reasons, written
  to the database (target 2 minutes);
- the peak memory of the process (target 4 GB).

The story in the rows: a quarter of the customers leave (their events stop at a day of
their own); most of them skipped `Feature Used`; everyone buys now and then. Rows are
generated inside PostgreSQL (generate_series), as in `bench_segments`: the ingestion
path has its own benchmarks. BENCH_PREDICTION_PROFILES and BENCH_PREDICTION_EVENTS set
the sizes; a database filled by an earlier run is measured again as it is.
"""

import os
import resource
import time
from datetime import UTC, datetime

from bench.filled import event_indexes_dropped, postgresql_ready, timed, workspace_filled

PROFILES = int(os.environ.get("BENCH_PREDICTION_PROFILES", "1000000"))
EVENTS = int(os.environ.get("BENCH_PREDICTION_EVENTS", "20000000"))
DAYS = 730
EVENT_NAMES = [
    "Order Completed",
    "Product Viewed",
    "Page Viewed",
    "App Opened",
    "Feature Used",
    "Email Opened",
    "Email Clicked",
    "Search Performed",
    "Cart Viewed",
    "Ticket Opened",
    "Review Written",
    "Wishlist Added",
]


def _fill(workspace_id: str, source_id: str) -> float:
    """Profiles, then events inside each profile's life (from its first day to the day
    it left, or today); the event indexes are built after the load."""
    from django.db import connection

    started = time.perf_counter()
    with event_indexes_dropped():
        now = datetime.now(UTC)
        names = "(ARRAY[" + ",".join(f"'{n}'" for n in EVENT_NAMES) + "])"
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO profiles_profile
                  (id, workspace_id, traits, trait_sources, first_seen_at, last_seen_at,
                   created_at, updated_at)
                SELECT md5('p' || n)::uuid, %s,
                       jsonb_build_object(
                         'plan', (ARRAY['free','pro','team'])[1 + (n * 31) %% 3],
                         'name', 'Person ' || n, 'age', 18 + n %% 60,
                         'country', (ARRAY['de','fr','uk','us','es'])[1 + n %% 5],
                         'seats', 1 + n %% 17),
                       '{}'::jsonb, %s - make_interval(days => (30 + n %% %s)::int),
                       %s, %s, %s
                FROM generate_series(1::bigint, %s::bigint) AS n
                """,
                [workspace_id, now, DAYS - 30, now, now, now, PROFILES],
            )
            chunk = 2_000_000
            for start in range(0, EVENTS, chunk):
                cursor.execute(
                    f"""
                    INSERT INTO ingest_event
                      (id, workspace_id, source_id, message_id, profile_id, type, event, user_id,
                       anonymous_id, group_id, previous_id, timestamp, received_at, in_future,
                       properties, traits, context, integrations)
                    SELECT md5('e' || n)::uuid, %s, %s, 'bench-' || n, md5('p' || p)::uuid,
                           'track', name, 'user-' || p, '', '', '',
                           %s - make_interval(
                             secs => (stop + (life - stop) * ((n * 104729) %% 1000003)
                                      / 1000003.0) * 86400),
                           %s, false,
                           CASE WHEN name = 'Order Completed'
                                THEN jsonb_build_object('revenue', 5 + n %% 200, 'order_id', n)
                                ELSE jsonb_build_object('sku', 'sku-' || n %% 300) END,
                           '{{}}'::jsonb, '{{}}'::jsonb, '{{}}'::jsonb
                    FROM generate_series(%s::bigint, %s::bigint) AS n,
                    LATERAL (SELECT 1 + (n * 7919) %% %s AS p,
                                    -- Which event: a hash of n, independent of the person.
                                    (n * 2654435761) %% 1000003 %% 12 AS kind) AS who,
                    LATERAL (
                      SELECT (30 + p %% %s)::float8 AS life,
                             -- A quarter leave, on a day of their own.
                             CASE WHEN p %% 4 = 0 THEN ((p * 13) %% (30 + p %% %s))::float8
                                  ELSE 0 END AS stop,
                             -- Those who leave mostly never used the feature.
                             CASE WHEN p %% 4 = 0 AND n %% 5 <> 0 AND kind = 4
                                  THEN 'Page Viewed'
                                  ELSE {names}[1 + kind] END AS name
                    ) AS life
                    """,
                    [
                        workspace_id,
                        source_id,
                        now,
                        now,
                        start + 1,
                        min(start + chunk, EVENTS),
                        PROFILES,
                        DAYS - 30,
                        DAYS - 30,
                    ],
                )
    with connection.cursor() as cursor:
        # The profiles' last seen as the events say (the customer list orders by it).
        cursor.execute(
            """
            UPDATE profiles_profile p SET last_seen_at = e.last
            FROM (SELECT profile_id, max(timestamp) AS last FROM ingest_event
                  WHERE workspace_id = %s GROUP BY profile_id) e
            WHERE p.id = e.profile_id
            """,
            [workspace_id],
        )
        # What autovacuum does after a bulk load (it is off on this machine's server).
        cursor.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run() -> dict:
    if not postgresql_ready():
        return {"skipped": "needs DATABASE_URL pointing at PostgreSQL"}
    from rapport.predictions import services
    from rapport.predictions.features import Label
    from rapport.predictions.models import ChurnDriver, PredictionModel
    from rapport.tenancy.services import Actor

    actor = Actor.system("bench")
    workspace, fill = workspace_filled("bench-predictions", _fill)
    ChurnDriver.objects.filter(workspace=workspace).delete()
    PredictionModel.objects.filter(workspace=workspace).delete()

    clv_train_s, clv_model = timed(services.clv_model_train, workspace=workspace, actor=actor)
    clv_score_s, clv_scored = timed(
        services.clv_scores_refresh, workspace_id=workspace.pk, model=clv_model
    )
    label = Label("inactive", days=30)
    churn_train_s, churn_model = timed(
        services.churn_model_train, workspace=workspace, actor=actor, label=label
    )
    churn_score_s, churn_scored = timed(
        services.churn_scores_refresh, workspace_id=workspace.pk, model=churn_model
    )
    top = ChurnDriver.objects.filter(model=churn_model).order_by("rank").first()
    clv_total = clv_train_s + clv_score_s
    return {
        "database": "postgresql",
        "profiles": PROFILES,
        "events": EVENTS,
        "fill_seconds": round(fill, 1) if fill is not None else "filled by an earlier run",
        "clv_train_seconds": round(clv_train_s, 2),
        "clv_score_seconds": round(clv_score_s, 2),
        "clv_buyers_scored": clv_scored["scored"],
        "clv_ratio_to_60s": round(clv_total / 60, 3),
        "clv_holdout": clv_model.metrics.get("holdout"),
        "churn_features": len(churn_model.features),
        "churn_train_customers": churn_model.metrics.get("train_customers"),
        "churn_train_seconds": round(churn_train_s, 2),
        "churn_train_ratio_to_300s": round(churn_train_s / 300, 3),
        "churn_score_seconds": round(churn_score_s, 2),
        "churn_scored": churn_scored["scored"],
        "churn_score_ratio_to_120s": round(churn_score_s / 120, 3),
        "churn_roc_auc_out_of_time": churn_model.metrics.get("roc_auc"),
        "churn_top_driver": top.description if top else None,
        "peak_memory_mb": round(_peak_mb()),
        "peak_memory_ratio_to_4096mb": round(_peak_mb() / 4096, 3),
    }
