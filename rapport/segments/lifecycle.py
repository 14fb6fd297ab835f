"""The default lifecycle: the stages of the relationship-management practice, each a
rule in the segment language, tried in this order (the first that matches is the
customer's stage; the last takes everyone else). A workspace renames them, changes their
rules and adds sub-stages (rapport/segments/services.py)."""

from django.utils.translation import gettext, gettext_noop

SIGN_UP = "Signed Up"
CANCELLED = "Subscription Cancelled"
REBOARDING_CELLS = ["About to sleep", "At risk", "Can't lose them", "Hibernating", "Lost"]
POSITIVE_CELLS = ["Champions", "Loyal"]


def default_stages(purchase_event: str) -> list[dict]:
    became_customer = {"any": [{"event": purchase_event}, {"event": SIGN_UP}]}
    return [
        {
            "key": "churned",
            "name": gettext_noop("Churned"),
            "description": gettext_noop(
                "Cancelled in the last year and not bought since a month, or not seen for 180 days."
            ),
            "rule": {
                "all": [
                    became_customer,
                    {
                        "any": [
                            {
                                "all": [
                                    {"event": CANCELLED, "window": {"last_days": 365}},
                                    {
                                        "event": purchase_event,
                                        "count": {"op": "eq", "value": 0},
                                        "window": {"last_days": 30},
                                    },
                                ]
                            },
                            {"profile": "last_seen_at", "op": "older_than_days", "value": 180},
                        ]
                    },
                ]
            },
        },
        {
            "key": "preboarding",
            "name": gettext_noop("Preboarding"),
            "description": gettext_noop(
                "Known (a visitor, a lead, a subscriber) but not yet a customer."
            ),
            "rule": {"not": became_customer},
        },
        {
            "key": "onboarding",
            "name": gettext_noop("Onboarding"),
            "description": gettext_noop("The first 30 days after the first purchase or sign-up."),
            "rule": {
                "not": {
                    "any": [
                        {"event": purchase_event, "window": {"older_than_days": 30}},
                        {"event": SIGN_UP, "window": {"older_than_days": 30}},
                    ]
                }
            },
        },
        {
            "key": "reboarding",
            "name": gettext_noop("Reboarding"),
            "description": gettext_noop(
                "Lapsing or at risk (RFM), or not seen for 60 days: to win back."
            ),
            "rule": {
                "any": [
                    {"rfm": "cell", "op": "in", "value": REBOARDING_CELLS},
                    {"profile": "last_seen_at", "op": "older_than_days", "value": 60},
                ]
            },
        },
        {
            "key": "positive_development",
            "name": gettext_noop("Positive development"),
            "description": gettext_noop(
                "Loyal and engaged: a top RFM cell, or an NPS promoter (9-10)."
            ),
            "rule": {
                "any": [
                    {"rfm": "cell", "op": "in", "value": POSITIVE_CELLS},
                    {
                        "event": "Survey Answered",
                        "window": {"last_days": 180},
                        "where": [{"property": "score", "op": "gte", "value": 9}],
                    },
                ]
            },
        },
        {
            "key": "relationship_development",
            "name": gettext_noop("Relationship development"),
            "description": gettext_noop("Buying again or using the product: everyone else."),
            "rule": {"all": []},
        },
    ]


_DEFAULTS = {stage["key"]: stage for stage in default_stages("")}


def stage_label(key: str, name: str) -> str:
    """A stage's name in the person's language while it keeps its default name; a name
    the workspace gave it stays as given."""
    default = _DEFAULTS.get(key)
    return gettext(name) if default is not None and default["name"] == name else name


def stage_description(key: str, description: str) -> str:
    default = _DEFAULTS.get(key)
    if default is not None and default["description"] == description:
        return gettext(description)
    return description
