"""Rows read fast (rapport.core.rows) are the rows Django reads, value for value and
type for type, on whichever database the suite runs against."""

from datetime import UTC, datetime

import pytest
from django.db import connection

from rapport.core.rows import rows_read, statement_run
from rapport.profiles.models import Profile

T0 = datetime(2026, 3, 1, 12, 30, 15, 250000, tzinfo=UTC)


@pytest.mark.django_db
def test_rows_are_the_rows_django_reads(tenant):
    ws = tenant.workspace.pk
    made = [
        Profile.objects.create(
            workspace_id=ws,
            first_seen_at=T0 if i % 2 == 0 else None,
            traits={"name": text, "n": i, "nested": {"list": [1, "two", None]}} if i else {},
        )
        for i, text in enumerate(["", "Ünïcødé ✓", 'it\'s "quoted"', "a\\b"])
    ]
    query = (
        Profile.objects.filter(workspace_id=ws, pk__any=[p.pk for p in made])
        .order_by("created_at", "id")
        .values_list("id", "first_seen_at", "traits", "traits__nested", "traits__absent")
    )

    fast = rows_read(query)

    slow = list(query)
    assert fast == slow
    assert [type(v) for v in fast[0]] == [type(v) for v in slow[0]]
    assert fast[0][1] == T0 and fast[0][1].utcoffset().total_seconds() == 0
    assert fast[1][3] == {"list": [1, "two", None]} and fast[1][4] is None


@pytest.mark.django_db
def test_a_query_that_matches_nothing_reads_no_rows(tenant):
    assert rows_read(Profile.objects.filter(pk__any=[]).values_list("id")) == []
    assert rows_read(Profile.objects.filter(pk__in=[]).values_list("id")) == []


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL statement")
def test_a_statement_binds_a_list_as_one_array(tenant):
    made = [Profile.objects.create(workspace_id=tenant.workspace.pk) for _ in range(3)]

    changed = statement_run(
        "UPDATE profiles_profile SET first_seen_at = %s WHERE id = ANY(%s)",
        [T0, [p.pk for p in made[:2]]],
    )

    assert changed == 2
    assert Profile.objects.filter(first_seen_at=T0).count() == 2


@pytest.mark.django_db
def test_list_parameters_of_text_uuids_and_times_read_the_same(tenant):
    ws = tenant.workspace.pk
    made = [
        Profile.objects.create(workspace_id=ws, first_seen_at=T0, traits={"name": f"100% {i}"})
        for i in range(3)
    ]
    query = (
        Profile.objects.filter(
            workspace_id=ws,
            pk__any=[p.pk for p in made[:2]],
            first_seen_at__in=[T0],
            traits__name__startswith="100%",
        )
        .order_by("id")
        .values_list("id", "traits__name")
    )

    assert rows_read(query) == list(query) == [(p.pk, p.traits["name"]) for p in made[:2]]


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner settings")
def test_a_keyed_statement_leaves_the_planner_settings_as_they_were(tenant):
    made = Profile.objects.create(workspace_id=tenant.workspace.pk)

    statement_run(
        "UPDATE profiles_profile AS t SET first_seen_at = r.at "
        "FROM unnest(%s::uuid[], %s::timestamptz[]) AS r(id, at) WHERE t.id = r.id",
        [[made.pk], [T0]],
        by_key=True,
    )

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('enable_hashjoin'), current_setting('enable_mergejoin')"
        )
        assert cursor.fetchone() == ("on", "on")
    made.refresh_from_db()
    assert made.first_seen_at == T0


def _terminate_this_connection() -> None:
    """Ends this test's database session from another one, as a failover or a restarted
    server would."""
    import psycopg

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the fast path runs on PostgreSQL only"
)


@postgresql_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("use", ["read", "statement"])
def test_a_dropped_connection_is_djangos_operational_error(use, tenant):
    from django.db import OperationalError

    _terminate_this_connection()
    try:
        with pytest.raises(OperationalError):
            if use == "read":
                rows_read(Profile.objects.values_list("pk"))
            else:
                statement_run("UPDATE core_nothing SET x = 1 WHERE false", [])
    finally:
        connection.close()


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_dropped_connection_makes_the_tracking_api_answer_503_with_retry_after(tenant):
    from tests.ingest.conftest import Tracker

    tracker = Tracker(tenant.created.write_key)
    event = {"userId": "u1", "event": "E"}
    assert tracker.send("/v1/track", event).status_code == 200  # the write key is now cached
    _terminate_this_connection()
    try:
        response = tracker.send("/v1/track", event)
        assert response.status_code == 503
        assert response["Retry-After"]
        assert response.json()["error"]["code"] == "service_unavailable"
    finally:
        connection.close()
    assert tracker.send("/v1/track", event).status_code == 200
