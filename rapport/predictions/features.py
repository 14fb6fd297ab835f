"""What the churn model sees of each customer, read from the database as of a moment
`at`: traits (numeric and categorical), recency and tenure, frequency and monetary
value, activity over 7/30/90 days and its trend, support and email engagement, and for
each of the workspace's most common events its counts, trend and whether it was used in
the customer's first 30 days.

The feature specification (which events, traits and categories) is fixed when a model
is trained and kept with it, so that scoring computes exactly the same columns. Every
count comes from one grouped query over the events; rows stream into NumPy arrays."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.db.models import Count, F, Max, Q, Sum
from django.db.models.functions import TruncDate

from rapport.core.columns import columns_read
from rapport.core.jsonkeys import json_number, json_text
from rapport.core.money import Rates, unconverted_read
from rapport.core.purchases import DEFAULT_VALUE_PROPERTIES, purchase_value
from rapport.ingest.models import Event
from rapport.profiles.models import Profile
from rapport.tenancy.commerce import commerce_settings_get, money_rates_get
from rapport.tenancy.models import Workspace

TOP_EVENTS = 10
WINDOWS = (7, 30, 90)
FIRST_DAYS = 30
MAX_CATEGORIES = 30
TRAIT_SAMPLE = 20_000
MIN_TRAIT_COVERAGE = 0.05
# Identifiers and free text say who someone is, not how they behave.
PERSONAL_TRAITS = {
    "email",
    "phone",
    "name",
    "first_name",
    "last_name",
    "firstname",
    "lastname",
    "username",
    "user_id",
    "userid",
    "id",
    "address",
    "avatar",
    "website",
    "description",
    "birthday",
    "created_at",
    "createdat",
    "title",
}
SUPPORT = re.compile(r"ticket|support|conversation|chat|complaint|case ", re.IGNORECASE)
EMAIL = re.compile(r"^email", re.IGNORECASE)
# Messages sent to the customer ("Email Delivered", "SMS Sent", "Push Bounced") happen
# whether or not they are still there: they are not the customer's activity.
OUTBOUND = re.compile(r"\b(sent|delivered|bounced|deferred|dropped|queued)$", re.IGNORECASE)


@dataclass
class Spec:
    events: list[str]
    numeric_traits: list[str]
    categorical_traits: dict[str, list[str]]
    purchase_event: str
    value_properties: list[str]
    support_events: list[str]
    email_events: list[str]
    outbound_events: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return self.__dict__.copy()

    @classmethod
    def from_json(cls, data: dict) -> Spec:
        return cls(**data)


@dataclass
class Frame:
    ids: list[Any]
    X: np.ndarray
    names: list[str]
    labels: list[str]
    categorical: list[int]
    # Per label kind: 1 churned, 0 kept; None where unknown.
    y: np.ndarray | None = None
    eligible: np.ndarray | None = None
    # Looking back rather than ahead: who has left by the moment (`left`), among those
    # past their first days who did not leave within them (`cohort`). Behaviours of the
    # first days are compared on these: looking ahead from a moment sees only the
    # survivors, among whom those the behaviour drove away early are missing.
    left: np.ndarray | None = None
    cohort: np.ndarray | None = None
    columns: dict[str, int] = field(default_factory=dict)


def _traits_discover(workspace_id, exclude: set[str]) -> tuple[list[str], dict[str, list[str]]]:
    sample = Profile.objects.filter(workspace_id=workspace_id, merged_into__isnull=True)
    rows = list(sample.order_by().values_list("traits", flat=True)[:TRAIT_SAMPLE])
    if not rows:
        return [], {}
    numbers: Counter = Counter()
    texts: dict[str, Counter] = {}
    present: Counter = Counter()
    for traits in rows:
        if not isinstance(traits, dict):
            continue
        for key, value in traits.items():
            if key.lower() in PERSONAL_TRAITS or key in exclude or '"' in key or "\\" in key:
                continue
            if "." in key or value is None or isinstance(value, dict | list):
                continue
            present[key] += 1
            if isinstance(value, bool):
                texts.setdefault(key, Counter())["true" if value else "false"] += 1
            elif isinstance(value, int | float):
                numbers[key] += 1
            else:
                texts.setdefault(key, Counter())[str(value)] += 1
    numeric, categorical = [], {}
    for key, count in present.items():
        if count < MIN_TRAIT_COVERAGE * len(rows):
            continue
        if numbers[key] >= 0.9 * count:
            numeric.append(key)
        elif key in texts and len(texts[key]) <= MAX_CATEGORIES:
            categorical[key] = [value for value, _ in texts[key].most_common()]
    return sorted(numeric), dict(sorted(categorical.items()))


def spec_discover(
    *, workspace_id, at: datetime, exclude_events: tuple = (), exclude_traits: tuple = ()
) -> Spec:
    """The features a new model of the workspace will use."""
    workspace = Workspace.objects.get(pk=workspace_id)
    config = commerce_settings_get(workspace=workspace)
    names = list(
        Event.objects.filter(workspace_id=workspace_id, timestamp__lte=at)
        .exclude(event="")
        .values("event")
        .annotate(n=Count("id"))
        .order_by("-n", "event")
        .values_list("event", "n")[:200]
    )
    known = [name for name, _ in names if name not in exclude_events]
    numeric, categorical = _traits_discover(workspace_id, set(exclude_traits))
    return Spec(
        events=known[:TOP_EVENTS],
        numeric_traits=numeric,
        categorical_traits=categorical,
        purchase_event=config.purchase_event,
        value_properties=list(config.value_properties or DEFAULT_VALUE_PROPERTIES),
        support_events=[n for n in known if SUPPORT.search(n)],
        email_events=[n for n in known if EMAIL.search(n)],
        outbound_events=[n for n, _ in names if OUTBOUND.search(n)],
    )


@dataclass(frozen=True)
class Label:
    """What churn means: `event` within `days` after the moment, no activity for `days`,
    or `trait` equal to `positive`."""

    kind: str
    days: int = 30
    event: str = ""
    trait: str = ""
    positive: str = ""


def _own(spec: Spec) -> Q:
    """The customer's own activity: every event but the messages sent to them."""
    return ~Q(event__in=spec.outbound_events) if spec.outbound_events else Q()


