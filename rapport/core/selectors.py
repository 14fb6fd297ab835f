"""Reads shared by every app."""

import uuid

from django.db.models import QuerySet

from rapport.core.errors import NotFoundError


def object_get(queryset: QuerySet, *, what: str, pk: uuid.UUID):
    """The row with this id from an already workspace-scoped queryset, or a 404 that
    does not say whether the id exists elsewhere."""
    obj = queryset.filter(pk=pk).first()
    if obj is None:
        raise NotFoundError(f"No {what} with id {pk} in this workspace")
    return obj
