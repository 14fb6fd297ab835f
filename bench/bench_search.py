"""The global search (`GET /api/v1/search`, as the `/search/` page and the box's live
results run it) over 1,000,000 customers, from a running `rapport serve`: a surname, a
first name, a two-letter prefix, part of an email, a whole email, a national and an
international phone number, part of a phone number, a user id, an account, a segment,
and text that matches nothing; each for a role with pii.read and (name, id) one without.

Target (issue 23): p95 under 300 ms with 1,000,000 profiles on PostgreSQL.
BENCH_SEARCH_PROFILES (1,000,000) and BENCH_ACCOUNTS (20,000) set the sizes. Every
customer has a name, an email, a user id and an anonymous id; half have a phone.
"""

import json
import os
import statistics
import sys
import time
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

PROFILES = int(os.environ.get("BENCH_SEARCH_PROFILES", "1000000"))
ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "20000"))
ROUNDS = 40
LIMIT = 25  # what the /search/ page asks for each kind
CHUNK = 20000

FIRST = [
    "Ada", "Alan", "Alice", "Ana", "Bo", "Carla", "Chloe", "Dan", "Dana", "Emma", "Eva",
    "Hana", "Haruto", "Ines", "Ivan", "Jana", "Jon", "Kai", "Kate", "Lea", "Lina", "Mia",
    "Nia", "Noah", "Nora", "Olga", "Omar", "Paul", "Pia", "Rosa", "Sara", "Tom", "Uma",
    "Vera", "Yuki", "Zoe", "Hitomi", "Kenji", "Priya", "Ravi",
]  # fmt: skip
LAST = [f"{stem}{suffix}" for stem in (
    "Smith", "Ito", "Sato", "Garcia", "Martin", "Bauer", "Chen", "Davies", "Evans", "Fischer",
    "Lopez", "Moreau", "Novak", "Petrov", "Rossi", "Silva", "Tanaka", "Walsh", "Young", "Kim",
    "Nakamura", "Larsen", "Jensen", "Costa", "Dubois",
) for suffix in ("", "son", "ova", "elli", "ez", "ström", "berg", "ley", "ini", "ard")]  # fmt: skip


