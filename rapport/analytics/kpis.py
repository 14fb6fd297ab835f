"""Customer KPIs over a period and a scope (every customer, or one segment's members),
each with the one-line definition the docs and the UI show.

Every count is of live customers: events, consents and scores of a profile merged into
another follow the survivor, so a customer merged mid-period counts once. Money is the
purchase event's value (the workspace's commerce settings name the event and its value
properties) in the reporting currency: an amount in another currency is converted with
the rate of its day, or left out of every money figure and listed in `unconverted`
(never added as if it were the reporting currency). Counts (orders, buyers) include
every purchase whatever its currency.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Avg, Count, Q, QuerySet, Sum
from django.db.models.functions import Abs
from django.utils.translation import gettext_noop

from rapport.analytics.models import AnalyticsSettings
from rapport.analytics.periods import Period
from rapport.core.analytic import analytic_session
from rapport.core.jsonkeys import json_number
from rapport.core.money import Rates, money_stored, to_decimal, unconverted_read
from rapport.core.purchases import purchase_value
from rapport.ingest.models import Event
from rapport.predictions.models import ClvScore
from rapport.profiles.models import Profile
from rapport.segments.models import SegmentMembership
from rapport.tenancy.models import CommerceSettings

DEFINITIONS: dict[str, str] = {
    "customers": gettext_noop(
        "Customers known by the end of the period (first seen before it ended)."
    ),
    "new_customers": gettext_noop("Customers first seen during the period."),
    "active_customers": gettext_noop(
        "Customers who did something themselves in the period: any event except messages "
        "sent to them and their reactions to messages."
    ),
    "churn_rate": gettext_noop(
        "Of the customers active in the previous period of the same length, the share "
        "not active in this one."
    ),
    "retention_rate": gettext_noop(
        "Of the customers active in the previous period of the same length, the share "
        "active again in this one (1 - churn rate)."
    ),
    "revenue": gettext_noop("Value of the purchases in the period minus the value refunded in it."),
    "orders": gettext_noop("Purchase events in the period."),
    "buyers": gettext_noop("Customers with at least one purchase in the period."),
    "average_order_value": gettext_noop(
        "Value of the period's purchases (before refunds) ÷ orders."
    ),
    "purchase_frequency": gettext_noop("Orders ÷ buyers: purchases per customer who bought."),
    "clv_average": gettext_noop(
        "Mean predicted lifetime value (the latest CLV model) of the customers in scope "
        "who have one."
    ),
    "clv_total": gettext_noop("Sum of the predicted lifetime values of the customers in scope."),
    "nps": gettext_noop(
        "Net Promoter Score: promoters (9-10) minus detractors (0-6), as a percentage of "
        "the survey answers (0-10) in the period; -100 to 100."
    ),
    "nps_responses": gettext_noop("Survey answers with a 0-10 score in the period."),
    "engagement_rate": gettext_noop(
        "Customers active or reacting to a message (opened, clicked, tapped, replied) in "
        "the period, as a share of customers."
    ),
}
# The order the dashboard shows them in, whether a rise is good news, and how to show it.
ORDER = list(DEFINITIONS)
KINDS = {
    "customers": "count",
    "new_customers": "count",
    "active_customers": "count",
    "churn_rate": "percent",
    "retention_rate": "percent",
    "revenue": "money",
    "orders": "count",
    "buyers": "count",
    "average_order_value": "money",
    "purchase_frequency": "ratio",
    "clv_average": "money",
    "clv_total": "money",
    "nps": "score",
    "nps_responses": "count",
    "engagement_rate": "percent",
}
HIGHER_IS_BETTER = {name: name != "churn_rate" for name in ORDER}
# Where each money figure sits in the figures (a key, or "parts" and a key): the
# snapshot keeps them as Decimal columns of the same names, in its `currency`.
MONEY_FIGURES: dict[str, tuple[str, ...]] = {
    "revenue": ("revenue",),
    "average_order_value": ("average_order_value",),
    "clv_average": ("clv_average",),
    "clv_total": ("clv_total",),
    "gross_purchase_value": ("parts", "gross_purchase_value"),
    "refunded": ("parts", "refunded"),
}


def snapshot_split(figures: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Decimal | None]]:
    """The figures without their money, and the money as the snapshot's columns."""
    rest = {**figures, "parts": dict(figures.get("parts") or {})}
    money: dict[str, Decimal | None] = {}
    for column, path in MONEY_FIGURES.items():
        holder = rest if len(path) == 1 else rest["parts"]
        money[column] = money_stored(holder.pop(path[-1], None))
    rest.pop("currency", None)
    return rest, money


def snapshot_figures(
    figures: dict[str, Any], currency: str, money: dict[str, Decimal | None]
) -> dict[str, Any]:
    """A snapshot's figures as `kpis_compute` gave them: its money back in place, as
    Decimal, with the currency they are in."""
    whole = {**figures, "parts": dict(figures.get("parts") or {}), "currency": currency}
    for column, path in MONEY_FIGURES.items():
        holder = whole if len(path) == 1 else whole["parts"]
        holder[path[-1]] = money.get(column)
    return whole


