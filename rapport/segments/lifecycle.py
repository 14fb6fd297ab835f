"""The default lifecycle: the stages of the relationship-management practice, each a
rule in the segment language, tried in this order (the first that matches is the
customer's stage; the last takes everyone else), and their sub-stages (tried in order
within the stage: the first that matches is the customer's sub-stage; none may match).
A workspace renames them, changes their rules, adds and deletes sub-stages
(rapport/segments/services.py)."""

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


def default_sub_stages(purchase_event: str, key_event: str) -> dict[str, list[dict]]:
    """The practice's sub-stages of the five stages, by their stage's key, in the order
    they are tried. A sub-stage's rule is read together with its stage's (a customer
    in onboarding who matches "Bought again" is in onboarding, sub-stage
    "Bought again"), and within a stage the earlier sub-stages have taken theirs: the
    rules read as "the first of these that fits"."""
    bought = {"event": purchase_event}
    never_bought = {"event": purchase_event, "count": {"op": "eq", "value": 0}}
    return {
        "preboarding": [
            {
                "key": "pre_subscriber",
                "name": gettext_noop("Subscriber"),
                "description": gettext_noop(
                    "Not a customer yet, and allows marketing email: the newsletter reaches them."
                ),
                "rule": {"consent": "email", "purpose": "marketing", "status": "granted"},
            },
            {
                "key": "pre_lead",
                "name": gettext_noop("Lead"),
                "description": gettext_noop("Not a customer yet; their email address is known."),
                "rule": {"trait": "email", "op": "exists"},
            },
            {
                "key": "pre_returning_visitor",
                "name": gettext_noop("Returning visitor"),
                "description": gettext_noop(
                    "Anonymous, first seen over a day ago and back in the last 30 days."
                ),
                "rule": {
                    "all": [
                        {"profile": "first_seen_at", "op": "older_than_days", "value": 1},
                        {"profile": "last_seen_at", "op": "within_last_days", "value": 30},
                    ]
                },
            },
            {
                "key": "pre_new_visitor",
                "name": gettext_noop("New visitor"),
                "description": gettext_noop("Anonymous, seen in the last 30 days."),
                "rule": {"profile": "last_seen_at", "op": "within_last_days", "value": 30},
            },
            {
                "key": "pre_cold_visitor",
                "name": gettext_noop("Cold visitor"),
                "description": gettext_noop("Anonymous, not seen for 30 days."),
                "rule": {"profile": "last_seen_at", "op": "older_than_days", "value": 30},
            },
        ],
        # Tried from the furthest along: each rule then needs one condition (the
        # earlier ones have taken the customers further along), which keeps the
        # placement of a batch's customers to a few event queries.
        "onboarding": [
            {
                "key": "onb_repeat",
                "name": gettext_noop("Bought again"),
                "description": gettext_noop("Bought twice or more in the first month."),
                "rule": {"event": purchase_event, "count": {"op": "gte", "value": 2}},
            },
            {
                "key": "onb_first_purchase",
                "name": gettext_noop("First purchase"),
                "description": gettext_noop("Has bought once."),
                "rule": bought,
            },
            {
                "key": "onb_key_feature",
                "name": gettext_noop("Activated (key feature used)"),
                "description": gettext_noop("Has used the key feature; has not bought yet."),
                "rule": {"event": key_event},
            },
            {
                "key": "onb_signed_up",
                "name": gettext_noop("Signed up, not yet activated"),
                "description": gettext_noop(
                    "Signed up in the last 3 days; has not used the key feature or bought yet."
                ),
                "rule": {"event": SIGN_UP, "window": {"last_days": 3}},
            },
            {
                "key": "onb_stalled",
                "name": gettext_noop("Not activated after 3 days"),
                "description": gettext_noop(
                    "Signed up over 3 days ago and has neither used the key feature nor "
                    "bought: the moment for a tutorial."
                ),
                "rule": {"all": []},
            },
        ],
        "relationship_development": [
            {
                "key": "rd_never_bought",
                "name": gettext_noop("Signed up, never bought"),
                "description": gettext_noop(
                    "Past the first month without a purchase: a leak in the funnel."
                ),
                "rule": never_bought,
            },
            {
                "key": "rd_one_purchase",
                "name": gettext_noop("Bought once"),
                "description": gettext_noop(
                    "One purchase, not yet a second: the second is the hardest."
                ),
                "rule": {"event": purchase_event, "count": {"op": "eq", "value": 1}},
            },
            {
                "key": "rd_regular",
                "name": gettext_noop("Regular"),
                "description": gettext_noop("Three or more purchases in the last 180 days."),
                "rule": {
                    "event": purchase_event,
                    "count": {"op": "gte", "value": 3},
                    "window": {"last_days": 180},
                },
            },
            {
                "key": "rd_recent",
                "name": gettext_noop("Bought recently"),
                "description": gettext_noop("A purchase in the last 30 days."),
                "rule": {**bought, "window": {"last_days": 30}},
            },
            {
                "key": "rd_cooling",
                "name": gettext_noop("Cooling"),
                "description": gettext_noop(
                    "Bought more than once, but not in the last 30 days: before the RFM "
                    "calls them at risk."
                ),
                "rule": {"all": []},
            },
        ],
        "positive_development": [
            {
                "key": "pd_advocate",
                "name": gettext_noop("Advocate"),
                "description": gettext_noop(
                    "A top RFM cell and an NPS promoter (9-10): ask for a review or a referral."
                ),
                "rule": {
                    "all": [
                        {"rfm": "cell", "op": "in", "value": POSITIVE_CELLS},
                        _PROMOTER,
                    ]
                },
            },
            {
                "key": "pd_champion",
                "name": gettext_noop("Champion"),
                "description": gettext_noop("Bought recently, often and for the most (RFM)."),
                "rule": {"rfm": "cell", "op": "eq", "value": "Champions"},
            },
            {
                "key": "pd_loyal",
                "name": gettext_noop("Loyal"),
                "description": gettext_noop("Buys regularly (RFM)."),
                "rule": {"rfm": "cell", "op": "eq", "value": "Loyal"},
            },
            {
                "key": "pd_promoter",
                "name": gettext_noop("Promoter"),
                "description": gettext_noop(
                    "Answered the NPS survey with 9 or 10 in the last 180 days."
                ),
                "rule": _PROMOTER,
            },
        ],
        "reboarding": [
            {
                "key": "rb_won_back",
                "name": gettext_noop("Won back"),
                "description": gettext_noop(
                    "Bought again in the last 14 days after lapsing: the next RFM "
                    "computation moves them on."
                ),
                "rule": {**bought, "window": {"last_days": 14}},
            },
            {
                "key": "rb_cant_lose",
                "name": gettext_noop("Can't lose them"),
                "description": gettext_noop(
                    "Bought often and for much, but not lately (RFM): a personal call."
                ),
                "rule": {"rfm": "cell", "op": "eq", "value": "Can't lose them"},
            },
            {
                "key": "rb_slipping",
                "name": gettext_noop("Slipping"),
                "description": gettext_noop("Recency below average (RFM: about to sleep)."),
                "rule": {"rfm": "cell", "op": "eq", "value": "About to sleep"},
            },
            {
                "key": "rb_at_risk",
                "name": gettext_noop("At risk"),
                "description": gettext_noop(
                    "Used to buy, not lately (RFM), or a high predicted churn risk."
                ),
                "rule": {
                    "any": [
                        {"rfm": "cell", "op": "eq", "value": "At risk"},
                        {"prediction": "churn_probability", "op": "gte", "value": 0.7},
                    ]
                },
            },
            {
                "key": "rb_hibernating",
                "name": gettext_noop("Hibernating"),
                "description": gettext_noop("Few purchases, long ago (RFM)."),
                "rule": {"rfm": "cell", "op": "eq", "value": "Hibernating"},
            },
            {
                "key": "rb_lapsed",
                "name": gettext_noop("Lapsed"),
                "description": gettext_noop(
                    "Lost (RFM), or not seen for 90 days: the last chance before they churn."
                ),
                "rule": {
                    "any": [
                        {"rfm": "cell", "op": "eq", "value": "Lost"},
                        {"profile": "last_seen_at", "op": "older_than_days", "value": 90},
                    ]
                },
            },
            {
                "key": "rb_quiet",
                "name": gettext_noop("Gone quiet"),
                "description": gettext_noop("Not seen for 60 days."),
                "rule": {"profile": "last_seen_at", "op": "older_than_days", "value": 60},
            },
        ],
    }


_PROMOTER = {
    "event": "Survey Answered",
    "window": {"last_days": 180},
    "where": [{"property": "score", "op": "gte", "value": 9}],
}

_DEFAULTS = {
    stage["key"]: stage
    for stage in [
        *default_stages(""),
        *(sub for subs in default_sub_stages("", "").values() for sub in subs),
    ]
}


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
