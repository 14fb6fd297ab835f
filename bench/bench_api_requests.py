"""Management API request cost: bearer-token auth and a workspace-scoped read, as a
ratio against /healthz (one database round trip, no auth) on the same server."""

import os

from bench.load import hammer
from tests.live_server import live_server

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "4000"))


def run() -> dict:
    with live_server(workers=2, database_url=os.environ.get("BENCH_DATABASE_URL", "")) as server:
        auth = {"Authorization": f"Bearer {server.token}"}
        hammer(server.url, "/healthz", requests=400)  # warm up every worker
        baseline = hammer(server.url, "/healthz", requests=REQUESTS)
        me = hammer(server.url, "/api/v1/me", requests=REQUESTS, headers=auth)
        sources = hammer(server.url, "/api/v1/sources", requests=REQUESTS, headers=auth)
        unauthorized = hammer(server.url, "/api/v1/me", requests=REQUESTS)
    return {
        "database": server.env["DATABASE_URL"].split(":", 1)[0],
        "healthz": baseline,
        "api_me": me,
        "api_sources_list": sources,
        "api_unauthorized": unauthorized,
        "api_me_vs_healthz_throughput": round(me["requests_per_s"] / baseline["requests_per_s"], 3),
        "sources_vs_healthz_throughput": round(
            sources["requests_per_s"] / baseline["requests_per_s"], 3
        ),
    }
