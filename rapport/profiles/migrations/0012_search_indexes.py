"""Trigram indexes for the global search: any part of a customer's name
(rapport/identity/search.py), of an account's name and of its domain or website
(rapport/profiles/search.py, DOMAIN_TRAITS).
PostgreSQL only; the expressions are the ones the searches filter on."""

from django.db import migrations

# Only the profiles that have a name (as the name b-tree, 0007): identity resolution
# rewrites hundreds of thousands of profiles, most of them anonymous, and each write of
# an indexed row costs an entry in every index it is in.
INDEXES = {
    "profiles_profile_name_trgm": (
        "profiles_profile",
        "(lower((traits ->> 'name'))) gin_trgm_ops",
        "(traits ->> 'name') IS NOT NULL",
    ),
    "profiles_account_name_trgm": ("profiles_account", "(lower(name)) gin_trgm_ops", None),
    # An account is also found by its domain: every arm of the search's OR must have an
    # index for PostgreSQL to combine them (a bitmap OR) rather than scan the table.
    **{
        f"profiles_account_{key}_trgm": (
            "profiles_account",
            f"(lower((traits ->> '{key}'))) gin_trgm_ops",
            f"(traits ->> '{key}') IS NOT NULL",
        )
        for key in ("domain", "website")
    },
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, (table, expression, condition) in INDEXES.items():
        where = f" WHERE {condition}" if condition else ""
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ({expression}){where}"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0003_pg_trgm"),
        ("profiles", "0011_account_seen_includes_people"),
    ]

    operations = [migrations.RunPython(create, drop, elidable=False)]
