"""The segment rule "sum of revenue ≥ N" before and after it became currency-aware,
A/B in one process on SQLite, at a small scale (the machine is shared).

Before: the amounts summed as sent (the condition's query with money detection off).
After: each converted in the database with the workspace's rates (a CASE), and, for the
preview, what had no rate counted by currency (a second query). Alternated 7 times so a
loaded machine slows both alike; the best of each. 5,000 profiles, 50,000 events (10%
purchases; 2% of those in EUR with a rate, 1% in USD without one).

    PYTHONPATH=. python bench/money_rule_ab.py   # BENCH_DB=/path/file.sqlite3 to keep it
"""

import json
import os
import tempfile
import time
from datetime import timedelta

import bench.money_ab as base

base.PROFILES, base.EVENTS = 5_000, 50_000
os.environ.setdefault("BENCH_DB", os.path.join(tempfile.gettempdir(), "money-rule-ab.sqlite3"))


def main() -> None:
    base._setup()
    from rapport.ingest.models import Event
    from rapport.segments import money, selectors
    from rapport.segments.compiler import Context, rule_profiles
    from rapport.segments.rules import rule_parse

    ws = base._fill()
    # The workspace reports in GBP here, with a rate for EUR and none for USD: every
    # hundredth purchase without a currency is made a USD one.
    from rapport.tenancy.commerce import commerce_settings_update, exchange_rates_upload
    from rapport.tenancy.services import Actor

    if not Event.objects.filter(workspace=ws, properties__currency="USD").exists():
        ids = list(
            Event.objects.filter(workspace=ws, event="Order Completed")
            .exclude(properties__has_key="currency")
            .values_list("pk", flat=True)[::100]
        )
        for event in Event.objects.filter(pk__in=ids):
            event.properties = {**event.properties, "currency": "USD"}
            event.save(update_fields=["properties"])
        commerce_settings_update(
            workspace=ws, actor=Actor.system("bench"), reporting_currency="GBP"
        )
        exchange_rates_upload(
            workspace=ws,
            actor=Actor.system("bench"),
            rows=[{"currency": "EUR", "rate": "0.86", "valid_from": "2020-01-01"}],
        )
    rule = {
        "aggregate": "sum",
        "event": "Order Completed",
        "property": "revenue",
        "op": "gte",
        "value": 300,
        "window": {"last_days": 365},
    }
    parsed = rule_parse(rule)
    now = base.NOW + timedelta(days=1)
    real = money.is_money

    def raw(condition, ctx):
        return False

    def count_old():
        money.is_money = raw
        try:
            return rule_profiles(parsed, Context(workspace_id=ws.pk, now=now)).count()
        finally:
            money.is_money = real

    def count_new():
        return rule_profiles(parsed, Context(workspace_id=ws.pk, now=now)).count()

    def preview_old():
        money.is_money = raw
        try:
            return selectors.segment_preview(workspace=ws, rule=rule, can_see_pii=True, now=now)
        finally:
            money.is_money = real

    def preview_new():
        return selectors.segment_preview(workspace=ws, rule=rule, can_see_pii=True, now=now)

    result = {}
    for name, old, new in [
        ("membership_count", count_old, count_new),
        ("preview_with_report", preview_old, preview_new),
    ]:
        times = {"old": [], "new": []}
        for _ in range(7):
            for key, run in (("old", old), ("new", new)):
                started = time.perf_counter()
                run()
                times[key].append(time.perf_counter() - started)
        best = {key: min(values) for key, values in times.items()}
        result[name] = {
            "old_s": round(best["old"], 4),
            "new_s": round(best["new"], 4),
            "ratio": round(best["new"] / best["old"], 2),
        }
    result["members"] = {"raw_sum": count_old(), "converted": count_new()}
    report = preview_new()
    result["unconverted"] = [u.to_json() for u in report.unconverted]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
