"""The sales app's two busiest reads on PostgreSQL, in process (Django's test `Client`
for the API: no server, no network), p50/p95/p99 of BENCH_SALES_ROUNDS (200) rounds
after a warm-up:

1. **The board**: `selectors.board()` of a pipeline holding BENCH_SALES_DEALS (10,000)
   open deals spread over its four open stages, owned by ten members, each deal with a
   customer; the columns materialised (their first deals, counts and totals). And
   `GET /api/v1/deals?pipeline_id=…&status=open&limit=100` with an admin API token.
2. **My tasks**: `selectors.task_list()` for one member in Europe/Berlin, views
   overdue, today and upcoming, the first 50 materialised, among BENCH_SALES_TASKS
   (100,000) tasks in the workspace, a tenth of them the member's (due in the past,
   today and the future, some all day, about 30% done). And
   `GET /api/v1/tasks?view=overdue&assignee=<member id>&limit=50`.
3. **The pages** as that member sees them, signed in and rendered: the board
   (`/deals/`) and "My tasks" (`/tasks/`, its four sections of up to 50).

The database: BENCH_DATABASE_URL's server, database `rapport_bench_sales` (or the one
the URL names, unless that is `postgres`), dropped and created again at the start of a
run, migrated, filled with `bulk_create` and ANALYZEd. Queries per call are counted.

Targets: the board and "My tasks", p95 under 300 ms each (the pages, the selectors and the API).
"""

import json
import os
import random
import statistics
import time
import zoneinfo
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DEALS = int(os.environ.get("BENCH_SALES_DEALS", "10000"))
TASKS = int(os.environ.get("BENCH_SALES_TASKS", "100000"))
ROUNDS = int(os.environ.get("BENCH_SALES_ROUNDS", "200"))
WARM_UP = 20
MEMBERS = 10
BATCH = 5000
DATABASE = "rapport_bench_sales"
ZONE = zoneinfo.ZoneInfo("Europe/Berlin")
TARGET_P95_MS = 300


def _percentiles(seconds: list[float]) -> dict:
    seconds = sorted(seconds)
    return {
        "n": len(seconds),
        "p50_ms": round(statistics.median(seconds) * 1000, 3),
        "p95_ms": round(seconds[int(len(seconds) * 0.95) - 1] * 1000, 3),
        "p99_ms": round(seconds[int(len(seconds) * 0.99) - 1] * 1000, 3),
        "max_ms": round(seconds[-1] * 1000, 3),
    }


