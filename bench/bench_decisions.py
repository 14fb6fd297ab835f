"""A next best action decision among 200 eligible actions for one customer (issue 26).

1. **In process** (`decision_make` called directly, in a process of its own on the
   server's database): p50/p99 of the whole call (its database reads and the writes of
   the decision log included), and of the same call less the time spent in the
   database (measured by a connection wrapper): the engine's own cost.
2. **Over HTTP**: `POST /api/v1/decisions` (a source's write key, channel web) open
   loop at BENCH_DECISIONS_RATE (500) requests/s for BENCH_DECISIONS_SECONDS (20)
   against `rapport serve` (BENCH_WORKERS, 2), latency from when each request was
   due to its answer (a server that falls behind is not excused by a waiting client).
3. The same, while outcomes (`POST /api/v1/decisions/{id}/outcomes`, impressions) for
   earlier decisions arrive at half that rate beside it: recording outcomes must not
   slow decisions (learning is a task, not the request's work).

Every action has a rule of the segment rule language (half on a trait, half on
another) that the customer meets, so all 200 are evaluated and eligible. PostgreSQL
(BENCH_DATABASE_URL) is what the issue's targets are about; unset, SQLite.

Targets: under 1 ms in process (apart from the database); p99 under 10 ms over HTTP
at 500 requests/s on two cores.
"""

import json
import os
import statistics
import sys
import threading
import time

