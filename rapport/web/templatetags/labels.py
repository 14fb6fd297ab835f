"""Words for stored codes, in the person's language, and a mark for people's data.

`{{ cell|rfm_cell }}`, `{{ c.channel|consent_channel }}`: the label of a stored value
(an unknown value shows as it is). `{{ name|userdata }}`: a name, email or other text
that people or their events gave, marked translate="no" (so translators and the
Russian-pages test leave it alone); usable inside `{% blocktranslate with %}`."""

from datetime import date

from django import template
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from rapport.predictions import words
from rapport.profiles.models import ConsentChannel, ConsentPurpose, ConsentStatus
from rapport.segments.rfm import cell_label
from rapport.tenancy.models import Source

register = template.Library()


def _label(choices, value) -> str:
    try:
        return str(choices(value).label)
    except ValueError:
        return value


@register.filter
def rfm_cell(value: str) -> str:
    return cell_label(value)


@register.filter
def consent_channel(value: str) -> str:
    return _label(ConsentChannel, value)


@register.filter
def consent_purpose(value: str) -> str:
    return _label(ConsentPurpose, value)


@register.filter
def consent_status(value: str) -> str:
    return _label(ConsentStatus, value)


TIMELINE_KINDS = {
    "event": _("event"),
    "trait_change": _("traits"),
    "consent": _("consent"),
    "merge": _("merge"),
    "unmerge": _("unmerge"),
}


@register.filter
def timeline_kind(value: str) -> str:
    return str(TIMELINE_KINDS.get(value, value))


@register.filter
def channel_label(value: str) -> str:
    """A timeline entry's channel: the kind of source of an event, or a consent's."""
    for choices in (Source.Kind, ConsentChannel):
        if value in choices.values:
            return _label(choices, value)
    # The entries other apps keep (the journeys').
    from rapport.profiles.timeline_sentences import CHANNEL_LABELS

    return str(CHANNEL_LABELS.get(value, value))


@register.filter
def source_kind(value: str) -> str:
    return _label(Source.Kind, value)


IDENTIFIER_KINDS = {
    "user_id": _("user id"),
    "email": _("email"),
    "phone": _("phone"),
    "anonymous_id": _("anonymous id"),
}


@register.filter
def identifier_kind(value: str) -> str:
    """A built-in kind of identifier in words; a workspace's own kind as it was named."""
    if value in IDENTIFIER_KINDS:
        return str(IDENTIFIER_KINDS[value])
    return userdata(value)


@register.filter
def feature_label(feature: dict) -> str:
    """A model feature or a churn reason ({"name" or "feature", "label"}) in words."""
    return words.feature_label(feature.get("name") or feature.get("feature", ""), feature["label"])


@register.filter
def driver_text(driver: dict) -> str:
    return words.driver_text(driver["kind"], driver["params"], driver["description"])


@register.filter
def day(value) -> str:
    """A day (a date or an ISO text) as the person's language writes dates."""
    try:
        parsed = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    except ValueError:
        return value
    return date_format(parsed, "SHORT_DATE_FORMAT")


TIME_UNITS = {"day": _("days"), "week": _("weeks"), "month": _("months")}


@register.filter
def time_unit(value: str) -> str:
    return str(TIME_UNITS.get(value, value))


@register.filter
def userdata(value) -> str:
    return format_html('<span translate="no">{}</span>', value)
