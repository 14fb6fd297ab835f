"""The money queries against the ones before them, A/B in one process on SQLite.

KPIs (one 90-day aggregate), RFM (the grouped purchases) and CLV (purchase days) as
they were before currencies (the value summed as sent) and as they are now (converted
with the workspace's rates in the database, and what could not be converted counted),
alternated 7 times each so that a loaded machine slows both alike; the best of each.
20,000 profiles, 200,000 events (10% purchases, 2% of those in EUR with a rate).

    PYTHONPATH=. python bench/money_ab.py   # BENCH_DB=/path/file.sqlite3 to keep it
"""

import json
import os
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta

PROFILES, EVENTS = 20_000, 200_000
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _setup() -> None:
    path = os.environ.get("BENCH_DB") or os.path.join(tempfile.gettempdir(), "money-ab.sqlite3")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rapport.settings")
    os.environ["DATABASE_URL"] = "sqlite:///" + path
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _fill():
    from rapport.ingest.models import Event
    from rapport.profiles.models import Profile
    from rapport.tenancy.commerce import exchange_rates_upload
    from rapport.tenancy.models import Workspace
    from rapport.tenancy.services import Actor

    ws = Workspace.objects.filter(name="bench").first()
    if ws is not None:
        return ws
    ws = Workspace.objects.create(name="bench")
    rnd = random.Random(1)
    first = NOW - timedelta(days=700)
    profiles = [Profile(workspace=ws, traits={}, first_seen_at=first) for _ in range(PROFILES)]
    Profile.objects.bulk_create(profiles, batch_size=5000)
    batch = []
    for n in range(EVENTS):
        at = NOW - timedelta(seconds=rnd.randrange(700 * 86400))
        buy = n % 10 == 0
        properties = {"revenue": 5 + n % 200, "order_id": n} if buy else {"sku": f"s{n % 300}"}
        if buy and n % 50 == 0:
            properties["currency"] = "EUR"
        batch.append(
            Event(
                workspace=ws,
                message_id=f"b{n}",
                profile=profiles[rnd.randrange(PROFILES)],
                type="track",
                event="Order Completed" if buy else "Product Viewed",
                timestamp=at,
                received_at=at,
                properties=properties,
            )
        )
        if len(batch) == 10_000:
            Event.objects.bulk_create(batch)
            batch = []
    exchange_rates_upload(
        workspace=ws,
        actor=Actor.system("bench"),
        rows=[{"currency": "EUR", "rate": "1.1", "valid_from": "2020-01-01"}],
    )
    return ws


def main() -> None:
    _setup()
    from django.db.models import Count, Max, Q, Sum
    from django.db.models.functions import Abs, TruncDate

    from rapport.core.jsonkeys import json_number
    from rapport.core.purchases import DEFAULT_VALUE_PROPERTIES, purchase_value
    from rapport.ingest.models import Event
    from rapport.tenancy.commerce import money_rates_get

    ws = _fill()
    rates = money_rates_get(workspace=ws)
    value = purchase_value(DEFAULT_VALUE_PROPERTIES)
    purchases = Event.objects.filter(
        workspace_id=ws.pk, event="Order Completed", profile_id__isnull=False, timestamp__lte=NOW
    )
    period = Event.objects.filter(
        workspace_id=ws.pk,
        timestamp__gte=NOW - timedelta(days=90),
        timestamp__lt=NOW,
        profile_id__isnull=False,
    )
    bought, refunded = Q(event="Order Completed"), Q(event="Order Refunded")
    common = {
        "active": Count("profile_id", distinct=True, filter=~Q(event__in=["Email Delivered"])),
        "orders": Count("id", filter=bought),
        "buyers": Count("profile_id", distinct=True, filter=bought),
    }

    def kpi_old():
        return period.annotate(value=value, score=json_number("properties", "score")).aggregate(
            **common,
            gross=Sum("value", filter=bought),
            refunded=Sum(Abs("value"), filter=refunded),
        )

    def kpi_new():
        return period.annotate(
            value=rates.converted(value), score=json_number("properties", "score")
        ).aggregate(
            **common,
            unvalued=Count("id", filter=bought & Q(value__isnull=True)),
            gross=Sum("value", filter=bought),
            refunded=Sum(Abs("value"), filter=refunded),
        )

    def rfm_old():
        grouped = purchases.values("profile_id").annotate(
            last=Max("timestamp"), n=Count("id"), total=Sum(value)
        )
        return list(grouped.values_list("profile_id", "last", "n", "total"))

    def rfm_new():
        grouped = (
            purchases.annotate(_c=rates.converted(value))
            .values("profile_id")
            .annotate(last=Max("timestamp"), n=Count("id"), total=Sum("_c"), valued=Count("_c"))
        )
        return list(grouped.values_list("profile_id", "last", "n", "total", "valued"))

    def days_old():
        grouped = (
            purchases.order_by()
            .annotate(day=TruncDate("timestamp"))
            .values("profile_id", "day")
            .annotate(total=Sum(value))
        )
        return list(grouped.values_list("profile_id", "day", "total"))

    def days_new():
        grouped = (
            purchases.order_by()
            .annotate(day=TruncDate("timestamp"), _c=rates.converted(value))
            .values("profile_id", "day")
            .annotate(total=Sum("_c"), n=Count("id"), valued=Count("_c"))
        )
        return list(grouped.values_list("profile_id", "day", "total", "n", "valued"))

    result = {}
    for name, old, new in [
        ("kpis_90d", kpi_old, kpi_new),
        ("rfm", rfm_old, rfm_new),
        ("clv_purchase_days", days_old, days_new),
    ]:
        times = {"old": [], "new": []}
        for _ in range(7):
            for key, run in (("old", old), ("new", new)):
                started = time.perf_counter()
                run()
                times[key].append(time.perf_counter() - started)
        best = {key: min(values) for key, values in times.items()}
        result[name] = {
            "old_s": round(best["old"], 3),
            "new_s": round(best["new"], 3),
            "ratio": round(best["new"] / best["old"], 2),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
