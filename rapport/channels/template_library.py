"""What a message template may use: Django's template language without the tags that
reach outside the message ({% load %}, {% include %}, {% extends %}, {% debug %},
{% csrf_token %}, {% url %}, {% static %}...), and every built-in filter (`default`
gives a fallback: `{{ customer.first_name|default:"there" }}`).

One tag of Rapport's own: `{% next_best_action placement="email_footer" alt="..." %}`,
a block (an image in a link) whose action the decisions app decides when the email is
opened (rendered by what it registers in `hooks.block_renderers`; empty without it,
and in a proof, which is no message)."""

from django.template import Library, defaultfilters, defaulttags

register = Library()

_TAGS = (
    "autoescape",
    "comment",
    "cycle",
    "filter",
    "firstof",
    "for",
    "if",
    "ifchanged",
    "now",
    "spaceless",
    "templatetag",
    "verbatim",
    "widthratio",
    "with",
)
for _name in _TAGS:
    register.tags[_name] = defaulttags.register.tags[_name]
register.filters.update(defaultfilters.register.filters)


@register.simple_tag(takes_context=True)
def next_best_action(context, placement: str = "", alt: str = "") -> str:
    from rapport.channels import hooks

    renderer = hooks.block_renderers.get("next_best_action")
    message_id = context.get("_message_id")
    if renderer is None or not message_id:
        return ""
    return renderer(
        message_id=message_id,
        placement=str(placement)[:100],
        alt=str(alt)[:200],
        base=context.get("_public_url") or "",
        html=bool(context.autoescape),
    )