def _person(n: int) -> tuple[str, str, str | None]:
    first, last = FIRST[n % len(FIRST)], LAST[(n // len(FIRST)) % len(LAST)]
    email = f"{first.lower()}.{last.lower()}{n}@mail{n % 500}.example"
    phone = f"+4477{n:08d}" if n % 2 == 0 else None
    return f"{first} {last}", email, phone


def _fill(workspace_name: str) -> dict:
    """Profiles and their identifiers straight into the tables (the ingestion path is
    benchmarked elsewhere); returns what to search for."""
    import django

    django.setup()
    from django.db import connection

    from rapport.core.bulk import rows_insert
    from rapport.identity.models import Identifier
    from rapport.profiles.models import Account, Profile
    from rapport.segments.models import Segment
    from rapport.tenancy.models import Workspace
    from rapport.tenancy.services import Actor, api_token_create

    workspace = Workspace.objects.get(name=workspace_name)
    now = datetime.now(UTC)
    started = time.perf_counter()
    for start in range(0, PROFILES, CHUNK):
        profiles, identifiers = [], []
        for n in range(start, min(start + CHUNK, PROFILES)):
            pk = uuid.uuid4()
            name, email, phone = _person(n)
            traits = {"name": name, "email": email, "plan": "pro"}
            if phone:
                traits["phone"] = phone
            profiles.append(
                {
                    "id": pk,
                    "workspace_id": workspace.pk,
                    "traits": traits,
                    "trait_sources": {},
                    "first_seen_at": now - timedelta(days=400),
                    "last_seen_at": now - timedelta(minutes=n),
                    "merged_into_id": None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            values = [("user_id", f"user-{n}"), ("anonymous_id", f"anon-{n}-{pk.hex[:8]}")]
            values += [("email", email)] + ([("phone", phone)] if phone else [])
            identifiers += [
                {
                    "id": uuid.uuid4(),
                    "workspace_id": workspace.pk,
                    "profile_id": pk,
                    "kind": kind,
                    "value": value,
                    "created_at": now,
                }
                for kind, value in values
            ]
        rows_insert(Profile, profiles, conflict=["id"])
        rows_insert(Identifier, identifiers, conflict=["workspace_id", "value", "kind"])
    rows_insert(
        Account,
        [
            {
                "id": uuid.uuid4(),
                "workspace_id": workspace.pk,
                "group_id": f"acct-{n}",
                "name": f"{LAST[n % len(LAST)]} Trading {n:05d}",
                "traits": {"website": f"https://trading{n}.example", "industry": "retail"},
                "trait_sources": {},
                "parent_id": None,
                "first_seen_at": now,
                "last_seen_at": now,
                "merged_into_id": None,
                "created_at": now,
                "updated_at": now,
            }
            for n in range(ACCOUNTS)
        ],
        conflict=["workspace_id", "group_id"],
    )
    Segment.objects.bulk_create(
        Segment(workspace=workspace, name=f"Segment {n:03d} {LAST[n % len(LAST)]}", kind="static")
        for n in range(200)
    )
    _, analyst_token = api_token_create(
        workspace=workspace, name="bench analyst", role="analyst", actor=Actor.system("bench")
    )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    return {"analyst_token": analyst_token, "fill_seconds": time.perf_counter() - started}


def _queries() -> dict[str, str]:
    n = PROFILES // 2 + 2  # an even number: this customer has a phone
    name, email, phone = _person(n)
    national = "0" + phone[3:]
    return {
        "surname": "Ito",
        "first_and_last_name": name,
        "two_letters": "Ka",
        "part_of_an_email": email.split("@")[0][-9:],
        "whole_email": email,
        "national_phone": f"{national[:5]} {national[5:]}",
        "international_phone": f"{phone[:3]} {phone[3:7]} {phone[7:]}",
        "part_of_a_phone": phone[-7:-1],
        "user_id": f"user-{n}",
        "account_domain": f"trading{ACCOUNTS // 2}.example",
        "segment": "Segment 042",
        "nothing": "qxzvw",
    }


def _timed_get(url: str, token: str) -> tuple[float, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310 - local
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local
        body = json.loads(response.read())
        assert response.status == 200
    return (time.perf_counter() - started) * 1000, body


def _measure(server, token: str, q: str) -> dict:
    url = f"{server.url}/api/v1/search?" + urllib.parse.urlencode({"q": q, "limit": LIMIT})
    _timed_get(url, token)  # warm up
    times = []
    for _ in range(ROUNDS):
        ms, body = _timed_get(url, token)
        times.append(ms)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[int(len(times) * 0.95) - 1], 1),
        "max_ms": round(times[-1], 1),
        "hits": {s["kind"]: len(s["hits"]) for s in body["sections"]},
    }


def run() -> dict:
    from bench.live import live_fill
    from tests.live_server import live_server

    with live_server(workers=1, database_url=os.environ.get("BENCH_DATABASE_URL", "")) as server:
        filled = live_fill(server, "bench.bench_search")
        admin = {label: _measure(server, server.token, q) for label, q in _queries().items()}
        analyst = {
            label: _measure(server, filled["analyst_token"], q)
            for label, q in _queries().items()
            if label in ("surname", "user_id", "whole_email")
        }
    worst = max(figures["p95_ms"] for figures in admin.values())
    return {
        "database": server.env["DATABASE_URL"].split(":", 1)[0],
        "profiles": PROFILES,
        "accounts": ACCOUNTS,
        "limit": LIMIT,
        "fill_seconds": round(filled["fill_seconds"], 1),
        "queries": _queries(),
        "with_pii_read": admin,
        "without_pii_read": analyst,
        "worst_p95_ms": worst,
        "target_ms": 300,
        "worst_p95_vs_target": round(worst / 300, 3),
    }


if __name__ == "__main__" and "--fill" in sys.argv:
    print(json.dumps(_fill(sys.argv[sys.argv.index("--fill") + 1])))
