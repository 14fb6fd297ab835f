"""`{% load money %}`: `{{ amount|money:"GBP" }}` writes £1,234.50 (1 234,50 £ in Russian),
and `{{ item|unconverted }}` the sentence for amounts left out for want of a rate."""

from django import template

from rapport.core.money import money_format, unconverted_message

register = template.Library()


@register.filter
def money(amount, currency: str = "") -> str:
    if amount is None or amount == "":
        return "-"
    if not currency:
        return str(amount)
    return money_format(amount, currency)


@register.filter
def unconverted(item) -> str:
    return unconverted_message(item)
