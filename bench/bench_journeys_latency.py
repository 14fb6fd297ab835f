"""A trigger event's time to its journey's first step (issue 25): events stored one at a
time as the Tracking API stores them (`events_ingest`, which enqueues the pipeline's
batch), a real `rapport worker` running the pipeline (its `journeys` consumer enrols
and wakes the runner) and the runner; measured from the store to the first step's row
in the step log. One worker per poll interval (BENCH_JOURNEYS_INTERVALS, default
"1.0,0.2" seconds), BENCH_JOURNEYS_LATENCY_EVENTS events each (default 15), a fresh
database on the PostgreSQL server of BENCH_DATABASE_URL (or DATABASE_URL)."""

import json
import os
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

EVENTS = int(os.environ.get("BENCH_JOURNEYS_LATENCY_EVENTS", "15"))
INTERVALS = os.environ.get("BENCH_JOURNEYS_INTERVALS", "1.0,0.2").split(",")

SETUP = """
import json
from rapport.journeys import services
from rapport.tenancy.models import Workspace, Source
from rapport.tenancy.services import Actor
actor = Actor.system("t")
ws = Workspace.objects.get(name="lat")
j = services.journey_create(workspace=ws, actor=actor, graph={
  "name": "Lat", "trigger": {"type": "event", "event": "Signed Up"}, "start": "hi",
  "steps": {"hi": {"type": "update_trait", "trait": "greeted", "value": True, "next": None}}})
services.journey_start(journey=j, actor=actor)
source = Source.objects.filter(workspace=ws).first()
print(json.dumps({"journey": str(j.pk), "source": str(source.pk)}))
"""

SEND = """
import json, time
from django.utils import timezone
from django.db import connection
from rapport.ingest.services import Destination, events_ingest, events_parse
from rapport.tenancy.models import Workspace
ws = Workspace.objects.get(name="lat")
dest = Destination(workspace_id=ws.pk, source_id={source!r})
out = []
for i in range({n}):
    now = timezone.now()
    user = f"{prefix}{{i}}"
    event = {{"type": "track", "userId": user, "event": "Signed Up"}}
    rows, refused = events_parse([event], received_at=now)
    t0 = time.time()
    events_ingest(destination=dest, rows=rows, refused=refused, received_at=now)
    while True:
        with connection.cursor() as c:
            c.execute(
                "SELECT COUNT(*) FROM journeys_steprun s"
                " JOIN journeys_enrolment e ON e.id = s.enrolment_id"
                " JOIN identity_identifier i ON i.profile_id = e.profile_id AND i.value = %s",
                [user],
            )
            if c.fetchone()[0]:
                break
        time.sleep(0.01)
        if time.time() - t0 > 30: break
    out.append(round(time.time() - t0, 3))
    time.sleep(0.3)
print(json.dumps(out))
"""


def run() -> dict:
    from tests.core.test_leases_kill import RAPPORT, Deployment
    from tests.live_server import _database

    base = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        return {"skipped": "needs BENCH_DATABASE_URL (or DATABASE_URL) naming PostgreSQL"}
    figures: dict = {"database": "postgresql", "events": EVENTS, "by_poll_interval": {}}
    with tempfile.TemporaryDirectory() as d, _database(d, base) as url:
        dep = Deployment(data_dir=d, url=url)
        dep.rapport("migrate")
        dep.rapport("workspace", "create", "lat", "--json")
        info = dep.script(SETUP)
        for interval in INTERVALS:
            with Path(d, f"worker-{interval}.log").open("w") as log:
                worker = subprocess.Popen(
                    [RAPPORT, "worker", "--interval", interval],
                    env=dep.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            try:
                time.sleep(5)
                seconds = dep.script(
                    SEND.format(source=info["source"], n=EVENTS, prefix=f"u{interval}-")
                )
            finally:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(30)
            figures["by_poll_interval"][interval] = {
                "median_s": round(statistics.median(seconds), 3),
                "max_s": max(seconds),
                "each_s": seconds,
            }
    figures["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return figures


if __name__ == "__main__":
    out = run()
    (Path(__file__).parent / "results" / "bench_journeys_latency.json").write_text(
        json.dumps(out, indent=2)
    )
    print(json.dumps(out, indent=2))
