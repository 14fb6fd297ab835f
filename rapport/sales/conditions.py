"""The lead score as a condition of the segment rule language
(rapport/segments/rules.py): `{"lead_score": "probability", "op": "gte", "value": 0.6}`.
Registered from `SalesConfig.ready`, so that segments never imports sales."""

from __future__ import annotations

from typing import Literal

from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from rapport.sales.models import LeadScore
from rapport.segments import conditions as _segment_conditions  # noqa: F401 - listed first
from rapport.segments import rules as r
from rapport.segments.compiler import Context, attribute_q


class LeadScoreCondition(r.Compare):
    """The customer's lead score (0-1): the chance a deal with them is won. Customers
    without a score match only the negative operators."""

    lead_score: Literal["probability"]


def _query(condition: LeadScoreCondition, ctx: Context) -> Q:
    return attribute_q(LeadScore, "probability", condition.op, condition.value, ctx)


def _words(condition: LeadScoreCondition) -> str:
    return _("lead score %(comparison)s") % {
        "comparison": r.compared(condition.op, condition.value)
    }


def register() -> None:
    r.condition_register(
        r.Condition(
            key="lead_score",
            model=LeadScoreCondition,
            query=_query,
            describe=_words,
            label=gettext_lazy("Lead score"),
            fields=lambda o: [
                {
                    "name": "lead_score",
                    "widget": "select",
                    "label": _("Score"),
                    "default": "probability",
                    "choices": [["probability", str(gettext_lazy("chance of winning (0-1)"))]],
                },
                {
                    "name": "op",
                    "widget": "select",
                    "label": _("Operator"),
                    "default": "gte",
                    "choices": r.operator_choices(
                        ("gte", "gt", "lte", "lt", "exists", "not_exists")
                    ),
                },
                {"name": "value", "widget": "value", "label": _("Value"), "default": 0.5},
            ],
            examples=({"lead_score": "probability", "op": "gte", "value": 0.6},),
        )
    )
