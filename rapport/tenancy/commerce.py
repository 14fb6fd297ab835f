"""A workspace's commerce settings: what a purchase is, the currency its money is
reported in, and the exchange rates for the other currencies its customers pay in.

These belong to the workspace, not to one app: the KPIs (analytics), RFM (segments) and
CLV (predictions) all read them, so they live here, below every app that counts money.
Reads and writes of this one small subdomain are kept together in this module.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import QuerySet
from django.utils.translation import gettext

from rapport.core.errors import InvalidInputError, NotFoundError
from rapport.core.money import Rate, Rates, currency_clean
from rapport.core.purchases import (
    DEFAULT_KEY_EVENT,
    DEFAULT_PURCHASE_EVENT,
    DEFAULT_VALUE_PROPERTIES,
)
from rapport.tenancy.models import CommerceSettings, ExchangeRate, Workspace
from rapport.tenancy.services import Actor, audit_log_record

MAX_RATES_PER_UPLOAD = 10_000
MAX_CSV_BYTES = 2_000_000
# A rate is Decimal(24, 10): 14 digits before the point, 10 after.
MAX_RATE = Decimal("1e14")
CSV_COLUMNS = ("currency", "rate", "valid_from")


# --- Reads ----------------------------------------------------------------------------


def commerce_settings_get(*, workspace: Workspace) -> CommerceSettings:
    """The workspace's settings, or the defaults (unsaved) while it has none."""
    found = CommerceSettings.objects.filter(workspace=workspace).first()
    return found or CommerceSettings(
        workspace=workspace,
        purchase_event=DEFAULT_PURCHASE_EVENT,
        value_properties=list(DEFAULT_VALUE_PROPERTIES),
        key_event=DEFAULT_KEY_EVENT,
    )


def exchange_rate_list(*, workspace: Workspace) -> QuerySet[ExchangeRate]:
    """Every rate the workspace was given, newest first per currency."""
    return ExchangeRate.objects.filter(workspace=workspace).order_by(
        "reporting_currency", "currency", "-valid_from"
    )


def money_rates_get(*, workspace: Workspace) -> Rates:
    """The reporting currency and the rates into it: what `rapport.core.money`
    converts with."""
    reporting = commerce_settings_get(workspace=workspace).reporting_currency
    rows = ExchangeRate.objects.filter(
        workspace=workspace, reporting_currency=reporting
    ).values_list("currency", "rate", "valid_from")
    return Rates(reporting, tuple(Rate(c, r, v) for c, r, v in rows))


def money_version(*, workspace_id: Any) -> str:
    """Changes whenever the reporting currency or a rate does: cached money figures
    are keyed by it."""
    return cache.get(f"commerce:money:{workspace_id}") or "0"


def _money_changed(workspace_id: Any) -> None:
    cache.set(f"commerce:money:{workspace_id}", uuid.uuid4().hex, timeout=None)


# --- Writes ---------------------------------------------------------------------------


def commerce_settings_lock(*, workspace: Workspace) -> CommerceSettings:
    """The settings row, written if missing and locked to the end of the transaction:
    one RFM or lifecycle computation of a workspace at a time."""
    CommerceSettings.objects.get_or_create(
        workspace=workspace, defaults={"value_properties": list(DEFAULT_VALUE_PROPERTIES)}
    )
    return CommerceSettings.objects.select_for_update().get(workspace=workspace)


def commerce_settings_update(
    *,
    workspace: Workspace,
    actor: Actor,
    purchase_event: str | None = None,
    value_properties: list[str] | None = None,
    reporting_currency: str | None = None,
    key_event: str | None = None,
) -> CommerceSettings:
    """Change what is given; the rest stays. Scores already computed keep the numbers
    of their time until their next refresh."""
    current = commerce_settings_get(workspace=workspace)
    changes: dict[str, Any] = {}
    if purchase_event is not None:
        purchase_event = purchase_event.strip() if isinstance(purchase_event, str) else ""
        if not purchase_event or len(purchase_event) > 255:
            raise InvalidInputError(
                gettext("purchase_event must be 1 to 255 characters"), field="purchase_event"
            )
        current.purchase_event = changes["purchase_event"] = purchase_event
    if key_event is not None:
        key_event = key_event.strip() if isinstance(key_event, str) else ""
        if not key_event or len(key_event) > 255:
            raise InvalidInputError(
                gettext("key_event must be 1 to 255 characters"), field="key_event"
            )
        current.key_event = changes["key_event"] = key_event
    if value_properties is not None:
        cleaned = [p.strip() for p in value_properties if isinstance(p, str) and p.strip()]
        if not 1 <= len(cleaned) <= 10 or any(len(p) > 255 for p in cleaned):
            raise InvalidInputError(
                gettext("value_properties must be 1 to 10 property names"), field="value_properties"
            )
        current.value_properties = changes["value_properties"] = cleaned
    if reporting_currency is not None:
        code = currency_clean(reporting_currency, field="reporting_currency")
        current.reporting_currency = changes["reporting_currency"] = code
    with transaction.atomic():
        current.save()
        audit_log_record(
            workspace=workspace,
            actor=actor,
            action="workspace.commerce.update",
            details=changes,
        )
    _money_changed(workspace.pk)
    return current


@dataclass(frozen=True)
class RateIn:
    currency: str
    rate: Decimal
    valid_from: date


