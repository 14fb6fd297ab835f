"""Every report as CSV rows (the API's `format=csv` and the dashboards' CSV buttons
give the same file)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rapport.analytics.kpis import DEFINITIONS, KINDS, ORDER

# The reports are written by the one CSV writer every export uses.
from rapport.core.safe_csv import csv_response as csv_response


def kpis_rows(report: dict[str, Any]) -> Iterable[list]:
    # Money columns carry their currency (ISO 4217) beside them, never summed across.
    yield ["kpi", "value", "previous", "difference", "relative_change", "currency", "definition"]
    currency = report.get("currency", "")
    for name in ORDER:
        change = report["changes"][name]
        yield [
            name,
            report["figures"][name],
            report["previous"][name],
            change["difference"],
            change["relative"],
            currency if KINDS[name] == "money" else "",
            DEFINITIONS[name],
        ]


def history_rows(history: list[dict[str, Any]]) -> Iterable[list]:
    yield ["day", *ORDER, "currency", "backfilled"]
    for row in history:
        figures = row["figures"]
        yield [
            row["day"],
            *(figures.get(name) for name in ORDER),
            figures.get("currency", ""),
            row["backfilled"],
        ]


def funnel_rows(report: dict[str, Any]) -> Iterable[list]:
    yield [
        "group",
        "step",
        "label",
        "customers",
        "conversion_from_previous",
        "conversion_from_start",
        "median_seconds_from_previous",
    ]
    for group, steps in [("all", report["steps"])] + [
        (g["value"], g["steps"]) for g in report["groups"]
    ]:
        for step in steps:
            yield [
                group,
                step["step"],
                step["label"],
                step["customers"],
                step["conversion_from_previous"],
                step["conversion_from_start"],
                step["median_seconds_from_previous"],
            ]


def cohorts_rows(report: dict[str, Any]) -> Iterable[list]:
    yield [
        "cohort",
        "customers",
        "month",
        "active",
        "retention",
        "revenue_per_customer",
        "currency",
    ]
    currency = report.get("currency", "")
    for row in report["rows"]:
        for k, active in enumerate(row["active"]):
            yield [
                row["cohort"],
                row["customers"],
                k,
                active,
                row["retention"][k],
                row["revenue_per_customer"][k],
                currency,
            ]


def loyalty_rows(report: dict[str, Any]) -> Iterable[list]:
    yield ["month", "stage", "stage_name", "customers"]
    for k, month in enumerate(report["months"]):
        for row in report["stages"]:
            yield [month, row["stage"], row.get("name", row["stage"]), row["customers"][k]]


def rfm_rows(report: dict[str, Any]) -> Iterable[list]:
    yield ["r", "fm", "cell", "customers", "revenue", "currency"]
    currency = report.get("currency", "")
    for row in report["grid"]:
        yield [row["r"], row["fm"], row["cell"], row["customers"], row["revenue"], currency]
