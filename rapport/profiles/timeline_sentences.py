"""Timeline entries as the sentences a person reads: "Viewed *Ethiopia Guji*",
"Ordered 3 items for £42.50", "Name changed by alice@example.com".

One registry holds the rules, so an app that brings its own events (messages,
tickets, loyalty) adds their sentences from its AppConfig.ready with
`sentence_register`, and the person page, the account page and the API's titles
all read them the same way. A rule gets the event (already masked for people without
pii.read) and returns HTML made with `format_html`: the values it names are escaped,
the translated wording is not. An event no rule knows reads "Did *Event Name*".
"""

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from babel.numbers import format_decimal
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import get_language, gettext_lazy, ngettext, to_locale
from django.utils.translation import gettext as _

from rapport.core.money import money_format
from rapport.core.purchases import DEFAULT_VALUE_PROPERTIES

EventSentence = Callable[[Any], SafeString]
# What an entry that is not an event says, by the key of its data ("consent",
# "merge", "trait_edit"): the entry itself is passed.
EntrySentence = Callable[[Any], SafeString]

_BY_EVENT: dict[str, EventSentence] = {}
_BY_TYPE: dict[str, EventSentence] = {}
_BY_DATA: dict[str, EntrySentence] = {}

CHANNEL_LABELS = {
    "email": gettext_lazy("email"),
    "sms": gettext_lazy("SMS"),
    "push": gettext_lazy("push"),
    "phone": gettext_lazy("phone calls"),
    "direct_mail": gettext_lazy("post"),
    # Entries the journeys app keeps (a customer entering, a step, leaving).
    "journey": gettext_lazy("journeys"),
}
PURPOSE_LABELS = {
    "marketing": gettext_lazy("marketing"),
    "transactional": gettext_lazy("service messages"),
}
STATUS_LABELS = {
    "granted": gettext_lazy("granted"),
    "denied": gettext_lazy("denied"),
    "unknown": gettext_lazy("not known"),
}

# Longest text a sentence quotes from an event (a page title, a subject).
QUOTE_MAX = 120


def sentence_register(
    *,
    sentence: Callable,
    event: str | None = None,
    type: str | None = None,
    data: str | None = None,
) -> None:
    """The sentence for a track event by its name (`event="Ticket Opened"`), for a
    kind of call (`type="page"`), or for timeline entries holding `data` (an entry
    another app keeps). Registering again replaces the rule."""
    if [event, type, data].count(None) != 2:
        raise ValueError("name exactly one of event, type or data")
    if event is not None:
        _BY_EVENT[event] = sentence
    elif type is not None:
        _BY_TYPE[type] = sentence
    else:
        _BY_DATA[data] = sentence


def quoted(value: Any) -> SafeString:
    """A value from the event, as the sentence emphasises it."""
    text = str(value).strip()
    if len(text) > QUOTE_MAX:
        text = text[: QUOTE_MAX - 1] + "…"
    return format_html('<em translate="no">{}</em>', text)


