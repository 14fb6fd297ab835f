"""Loading the demo company into a workspace through the real ingestion path: the
story's calls are parsed and stored as the Tracking API stores them (each batch
enqueues its dispatch task), then a worker's batch run resolves identities, accounts
and consent, and a duplicates scan fills the review queue."""

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext

from rapport.demo.story import SOURCES, story
from rapport.identity.services import duplicate_candidates_refresh
from rapport.ingest.services import Destination, events_ingest, events_parse
from rapport.tenancy.models import Source, Workspace
from rapport.tenancy.services import Actor, source_create

BATCH = 5000
MAX_CUSTOMERS = 10_000_000


def _demo_sources(workspace: Workspace, actor: Actor) -> dict[str, Destination]:
    destinations = {}
    for key, (name, kind) in SOURCES.items():
        source = Source.objects.filter(workspace=workspace, name__iexact=name).first()
        if source is None:
            source, _ = source_create(workspace=workspace, name=name, kind=kind, actor=actor)
        destinations[key] = Destination(workspace_id=workspace.pk, source_id=source.pk)
    return destinations


def demo_load(
    *,
    workspace: Workspace,
    customers: int = 3000,
    months: int = 18,
    seed: int = 1,
    end: datetime | None = None,
    resolve: Callable[[], None] | None = None,
    progress: Callable[[str], None] | None = None,
    snapshot_days: int | None = None,
    journey_days: int | None = None,
    decisions: int | None = None,
) -> dict:
    """Generate the demo company and feed it to `workspace`. Loading the same seed
    again stores nothing twice (each call has a fixed messageId). `resolve` runs the
    queued work (the worker's batch run by default)."""
    from rapport.core.errors import InvalidInputError

    if not 1 <= customers <= MAX_CUSTOMERS:
        raise InvalidInputError(
            gettext("must be 1 to %(max_customers)s") % {"max_customers": MAX_CUSTOMERS},
            field="customers",
        )
    if not 1 <= months <= 120:
        raise InvalidInputError(gettext("must be 1 to 120"), field="months")
    say = progress or (lambda _: None)
    actor = Actor.system("demo")
    destinations = _demo_sources(workspace, actor)
    end = end or timezone.now().astimezone(UTC)
    demo_money(workspace=workspace, actor=actor, start=end - timedelta(days=31 * months), end=end)
    started = time.perf_counter()
    pending: dict[str, list[dict]] = {key: [] for key in destinations}
    stored = refused = 0
    summary: dict = {}

    def flush(key: str) -> None:
        nonlocal stored, refused
        if not pending[key]:
            return
        received_at = timezone.now()
        rows, rejected = events_parse(pending[key], received_at=received_at)
        result = events_ingest(
            destination=destinations[key], rows=rows, refused=rejected, received_at=received_at
        )
        stored += result.accepted
        refused += len(result.refused)
        pending[key] = []

    for key, item in story(customers=customers, months=months, seed=seed, end=end):
        if key == "summary":
            summary = item
            continue
        pending[key].append(item)
        if len(pending[key]) >= BATCH:
            flush(key)
            say(f"stored {stored:,} calls")
    for key in destinations:
        flush(key)
    ingested = time.perf_counter()
    say(f"stored {stored:,} calls; resolving identities")
    (resolve or _worker_batch)()
    resolved = time.perf_counter()
    say("looking for duplicates")
    duplicates = {
        kind: duplicate_candidates_refresh(workspace=workspace, kind=kind, actor=actor)["found"]
        for kind in ("profile", "account")
    }
    deduplicated = time.perf_counter()
    say("scoring: RFM, lifecycle stages and segments")
    segments = demo_segments(workspace=workspace, actor=actor)
    scored = time.perf_counter()
    say("predictions: lifetime value and churn risk")
    predictions = demo_predictions(workspace=workspace, actor=actor, now=end)
    predicted = time.perf_counter()
    from rapport.demo.journeys import DEMO_JOURNEY_DAYS, demo_journeys

    journey_days = DEMO_JOURNEY_DAYS if journey_days is None else journey_days
    journeys = {}
    if journey_days:
        say(f"journeys: the onboarding month and the win-back over the last {journey_days} days")
        journeys = demo_journeys(workspace=workspace, actor=actor, end=end, days=journey_days)
        # Their messages, queued by the journeys, go to the outbox.
        (resolve or _worker_batch)()
    journeyed = time.perf_counter()
    from rapport.demo.decisions import DEMO_DECISIONS, demo_decisions

    count = min(DEMO_DECISIONS, customers) if decisions is None else decisions
    decided = {}
    if count:
        say(f"next best action: the catalogue, and {count:,} decisions on the home page")
        decided = demo_decisions(workspace=workspace, actor=actor, end=end, count=count, seed=seed)
    decided_at = time.perf_counter()
    from rapport.demo.sales import demo_sales

    say("sales: the team, its pipelines, deals over the months and open tasks")
    sold = demo_sales(workspace=workspace, actor=actor, end=end, seed=seed)
    sold_at = time.perf_counter()
    days = DEMO_SNAPSHOT_DAYS if snapshot_days is None else snapshot_days
    if days:
        say(f"KPI snapshots: the last {days} days")
    snapshots = demo_snapshots(workspace=workspace, days=days) if days else 0
    return {
        **summary,
        "accepted": stored,
        "refused": refused,
        "duplicate_pairs": duplicates,
        "segments": segments,
        "predictions": predictions,
        "journeys": journeys,
        "decisions": decided,
        "sales": sold,
        "kpi_snapshots": snapshots,
        "seconds": {
            "ingest": round(ingested - started, 1),
            "resolve": round(resolved - ingested, 1),
            "duplicates": round(deduplicated - resolved, 1),
            "scoring": round(scored - deduplicated, 1),
            "predictions": round(predicted - scored, 1),
            "journeys": round(journeyed - predicted, 1),
            "decisions": round(decided_at - journeyed, 1),
            "sales": round(sold_at - decided_at, 1),
            "snapshots": round(time.perf_counter() - sold_at, 1),
        },
    }


