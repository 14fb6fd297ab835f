"""The UI's pages, as a signed-in person gets them from a running `rapport serve`:
the customer list (first page, a page deep in the list, a search by user id, a search
by name, the consent filter), the 360 page of a customer with a long history, a later
timeline page, the debugger and the sources page; the accounts list and search, an
account of 50 people holding that customer and one of 50 quiet people, the next page of
an account's combined timeline; the duplicates queue, the quarantine, the imports,
and the settings pages. BENCH_ACCOUNTS (20,000) sets how many accounts.

Target (issue 5): each page's server time under 300 ms at p95, and a customer search
under 300 ms, with 1,000,000 profiles and 20,000,000 events in PostgreSQL.
BENCH_PROFILES (1,000,000) and BENCH_PROFILE_EVENTS (100,000, the long history) set
the sizes; BENCH_UI_EVENTS (0) adds that many more events spread over all profiles.
The data is written as `bench_profile_page` writes it.
"""

import html
import http.cookiejar
import json
import os
import re
import statistics
import sys
import time
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

ROUNDS = 40
EXTRA_EVENTS = int(os.environ.get("BENCH_UI_EVENTS", "0"))
PASSWORD = "bench-password-123"  # noqa: S105 - a throwaway bench database
EMAIL = "bench-admin@example.com"


def _fill(workspace_name: str) -> dict:
    from bench.bench_profile_page import PROFILES
    from bench.bench_profile_page import _fill as profile_fill

    ids = profile_fill(workspace_name)
    from rapport.core.bulk import rows_insert
    from rapport.ingest.models import Event
    from rapport.profiles.models import Profile
    from rapport.tenancy.models import Source, Workspace
    from rapport.tenancy.services import Actor, member_add

    workspace = Workspace.objects.get(name=workspace_name)
    member_add(
        workspace=workspace, email=EMAIL, role="admin", password=PASSWORD, actor=Actor.system()
    )
    source = Source.objects.filter(workspace=workspace).first()
    profiles = list(
        Profile.objects.filter(workspace=workspace).values_list("id", flat=True)[:200_000]
    )
    now = datetime.now(UTC)
    for start in range(0, EXTRA_EVENTS, 20_000):
        rows = []
        for n in range(start, min(start + 20_000, EXTRA_EVENTS)):
            at = now - timedelta(seconds=EXTRA_EVENTS - n)
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "workspace_id": workspace.pk,
                    "source_id": source.pk,
                    "profile_id": profiles[n % len(profiles)],
                    "message_id": f"extra-{n}",
                    "type": "track",
                    "event": "Product Viewed",
                    "user_id": f"user-{n % PROFILES}",
                    "anonymous_id": "",
                    "group_id": "",
                    "previous_id": "",
                    "timestamp": at,
                    "received_at": at,
                    "sent_at": None,
                    "original_timestamp": None,
                    "in_future": False,
                    "properties": {"sku": f"sku-{n % 300}"},
                    "traits": {},
                    "context": {},
                }
            )
        rows_insert(Event, rows, conflict=["id"])
    everyone = list(Profile.objects.filter(workspace=workspace).values_list("id", flat=True))
    heavy = uuid.UUID(ids["heavy"])
    everyone = [heavy, *(pk for pk in everyone if pk != heavy)]  # the big account's
    ids.update(_fill_accounts_and_reviews(workspace, source, profiles_all=everyone))
    _fill_scores(workspace, everyone)
    from django.db import connection

    with connection.cursor() as cursor:
        # What autovacuum does after a bulk load (it is off on this machine's server).
        cursor.execute("ANALYZE")
    return ids


def _fill_scores(workspace, profiles_all: list) -> None:
    """A churn score and a CLV for every profile, as scoring leaves them: 0.5% in the
    high band (5,000 of a million: a filter that a trait sort may order), 30% medium;
    and a `tier` trait of a few values."""
    from rapport.core.bulk import rows_insert
    from rapport.predictions.models import ChurnScore, ClvScore, PredictionModel

    now = datetime.now(UTC)
    churn = PredictionModel.objects.create(
        workspace=workspace, kind="churn", version=1, trained_at=now
    )
    clv = PredictionModel.objects.create(workspace=workspace, kind="clv", version=1, trained_at=now)
    for start in range(0, len(profiles_all), 20_000):
        chunk = profiles_all[start : start + 20_000]
        churns, clvs = [], []
        for n, pk in enumerate(chunk, start):
            band = "high" if n % 200 == 7 else "medium" if n % 10 < 3 else "low"
            probability = {"high": 0.8, "medium": 0.4, "low": 0.1}[band] + (n % 97) / 1000
            churns.append(
                {
                    "profile_id": pk,
                    "workspace_id": workspace.pk,
                    "model_id": churn.pk,
                    "probability": probability,
                    "band": band,
                    "reasons": [],
                    "computed_at": now,
                }
            )
            clvs.append(
                {
                    "profile_id": pk,
                    "workspace_id": workspace.pk,
                    "model_id": clv.pk,
                    "frequency": n % 7,
                    "recency": 10.0,
                    "age": 40.0,
                    "p_alive": 0.7,
                    "expected_purchases_30": 0.2,
                    "expected_purchases_90": 0.5,
                    "expected_purchases_365": 1.5,
                    "expected_order_value": 30.0,
                    "clv": float(n % 5000) / 10,
                    "computed_at": now,
                }
            )
        rows_insert(ChurnScore, churns, conflict=["profile_id"])
        rows_insert(ClvScore, clvs, conflict=["profile_id"])


ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "20000"))
MEMBERS_PER_ACCOUNT = 50
DUPLICATE_PAIRS = 10_000
QUARANTINED = 100_000