@dataclass(frozen=True)
class Scope:
    """Every live customer of the workspace, or the members of one segment at the end
    of the period (from its membership history)."""

    workspace_id: Any
    segment_id: Any = None

    def profile_ids(self, at: datetime) -> QuerySet | None:
        if self.segment_id is None:
            return None
        return (
            SegmentMembership.objects.filter(segment_id=self.segment_id, entered_at__lt=at)
            .filter(Q(left_at__isnull=True) | Q(left_at__gte=at))
            .values("profile_id")
        )


@dataclass(frozen=True)
class Definitions:
    """What the workspace counts as a purchase, a refund, an NPS answer, a message."""

    purchase_event: str
    value_properties: list[str]
    refund_event: str
    nps_event: str
    nps_property: str
    message_events: list[str]
    engagement_events: list[str]
    # The reporting currency and the exchange rates into it.
    rates: Rates = field(default_factory=lambda: Rates("USD"))

    @classmethod
    def of(
        cls, commerce: CommerceSettings, settings: AnalyticsSettings, rates: Rates
    ) -> Definitions:
        return cls(
            purchase_event=commerce.purchase_event,
            value_properties=list(commerce.value_properties),
            rates=rates,
            refund_event=settings.refund_event,
            nps_event=settings.nps_event,
            nps_property=settings.nps_property,
            message_events=list(settings.message_events),
            engagement_events=list(settings.engagement_events),
        )

    @property
    def not_activity(self) -> list[str]:
        return [*self.message_events, *self.engagement_events]


def events_in(scope: Scope, start: datetime, end: datetime, at: datetime) -> QuerySet:
    """The scope's resolved events in [start, end); the scope's members as of `at`."""
    events = Event.objects.filter(
        workspace_id=scope.workspace_id,
        timestamp__gte=start,
        timestamp__lt=end,
        profile_id__isnull=False,
    )
    members = scope.profile_ids(at)
    return events if members is None else events.filter(profile_id__in=members)


def active_events(scope: Scope, d: Definitions, start, end, at) -> QuerySet:
    return events_in(scope, start, end, at).exclude(event__in=d.not_activity)


def engaged_events(scope: Scope, d: Definitions, start, end, at) -> QuerySet:
    return events_in(scope, start, end, at).exclude(event__in=d.message_events)


def customers_in(scope: Scope, at: datetime) -> QuerySet:
    profiles = Profile.objects.filter(
        workspace_id=scope.workspace_id, merged_into__isnull=True, first_seen_at__lt=at
    )
    members = scope.profile_ids(at)
    return profiles if members is None else profiles.filter(pk__in=members)


def clv_scores_in(scope: Scope, at: datetime) -> QuerySet:
    """The current CLV scores of the scope's live customers (members as of `at`)."""
    scores = ClvScore.objects.filter(
        workspace_id=scope.workspace_id, profile__merged_into__isnull=True
    )
    members = scope.profile_ids(at)
    return scores if members is None else scores.filter(profile_id__in=members)


def _distinct(events: QuerySet) -> int:
    return events.values("profile_id").distinct().count()


def _ratio(part: float | None, whole: float | None) -> float | None:
    if not whole or part is None:
        return None
    return part / whole


def _money(value: Any) -> Decimal:
    # The sums come back as floats (JSON values); rounded through their decimal text to
    # what a snapshot stores, shown through `rapport.core.money` with the currency's
    # own digits, and in the API as a decimal string beside the currency.
    return money_stored(value or 0)


