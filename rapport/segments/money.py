"""Money in the rule language: a sum, average, minimum or maximum of purchase amounts
never adds two currencies.

An aggregate is money when it names a `currency`, or when it is over the workspace's
purchase event and one of its value properties (then in the reporting currency). Each
event's amount is in its own `properties.currency` and is converted to the reporting
currency with the workspace's rate of its day, as the KPIs convert it
(`rapport.core.money.Rates.converted`). An event whose currency has no rate on its day
is left out (never added raw), and the preview and refresh report how many purchases,
in which currency (`rule_unconverted`). A rule amount in a currency other than the
reporting one is converted with today's rate; without one the condition matches no one
and that is reported too.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, BeforeValidator

from rapport.core.money import Rates, Unconverted, currencies, unconverted_read

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from rapport.segments.compiler import Context


def _code(value: Any) -> Any:
    # The builder sends "" for "not money".
    if isinstance(value, str):
        value = value.strip().upper()
        return value or None
    return value


def _known(value: str | None) -> str | None:
    if value is not None and value not in currencies():
        raise ValueError("must be an ISO 4217 currency code such as GBP, EUR or USD")
    return value


# An ISO 4217 code, any case; empty is no currency (not money).
Currency = Annotated[str | None, BeforeValidator(_code), AfterValidator(_known)]


@dataclass(frozen=True)
class _Commerce:
    purchase_event: str
    value_properties: tuple[str, ...]
    rates: Rates


def _commerce(ctx: Context) -> _Commerce:
    """The workspace's purchase event and rates, read once for the whole rule."""
    found = ctx.money.get("commerce")
    if found is None:
        from rapport.tenancy.commerce import commerce_settings_get, money_rates_get
        from rapport.tenancy.models import Workspace

        workspace = Workspace(pk=ctx.workspace_id)
        settings = commerce_settings_get(workspace=workspace)
        found = ctx.money["commerce"] = _Commerce(
            settings.purchase_event,
            tuple(settings.value_properties),
            money_rates_get(workspace=workspace),
        )
    return found


def is_money(condition: Any, ctx: Context) -> bool:
    if condition.currency is not None:
        return True
    commerce = _commerce(ctx)
    return (
        condition.event == commerce.purchase_event
        and condition.property in commerce.value_properties
    )


def converted(
    condition: Any, events: QuerySet, value: Any, ctx: Context
) -> tuple[Any, float | None]:
    """The amount of each event in the reporting currency (NULL without a rate), and the
    rule's amount in it (None when its currency has no rate today)."""
    rates = _commerce(ctx).rates
    ctx.money.setdefault("checks", []).append((condition, events, value))
    threshold: float | None = condition.value
    currency = condition.currency or rates.reporting
    if currency != rates.reporting:
        rate = rates.rate_on(currency, ctx.now.date())
        if rate is None:
            ctx.money.setdefault("no_rate_today", set()).add(currency)
            return value, None
        threshold = float(Decimal(str(condition.value)) * rate)
    return rates.converted(value), threshold


def rule_unconverted(ctx: Context) -> list[Unconverted]:
    """The purchases the rule's money conditions left out for want of a rate, by
    currency (a query per money condition: run for a preview or a full refresh, not for
    each batch of events). A condition given twice counts once."""
    checks = ctx.money.get("checks", [])
    if not checks:
        return []
    rates = _commerce(ctx).rates
    seen: set[str] = set()
    totals: dict[str, tuple[int, Decimal]] = {}
    for condition, events, value in checks:
        key = condition.model_dump_json()
        if key in seen:
            continue
        seen.add(key)
        for item in unconverted_read(events, value, rates):
            n, amount = totals.get(item.currency, (0, Decimal(0)))
            totals[item.currency] = (n + item.count, amount + item.amount)
    return [Unconverted(c, n, a) for c, (n, a) in sorted(totals.items())]


def rule_no_rate_today(ctx: Context) -> list[str]:
    """Currencies a rule's amount is in that have no rate today (it matched no one)."""
    return sorted(ctx.money.get("no_rate_today", ()))
