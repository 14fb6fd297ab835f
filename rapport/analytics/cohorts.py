"""Cohorts and the loyalty curve.

A cohort is the customers who signed up (were first seen) or first bought in one local
month. For each later month: the share of the cohort active in it (any event of their
own, as the KPIs count activity) and the revenue per cohort customer (purchases minus
refunds in that month). Aggregated in the database: one grouped query by (customer,
month), summed by (cohort, month).

The loyalty curve is how many customers were in each lifecycle stage at the end of
each month, from the recorded stage changes.
"""

from __future__ import annotations

import time
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from django.db import connection, transaction
from django.db.models import Case, Count, FloatField, IntegerField, Min, Sum, Value, When
from django.db.models.functions import Abs
from django.utils import timezone

from rapport.analytics.kpis import Definitions, Scope, events_in
from rapport.analytics.periods import month_add, month_starts
from rapport.core.analytic import analytic_session
from rapport.core.columns import columns_read
from rapport.core.purchases import purchase_value
from rapport.ingest.models import Event
from rapport.profiles.models import Profile
from rapport.segments.models import LifecycleChange, LifecycleState

COHORT_KINDS = ("signup", "first_purchase")


def _bucket(field: str, bounds: list) -> Case:
    """Which month (0-based) a time falls in; NULL outside."""
    return Case(
        *(
            When(**{f"{field}__gte": bounds[i], f"{field}__lt": bounds[i + 1]}, then=Value(i))
            for i in range(len(bounds) - 1)
        ),
        default=Value(None),
        output_field=IntegerField(),
    )


def _cohort_members(scope: Scope, d: Definitions, by: str, bounds: list):
    """(profile id, cohort month index) of every customer whose cohort is in range."""
    end = bounds[-1]
    members = scope.profile_ids(end)
    if by == "signup":
        profiles = Profile.objects.filter(
            workspace_id=scope.workspace_id,
            merged_into__isnull=True,
            first_seen_at__gte=bounds[0],
            first_seen_at__lt=end,
        )
        if members is not None:
            profiles = profiles.filter(pk__in=members)
        return profiles.annotate(c=_bucket("first_seen_at", bounds)).values_list("pk", "c")
    firsts = Event.objects.filter(
        workspace_id=scope.workspace_id, event=d.purchase_event, profile_id__isnull=False
    )
    if members is not None:
        firsts = firsts.filter(profile_id__in=members)
    return (
        firsts.values("profile_id")
        .annotate(first=Min("timestamp"))
        .filter(first__gte=bounds[0], first__lt=end)
        .annotate(c=_bucket("first", bounds))
        .values_list("profile_id", "c")
    )


def cohorts_compute(
    *,
    scope: Scope,
    definitions: Definitions,
    zone: ZoneInfo,
    by: str,
    last_month: date,
    months: int,
) -> dict[str, Any]:
    """The cohort table of the `months` months that end with `last_month` (local)."""
    began = time.perf_counter()
    d = definitions
    first_month = month_add(last_month, -(months - 1))
    bounds = month_starts(first_month, months, zone)
    # In the reporting currency; a purchase without a rate on its day adds nothing.
    value = d.rates.converted(purchase_value(d.value_properties))
    cohort = _cohort_members(scope, d, by, bounds)
    activity = events_in(scope, bounds[0], bounds[-1], bounds[-1]).exclude(event__in=d.not_activity)
    if by == "signup":
        # Only the cohorts' customers are grouped by month (a cheap range of profiles;
        # at a million customers 5.4 s instead of 6.7). The first purchases, a grouped
        # query, cost more as a semi-join than they save.
        activity = activity.filter(profile_id__in=cohort.values("pk"))
    activity = (
        activity.annotate(
            m=_bucket("timestamp", bounds),
            money=Case(
                When(event=d.purchase_event, then=value),
                When(event=d.refund_event, then=-Abs(value)),
                default=Value(0.0),
                output_field=FloatField(),
            ),
        )
        .values("profile_id", "m")
        .annotate(r=Sum("money"))
        .values_list("profile_id", "m", "r")
    )
    with transaction.atomic():
        analytic_session()
        activity_sql, activity_params = activity.query.sql_with_params()
        cohort_sql, cohort_params = cohort.query.sql_with_params()
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # The cohorts once, into a table the planner has statistics of (a
                # customer's first purchase is a grouped query over every order).
                cursor.execute(
                    "CREATE TEMPORARY TABLE analytics_cohort (pid, c) ON COMMIT DROP AS "
                    + cohort_sql,
                    cohort_params,
                )
                cursor.execute("ANALYZE analytics_cohort")
                cohort_sql, cohort_params = "SELECT pid, c FROM analytics_cohort", []
            cursor.execute(
                f"WITH a(pid, m, r) AS ({activity_sql}), c(pid, c) AS ({cohort_sql}) "  # noqa: S608 - the ORM's SQL, values bound
                "SELECT c.c, a.m, COUNT(*), SUM(a.r) FROM a JOIN c ON c.pid = a.pid "
                "WHERE a.m >= c.c GROUP BY c.c, a.m",
                [*activity_params, *cohort_params],
            )
            cells = cursor.fetchall()
            cursor.execute(
                f"WITH c(pid, c) AS ({cohort_sql}) SELECT c.c, COUNT(*) FROM c GROUP BY c.c",  # noqa: S608
                cohort_params,
            )
            sizes = dict(cursor.fetchall())
            if connection.vendor == "postgresql":
                # Gone now, not at the commit: a caller's transaction may ask again.
                cursor.execute("DROP TABLE analytics_cohort")
    active = np.zeros((months, months), dtype=np.int64)
    revenue = np.zeros((months, months))
    for c, m, n, r in cells:
        if c is None or m is None:
            continue
        active[c, m - c] = n
        revenue[c, m - c] = float(r or 0)
    rows = []
    for c in range(months):
        size = int(sizes.get(c, 0))
        available = months - c  # months of this cohort inside the table so far
        rows.append(
            {
                "cohort": month_add(first_month, c).strftime("%Y-%m"),
                "customers": size,
                "active": [int(active[c, k]) for k in range(available)],
                "retention": [(active[c, k] / size) if size else None for k in range(available)],
                "revenue_per_customer": [
                    round(revenue[c, k] / size, 2) if size else None for k in range(available)
                ],
            }
        )
    return {
        "by": by,
        "first_month": first_month.strftime("%Y-%m"),
        "last_month": last_month.strftime("%Y-%m"),
        "rows": rows,
        # Revenue per customer is in this currency (ISO 4217).
        "currency": d.rates.reporting,
        "seconds": round(time.perf_counter() - began, 3),
    }


