"""A template made personal: the customer's traits, their account's, their computed
attributes, and the links every message carries.

Templates use Django's template language on a restricted engine (template_library.py):
autoescaped, no loading or including, and a context of plain values only (dicts,
strings, numbers), so a template reaches nothing but what is listed here:

- `customer.<trait>` (and `customer.id`), `account.<trait>` and `account.name`;
- `stage`, `churn_risk` (low|medium|high), `churn_probability`, `clv`, and `segments`
  (names of the segments the customer is in: `{% if "VIP" in segments %}`);
- `unsubscribe_url`, `preferences_url` (marketing email).
A missing value renders empty: give a fallback with `|default:"..."`.
"""

import re
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import css_inline
import html2text
from django.template import Context, Engine, Template, TemplateSyntaxError
from django.utils.translation import gettext

from rapport.core.errors import InvalidInputError
from rapport.core.lookups import ValuesArray
from rapport.predictions.models import ChurnScore, ClvScore
from rapport.profiles.models import AccountMember
from rapport.segments.models import LifecycleState, SegmentMembership


class _MessageEngine(Engine):
    # Not Django's default tags (load, include, extends, debug...): only template_library.
    default_builtins = []


@cache
def _engine() -> Engine:
    return _MessageEngine(
        dirs=[],
        app_dirs=False,
        libraries={},
        builtins=["rapport.channels.template_library"],
        autoescape=True,
        string_if_invalid="",
    )


def template_check(source: str, *, field: str) -> None:
    """InvalidInputError naming `field` for a template that does not compile."""
    try:
        _engine().from_string(source)
    except TemplateSyntaxError as exc:
        raise InvalidInputError(
            gettext("template error: %(error)s") % {"error": exc}, field=field
        ) from exc


