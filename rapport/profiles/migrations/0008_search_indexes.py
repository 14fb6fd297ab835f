"""Trigram indexes for the global search: any part of a customer's name
(rapport/identity/search.py) and of an account's name (rapport/profiles/search.py).
PostgreSQL only; the expressions are the ones the searches filter on."""

from django.db import migrations

INDEXES = {
    "profiles_profile_name_trgm": (
        "profiles_profile",
        "(lower((traits ->> 'name'))) gin_trgm_ops",
    ),
    "profiles_account_name_trgm": ("profiles_account", "(lower(name)) gin_trgm_ops"),
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, (table, expression) in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ({expression})"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0003_pg_trgm"),
        ("profiles", "0007_profile_indexes_only_rows_with_a_value"),
    ]

    operations = [migrations.RunPython(create, drop, elidable=False)]