def demo_money(*, workspace, actor, start: datetime, end: datetime) -> int:
    """The demo sells in pounds (its reporting currency) and a few customers pay in
    euros: a rate for each month of the story, a little either side of GBP_PER_EUR."""
    from rapport.demo.story import GBP_PER_EUR
    from rapport.tenancy.commerce import commerce_settings_update, exchange_rates_upload

    # The Brew Planner is the key feature: the onboarding sub-stages and the Onboarding
    # month wait for it.
    commerce_settings_update(
        workspace=workspace, actor=actor, reporting_currency="GBP", key_event="Brew Planner Used"
    )
    month = start.date().replace(day=1)
    rows = []
    while month <= end.date():
        wobble = 0.01 * ((month.month * 7) % 5 - 2)
        rows.append({"currency": "EUR", "rate": f"{GBP_PER_EUR + wobble:.4f}", "valid_from": month})
        month = (month + timedelta(days=32)).replace(day=1)
    return len(exchange_rates_upload(workspace=workspace, actor=actor, rows=rows))


# The story's churn: a subscriber cancels (see story.py).
DEMO_CHURN = {"churn_label": "event", "churn_event": "Subscription Cancelled"}


def demo_predictions(*, workspace, actor, now: datetime | None = None) -> dict[str, Any]:
    """Lifetime value and churn models trained on the story, every customer scored, and
    the segments that read the scores refreshed. A model the data cannot support is
    reported, not fatal."""
    from rapport.core.errors import InvalidInputError
    from rapport.predictions import services as predictions

    predictions.prediction_settings_update(
        workspace=workspace, actor=actor, churn_horizon_days=60, **DEMO_CHURN
    )
    out: dict[str, Any] = {}
    try:
        model = predictions.clv_model_train(workspace=workspace, actor=actor, now=now)
        out["clv_holdout"] = model.metrics.get("holdout")
        out["clv_scored"] = predictions.model_score(model=model, now=now)["scored"]
    except InvalidInputError as error:
        out["clv_error"] = error.message
    try:
        label = predictions.churn_label_resolve(workspace=workspace)
        model = predictions.churn_model_train(
            workspace=workspace, actor=actor, label=label, as_of=now
        )
        out["churn_roc_auc"] = model.metrics["roc_auc"]
        out["churn_top_driver"] = next(
            (d.description for d in model.drivers.order_by("rank")[:1]), None
        )
        out["churn_scored"] = predictions.model_score(model=model, now=now)["scored"]
    except InvalidInputError as error:
        out["churn_error"] = error.message
    return out


