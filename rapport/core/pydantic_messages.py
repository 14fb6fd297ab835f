"""Pydantic's validation messages in the person's language.

The API reshapes Ninja's validation errors (rapport/api.py); each error's `msg` is
pydantic's English sentence. Here the common ones are said again from their `type`
and `ctx` through gettext. Where the active language has no translation (English, or
a type not listed) pydantic's own sentence is kept word for word, so English clients
see exactly what they saw before.
"""

from typing import Any

from django.utils.translation import gettext, gettext_noop

# pydantic-core error type -> its message template, placeholders named as in `ctx`.
TEMPLATES = {
    "missing": gettext_noop("Field required"),
    "string_type": gettext_noop("Input should be a valid string"),
    "int_type": gettext_noop("Input should be a valid integer"),
    "int_parsing": gettext_noop(
        "Input should be a valid integer, unable to parse string as an integer"
    ),
    "int_from_float": gettext_noop(
        "Input should be a valid integer, got a number with a fractional part"
    ),
    "float_type": gettext_noop("Input should be a valid number"),
    "float_parsing": gettext_noop(
        "Input should be a valid number, unable to parse string as a number"
    ),
    "decimal_parsing": gettext_noop("Input should be a valid decimal"),
    "bool_type": gettext_noop("Input should be a valid boolean"),
    "bool_parsing": gettext_noop("Input should be a valid boolean, unable to interpret input"),
    "uuid_type": gettext_noop("UUID input should be a string, bytes or UUID object"),
    "uuid_parsing": gettext_noop("Input should be a valid UUID, %(error)s"),
    "string_too_long": gettext_noop("String should have at most %(max_length)s characters"),
    "string_too_short": gettext_noop("String should have at least %(min_length)s characters"),
    "string_pattern_mismatch": gettext_noop("String should match pattern '%(pattern)s'"),
    "too_long": gettext_noop("List should have at most %(max_length)s items"),
    "too_short": gettext_noop("List should have at least %(min_length)s items"),
    "greater_than": gettext_noop("Input should be greater than %(gt)s"),
    "greater_than_equal": gettext_noop("Input should be greater than or equal to %(ge)s"),
    "less_than": gettext_noop("Input should be less than %(lt)s"),
    "less_than_equal": gettext_noop("Input should be less than or equal to %(le)s"),
    "literal_error": gettext_noop("Input should be %(expected)s"),
    "enum": gettext_noop("Input should be %(expected)s"),
    "list_type": gettext_noop("Input should be a valid list"),
    "dict_type": gettext_noop("Input should be a valid dictionary"),
    "model_attributes_type": gettext_noop(
        "Input should be a valid dictionary or object to extract fields from"
    ),
    "datetime_type": gettext_noop("Input should be a valid datetime"),
    "datetime_parsing": gettext_noop("Input should be a valid datetime, %(error)s"),
    "datetime_from_date_parsing": gettext_noop(
        "Input should be a valid datetime or date, %(error)s"
    ),
    "date_type": gettext_noop("Input should be a valid date"),
    "date_parsing": gettext_noop(
        "Input should be a valid date in the format YYYY-MM-DD, %(error)s"
    ),
    "date_from_datetime_parsing": gettext_noop(
        "Input should be a valid date or datetime, %(error)s"
    ),
    "extra_forbidden": gettext_noop("Extra inputs are not permitted"),
    "json_invalid": gettext_noop("Invalid JSON: %(error)s"),
    # Our own validators' ValueErrors: their text is already in the person's language.
    "value_error": gettext_noop("Value error, %(error)s"),
}


def pydantic_message(error: dict[str, Any]) -> str:
    """The message of one pydantic error (an item of `ValidationError.errors`)."""
    original = str(error.get("msg", ""))
    template = TEMPLATES.get(str(error.get("type")))
    if template is None:
        return original
    translated = gettext(template)
    if translated == template:
        return original
    ctx = {key: str(value) for key, value in (error.get("ctx") or {}).items()}
    if "expected" in ctx:
        # pydantic lists the choices as "'a', 'b' or 'c'": the "or" said in the language.
        ctx["expected"] = ctx["expected"].replace("' or '", "' " + gettext("or") + " '")
    try:
        return translated % ctx
    except (KeyError, TypeError, ValueError):
        return original
