"""`field__any=[...]`: membership in a long list as one array parameter on PostgreSQL
(`= ANY(%s)`), so a batch of thousands of values costs one bound parameter instead of
thousands of placeholders to build, send and plan. Elsewhere it is `__in`.

Registered on every field by `rapport.core` (see `CoreConfig.ready`)."""

import uuid

from django.db.models import Field, ForeignObject
from django.db.models.fields.related_lookups import RelatedIn
from django.db.models.lookups import In


def _any_sql(lookup, compiler, connection):
    lhs, lhs_params = lookup.process_lhs(compiler, connection)
    field = lookup.lhs.output_field
    values = [
        v if isinstance(v, str | uuid.UUID) else field.get_db_prep_value(v, connection)
        for v in lookup.rhs
    ]
    if not values:
        return "FALSE", []
    target = field.target_field if field.is_relation else field
    array_type = "uuid[]" if target.get_internal_type() == "UUIDField" else "text[]"
    return f"{lhs} = ANY(%s::{array_type})", [*lhs_params, values]


def _direct_values(lookup) -> list | None:
    """Strings and UUIDs need no preparation: skip Django's per-value pass over a list
    of thousands."""
    if lookup.rhs_is_direct_value() and all(isinstance(v, str | uuid.UUID) for v in lookup.rhs):
        return list(lookup.rhs)
    return None


class _AnyLookup:
    """`= ANY(array)` on PostgreSQL (one parameter however long the list), IN elsewhere."""

    lookup_name = "any"

    def get_prep_lookup(self):
        direct = _direct_values(self)
        return super().get_prep_lookup() if direct is None else direct

    def as_sql(self, compiler, connection):
        if connection.vendor != "postgresql":
            return super().as_sql(compiler, connection)
        return _any_sql(self, compiler, connection)


class Any(_AnyLookup, In):
    pass


class RelatedAny(_AnyLookup, RelatedIn):
    pass


def lookups_register() -> None:
    Field.register_lookup(Any)
    ForeignObject.register_lookup(RelatedAny)
