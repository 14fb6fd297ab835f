"""What the database benchmarks share: a workspace filled once and measured again by
later runs, and a timer."""

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def timed(function, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


def postgresql_ready() -> bool:
    """Django set up; whether the database is PostgreSQL (the benchmarks need it)."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rapport.settings")
    django.setup()
    from django.db import connection

    return connection.vendor == "postgresql"


def workspace_filled(prefix: str, fill: Callable[[str, str], float]):
    """The workspace named `prefix-…` an earlier run filled, measured again as it is (and
    no fill time), or a new one that `fill(workspace_id, source_id)` fills now."""
    from rapport.tenancy.models import Workspace
    from rapport.tenancy.services import Actor, workspace_create

    workspace = Workspace.objects.filter(name__startswith=prefix).first()
    if workspace is not None:
        return workspace, None
    created = workspace_create(name=f"{prefix}-{int(time.time())}", actor=Actor.system("bench"))
    return created.workspace, fill(str(created.workspace.pk), str(created.source.pk))


@contextmanager
def event_indexes_dropped() -> Iterator[None]:
    """Rows straight into the event table: its indexes are dropped for the load and
    built again after it, as a bulk load into PostgreSQL is done."""
    from django.db import connection

    from rapport.ingest.models import Event

    indexes = list(Event._meta.indexes)
    with connection.schema_editor() as editor:
        for index in indexes:
            editor.remove_index(Event, index)
    yield
    with connection.schema_editor() as editor:
        for index in indexes:
            editor.add_index(Event, index)


def profiles_generated(cursor, workspace_id: str, count: int, days: int, now) -> None:
    """`count` profiles straight into the table: ids md5('p' || n), a plan, a name and an
    age, first seen up to `days` ago, last seen up to 200 days ago."""
    cursor.execute(
        """
        INSERT INTO profiles_profile
          (id, workspace_id, traits, trait_sources, first_seen_at, last_seen_at,
           created_at, updated_at)
        SELECT md5('p' || n)::uuid, %s,
               jsonb_build_object('plan', (ARRAY['free','pro','team'])[1 + n %% 3],
                                  'name', 'Person ' || n, 'age', 18 + n %% 60),
               '{}'::jsonb, %s - make_interval(days => (n %% %s)::int),
               %s - make_interval(days => ((n * 7) %% 200)::int), %s, %s
        FROM generate_series(1::bigint, %s::bigint) AS n
        """,
        [workspace_id, now, days, now, now, now, count],
    )