ACTIONS = int(os.environ.get("BENCH_DECISIONS_ACTIONS", "200"))
RATE = float(os.environ.get("BENCH_DECISIONS_RATE", "500"))
SECONDS = float(os.environ.get("BENCH_DECISIONS_SECONDS", "20"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
IN_PROCESS_ROUNDS = int(os.environ.get("BENCH_DECISIONS_ROUNDS", "2000"))


def _percentiles(seconds: list[float]) -> dict:
    seconds = sorted(seconds)
    return {
        "n": len(seconds),
        "p50_ms": round(statistics.median(seconds) * 1000, 3),
        "p90_ms": round(seconds[int(len(seconds) * 0.90) - 1] * 1000, 3),
        "p99_ms": round(seconds[int(len(seconds) * 0.99) - 1] * 1000, 3),
        "max_ms": round(seconds[-1] * 1000, 3),
    }


def _fill(workspace_name: str) -> dict:
    """The catalogue and the customer, then the in-process measurement."""
    import django

    django.setup()
    from decimal import Decimal

    from django.db import connection
    from django.utils import timezone

    from rapport.decisions import engine, learner
    from rapport.decisions.models import Action, ActionModel, DecisionSettings
    from rapport.profiles.models import Profile
    from rapport.tenancy.models import Workspace

    workspace = Workspace.objects.get(name=workspace_name)
    DecisionSettings.objects.update_or_create(workspace=workspace, defaults={"control_percent": 0})
    rng = __import__("random").Random(26)
    actions = Action.objects.bulk_create(
        [
            Action(
                workspace=workspace,
                key=f"offer-{n:03d}",
                name=f"Offer {n}",
                channels=["web", "app", "email"],
                content={"web": {"title": f"Offer {n}", "url": f"/offers/{n}"}},
                value=Decimal(rng.randint(1, 100)),
                prior_propensity=rng.uniform(0.01, 0.2),
                eligibility=(
                    {"trait": "plan", "op": "in", "value": ["gold", "platinum"]}
                    if n % 2
                    else {"trait": "visits", "op": "gte", "value": n % 7}
                ),
            )
            for n in range(ACTIONS)
        ]
    )
    models = []
    for action in actions:
        mean, variance = learner.model_new(prior_propensity=action.prior_propensity)
        models.append(
            ActionModel(
                action=action,
                workspace=workspace,
                dims=learner.DIMS,
                mean=learner.to_bytes(mean),
                variance=learner.to_bytes(variance),
            )
        )
    ActionModel.objects.bulk_create(models)
    now = timezone.now()
    profile = Profile.objects.create(
        workspace=workspace,
        traits={"plan": "gold", "visits": 12, "country": "DE"},
        first_seen_at=now,
        last_seen_at=now,
    )

    database_seconds = [0.0]

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            database_seconds[0] += time.perf_counter() - started

    def decide():
        return engine.decision_make(
            workspace=workspace,
            profile=profile,
            channel="web",
            placement="home",
            context={"device": "mobile"},
        )

    first = decide()
    assert len(engine._catalogue(workspace.pk).actions) == ACTIONS
    simulated = engine.decision_simulate(workspace=workspace, profile=profile, channel="web")
    eligible = sum(c.eligible for c in simulated.candidates)
    for _ in range(50):  # warm up
        decide()
    total, engine_only, decisions = [], [], []
    with connection.execute_wrapper(timed):
        for _ in range(IN_PROCESS_ROUNDS):
            database_seconds[0] = 0.0
            started = time.perf_counter()
            result = decide()
            elapsed = time.perf_counter() - started
            total.append(elapsed)
            engine_only.append(elapsed - database_seconds[0])
            if result.actions:
                decisions.append([str(result.decision_id), result.actions[0].key])
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        decide()
    return {
        "profile_id": str(profile.pk),
        "decisions": decisions,
        "given": first.actions[0].key if first.actions else None,
        "eligible_actions": eligible,
        "in_process": {
            "with_database": _percentiles(total),
            "engine_only": _percentiles(engine_only),
            "queries_per_decision": len(captured.captured_queries),
        },
    }


def _open_loop(server, bodies: list[tuple[str, bytes]]) -> dict:
    """POST each (path, body) when due; latencies of decisions and of outcomes."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    clients = 32
    pool = [httpx.Client(auth=(server.write_key, "")) for _ in range(clients)]
    latencies: dict[str, list[float]] = {"decisions": [], "outcomes": []}
    errors: dict[str, int] = {}
    lock = threading.Lock()
    per_second = RATE * (1.5 if any("/outcomes" in p for p, _ in bodies) else 1.0)
    started = time.monotonic() + 0.5

    def send(n: int) -> None:
        path, body = bodies[n]
        due = started + n / per_second
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        status = "disconnected"
        for _attempt in range(2):  # a keep-alive connection the server closed: once more
            try:
                status = (
                    pool[n % clients]
                    .post(
                        f"{server.url}{path}",
                        content=body,
                        headers={"Content-Type": "application/json"},
                        timeout=60,
                    )
                    .status_code
                )
                break
            except httpx.TransportError:
                continue
        took = time.monotonic() - due
        kind = "outcomes" if "/outcomes" in path else "decisions"
        with lock:
            latencies[kind].append(took)
            if status == "disconnected" or status >= 400:
                errors[f"{kind} {status}"] = errors.get(f"{kind} {status}", 0) + 1

    try:
        with ThreadPoolExecutor(max_workers=clients) as executor:
            list(executor.map(send, range(len(bodies))))
    finally:
        for client in pool:
            client.close()
    elapsed = time.monotonic() - started
    out = {
        "offered_per_s": per_second,
        "achieved_per_s": round(len(bodies) / elapsed, 1),
        "errors": errors,
        "decisions": _percentiles(latencies["decisions"]),
    }
    if latencies["outcomes"]:
        out["outcomes"] = _percentiles(latencies["outcomes"])
    return out


def run() -> dict:
    from bench.live import live_fill
    from tests.live_server import live_server

    port = int(os.environ["BENCH_PORT"]) if os.environ.get("BENCH_PORT") else None
    with live_server(
        workers=WORKERS, database_url=os.environ.get("BENCH_DATABASE_URL", ""), port=port
    ) as server:
        filled = live_fill(server, "bench.bench_decisions")
        decision = json.dumps(
            {
                "profile_id": filled["profile_id"],
                "channel": "web",
                "placement": "home",
                "context": {"device": "mobile"},
            }
        ).encode()
        path = "/api/v1/decisions"
        count = int(RATE * SECONDS)
        # Warm every worker (its catalogue cache, its connection).
        _open_loop(server, [(path, decision)] * int(RATE * 2))
        alone = _open_loop(server, [(path, decision)] * count)
        # Decisions at RATE with impressions for earlier decisions at RATE / 2 beside them.
        outcome_ids = iter(filled["decisions"])
        mixed = []
        for n in range(count):
            mixed.append((path, decision))
            if n % 2 == 0:
                decision_id, key = next(outcome_ids, (None, None))
                if decision_id is not None:
                    mixed.append(
                        (
                            f"/api/v1/decisions/{decision_id}/outcomes",
                            json.dumps({"action": key, "outcome": "impression"}).encode(),
                        )
                    )
        with_outcomes = _open_loop(server, mixed)
    return {
        "database": server.env["DATABASE_URL"].split(":", 1)[0],
        "actions": ACTIONS,
        "eligible_actions": filled["eligible_actions"],
        "workers": WORKERS,
        "in_process": filled["in_process"],
        "http": alone,
        "http_with_outcomes": with_outcomes,
        "targets": {"in_process_ms": 1, "http_p99_ms": 10, "rate_per_s": RATE},
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }


if __name__ == "__main__" and "--fill" in sys.argv:
    print(json.dumps(_fill(sys.argv[sys.argv.index("--fill") + 1])))
elif __name__ == "__main__":
    from pathlib import Path

    figures = run()
    (Path(__file__).parent / "results" / f"bench_decisions-{figures['database']}.json").write_text(
        json.dumps(figures, indent=2)
    )
    print(json.dumps(figures, indent=2))