def _rate_clean(row: Any, where: str, reporting: str) -> RateIn:
    """One rate, or a 422 whose field names the row and the column."""
    if not isinstance(row, dict):
        raise InvalidInputError(
            gettext("%(where)s: a rate is an object") % {"where": where}, field=where
        )
    unknown = set(row) - set(CSV_COLUMNS)
    if unknown:
        name = sorted(map(str, unknown))[0]
        raise InvalidInputError(
            gettext("%(where)s: unknown field %(name)r") % {"where": where, "name": name},
            field=f"{where}.{name}",
        )
    currency = currency_clean(row.get("currency"), field=f"{where}.currency")
    if currency == reporting:
        raise InvalidInputError(
            gettext("%(where)s.currency: %(currency)s is the reporting currency (its rate is 1)")
            % {"where": where, "currency": currency},
            field=f"{where}.currency",
        )
    raw = row.get("rate")
    try:
        rate = Decimal(str(raw).strip()) if isinstance(raw, str | int | float | Decimal) else None
    except InvalidOperation:
        rate = None
    if rate is None or not rate.is_finite() or not 0 < rate < MAX_RATE:
        raise InvalidInputError(
            gettext("%(where)s.rate: a positive number (1 %(currency)s in %(reporting)s)")
            % {"where": where, "currency": currency, "reporting": reporting},
            field=f"{where}.rate",
        )
    if rate != rate.quantize(Decimal("1e-10")):
        raise InvalidInputError(
            gettext("%(where)s.rate: at most 10 digits after the point") % {"where": where},
            field=f"{where}.rate",
        )
    raw = row.get("valid_from")
    try:
        valid_from = raw if isinstance(raw, date) else date.fromisoformat(str(raw).strip())
    except ValueError:
        valid_from = None
    if valid_from is None:
        raise InvalidInputError(
            gettext("%(where)s.valid_from: a date such as 2026-01-31") % {"where": where},
            field=f"{where}.valid_from",
        )
    return RateIn(currency, rate, valid_from)


def exchange_rates_csv_parse(text: str) -> list[dict[str, str]]:
    """Rows of a CSV with the header currency,rate,valid_from (any order), each as a
    dict; 422 naming the line for a file that is not such a CSV."""
    if len(text.encode()) > MAX_CSV_BYTES:
        raise InvalidInputError(gettext("the file is larger than 2 MB"), field="file")
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise InvalidInputError(gettext("the file is empty"), field="file") from None
    except csv.Error as error:
        raise InvalidInputError(
            gettext("line 1: %(error)s") % {"error": error}, field="file"
        ) from None
    if sorted(header) != sorted(CSV_COLUMNS):
        raise InvalidInputError(
            gettext("the first line must name the columns currency,rate,valid_from"), field="file"
        )
    rows = []
    try:
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            line = reader.line_num
            if len(values) != len(header):
                raise InvalidInputError(
                    gettext("line %(line)s: %(count)s values for %(count2)s columns")
                    % {"line": line, "count": len(values), "count2": len(header)},
                    field=f"line {line}",
                )
            rows.append({"_line": line, **dict(zip(header, values, strict=True))})
    except csv.Error as error:
        raise InvalidInputError(
            gettext("line %(line_num)s: %(error)s") % {"line_num": reader.line_num, "error": error},
            field="file",
        ) from None
    return rows


def exchange_rates_upload(
    *, workspace: Workspace, actor: Actor, rows: list[Any]
) -> list[ExchangeRate]:
    """Add rates (a rate given again for the same currency and day replaces it). All
    or nothing: the first bad row is named (`rates[3].rate`, or `line 4.rate` from a
    CSV) and nothing is written."""
    if not isinstance(rows, list) or not rows:
        raise InvalidInputError(gettext("at least one rate"), field="rates")
    if len(rows) > MAX_RATES_PER_UPLOAD:
        raise InvalidInputError(
            gettext("at most %(max_rates_per_upload)s rates at once")
            % {"max_rates_per_upload": f"{MAX_RATES_PER_UPLOAD:,}"},
            field="rates",
        )
    reporting = commerce_settings_get(workspace=workspace).reporting_currency
    cleaned: dict[tuple[str, date], RateIn] = {}
    for i, row in enumerate(rows):
        where = f"rates[{i}]"
        if isinstance(row, dict) and "_line" in row:
            row = dict(row)
            where = f"line {row.pop('_line')}"
        rate = _rate_clean(row, where, reporting)
        cleaned[(rate.currency, rate.valid_from)] = rate
    with transaction.atomic():
        written = []
        for rate in cleaned.values():
            row, _ = ExchangeRate.objects.update_or_create(
                workspace=workspace,
                reporting_currency=reporting,
                currency=rate.currency,
                valid_from=rate.valid_from,
                defaults={"rate": rate.rate},
            )
            written.append(row)
        audit_log_record(
            workspace=workspace,
            actor=actor,
            action="workspace.exchange_rates.upload",
            details={
                "rates": len(written),
                "currencies": sorted({r.currency for r in cleaned.values()}),
                "reporting_currency": reporting,
            },
        )
    _money_changed(workspace.pk)
    return written


def exchange_rate_delete(*, workspace: Workspace, rate_id: Any, actor: Actor) -> None:
    rate = ExchangeRate.objects.filter(workspace=workspace, pk=rate_id).first()
    if rate is None:
        raise NotFoundError(gettext("no such exchange rate in this workspace"))
    with transaction.atomic():
        rate.delete()
        audit_log_record(
            workspace=workspace,
            actor=actor,
            action="workspace.exchange_rates.delete",
            details={"currency": rate.currency, "valid_from": rate.valid_from.isoformat()},
        )
    _money_changed(workspace.pk)
