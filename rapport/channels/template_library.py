"""What a message template may use: Django's template language without the tags that
reach outside the message ({% load %}, {% include %}, {% extends %}, {% debug %},
{% csrf_token %}, {% url %}, {% static %}...), and every built-in filter (`default`
gives a fallback: `{{ customer.first_name|default:"there" }}`)."""

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