def _measure(call) -> dict:
    """Warm up, then ROUNDS timed calls; the queries of one more."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(WARM_UP):
        call()
    taken = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        call()
        taken.append(time.perf_counter() - started)
    with CaptureQueriesContext(connection) as captured:
        call()
    return {**_percentiles(taken), "queries": len(captured.captured_queries)}


def _database_url() -> str | None:
    """BENCH_DATABASE_URL's server with the bench's database dropped and created anew."""
    base = os.environ.get("BENCH_DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        return None
    import psycopg

    parts = urlsplit(base)
    name = parts.path.lstrip("/")
    if name in ("", "postgres"):
        name = DATABASE
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


def _fill() -> dict:
    """The workspace, its members, the pipeline, the deals and the tasks."""
    from django.db import connection

    from rapport.profiles.models import Profile
    from rapport.sales.models import Deal, StageKind, Task
    from rapport.sales.selectors import all_day_due, day_bounds
    from rapport.sales.services import pipeline_create
    from rapport.tenancy.permissions import Role
    from rapport.tenancy.services import Actor, member_add, workspace_create

    rng = random.Random(27)
    actor = Actor.system("bench")
    created = workspace_create(name="bench-sales", actor=actor)
    workspace = created.workspace
    members = [
        member_add(
            workspace=workspace,
            email=f"seller{n}@bench-sales.example.com",
            name=f"Seller {n}",
            role=Role.MARKETER,
            password=None,  # one is generated
            actor=actor,
        )[0]
        for n in range(MEMBERS)
    ]
    pipeline = pipeline_create(workspace=workspace, actor=actor, name="Sales")
    stages = [s for s in pipeline.stages.all() if s.kind == StageKind.OPEN]
    now = datetime.now(UTC)

    profiles = Profile.objects.bulk_create(
        [
            Profile(
                workspace=workspace,
                traits={"name": f"Customer {n}", "email": f"customer{n}@example.com"},
                first_seen_at=now - timedelta(days=rng.randint(1, 400)),
                last_seen_at=now,
            )
            for n in range(DEALS)
        ],
        batch_size=BATCH,
    )
    Deal.objects.bulk_create(
        [
            Deal(
                workspace=workspace,
                pipeline=pipeline,
                stage=stages[n % len(stages)],
                name=f"Deal {n}",
                amount=Decimal(rng.randint(100, 100_000)),
                currency="EUR" if n % 5 == 0 else "USD",
                expected_close=(now + timedelta(days=rng.randint(0, 180))).date(),
                owner=members[n % MEMBERS],
                profile=profiles[n],
                status=StageKind.OPEN,
                stage_changed_at=now - timedelta(minutes=rng.randint(0, 60 * 24 * 90)),
            )
            for n in range(DEALS)
        ],
        batch_size=BATCH,
    )

    # The measured member's tasks: a third each overdue, today (what is left of the
    # day in Berlin) and upcoming; a fifth all day; about 30% done. The rest of the
    # workspace's tasks belong to the other members or to nobody.
    me = members[0]
    _, end = day_bounds(zone=ZONE, now=now)
    today = now.astimezone(ZONE).date()
    left_today = max(int((end - now).total_seconds()) - 60, 1)

    def due(kind: int, all_day: bool) -> datetime:
        if all_day:
            return all_day_due(
                today + timedelta(days=(-rng.randint(1, 60), 0, rng.randint(1, 60))[kind])
            )
        if kind == 0:
            return now - timedelta(seconds=rng.randint(60, 60 * 86400))
        if kind == 1:
            return now + timedelta(seconds=rng.randint(60, left_today))
        return end + timedelta(seconds=rng.randint(0, 60 * 86400))

    mine = TASKS // 10
    tasks = []
    for n in range(TASKS):
        all_day = rng.random() < 0.2
        kind = n % 3
        tasks.append(
            Task(
                workspace=workspace,
                title=f"Task {n}",
                due_at=due(kind, all_day),
                all_day=all_day,
                assignee=me if n < mine else (members[1 + n % (MEMBERS - 1)] if n % 20 else None),
                done_at=now - timedelta(hours=rng.randint(1, 500)) if rng.random() < 0.3 else None,
                created_by="bench",
            )
        )
    rng.shuffle(tasks)
    Task.objects.bulk_create(tasks, batch_size=BATCH)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"workspace": workspace, "pipeline": pipeline, "member": me, "token": created.token}


def run() -> dict:
    url = _database_url()
    if url is None:
        return {"skipped": "needs BENCH_DATABASE_URL naming a PostgreSQL server"}
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rapport.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    from rapport.sales import selectors
    from rapport.sales.models import Task

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    filled = _fill()
    fill_s = time.perf_counter() - started
    workspace, pipeline, member = filled["workspace"], filled["pipeline"], filled["member"]
    client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {filled['token']}")

    def get(path: str, expected: int):
        def call():
            response = client.get(path)
            assert response.status_code == 200, (response.status_code, response.content[:500])
            assert len(response.json()["items"]) == expected, path

        return call

    def board():
        columns = selectors.board(workspace=workspace, pipeline=pipeline)
        return [len(c.deals) for c in columns]

    columns = board()
    # The pages themselves, as the member sees them (signed in, rendered).
    pages = Client(HTTP_HOST="localhost")
    pages.force_login(member.user)

    def page(path: str):
        def call():
            response = pages.get(path)
            assert response.status_code == 200, (response.status_code, response.content[:500])

        return call

    figures = {
        "database": "postgres",
        "deals": DEALS,
        "tasks": TASKS,
        "member_tasks": Task.objects.filter(workspace=workspace, assignee=member).count(),
        "fill_seconds": round(fill_s, 1),
        "board": {
            "deals_per_column": columns,
            "in_process": _measure(board),
            "api_deals": _measure(
                get(f"/api/v1/deals?pipeline_id={pipeline.pk}&status=open&limit=100", 100)
            ),
        },
        "my_tasks": {"zone": str(ZONE)},
    }
    figures["board"]["page"] = _measure(page(f"/deals/?pipeline={pipeline.pk}"))
    for view in ("overdue", "today", "upcoming"):
        query = selectors.task_list(
            workspace=workspace, view=view, assignee_id=member.pk, zone=ZONE
        )
        matching = query.count()

        def tasks(view=view):
            return list(
                selectors.task_list(
                    workspace=workspace, view=view, assignee_id=member.pk, zone=ZONE
                )[:50]
            )

        figures["my_tasks"][view] = {"matching": matching, **_measure(tasks)}
    figures["my_tasks"]["api_overdue"] = _measure(
        get(f"/api/v1/tasks?view=overdue&assignee={member.pk}&limit=50", 50)
    )
    figures["my_tasks"]["page"] = _measure(page("/tasks/"))
    figures["targets"] = {"p95_ms": TARGET_P95_MS}
    figures["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return figures


if __name__ == "__main__":
    figures = run()
    if "database" in figures:
        (Path(__file__).parent / "results" / f"bench_sales-{figures['database']}.json").write_text(
            json.dumps(figures, indent=2)
        )
    print(json.dumps(figures, indent=2))
