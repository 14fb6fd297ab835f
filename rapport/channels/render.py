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

from dataclasses import dataclass
from functools import cache
from typing import Any

import css_inline
import html2text
from django.template import Context, Engine, TemplateSyntaxError
from django.utils.translation import gettext

from rapport.core.errors import InvalidInputError
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


def profile_context(profile) -> dict[str, Any]:
    """What a template may say about this customer."""
    traits = dict(profile.traits or {})
    traits["id"] = str(profile.pk)
    account: dict[str, Any] = {}
    link = (
        AccountMember.objects.filter(profile=profile)
        .select_related("account")
        .order_by("created_at")
        .first()
    )
    if link is not None:
        account = {
            **(link.account.traits or {}),
            "name": link.account.name or link.account.group_id,
        }
    stage = LifecycleState.objects.filter(profile=profile).values_list("stage", flat=True).first()
    churn = ChurnScore.objects.filter(profile=profile).values("band", "probability").first()
    clv = ClvScore.objects.filter(profile=profile).values_list("clv", flat=True).first()
    segments = list(
        SegmentMembership.objects.filter(profile=profile, left_at__isnull=True).values_list(
            "segment__name", flat=True
        )
    )
    return _plain(
        {
            "customer": traits,
            "account": account,
            "stage": stage or "",
            "churn_risk": churn["band"] if churn else "",
            "churn_probability": round(churn["probability"], 2) if churn else "",
            "clv": round(clv, 2) if clv is not None else "",
            "segments": segments,
        }
    )


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


def render(*, subject: str, html: str, text: str, context: dict[str, Any]) -> Rendered:
    engine = _engine()
    ctx = Context(context, autoescape=True)
    # A subject is a header, not HTML: no escaping, and no line breaks.
    subject_out = engine.from_string(subject).render(Context(context, autoescape=False))
    subject_out = " ".join(subject_out.split())
    html_out = engine.from_string(html).render(ctx) if html else ""
    if html_out:
        # No fetching of linked stylesheets: nothing leaves the machine to render.
        html_out = css_inline.CSSInliner(load_remote_stylesheets=False).inline(html_out)
    if text:
        text_out = engine.from_string(text).render(Context(context, autoescape=False))
    else:
        text_out = _text_from_html(html_out) if html_out else ""
    return Rendered(subject=subject_out, html=html_out, text=text_out)
