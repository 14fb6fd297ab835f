"""The scores predictions writes, as conditions of the segment rule language
(rapport/segments/rules.py): `{"prediction": "churn_band", "op": "eq", "value": "high"}`.
Registered from `PredictionsConfig.ready`, so that segments never imports predictions."""

from __future__ import annotations

from typing import Literal

from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from rapport.predictions.models import ChurnScore, ClvScore
from rapport.segments import conditions as _segment_conditions  # noqa: F401 - listed first
from rapport.segments import rules as r
from rapport.segments.compiler import Context, attribute_q


class Prediction(r.Compare):
    """A score written by the predictions app: churn probability (0-1) or band (low,
    medium, high); lifetime value and its parts. Customers without a score (never
    bought: no CLV) match only the negative operators."""

    prediction: Literal[
        "churn_probability",
        "churn_band",
        "clv",
        "p_alive",
        "expected_purchases_30",
        "expected_purchases_90",
        "expected_purchases_365",
        "expected_order_value",
    ]


SCORES = {
    "churn_probability": gettext_lazy("churn probability (0-1)"),
    "churn_band": gettext_lazy("churn risk band"),
    "clv": gettext_lazy("lifetime value"),
    "p_alive": gettext_lazy("probability still a customer"),
    "expected_purchases_30": gettext_lazy("expected purchases, next 30 days"),
    "expected_purchases_90": gettext_lazy("expected purchases, next 90 days"),
    "expected_purchases_365": gettext_lazy("expected purchases, next 365 days"),
    "expected_order_value": gettext_lazy("expected order value"),
}


def _prediction_q(condition: Prediction, ctx: Context) -> Q:
    if condition.prediction.startswith("churn_"):
        field = condition.prediction.removeprefix("churn_")
        return attribute_q(ChurnScore, field, condition.op, condition.value, ctx)
    return attribute_q(ClvScore, condition.prediction, condition.op, condition.value, ctx)


def register() -> None:
    r.condition_register(
        r.Condition(
            key="prediction",
            model=Prediction,
            query=_prediction_q,
            describe=lambda c: (
                _("%(score)s %(comparison)s")
                % {"score": SCORES[c.prediction], "comparison": r.compared(c.op, c.value)}
            ),
            label=gettext_lazy("Prediction (churn risk, lifetime value)"),
            fields=lambda o: [
                {
                    "name": "prediction",
                    "widget": "select",
                    "label": _("Prediction"),
                    "default": "churn_probability",
                    "choices": [[k, str(v)] for k, v in SCORES.items()],
                },
                {
                    "name": "op",
                    "widget": "select",
                    "label": _("Operator"),
                    "default": "gte",
                    "choices": r.operator_choices(("gte", "gt", "lte", "lt", "eq", "ne", "in")),
                },
                {"name": "value", "widget": "value", "label": _("Value"), "default": 0.5},
            ],
            examples=(
                {"prediction": "churn_band", "op": "eq", "value": "high"},
                {"prediction": "clv", "op": "gte", "value": 200},
            ),
        )
    )
