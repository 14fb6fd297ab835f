"""The profile table's partial indexes: they hold only the profiles that have the value
they are keyed on, and the queries that need them can still use them (PostgreSQL's
planner has to see that the query implies the index's condition)."""

import pytest
from django.db import connection, transaction
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Lower

from rapport.profiles.models import Profile

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="query plans are PostgreSQL's"
)


def _plan(queryset) -> str:
    """The plan with sequential scans priced out, so that a small table still shows
    whether the index can serve the query at all."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        return queryset.explain()


def test_the_name_search_uses_the_index_of_named_profiles(tenant):
    Profile.objects.create(workspace=tenant.workspace, traits={"name": "Ada Lovelace"})
    Profile.objects.create(workspace=tenant.workspace, traits={"plan": "free"})
    # The customer list's search by the start of a name (profiles.selectors).
    found = (
        Profile.objects.filter(workspace=tenant.workspace, merged_into__isnull=True)
        .annotate(_name=Lower(KeyTextTransform("name", "traits")))
        .filter(_name__gte="ada", _name__lt="ada\U0010ffff")
        .order_by("_name")
        .values_list("pk", flat=True)
    )
    assert "profiles_ws_name" in _plan(found)
    assert len(found) == 1


def test_the_profiles_merged_into_one_are_found_through_the_index_of_merged_ones(tenant):
    survivor = Profile.objects.create(workspace=tenant.workspace)
    Profile.objects.create(workspace=tenant.workspace, merged_into=survivor)
    Profile.objects.create(workspace=tenant.workspace)
    merged = Profile.objects.filter(merged_into_id__in=[survivor.pk])
    assert "profiles_merged_into" in _plan(merged)
    assert merged.count() == 1