def kpis_compute(*, scope: Scope, period: Period, definitions: Definitions) -> dict[str, Any]:
    """Every KPI of `ORDER` for one period (None where it is undefined: a rate of
    nobody, NPS without answers)."""
    d = definitions
    start, end = period.start, period.end
    previous = period.previous()
    began = time.perf_counter()
    with transaction.atomic():
        analytic_session()
        # One pass over the period's events for everything but churn.
        known = customers_in(scope, end).aggregate(
            customers=Count("pk"), new=Count("pk", filter=Q(first_seen_at__gte=start))
        )
        customers, new = known["customers"], known["new"]
        active_now = active_events(scope, d, start, end, end)
        active_before = active_events(scope, d, previous.start, previous.end, end)
        before = _distinct(active_before)
        churned = _distinct(active_before.exclude(profile_id__in=active_now.values("profile_id")))
        purchase = Q(event=d.purchase_event)
        refund = Q(event=d.refund_event)
        answer = Q(event=d.nps_event, score__gte=0, score__lte=10)
        value = purchase_value(d.value_properties)
        period_events = events_in(scope, start, end, end)
        figures = period_events.annotate(
            value=d.rates.converted(value),
            score=json_number("properties", d.nps_property),
        ).aggregate(
            active=Count("profile_id", distinct=True, filter=~Q(event__in=d.not_activity)),
            engaged=Count("profile_id", distinct=True, filter=~Q(event__in=d.message_events)),
            orders=Count("id", filter=purchase),
            # Orders without a value in the reporting currency (no number, or no
            # exchange rate on their day): left out of the average order value.
            unvalued=Count("id", filter=purchase & Q(value__isnull=True)),
            gross=Sum("value", filter=purchase),
            buyers=Count("profile_id", distinct=True, filter=purchase),
            refunded=Sum(Abs("value"), filter=refund),
            n=Count("id", filter=answer),
            promoters=Count("id", filter=answer & Q(score__gte=9)),
            detractors=Count("id", filter=answer & Q(score__lte=6)),
        )
        active, engaged = figures["active"], figures["engaged"]
        purchases = {
            "orders": figures["orders"],
            "value": figures["gross"],
            "buyers": figures["buyers"],
        }
        refunded = figures["refunded"]
        unconverted = []
        if figures["unvalued"]:
            unconverted = unconverted_read(period_events.filter(purchase), value, d.rates)
        answers = {k: figures[k] for k in ("n", "promoters", "detractors")}
        # Scores in another currency (a model trained before the reporting currency
        # changed) are not added to these.
        clv = (
            clv_scores_in(scope, end)
            .filter(currency=d.rates.reporting)
            .aggregate(average=Avg("clv"), total=Sum("clv"))
        )
    gross = to_decimal(purchases["value"] or 0)
    orders = purchases["orders"]
    valued = orders - figures["unvalued"]
    churn = _ratio(churned, before)
    return {
        "customers": customers,
        "new_customers": new,
        "active_customers": active,
        "churn_rate": churn,
        "retention_rate": None if churn is None else 1 - churn,
        "revenue": _money(gross - to_decimal(refunded or 0)),
        "orders": orders,
        "buyers": purchases["buyers"],
        "average_order_value": None if not valued else _money(gross / valued),
        "purchase_frequency": _ratio(orders, purchases["buyers"]),
        "clv_average": None if clv["average"] is None else _money(clv["average"]),
        "clv_total": _money(clv["total"]),
        "nps": (
            None
            if not answers["n"]
            else round(100 * (answers["promoters"] - answers["detractors"]) / answers["n"], 1)
        ),
        "nps_responses": answers["n"],
        "engagement_rate": _ratio(engaged, customers),
        # Every money figure is in this currency (ISO 4217).
        "currency": d.rates.reporting,
        # Purchases and refunds of the period left out for want of a rate, by currency.
        "unconverted": [u.to_json() for u in unconverted],
        # The parts of the rates, for the drill-down and the CSV.
        "parts": {
            "active_previous_period": before,
            "churned": churned,
            "engaged": engaged,
            "gross_purchase_value": _money(gross),
            "refunded": _money(refunded),
            "promoters": answers["promoters"],
            "detractors": answers["detractors"],
        },
        "seconds": round(time.perf_counter() - began, 3),
    }


def kpi_change(name: str, now: Any, before: Any) -> dict[str, Any]:
    """How a KPI moved against the previous period: the difference, the relative change
    (None from zero or nothing), and whether that is good news."""
    if now is None or before is None:
        return {"difference": None, "relative": None, "good": None}
    difference = now - before
    relative = None if before == 0 else difference / abs(before)
    good = None if difference == 0 else (difference > 0) == HIGHER_IS_BETTER[name]
    return {"difference": difference, "relative": relative, "good": good}


# Who is behind a KPI (the drill-down): a query of profile ids per countable figure.
DRILLABLE = (
    "customers",
    "new_customers",
    "active_customers",
    "churned",
    "retained",
    "buyers",
    "engaged",
    "promoters",
    "detractors",
    "clv",
)


def kpi_customers(*, scope: Scope, period: Period, definitions: Definitions, figure: str):
    """The profile ids behind a figure (a values queryset)."""
    d = definitions
    start, end = period.start, period.end
    previous = period.previous()
    if figure == "customers":
        return customers_in(scope, end).values("pk")
    if figure == "new_customers":
        return customers_in(scope, end).filter(first_seen_at__gte=start).values("pk")
    active_now = active_events(scope, d, start, end, end).values("profile_id")
    if figure == "active_customers":
        return active_now.distinct()
    before = active_events(scope, d, previous.start, previous.end, end)
    if figure == "churned":
        return before.exclude(profile_id__in=active_now).values("profile_id").distinct()
    if figure == "retained":
        return before.filter(profile_id__in=active_now).values("profile_id").distinct()
    if figure == "engaged":
        return engaged_events(scope, d, start, end, end).values("profile_id").distinct()
    events = events_in(scope, start, end, end)
    if figure == "buyers":
        return events.filter(event=d.purchase_event).values("profile_id").distinct()
    if figure in ("promoters", "detractors"):
        answers = events.filter(event=d.nps_event).annotate(
            score=json_number("properties", d.nps_property)
        )
        condition = (
            Q(score__gte=9, score__lte=10)
            if figure == "promoters"
            else Q(score__gte=0, score__lte=6)
        )
        return answers.filter(condition).values("profile_id").distinct()
    if figure == "clv":
        return clv_scores_in(scope, end).values("profile_id")
    raise ValueError(figure)
