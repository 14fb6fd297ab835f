"""What a purchase is, as every app that counts money reads it: the event that names a
purchase and the properties that hold its value (the workspace's setting, kept by
`tenancy.commerce.commerce_settings_update`), and the value as a query expression."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models.functions import Coalesce

from rapport.core.jsonkeys import json_number

DEFAULT_PURCHASE_EVENT = "Order Completed"
# Tried in order: the first that holds a number is the purchase's value.
DEFAULT_VALUE_PROPERTIES = ["revenue", "total", "value"]
# The event that says a new customer used the product's key feature (activation), until
# the workspace names its own (e.g. "Brew Planner Used").
DEFAULT_KEY_EVENT = "Key Feature Used"


def purchase_value(properties: Sequence[str]):
    """A purchase's value: the first of the value properties that holds a number."""
    if len(properties) == 1:
        return json_number("properties", properties[0])
    return Coalesce(*(json_number("properties", p) for p in properties))
