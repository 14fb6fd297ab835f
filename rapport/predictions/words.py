"""Churn drivers and model features in the person's language.

Training stores an English description of each driver and a label of each feature
(kept for the API and the CLI); pages word them again from what they are about (a
driver's kind and params, a feature's name), so that they read in the person's
language. What people named (events, traits, values) stays as it was named."""

import re

from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

FIXED_FEATURES = {
    "recency_days": _("Days since last activity"),
    "tenure_days": _("Days since first seen"),
    "events_7d": _("Activity, last 7 days"),
    "events_30d": _("Activity, last 30 days"),
    "events_90d": _("Activity, last 90 days"),
    "activity_trend": _("Activity trend (last 30 days minus the 30 before)"),
    "purchases": _("Purchases"),
    "purchases_90d": _("Purchases, last 90 days"),
    "monetary": _("Total spent"),
    "support_90d": _("Support contacts, last 90 days"),
    "email_30d": _("Email engagement, last 30 days"),
}
_EVENT_WINDOW = re.compile(r"e\d+_(\d+)d")


def feature_label(name: str, label: str) -> str:
    """A feature's label (`label` as training stored it, in English)."""
    if name in FIXED_FEATURES:
        return str(FIXED_FEATURES[name])
    window = _EVENT_WINDOW.fullmatch(name)
    if window and ", last " in label:
        days = int(window.group(1))
        event = label.rsplit(", last ", 1)[0]
        return ngettext("%(event)s, last %(days)s day", "%(event)s, last %(days)s days", days) % {
            "event": event,
            "days": days,
        }
    if re.fullmatch(r"e\d+_trend", name) and ", trend " in label:
        event = label.rsplit(", trend ", 1)[0]
        return gettext("%(event)s, trend (last 30 days minus the 30 before)") % {"event": event}
    if re.fullmatch(r"e\d+_first", name) and " in the first " in label:
        event, _, rest = label.rpartition(" in the first ")
        days = int(rest.split()[0])
        return ngettext(
            "%(event)s in the first %(days)s day", "%(event)s in the first %(days)s days", days
        ) % {"event": event, "days": days}
    return label  # a trait's name


def driver_text(kind: str, params: dict, description: str) -> str:
    """A churn driver in words (`description` as training stored it, in English)."""
    p = params or {}
    try:
        if kind == "not_in_first_days":
            return (
                ngettext(
                    "Did not do “%(event)s” in their first %(days)s day",
                    "Did not do “%(event)s” in their first %(days)s days",
                    p["days"],
                )
                % p
            )
        if kind == "in_first_days":
            return (
                ngettext(
                    "Did “%(event)s” in their first %(days)s day",
                    "Did “%(event)s” in their first %(days)s days",
                    p["days"],
                )
                % p
            )
        if kind == "low_usage":
            return (
                ngettext(
                    "“%(event)s” fewer than %(threshold)s times in the last %(days)s day",
                    "“%(event)s” fewer than %(threshold)s times in the last %(days)s days",
                    p["days"],
                )
                % p
            )
        if kind == "support":
            return (
                ngettext(
                    "Contacted support in the last %(days)s day",
                    "Contacted support in the last %(days)s days",
                    p["days"],
                )
                % p
            )
        if kind == "trait_numeric":
            words = (
                gettext("%(trait)s below %(value)s")
                if p["op"] == "lt"
                else gettext("%(trait)s at or above %(value)s")
            )
            return words % {"trait": p["trait"], "value": f"{p['value']:g}"}
        if kind == "trait_value":
            return gettext("%(trait)s is %(value)s") % p
    except (KeyError, TypeError, ValueError):
        pass
    return description
