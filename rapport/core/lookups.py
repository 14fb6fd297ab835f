"""`field__any=[...]`: membership in a long list as one array parameter on PostgreSQL
(`= ANY(%s)`), so a batch of thousands of values costs one bound parameter instead of
thousands of placeholders to build, send and plan. Elsewhere it is `__in`.

Registered on every field by `rapport.core` (see `CoreConfig.ready`)."""

import uuid
from collections.abc import Iterable, Iterator

from django.db.models import Field, ForeignObject
from django.db.models.fields.related_lookups import RelatedIn
from django.db.models.lookups import In


class ValuesArray:
    """Ids (or strings) given to several `__any` lookups: on PostgreSQL they travel as
    one array literal, written once, rather than as a list that Django walks value by
    value for every lookup and the driver writes out value by value for every statement
    (measured: the lifecycle's query of a 1,000-customer batch names them eleven times,
    and writing them was a third of the worker's time in it)."""

    __slots__ = ("_literal", "values")

    def __init__(self, values: Iterable[uuid.UUID | str]) -> None:
        self.values = tuple(values)
        self._literal: str | None = None

    def __iter__(self) -> Iterator[uuid.UUID | str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)

    def literal(self) -> str:
        """The PostgreSQL array literal: each value double-quoted, with `"` and `\\`
        escaped (it is bound as a parameter, so only the array syntax needs care)."""
        if self._literal is None:
            self._literal = (
                "{"
                + ",".join(
                    '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
                    for v in self.values
                )
                + "}"
            )
        return self._literal


def _any_sql(lookup, compiler, connection):
    lhs, lhs_params = lookup.process_lhs(compiler, connection)
    field = lookup.lhs.output_field
    target = field.target_field if field.is_relation else field
    array_type = "uuid[]" if target.get_internal_type() == "UUIDField" else "text[]"
    if isinstance(lookup.rhs, ValuesArray):
        if not lookup.rhs.values:
            return "FALSE", []
        return f"{lhs} = ANY(%s::{array_type})", [*lhs_params, lookup.rhs.literal()]
    values = [
        v if isinstance(v, str | uuid.UUID) else field.get_db_prep_value(v, connection)
        for v in lookup.rhs
    ]
    if not values:
        return "FALSE", []
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
        if isinstance(self.rhs, ValuesArray) and all(
            isinstance(v, str | uuid.UUID) for v in self.rhs.values
        ):
            return self.rhs
        direct = _direct_values(self)
        return super().get_prep_lookup() if direct is None else direct

    def as_sql(self, compiler, connection):
        if connection.vendor != "postgresql":
            if isinstance(self.rhs, ValuesArray):
                self.rhs = list(self.rhs.values)
            return super().as_sql(compiler, connection)
        return _any_sql(self, compiler, connection)


class Any(_AnyLookup, In):
    pass


class RelatedAny(_AnyLookup, RelatedIn):
    pass


def lookups_register() -> None:
    Field.register_lookup(Any)
    ForeignObject.register_lookup(RelatedAny)
