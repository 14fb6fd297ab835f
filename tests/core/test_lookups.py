"""`field__any` (rapport.core.lookups), with a list and with a `ValuesArray` shared by
several lookups, on whichever database the suite runs against."""

import pytest

from rapport.core.lookups import ValuesArray
from rapport.identity.models import Identifier
from rapport.profiles.models import Profile


@pytest.mark.django_db
def test_a_values_array_matches_as_the_list_does_and_can_be_shared(tenant):
    ws = tenant.workspace.pk
    profiles = [Profile.objects.create(workspace_id=ws) for _ in range(3)]
    wanted = {p.pk for p in profiles[:2]}
    ids = ValuesArray([p.pk for p in profiles[:2]])
    assert set(Profile.objects.filter(pk__any=ids).values_list("pk", flat=True)) == wanted
    assert set(Profile.objects.filter(pk__any=list(ids)).values_list("pk", flat=True)) == wanted
    # One array named by two lookups of one statement (a rule's subqueries do so).
    inner = Profile.objects.filter(pk__any=ids).values("pk")
    assert Profile.objects.filter(pk__any=ids, pk__in=inner).count() == 2
    assert not Profile.objects.filter(pk__any=ValuesArray([])).exists()
    # Text ids as well as UUIDs.
    assert Profile.objects.filter(pk__any=ValuesArray([str(profiles[2].pk)])).get() == profiles[2]


@pytest.mark.django_db
def test_a_values_array_of_strings_keeps_the_array_syntax_characters(tenant):
    ws = tenant.workspace.pk
    profile = Profile.objects.create(workspace_id=ws)
    values = ['a"b', "c\\d", "e,f", "{g}", "h i", "NULL", ""]
    for value in values:
        Identifier.objects.create(workspace_id=ws, profile=profile, kind="user_id", value=value)
    Identifier.objects.create(workspace_id=ws, profile=profile, kind="user_id", value="other")
    found = Identifier.objects.filter(value__any=ValuesArray(values)).values_list(
        "value", flat=True
    )
    assert sorted(found) == sorted(values)