def amount_number(value: Any) -> Decimal | None:
    """A money amount as sent (a number or a numeric string), or None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def money(amount: Decimal, currency: str | None) -> str:
    """An amount in the active language, with its currency when the event named one.

    With a currency, as rapport/core/money.py writes money everywhere in the UI."""
    locale = to_locale(get_language() or "en")
    code = (currency or "").strip().upper()
    try:
        if len(code) == 3 and code.isalpha():
            return money_format(amount, code)
        return format_decimal(amount, format="#,##0.00", locale=locale)
    except (ValueError, LookupError):  # an unknown locale
        return format_decimal(amount, format="#,##0.00", locale="en")


def _properties(event) -> dict:
    value = getattr(event, "properties", None)
    return value if isinstance(value, dict) else {}


def _first(mapping: dict, *names: str) -> Any:
    for name in names:
        value = mapping.get(name)
        if value not in (None, "", [], {}):
            return value
    return None


# --- Calls by type ---------------------------------------------------------------------


def _page(event) -> SafeString:
    props = _properties(event)
    name = _first(props, "title", "name") or event.event or _first(props, "path", "url")
    if name:
        return format_html(_("Viewed {page}"), page=quoted(name))
    return SafeString(_("Viewed a page"))


def _screen(event) -> SafeString:
    name = event.event or _first(_properties(event), "name", "title")
    if name:
        return format_html(_("Opened the {screen} screen"), screen=quoted(name))
    return SafeString(_("Opened a screen"))


def _identify(event) -> SafeString:
    traits = getattr(event, "traits", None) or {}
    if not traits:
        return SafeString(_("Identified"))
    names = sorted(traits)
    shown = ", ".join(names[:8]) + (" …" if len(names) > 8 else "")
    return format_html(
        _("Traits updated: {names}"), names=format_html('<span translate="no">{}</span>', shown)
    )


def _group(event) -> SafeString:
    traits = getattr(event, "traits", None) or {}
    name = _first(traits, "name") or getattr(event, "group_id", "")
    if name:
        return format_html(_("Joined account {account}"), account=quoted(name))
    return SafeString(_("Joined an account"))


def _alias(event) -> SafeString:
    return SafeString(_("Linked an earlier identity"))


def _track(event) -> SafeString:
    rule = _BY_EVENT.get(event.event)
    if rule is not None:
        return rule(event)
    return format_html(_("Did {event}"), event=quoted(event.event or _("something")))


# --- Track events by name --------------------------------------------------------------


def _items(products: Any) -> int:
    if not isinstance(products, list):
        return 0
    count = 0
    for product in products:
        quantity = product.get("quantity") if isinstance(product, dict) else None
        count += quantity if isinstance(quantity, int) and not isinstance(quantity, bool) else 1
    return count


def _order(event) -> SafeString:
    props = _properties(event)
    amount = next(
        (
            amount_number(props[name])
            for name in DEFAULT_VALUE_PROPERTIES
            if amount_number(props.get(name)) is not None
        ),
        None,
    )
    count = _items(props.get("products"))
    currency = props.get("currency") if isinstance(props.get("currency"), str) else None
    if amount is not None and count:
        text = ngettext(
            "Ordered {count} item for {amount}", "Ordered {count} items for {amount}", count
        )
        return format_html(text, count=count, amount=money(amount, currency))
    if amount is not None:
        return format_html(_("Ordered for {amount}"), amount=money(amount, currency))
    if count:
        text = ngettext("Ordered {count} item", "Ordered {count} items", count)
        return format_html(text, count=count)
    return SafeString(_("Placed an order"))


def _product(wording: Callable[[], str]) -> EventSentence:
    def sentence(event) -> SafeString:
        name = _first(_properties(event), "name", "title", "sku", "product_id")
        return format_html(wording(), product=quoted(name or _("a product")))

    return sentence


def _email(wording: Callable[[], str], fallback: Callable[[], str]) -> EventSentence:
    def sentence(event) -> SafeString:
        subject = _first(_properties(event), "subject", "email_subject", "campaign")
        if subject:
            return format_html(wording(), subject=quoted(subject))
        return SafeString(fallback())

    return sentence


def _plain(wording: Callable[[], str]) -> EventSentence:
    return lambda event: SafeString(wording())


def _ticket(wording: Callable[[], str]) -> EventSentence:
    def sentence(event) -> SafeString:
        props = _properties(event)
        topic = _first(props, "topic", "subject", "ticket_id")
        if topic:
            return format_html(wording(), ticket=quoted(topic))
        return SafeString(wording().replace(" {ticket}", "").replace("{ticket}", ""))

    return sentence


def _survey(event) -> SafeString:
    score = _properties(event).get("score")
    if isinstance(score, int | float) and not isinstance(score, bool):
        return format_html(_("Answered a survey: {score}"), score=score)
    return SafeString(_("Answered a survey"))


# --- Entries that are not events -------------------------------------------------------


def _consent(entry) -> SafeString:
    change = entry.data["consent"]
    return format_html(
        _("Consent for {channel} ({purpose}): {status}"),
        channel=CHANNEL_LABELS.get(change.channel, change.channel),
        purpose=PURPOSE_LABELS.get(change.purpose, change.purpose),
        status=STATUS_LABELS.get(change.status, change.status),
    )


def _merge(entry) -> SafeString:
    merge = entry.data["merge"]
    # The entry's title names the other profile (identity writes it).
    other = merge.survivor_id if str(merge.survivor_id) in str(entry.title) else merge.merged_id
    short = str(other)[:8]
    if entry.kind == "unmerge":
        return format_html(_("Unmerged from profile {profile}"), profile=short)
    if getattr(merge, "automatic", False):
        return format_html(_("Merged with profile {profile} (shared identifier)"), profile=short)
    return format_html(_("Merged with profile {profile}"), profile=short)


def _trait_edit(entry) -> SafeString:
    edit = entry.data["trait_edit"]
    changed = sorted((n for n, c in edit.changes.items() if not c.get("removed")), key=_field_order)
    removed = sorted((n for n, c in edit.changes.items() if c.get("removed")), key=_field_order)
    who = edit.actor_label or _("someone")
    parts = []
    if changed:
        parts.append(
            format_html(
                ngettext("{fields} changed by {who}", "{fields} changed by {who}", len(changed)),
                fields=_fields(changed),
                who=who,
            )
        )
    if removed:
        parts.append(
            format_html(
                ngettext("{fields} removed by {who}", "{fields} removed by {who}", len(removed)),
                fields=_fields(removed),
                who=who,
            )
        )
    return format_html_join("; ", "{}", ((p,) for p in parts)) if parts else SafeString("")


_USUAL_FIELDS = ("name", "email", "phone", "company")


def _field_order(name: str) -> tuple:
    """The usual fields first, then the others by name."""
    usual = name in _USUAL_FIELDS
    return (0, _USUAL_FIELDS.index(name), "") if usual else (1, 0, name.lower())


def _fields(names: list[str]) -> str:
    """Trait names as a sentence starts with them (they are the data's own names)."""
    text = ", ".join(names)
    return text[:1].upper() + text[1:]


def event_sentence(event) -> SafeString:
    """What the customer did, in words (`event` may be a masked copy)."""
    type_ = getattr(event, "type", "")
    rule = _BY_TYPE.get(type_)
    if rule is not None:
        return rule(event)
    return format_html("{}", str(type_).capitalize())


def entry_sentence(entry, event=None) -> SafeString:
    """A timeline entry in words: its event's sentence (pass the masked copy as
    `event`), or the rule for what it holds, or its stored title."""
    if event is not None:
        return event_sentence(event)
    for key, rule in _BY_DATA.items():
        if key in entry.data:
            return rule(entry)
    return format_html("{}", entry.title)


for _type, _rule in {
    "page": _page,
    "screen": _screen,
    "identify": _identify,
    "group": _group,
    "alias": _alias,
    "track": _track,
}.items():
    sentence_register(type=_type, sentence=_rule)

for _name, _rule in {
    "Order Completed": _order,
    "Signed Up": _plain(lambda: _("Signed up")),
    "Product Viewed": _product(lambda: _("Viewed {product}")),
    "Product Added": _product(lambda: _("Added {product} to the cart")),
    "Product Removed": _product(lambda: _("Removed {product} from the cart")),
    "Checkout Started": _plain(lambda: _("Started checkout")),
    "Email Delivered": _email(
        lambda: _("Received email {subject}"), lambda: _("Received an email")
    ),
    "Email Opened": _email(lambda: _("Opened email {subject}"), lambda: _("Opened an email")),
    "Email Link Clicked": _email(
        lambda: _("Clicked a link in email {subject}"), lambda: _("Clicked a link in an email")
    ),
    "Email Bounced": _email(lambda: _("Email {subject} bounced"), lambda: _("An email bounced")),
    "Unsubscribed": _plain(lambda: _("Unsubscribed")),
    "App Opened": _plain(lambda: _("Opened the app")),
    "Subscription Cancelled": _plain(lambda: _("Cancelled the subscription")),
    "Ticket Opened": _ticket(lambda: _("Opened a ticket: {ticket}")),
    "Ticket Resolved": _plain(lambda: _("Ticket resolved")),
    "Chat Started": _plain(lambda: _("Started a chat")),
    "Survey Answered": _survey,
}.items():
    sentence_register(event=_name, sentence=_rule)

sentence_register(data="consent", sentence=_consent)
sentence_register(data="merge", sentence=_merge)
sentence_register(data="trait_edit", sentence=_trait_edit)
