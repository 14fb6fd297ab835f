"""The scores predictions writes, as conditions of the segment rule language
(rapport/segments/rules.py): `{"prediction": "churn_band", "op": "eq", "value": "high"}`.
Registered from `PredictionsConfig.ready`, so that segments never imports predictions."""

from __future__ import annotations

from typing import Literal

from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from pydantic import model_validator

from rapport.core.money import currency_name, money_format
from rapport.predictions.models import ChurnScore, ClvScore
from rapport.segments import conditions as _segment_conditions  # noqa: F401 - listed first
from rapport.segments import rules as r
from rapport.segments.compiler import Context, attribute_q, narrow
from rapport.segments.money import Currency

# The scores that are money, stored with the currency the model learnt in.
MONEY = ("clv", "expected_order_value")


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
    # For a money score: the amount is in this currency, and only scores in it are
    # compared (a model trained before the reporting currency changed is not).
    currency: Currency = None

    @model_validator(mode="after")
    def _money_only(self):
        if self.currency is not None:
            if self.prediction not in MONEY:
                raise ValueError(f"a currency goes with {' or '.join(MONEY)} only")
            if not isinstance(self.value, int | float) or isinstance(self.value, bool):
                raise ValueError("an amount of money is a number")
        return self


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
    found = attribute_q(ClvScore, condition.prediction, condition.op, condition.value, ctx)
    if condition.currency is not None:
        scored_in = ClvScore.objects.filter(
            workspace_id=ctx.workspace_id, currency=condition.currency
        )
        found &= Q(pk__in=narrow(scored_in, ctx).values("profile_id"))
    return found


def _prediction_words(c: Prediction) -> str:
    value = c.value if c.currency is None else money_format(c.value, c.currency)
    return _("%(score)s %(comparison)s") % {
        "score": SCORES[c.prediction],
        "comparison": r.compared(c.op, value),
    }


def register() -> None:
    r.condition_register(
        r.Condition(
            key="prediction",
            model=Prediction,
            query=_prediction_q,
            describe=_prediction_words,
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
                {
                    "name": "currency",
                    "widget": "select",
                    "label": _("Currency"),
                    "default": "",
                    "choices": [["", _("not money")], [o.currency, currency_name(o.currency)]],
                },
            ],
            examples=(
                {"prediction": "churn_band", "op": "eq", "value": "high"},
                {"prediction": "clv", "op": "gte", "value": 200},
                {"prediction": "clv", "op": "gte", "value": 200, "currency": "GBP"},
            ),
        )
    )
