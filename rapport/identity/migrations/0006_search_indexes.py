"""Trigram indexes for the global search (rapport/identity/search.py): part of an
email, part of a phone number, each over the identifiers of that kind only (user and
anonymous ids are matched whole, by the unique index). PostgreSQL only."""

from django.db import migrations

INDEXES = {
    "identity_identifier_email_trgm": "email",
    "identity_identifier_phone_trgm": "phone",
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, kind in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON identity_identifier "
            f"USING gin (value gin_trgm_ops) WHERE kind = '{kind}'"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0003_pg_trgm"),
        ("identity", "0005_identifier_no_database_constraints"),
    ]

    operations = [migrations.RunPython(create, drop, elidable=False)]
