"""Set-based writes (rapport.core.bulk), on whichever database the suite runs against."""

from datetime import UTC, datetime, timedelta

import pytest

from rapport.core.bulk import rows_insert, rows_update, rows_widen
from rapport.identity.models import Identifier, IdentityCase
from rapport.profiles.models import Profile

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _profile(workspace_id, first=None, last=None) -> Profile:
    return Profile.objects.create(workspace_id=workspace_id, first_seen_at=first, last_seen_at=last)


@pytest.mark.django_db
def test_rows_widen_extends_ranges_and_never_narrows_them(tenant):
    ws = tenant.workspace.pk
    empty = _profile(ws)
    inside = _profile(ws, T0, T0 + timedelta(days=10))
    outside = _profile(ws, T0, T0 + timedelta(days=10))
    untouched = _profile(ws, T0, T0)
    before = untouched.updated_at

    rows_widen(
        Profile,
        [
            (empty.pk, T0 + timedelta(hours=1), T0 + timedelta(hours=2)),
            (inside.pk, T0 + timedelta(days=2), T0 + timedelta(days=3)),
            (outside.pk, T0 - timedelta(microseconds=1), T0 + timedelta(days=11, seconds=1)),
        ],
        low="first_seen_at",
        high="last_seen_at",
    )

    for profile in (empty, inside, outside, untouched):
        profile.refresh_from_db()
    assert (empty.first_seen_at, empty.last_seen_at) == (
        T0 + timedelta(hours=1),
        T0 + timedelta(hours=2),
    )
    assert (inside.first_seen_at, inside.last_seen_at) == (T0, T0 + timedelta(days=10))
    assert (outside.first_seen_at, outside.last_seen_at) == (
        T0 - timedelta(microseconds=1),
        T0 + timedelta(days=11, seconds=1),
    )
    assert empty.updated_at > before
    assert untouched.updated_at == before


@pytest.mark.django_db
def test_rows_insert_skips_conflicts_and_rows_update_sets_fields(tenant):
    ws = tenant.workspace.pk
    existing = _profile(ws, T0, T0)
    new = Profile(workspace_id=ws)
    rows_insert(
        Profile,
        [
            {"id": existing.pk, "workspace_id": ws, "created_at": T0, "updated_at": T0},
            {"id": new.pk, "workspace_id": ws, "created_at": T0, "updated_at": T0},
        ],
        conflict=["id"],
    )
    assert Profile.objects.filter(pk__in=[existing.pk, new.pk]).count() == 2
    rows_update(
        Profile,
        [{"id": new.pk, "traits": {"plan": "pro", "quote": 'it\'s "fine"'}}],
        fields=["traits"],
    )
    assert Profile.objects.get(pk=new.pk).traits == {"plan": "pro", "quote": 'it\'s "fine"'}
    assert Profile.objects.get(pk=existing.pk).first_seen_at == T0


@pytest.mark.django_db
def test_rows_update_sets_plain_columns_and_nulls_alike(tenant):
    ws = tenant.workspace.pk
    a, b = _profile(ws, T0, T0), _profile(ws, T0, T0)
    later = T0.replace(year=2027)

    rows_update(
        Profile,
        [{"id": a.pk, "last_seen_at": later, "merged_into_id": b.pk}],
        fields=["last_seen_at", "merged_into_id"],
    )
    rows_update(
        Profile,
        [{"id": b.pk, "last_seen_at": later, "merged_into_id": None}],
        fields=["last_seen_at", "merged_into_id"],
    )

    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.last_seen_at, a.merged_into_id) == (later, b.pk)
    assert (b.last_seen_at, b.merged_into_id) == (later, None)
    assert a.first_seen_at == b.first_seen_at == T0


@pytest.mark.django_db
def test_rows_insert_takes_ids_as_uuids_or_text_and_nulls(tenant):
    ws = tenant.workspace.pk
    a = _profile(ws, T0, T0)
    b = _profile(ws, T0, T0)

    rows_insert(
        Identifier,
        [
            {
                "workspace_id": ws,
                "profile_id": a.pk,
                "kind": "email",
                "value": "a@x.io",
                "created_at": T0,
            },
            {
                "workspace_id": str(ws),
                "profile_id": str(b.pk),
                "kind": "email",
                "value": "b@x.io",
                "created_at": T0,
            },
        ],
        conflict=["workspace_id", "value", "kind"],
    )
    cases = [
        {
            "workspace_id": ws,
            "message_id": "m1",
            "kind": "email",
            "value": "c@x.io",
            "profile_id": None,
            "reason": "limit",
            "created_at": T0,
        },
        {
            "workspace_id": ws,
            "message_id": "m2",
            "kind": "email",
            "value": "d@x.io",
            "profile_id": a.pk,
            "reason": "limit",
            "created_at": T0,
        },
    ]
    rows_insert(IdentityCase, cases, conflict=["id"])

    held = Identifier.objects.filter(workspace_id=ws, value__endswith="@x.io").values_list(
        "value", "profile_id"
    )
    assert dict(held) == {"a@x.io": a.pk, "b@x.io": b.pk}
    kept = IdentityCase.objects.filter(workspace_id=ws).values_list("message_id", "profile_id")
    assert dict(kept) == {"m1": None, "m2": a.pk}


def _stats_flushed() -> None:
    """This connection's table counters sent to the server's statistics now."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")


@pytest.mark.django_db(transaction=True)
def test_tables_analyze_stale_analyses_only_tables_grown_past_autovacuums_threshold(tenant):
    from django.db import connection

    from rapport.core.bulk import tables_analyze, tables_analyze_stale

    if connection.vendor != "postgresql":
        assert tables_analyze_stale(Profile) == []
        return
    ws = tenant.workspace.pk
    tables_analyze(Profile, Identifier)
    _stats_flushed()
    assert tables_analyze_stale(Profile, Identifier) == []
    Profile.objects.bulk_create([Profile(workspace_id=ws) for _ in range(200)])
    _stats_flushed()
    assert tables_analyze_stale(Profile, Identifier) == ["profiles_profile"]
    _stats_flushed()
    assert tables_analyze_stale(Profile, Identifier) == []