def cohort_customers(
    *, scope: Scope, definitions: Definitions, zone: ZoneInfo, by: str, month: date, offset: int
) -> list[str]:
    """The customers of one cohort active `offset` months after its month."""
    bounds = month_starts(month, 1, zone)
    members = {str(p) for p, _ in _cohort_members(scope, definitions, by, bounds)}
    target = month_starts(month_add(month, offset), 1, zone)
    active = (
        events_in(scope, target[0], target[1], target[1])
        .exclude(event__in=definitions.not_activity)
        .values_list("profile_id", flat=True)
        .distinct()
    )
    return sorted(str(p) for p in active if str(p) in members)


def loyalty_compute(
    *, scope: Scope, zone: ZoneInfo, last_month: date, months: int, cohort: date | None = None
) -> dict[str, Any]:
    """Customers per lifecycle stage at the end of each month (from the stage changes
    recorded up to then), for every customer in scope or one sign-up cohort; the last
    point is the current state."""
    began = time.perf_counter()
    first_month = month_add(last_month, -(months - 1))
    ends = month_starts(month_add(first_month, 1), months - 1, zone)
    changes = LifecycleChange.objects.filter(workspace_id=scope.workspace_id, at__lt=ends[-1])
    states = LifecycleState.objects.filter(workspace_id=scope.workspace_id)
    members = scope.profile_ids(ends[-1])
    if members is not None:
        changes = changes.filter(profile_id__in=members)
        states = states.filter(profile_id__in=members)
    if cohort is not None:
        bounds = month_starts(cohort, 1, zone)
        in_cohort = Profile.objects.filter(
            workspace_id=scope.workspace_id,
            first_seen_at__gte=bounds[0],
            first_seen_at__lt=bounds[1],
        ).values("pk")
        changes = changes.filter(profile_id__in=in_cohort)
        states = states.filter(profile_id__in=in_cohort)
    pids, stamps, stages = columns_read(
        changes.values_list("profile_id", "at", "to_stage"), texts=(0, 2), epochs=(1,)
    )
    order = np.lexsort((stamps, pids.astype(str)))
    pids, stamps, stages = pids[order].astype(str), stamps[order], stages[order]
    names = sorted(set(stages.tolist()) | set(states.values_list("stage", flat=True).distinct()))
    series: dict[str, list[int]] = {name: [] for name in names}
    labels = []
    for k, moment in enumerate(ends):
        labels.append(month_add(first_month, k).strftime("%Y-%m"))
        upto = stamps < moment.timestamp()
        # The last change up to `moment` of each customer: where its customer's run ends.
        p, s = pids[upto], stages[upto]
        last = np.ones(len(p), dtype=bool)
        if len(p) > 1:
            last[:-1] = p[:-1] != p[1:]
        counted = dict(zip(*np.unique(s[last].astype(str), return_counts=True), strict=True))
        for name in names:
            series[name].append(int(counted.get(name, 0)))
    # Today's state for the current month (stages recomputed since the last change).
    current = dict(states.values("stage").annotate(n=Count("pk")).values_list("stage", "n"))
    if labels and ends[-1] > timezone.now():
        for name in names:
            series[name][-1] = int(current.get(name, 0))
    return {
        "months": labels,
        "stages": [{"stage": name, "customers": series[name]} for name in names],
        "cohort": cohort.strftime("%Y-%m") if cohort else None,
        "seconds": round(time.perf_counter() - began, 3),
    }