def _fill_accounts_and_reviews(workspace, source, *, profiles_all: list) -> dict:
    """Accounts of 50 people each (the long-history customer in the first; the last
    ones with nobody active), a group call per account, open duplicate pairs, refused
    events and import jobs."""
    from rapport.core.bulk import rows_insert
    from rapport.identity.models import DuplicateCandidate
    from rapport.ingest.models import Event, ImportJob, QuarantinedEvent
    from rapport.profiles.models import Account, AccountMember

    now = datetime.now(UTC)
    accounts, members, groups = [], [], []
    for n in range(ACCOUNTS):
        pk = uuid.uuid4()
        accounts.append(
            {
                "id": pk,
                "workspace_id": workspace.pk,
                "group_id": f"acct-{n}",
                "name": f"Company {n:05d}",
                "traits": {"industry": "retail", "employees": n % 500},
                "trait_sources": {},
                "parent_id": accounts[0]["id"] if n and n % 100 == 0 else None,
                "first_seen_at": now - timedelta(days=300),
                "last_seen_at": now - timedelta(days=n % 300),
                "merged_into_id": None,
                "created_at": now,
                "updated_at": now,
            }
        )
        start = n * MEMBERS_PER_ACCOUNT
        for profile_id in profiles_all[start : start + MEMBERS_PER_ACCOUNT]:
            members.append(
                {
                    "id": uuid.uuid4(),
                    "workspace_id": workspace.pk,
                    "account_id": pk,
                    "profile_id": profile_id,
                    "created_at": now,
                }
            )
        at = now - timedelta(days=200, minutes=n)
        groups.append(
            {
                "id": uuid.uuid4(),
                "workspace_id": workspace.pk,
                "source_id": source.pk,
                "profile_id": profiles_all[start] if start < len(profiles_all) else None,
                "message_id": f"group-{n}",
                "type": "group",
                "event": "",
                "user_id": f"user-{start}",
                "anonymous_id": "",
                "group_id": f"acct-{n}",
                "previous_id": "",
                "timestamp": at,
                "received_at": at,
                "sent_at": None,
                "original_timestamp": None,
                "in_future": False,
                "properties": {},
                "traits": {"name": f"Company {n:05d}"},
                "context": {},
            }
        )
    for chunk in range(0, len(accounts), 5000):
        rows_insert(Account, accounts[chunk : chunk + 5000], conflict=["id"])
    for chunk in range(0, len(members), 20000):
        rows_insert(AccountMember, members[chunk : chunk + 20000], conflict=["id"])
    for chunk in range(0, len(groups), 5000):
        rows_insert(Event, groups[chunk : chunk + 5000], conflict=["id"])
    pairs = [
        {
            "id": uuid.uuid4(),
            "workspace_id": workspace.pk,
            "kind": "profile",
            "record_a": profiles_all[2 * n],
            "record_b": profiles_all[2 * n + 1],
            "probability": 0.9 + (n % 100) / 1000,
            "agreeing_fields": ["email", "last_name"],
            "status": "open",
            "reviewed_by": "",
            "reviewed_at": None,
            "review_reason": "",
            "created_at": now,
            "updated_at": now,
        }
        for n in range(min(DUPLICATE_PAIRS, len(profiles_all) // 2))
    ]
    rows_insert(DuplicateCandidate, pairs, conflict=["id"])
    for chunk in range(0, QUARANTINED, 20000):
        rows_insert(
            QuarantinedEvent,
            [
                {
                    "id": uuid.uuid4(),
                    "workspace_id": workspace.pk,
                    "source_id": source.pk,
                    "received_at": now - timedelta(seconds=n),
                    "reason": "event is required for track",
                    "field": "event",
                    "message_id": f"refused-{n}",
                    "payload": {"type": "track", "userId": f"user-{n}"},
                }
                for n in range(chunk, min(chunk + 20000, QUARANTINED))
            ],
            conflict=["id"],
        )
    rows_insert(
        ImportJob,
        [
            {
                "id": uuid.uuid4(),
                "workspace_id": workspace.pk,
                "kind": "customers",
                "filename": f"export-{n}.csv",
                "file_sha256": f"{n:064d}",
                "file_size": 1_000_000,
                "stored_path": "",
                "id_column": "id",
                "status": "done",
                "rows_done": 10_000,
                "rows_total": 10_000,
                "accepted": 9_990,
                "rejected": 10,
                "errors": [],
                "failure": "",
                "finished_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for n in range(200)
        ],
        conflict=["id"],
    )
    return {"big_account": str(accounts[0]["id"]), "quiet_account": str(accounts[-1]["id"])}


class _Browser:
    """A signed-in person's cookies, over plain HTTP."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        page = self.get("/login/")[1]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        body = urllib.parse.urlencode(
            {"username": EMAIL, "password": PASSWORD, "csrfmiddlewaretoken": token}
        ).encode()
        request = urllib.request.Request(  # noqa: S310 - local
            f"{base}/login/", data=body, headers={"Referer": f"{base}/login/"}
        )
        with self.opener.open(request, timeout=30) as response:
            assert "Sign out" in response.read().decode(), "the bench could not sign in"

    def get(self, path: str) -> tuple[float, str]:
        started = time.perf_counter()
        with self.opener.open(f"{self.base}{path}", timeout=60) as response:
            text = response.read().decode()
            assert response.status == 200, path
        return (time.perf_counter() - started) * 1000, text


def _measure(browser: _Browser, path: str) -> dict:
    browser.get(path)  # warm up
    times = sorted(browser.get(path)[0] for _ in range(ROUNDS))
    return {
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[int(len(times) * 0.95) - 1], 1),
    }


FIVE_COLUMNS = "col=email&col=trait:plan&col=churn&col=clv&col=last_seen"


def _next(page: str) -> str:
    return html.unescape(re.search(r'rel="next" href="([^"]+)"', page).group(1))


def run() -> dict:
    from bench.live import live_fill
    from tests.live_server import live_server

    port = int(os.environ["BENCH_PORT"]) if os.environ.get("BENCH_PORT") else None
    with live_server(
        workers=1, database_url=os.environ.get("BENCH_DATABASE_URL", ""), port=port
    ) as server:
        ids = live_fill(server, "bench.bench_ui_pages")
        browser = _Browser(server.url)
        deep = "/customers/"
        for _ in range(50):
            deep = "/customers/" + _next(browser.get(deep)[1])
        heavy = ids["heavy"]
        timeline = browser.get(f"/customers/{heavy}/")[1]
        later = html.unescape(re.search(r'hx-get="([^"]+)"', timeline).group(1))
        account_page = browser.get(f"/accounts/{ids['big_account']}/")[1]
        account_later = html.unescape(re.search(r'hx-get="([^"]+)"', account_page).group(1))
        pages = {
            "customers": "/customers/",
            "customers_page_51": deep,
            "search_user_id": "/customers/?q=user-777777",
            "search_name_prefix": "/customers/?q=ada",
            "consent_filter": "/customers/?consent=email",
            "customer_360": f"/customers/{heavy}/",
            "timeline_next_page": later,
            "debugger": "/data/debugger/",
            "sources": "/data/sources/",
            "accounts": "/accounts/",
            "accounts_search": "/accounts/?q=Company+0123",
            "account_big": f"/accounts/{ids['big_account']}/",
            "account_big_timeline_next": account_later,
            "account_quiet": f"/accounts/{ids['quiet_account']}/",
            "duplicates": "/duplicates/",
            "quarantine": "/data/quarantine/",
            "imports": "/data/imports/",
            "settings_members": "/settings/members/",
            "settings_tokens": "/settings/tokens/",
            "settings_identity": "/settings/identity/",
            # Issue 23: five chosen columns and a filter (300,000 match: a capped count,
            # keyset pages by last seen), and orders within the high band (5,000).
            "customers_5_columns_filter": f"/customers/?{FIVE_COLUMNS}&churn=medium",
            "customers_5_columns_sorted_by_trait": (
                f"/customers/?{FIVE_COLUMNS}&churn=high&sort=trait:email"
            ),
            "customers_5_columns_sorted_by_clv": f"/customers/?{FIVE_COLUMNS}&churn=high&sort=-clv",
            "customers_5_columns_no_filter": f"/customers/?{FIVE_COLUMNS}",
        }
        only = [p for p in os.environ.get("BENCH_UI_ONLY", "").split(",") if p]
        if only:
            pages = {k: v for k, v in pages.items() if any(k.startswith(p) for p in only)}
        figures = {name: _measure(browser, path) for name, path in pages.items()}
    from bench.bench_profile_page import EVENTS, PROFILES

    worst = max(f["p95_ms"] for f in figures.values())
    return {
        "database": server.env["DATABASE_URL"].split(":", 1)[0],
        "profiles": PROFILES,
        "events": EVENTS + 10 + EXTRA_EVENTS,
        "pages": figures,
        "target_ms": 300,
        "worst_p95_vs_target": round(worst / 300, 3),
    }


if __name__ == "__main__" and "--fill" in sys.argv:
    print(json.dumps(_fill(sys.argv[sys.argv.index("--fill") + 1])))