DEMO_SEGMENTS = [
    (
        "Big spenders, last 90 days",
        "Spent £100 or more in the last three months.",
        {
            "aggregate": "sum",
            "event": "Order Completed",
            "property": "revenue",
            "op": "gte",
            "value": 100,
            "window": {"last_days": 90},
        },
    ),
    (
        "Signed up, never planned a brew",
        "No Brew Planner in the first 30 days after signing up: they cancel far more often.",
        {
            "all": [
                {"event": "Signed Up"},
                {
                    "event": "Brew Planner Used",
                    "count": {"op": "eq", "value": 0},
                    "window": {"first_days": 30, "from": "Signed Up"},
                },
            ]
        },
    ),
    (
        "Waiting on support",
        "Opened a ticket in the last 60 days and had none resolved since.",
        {
            "all": [
                {"event": "Ticket Opened", "window": {"last_days": 60}},
                {"not": {"event": "Ticket Resolved", "window": {"last_days": 60}}},
            ]
        },
    ),
    (
        "Champions and loyal",
        "The top RFM cells.",
        {"rfm": "cell", "op": "in", "value": ["Champions", "Loyal"]},
    ),
    (
        "NPS detractors",
        "Answered the NPS survey with 0-6 in the last 180 days.",
        {
            "event": "Survey Answered",
            "window": {"last_days": 180},
            "where": [{"property": "score", "op": "lte", "value": 6}],
        },
    ),
    (
        "Newsletter allowed",
        "Granted email marketing.",
        {"consent": "email", "purpose": "marketing", "status": "granted"},
    ),
]


def demo_segments(*, workspace, actor) -> dict[str, int]:
    """RFM and lifecycle stages computed, and the demo's segments made and filled."""
    from rapport.segments import services as segments
    from rapport.segments.models import Segment

    segments.rfm_refresh(workspace_id=workspace.pk)
    segments.lifecycle_refresh(workspace_id=workspace.pk)
    sizes = {}
    for name, description, rule in DEMO_SEGMENTS:
        segment = Segment.objects.filter(workspace=workspace, name=name).first()
        if segment is None:
            segment = segments.segment_create(
                workspace=workspace,
                name=name,
                description=description,
                rule=rule,
                actor=actor,
                refresh="none",
            )
        sizes[name] = segments.segment_refresh(segment=segment)["size"]
    return sizes


DEMO_SNAPSHOT_DAYS = 30


def demo_snapshots(*, workspace, days: int = DEMO_SNAPSHOT_DAYS) -> int:
    """The home dashboard's history: KPI snapshots of the last `days` days (back-filled
    from the story, for every customer; the segments' for yesterday only)."""
    from rapport.analytics.services import kpi_snapshots_take

    return kpi_snapshots_take(workspace_id=workspace.pk, backfill_days=days)["snapshots"]


def _worker_batch() -> None:
    """What `rapport worker --batch` does: run every queued task, then return."""
    from django.core.management import call_command

    call_command("db_worker", batch=True, no_startup_delay=True, verbosity=0)