def _plain(value: Any) -> Any:
    """JSON-shaped values only: nothing with methods a template could reach."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def profile_contexts(profiles) -> dict[Any, dict[str, Any]]:
    """What a template may say about each of these customers, {profile.pk: context}, in
    five reads whatever their number (a batch of sends)."""
    profiles = list(profiles)
    ids = ValuesArray(profile.pk for profile in profiles)
    accounts: dict[Any, dict[str, Any]] = {}
    for link in (
        AccountMember.objects.filter(profile_id__any=ids)
        .select_related("account")
        .order_by("profile_id", "created_at")
    ):
        if link.profile_id not in accounts:
            accounts[link.profile_id] = {
                **(link.account.traits or {}),
                "name": link.account.name or link.account.group_id,
            }
    stages = dict(
        LifecycleState.objects.filter(profile_id__any=ids).values_list("profile_id", "stage")
    )
    churn = {
        row["profile_id"]: row
        for row in ChurnScore.objects.filter(profile_id__any=ids).values(
            "profile_id", "band", "probability"
        )
    }
    clv = dict(ClvScore.objects.filter(profile_id__any=ids).values_list("profile_id", "clv"))
    segments: dict[Any, list[str]] = {}
    for profile_id, name in SegmentMembership.objects.filter(
        profile_id__any=ids, left_at__isnull=True
    ).values_list("profile_id", "segment__name"):
        segments.setdefault(profile_id, []).append(name)
    contexts = {}
    for profile in profiles:
        traits = dict(profile.traits or {})
        traits["id"] = str(profile.pk)
        score = churn.get(profile.pk)
        value = clv.get(profile.pk)
        contexts[profile.pk] = _plain(
            {
                "customer": traits,
                "account": accounts.get(profile.pk, {}),
                "stage": stages.get(profile.pk) or "",
                "churn_risk": score["band"] if score else "",
                "churn_probability": round(score["probability"], 2) if score else "",
                "clv": round(value, 2) if value is not None else "",
                "segments": segments.get(profile.pk, []),
            }
        )
    return contexts


def profile_context(profile) -> dict[str, Any]:
    """What a template may say about this customer."""
    return profile_contexts([profile])[profile.pk]


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str


def _text_from_html(html: str) -> str:
    maker = html2text.HTML2Text()
    maker.body_width = 0
    maker.ignore_images = True
    return maker.handle(html).strip() + "\n"


@cache
def _inliner() -> css_inline.CSSInliner:
    # No fetching of linked stylesheets: nothing leaves the machine to render.
    # Media queries (a responsive layout, MJML's columns) stay in a <style> of their own.
    return css_inline.CSSInliner(load_remote_stylesheets=False, keep_at_rules=True)


_VARIABLE = re.compile(r"{{.*?}}", re.DOTALL)
# Filters whose output is plain text: a variable using only these renders the same
# text in the HTML (escaped, then unescaped by html2text) as in the text part.
_PLAIN_FILTERS = frozenset(
    {
        "add",
        "capfirst",
        "center",
        "cut",
        "date",
        "default",
        "default_if_none",
        "first",
        "floatformat",
        "last",
        "length",
        "ljust",
        "lower",
        "pluralize",
        "rjust",
        "stringformat",
        "time",
        "title",
        "truncatechars",
        "truncatewords",
        "upper",
        "wordcount",
        "yesno",
    }
)
_FILTER = re.compile(r"\|\s*(\w+)")


def _converted_once(html: str, convert) -> str | None:
    """`convert(html)` done once on the template rather than on each rendered message,
    when that gives the same: the HTML has variables only (no {% tags %}: a loop or a
    condition may move across the markup), each using plain-text filters (so an
    autoescaped value adds no markup), and the conversion kept every variable as it
    was, in order. None otherwise (each message is converted)."""
    if "{%" in html or "{#" in html:
        return None
    variables = _VARIABLE.findall(html)
    for variable in variables:
        if any(name not in _PLAIN_FILTERS for name in _FILTER.findall(variable)):
            return None
    try:
        converted = convert(html)
    except ValueError:
        return None
    return converted if _VARIABLE.findall(converted) == variables else None


def _text_template_source(html: str) -> str | None:
    """The plain-text part as a template of its own (html2text on the template)."""
    return _converted_once(html, _text_from_html)


def _inlined_template_source(html: str) -> str | None:
    """The HTML template with its CSS inlined (a variable in a selector does not survive
    the inliner; one in a declaration moves into the style attribute, where it renders
    as it would have in the sheet)."""
    return _converted_once(html, lambda source: _inliner().inline(source))


@dataclass(frozen=True)
class Compiled:
    """A message's templates compiled once, rendered for each customer."""

    subject: Template
    html: Template | None
    text: Template | None
    # The text part made from the HTML template (see _text_template_source).
    text_from_html: Template | None
    # The HTML template's CSS was inlined when compiled (see _inlined_template_source).
    html_inlined: bool = False

    def render(self, context: dict[str, Any]) -> Rendered:
        plain = Context(context, autoescape=False)
        # A subject is a header, not HTML: no escaping, and no line breaks.
        subject_out = " ".join(self.subject.render(plain).split())
        html_out = self.html.render(Context(context, autoescape=True)) if self.html else ""
        if html_out and not self.html_inlined:
            html_out = _inliner().inline(html_out)
        if self.text is not None:
            text_out = self.text.render(plain)
        elif not html_out:
            text_out = ""
        elif self.text_from_html is not None:
            text_out = self.text_from_html.render(plain).strip() + "\n"
        else:
            text_out = _text_from_html(html_out)
        return Rendered(subject=subject_out, html=html_out, text=text_out)


@lru_cache(maxsize=256)
def compiled(*, subject: str, html: str, text: str) -> Compiled:
    engine = _engine()
    text_source = None if text or not html else _text_template_source(html)
    inlined = _inlined_template_source(html) if html else None
    return Compiled(
        subject=engine.from_string(subject),
        html=engine.from_string(inlined if inlined is not None else html) if html else None,
        text=engine.from_string(text) if text else None,
        text_from_html=engine.from_string(text_source) if text_source is not None else None,
        html_inlined=inlined is not None,
    )


def render(*, subject: str, html: str, text: str, context: dict[str, Any]) -> Rendered:
    return compiled(subject=subject, html=html, text=text).render(context)