def _aggregates(
    spec: Spec, at: datetime, rates: Rates | None = None
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The event counts as named aggregates, and (name, label) of each feature. Money
    is in the reporting currency of `rates` (purchases without a rate add nothing)."""
    before = Q(timestamp__lte=at)
    since = {days: Q(timestamp__gt=at - timedelta(days=days)) & before for days in WINDOWS}
    prior_30 = Q(timestamp__gt=at - timedelta(days=60), timestamp__lte=at - timedelta(days=30))
    first = Q(timestamp__lt=F("profile__first_seen_at") + timedelta(days=FIRST_DAYS)) & before
    value = purchase_value(spec.value_properties)
    if rates is not None:
        value = rates.converted(value)
    purchase = Q(event=spec.purchase_event) & before
    own = _own(spec)
    aggregates: dict[str, Any] = {
        "last_at": Max("timestamp", filter=before & own),
        "events_7d": Count("id", filter=since[7] & own),
        "events_30d": Count("id", filter=since[30] & own),
        "events_prior_30d": Count("id", filter=prior_30 & own),
        "events_90d": Count("id", filter=since[90] & own),
        "purchases": Count("id", filter=purchase),
        "purchases_90d": Count("id", filter=purchase & since[90]),
        "monetary": Sum(value, filter=purchase),
    }
    labels = [
        ("recency_days", "Days since last activity"),
        ("tenure_days", "Days since first seen"),
        ("events_7d", "Activity, last 7 days"),
        ("events_30d", "Activity, last 30 days"),
        ("events_90d", "Activity, last 90 days"),
        ("activity_trend", "Activity trend (last 30 days minus the 30 before)"),
        ("purchases", "Purchases"),
        ("purchases_90d", "Purchases, last 90 days"),
        ("monetary", "Total spent"),
    ]
    if spec.support_events:
        aggregates["support_90d"] = Count("id", filter=Q(event__in=spec.support_events) & since[90])
        labels.append(("support_90d", "Support contacts, last 90 days"))
    if spec.email_events:
        aggregates["email_30d"] = Count("id", filter=Q(event__in=spec.email_events) & since[30])
        labels.append(("email_30d", "Email engagement, last 30 days"))
    for i, name in enumerate(spec.events):
        is_event = Q(event=name)
        for days in WINDOWS:
            aggregates[f"e{i}_{days}d"] = Count("id", filter=is_event & since[days])
            labels.append((f"e{i}_{days}d", f"{name}, last {days} days"))
        aggregates[f"e{i}_prior_30d"] = Count("id", filter=is_event & prior_30)
        labels.append((f"e{i}_trend", f"{name}, trend (last 30 days minus the 30 before)"))
        aggregates[f"e{i}_first"] = Count("id", filter=is_event & first)
        labels.append((f"e{i}_first", f"{name} in the first {FIRST_DAYS} days"))
    return aggregates, labels


def _label_aggregates(label: Label, spec: Spec, at: datetime) -> dict[str, Any]:
    if label.kind == "event":
        early = Q(timestamp__lt=F("profile__first_seen_at") + timedelta(days=FIRST_DAYS))
        return {
            "label_before": Count("id", filter=Q(event=label.event, timestamp__lte=at)),
            # Left within their first days: before the first-days behaviours were done.
            "label_early": Count("id", filter=Q(event=label.event, timestamp__lte=at) & early),
            "label_after": Count(
                "id",
                filter=Q(
                    event=label.event,
                    timestamp__gt=at,
                    timestamp__lte=at + timedelta(days=label.days),
                ),
            ),
        }
    if label.kind == "inactive":
        own = _own(spec)
        return {
            "active_before": Count(
                "id",
                filter=Q(timestamp__gt=at - timedelta(days=label.days), timestamp__lte=at) & own,
            ),
            "active_after": Count(
                "id",
                filter=Q(timestamp__gt=at, timestamp__lte=at + timedelta(days=label.days)) & own,
            ),
        }
    return {}


def frame_build(
    *,
    workspace_id,
    spec: Spec,
    at: datetime,
    label: Label | None = None,
    profile_ids: list | None = None,
) -> Frame:
    """One row per live customer first seen by `at`, the features as of `at`; with a
    label, which of them churned after `at` (and which could: `eligible`)."""
    profiles = Profile.objects.filter(
        workspace_id=workspace_id, merged_into__isnull=True, first_seen_at__lte=at
    )
    if profile_ids is not None:
        profiles = profiles.filter(pk__in=profile_ids)
    trait_columns: dict[str, Any] = {}
    for i, key in enumerate(spec.numeric_traits):
        trait_columns[f"n{i}"] = json_number("traits", key)
    for i, key in enumerate(spec.categorical_traits):
        trait_columns[f"c{i}"] = json_text("traits", key)
    if label is not None and label.kind == "trait":
        trait_columns["label_trait"] = json_text("traits", label.trait)
    query = profiles.order_by().annotate(**trait_columns)
    # Columns: the id, first seen, the numeric traits, then the text ones.
    numeric_count = 2 + len(spec.numeric_traits)
    head = columns_read(
        query.values_list("id", "first_seen_at", *trait_columns),
        texts=[0, *range(numeric_count, 2 + len(trait_columns))],
        epochs=[1],
    )
    ids = list(head[0])
    index = {pid: i for i, pid in enumerate(ids)}
    n = len(ids)

    rates = money_rates_get(workspace=Workspace.objects.get(pk=workspace_id))
    aggregates, feature_labels = _aggregates(spec, at, rates)
    label_aggregates = _label_aggregates(label, spec, at) if label else {}
    horizon = at + timedelta(days=label.days) if label and label.kind != "trait" else at
    events = Event.objects.filter(
        workspace_id=workspace_id, profile_id__isnull=False, timestamp__lte=horizon
    )
    if profile_ids is not None:
        events = events.filter(profile_id__in=profile_ids)
    names = [*aggregates, *label_aggregates]
    grouped = (
        events.order_by()
        .values("profile_id")
        .annotate(**aggregates, **label_aggregates)
        .values_list("profile_id", *names)
    )
    last_at_col = names.index("last_at")
    read = columns_read(grouped, epochs=[1 + last_at_col])
    rows = np.array([index.get(pid, -1) for pid in read[0]], dtype=np.int64)
    keep = rows >= 0
    column = {}
    for i, name in enumerate(names):
        # Counts are exact in float32 (to 16 million); times need float64.
        values = (
            np.full(n, np.nan) if name in ("last_at", "monetary") else np.zeros(n, dtype=np.float32)
        )
        values[rows[keep]] = read[1 + i][keep]
        column[name] = values
        read[1 + i] = None  # not every column twice over

    now_s = at.timestamp()
    first_s = head[1]
    features: dict[str, np.ndarray] = {
        "recency_days": (now_s - column["last_at"]) / 86400,
        "tenure_days": (now_s - first_s) / 86400,
        "events_7d": column["events_7d"],
        "events_30d": column["events_30d"],
        "events_90d": column["events_90d"],
        "activity_trend": column["events_30d"] - column["events_prior_30d"],
        "purchases": column["purchases"],
        "purchases_90d": column["purchases_90d"],
        "monetary": column["monetary"],
    }
    if "support_90d" in column:
        features["support_90d"] = column["support_90d"]
    if "email_30d" in column:
        features["email_30d"] = column["email_30d"]
    for i in range(len(spec.events)):
        for days in WINDOWS:
            features[f"e{i}_{days}d"] = column[f"e{i}_{days}d"]
        features[f"e{i}_trend"] = column[f"e{i}_30d"] - column[f"e{i}_prior_30d"]
        features[f"e{i}_first"] = (column[f"e{i}_first"] > 0).astype(float)
    labels = dict(feature_labels)
    categorical: list[int] = []
    offset = 1
    for i, key in enumerate(spec.numeric_traits):
        features[f"n{i}"] = head[1 + offset + i]
        labels[f"n{i}"] = key
    offset += len(spec.numeric_traits)
    for i, (key, vocabulary) in enumerate(spec.categorical_traits.items()):
        codes = {value: code for code, value in enumerate(vocabulary)}
        raw = head[1 + offset + i]
        features[f"c{i}"] = np.array([codes.get(_text(v), np.nan) for v in raw], dtype=float)
        labels[f"c{i}"] = key
        categorical.append(len(features) - 1)

    # Filled column by column: stacking first would hold the matrix twice, once in
    # float64 (half a gigabyte at a million customers).
    X = np.empty((n, len(features)), dtype=np.float32)
    for j, values in enumerate(features.values()):
        X[:, j] = values
    frame = Frame(
        ids=ids,
        X=X,
        names=list(features),
        labels=[labels[name] for name in features],
        categorical=categorical,
        columns={name: i for i, name in enumerate(features)},
    )
    if label is not None:
        frame.y, frame.eligible = _labels(label, column, head, offset, spec, n)
        frame.left, frame.cohort = _cohort(label, column, features["tenure_days"], frame)
    return frame


def _cohort(label: Label, column, tenure: np.ndarray, frame: Frame):
    if label.kind == "trait":
        return frame.y, frame.eligible
    # Customers: those who bought, where anyone did (visitors who never signed up
    # would otherwise count as customers who left).
    buyers = column["purchases"] > 0
    customers = buyers if buyers.any() else np.ones_like(buyers)
    if label.kind == "event":
        cohort = customers & (tenure >= FIRST_DAYS) & (column["label_early"] == 0)
        return (column["label_before"] > 0).astype(np.int8), cohort
    # Long enough on the books to have been inactive for the whole label period.
    cohort = customers & (tenure >= FIRST_DAYS + label.days)
    return (column["active_before"] == 0).astype(np.int8), cohort


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _labels(label: Label, column, head, offset, spec, n) -> tuple[np.ndarray, np.ndarray]:
    if label.kind == "event":
        eligible = column["label_before"] == 0
        y = (column["label_after"] > 0).astype(np.int8)
    elif label.kind == "inactive":
        eligible = column["active_before"] > 0
        y = (column["active_after"] == 0).astype(np.int8)
    else:
        raw = head[1 + offset + len(spec.categorical_traits)]
        positive = label.positive.strip().lower()
        known = np.array([v is not None for v in raw], dtype=bool)
        y = np.array([(_text(v) or "").strip().lower() == positive for v in raw], dtype=np.int8)
        eligible = known
    return y, eligible


@dataclass
class PurchaseDays:
    """Each buyer's purchase days (as whole days since 1970) and their value."""

    ids: list[Any]
    customer: np.ndarray
    day: np.ndarray
    value: np.ndarray
    # The values' currency (the reporting one), and the purchases left out for want of
    # an exchange rate on their day (`Unconverted.to_json()` each).
    currency: str = ""
    unconverted: list[dict] = field(default_factory=list)


def purchase_days(*, workspace_id, until: datetime) -> PurchaseDays:
    """Purchases grouped by customer and day (several orders on one day are one
    purchase, as in the CDNOW data), valued by the first numeric value property in the
    reporting currency. A purchase in a currency without a rate on its day is left out
    (neither a purchase nor a value: a guess either way) and reported in `unconverted`;
    so is a day whose purchases carry no value at all."""
    workspace = Workspace.objects.get(pk=workspace_id)
    config = commerce_settings_get(workspace=workspace)
    rates = money_rates_get(workspace=workspace)
    value = purchase_value(config.value_properties or DEFAULT_VALUE_PROPERTIES)
    purchases = Event.objects.filter(
        workspace_id=workspace_id,
        event=config.purchase_event,
        profile_id__isnull=False,
        timestamp__lte=until,
    )
    grouped = (
        purchases.order_by()
        .annotate(day=TruncDate("timestamp"), _converted=rates.converted(value))
        .values("profile_id", "day")
        .annotate(total=Sum("_converted"), n=Count("id"), valued=Count("_converted"))
        .values_list("profile_id", "day", "total", "n", "valued")
    )
    profile, day, total, n, valued = columns_read(grouped, epochs=[1])
    unconverted = []
    if len(n) and (valued < n).any():
        unconverted = [u.to_json() for u in unconverted_read(purchases, value, rates)]
    # A day none of whose purchases has a value in the reporting currency (no number,
    # or no exchange rate) is left out: neither a purchase day nor a value.
    keep = valued > 0
    profile, day, total = profile[keep], day[keep], total[keep]
    # Each customer numbered by the place of their id in sorted order.
    ids, customer = np.unique(profile.astype(str), return_inverse=True)
    return PurchaseDays(
        ids=list(ids),
        customer=customer.astype(np.int64),
        day=np.floor_divide(day, 86400).astype(np.int64),
        value=np.nan_to_num(total.astype(float)),
        currency=rates.reporting,
        unconverted=unconverted,
    )


@dataclass
class Buyers:
    """The RFM summary of each buyer the BG/NBD and Gamma-Gamma models read."""

    ids: list[Any]
    frequency: np.ndarray
    recency: np.ndarray
    T: np.ndarray
    monetary: np.ndarray
    first_day: np.ndarray


def buyers_summarise(purchases: PurchaseDays, *, end_day: int, unit_days: float) -> Buyers:
    """x, t_x, T and mean repeat value from the purchase days up to `end_day`
    (inclusive), in time units of `unit_days`."""
    keep = purchases.day <= end_day
    customer, day, value = purchases.customer[keep], purchases.day[keep], purchases.value[keep]
    order = np.lexsort((day, customer))
    customer, day, value = customer[order], day[order], value[order]
    if not len(customer):
        empty = np.empty(0)
        return Buyers([], empty, empty, empty, empty, empty.astype(np.int64))
    starts = np.flatnonzero(np.r_[True, np.diff(customer) != 0])
    counts = np.diff(np.r_[starts, len(customer)])
    first_day = day[starts]
    last_day = day[starts + counts - 1]
    repeat_total = np.add.reduceat(value, starts) - value[starts]
    frequency = (counts - 1).astype(float)
    monetary = np.where(frequency > 0, repeat_total / np.maximum(frequency, 1), 0.0)
    return Buyers(
        ids=[purchases.ids[c] for c in customer[starts]],
        frequency=frequency,
        recency=(last_day - first_day) / unit_days,
        T=(end_day - first_day) / unit_days,
        monetary=monetary,
        first_day=first_day,
    )


def purchases_between(purchases: PurchaseDays, ids: list[Any], *, after_day: int, end_day: int):
    """How many purchase days each of `ids` had in (after_day, end_day]."""
    position = {pid: i for i, pid in enumerate(purchases.ids)}
    keep = (purchases.day > after_day) & (purchases.day <= end_day)
    per_customer = np.bincount(purchases.customer[keep], minlength=len(purchases.ids))
    return np.array([per_customer[position[pid]] for pid in ids], dtype=float)
