"""A merge's reason as a sentence in the person's language. Rapport writes a code for
the merges it makes itself ("shared identifier" from identity resolution, "probable
duplicate (0.9731), merged automatically" from duplicate detection); a person's merge
carries their own words, quoted as written."""

import copy
import re
from typing import Any

from django.utils.formats import number_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from rapport.tenancy.pii import masked_record
from rapport.web.templatetags.labels import identifier_kind

SHARED_IDENTIFIER = "shared identifier"
PROBABLE_DUPLICATE = re.compile(
    r"^probable duplicate \((?P<p>[01](?:\.\d+)?)\), merged automatically$"
)
IDENTIFIERS_NAMED = 3


def merge_reason_sentence(merge: Any, shown: Any) -> SafeString:
    """`merge` as stored (its code read from it), `shown` as this person may see it
    (masked identifiers and words for roles without pii.read)."""
    reason = (getattr(merge, "reason", "") or "").strip()
    who = getattr(merge, "actor_label", "") or ""
    if reason == SHARED_IDENTIFIER:
        pairs = [p for p in (getattr(shown, "identifiers", None) or []) if len(p) == 2]
        if not pairs:
            return format_html(
                "{}", _("Merged automatically: the two profiles shared an identifier.")
            )
        named = format_html_join(
            ", ",
            '{} <span translate="no">{}</span>',
            ((identifier_kind(kind), value) for kind, value in pairs[:IDENTIFIERS_NAMED]),
        )
        return format_html(
            _("Merged automatically: the two profiles shared an identifier ({identifiers})."),
            identifiers=named,
        )
    found = PROBABLE_DUPLICATE.match(reason)
    if found:
        percent = number_format(round(float(found["p"]) * 100, 1), decimal_pos=1)
        return format_html(
            _("Merged automatically by duplicate detection: {percent}% likely the same customer."),
            percent=percent,
        )
    if getattr(merge, "automatic", False):
        return format_html("{}", _("Merged automatically."))
    words = (getattr(shown, "reason", "") or "").strip()
    if not words:
        return format_html(_("Merged by {who}."), who=who or _("someone"))
    return format_html(
        _("Merged by {who}, because: “{reason}”"),
        who=who or _("someone"),
        reason=format_html('<span translate="no">{}</span>', words),
    )


def merges_shown(principal, merges, kind: str) -> list:
    """The merges as `principal` may see them, each with its `reason_text`."""
    shown = []
    for merge in merges:
        record = masked_record(principal, merge, kind)
        if record is merge:
            # Not masked: a copy, so that the stored object is left as it was read.
            record = copy.copy(merge)
        record.reason_text = merge_reason_sentence(merge, record)
        shown.append(record)
    return shown
