"""pg_trgm for the global search's substring indexes (rapport/core/search.py), on
PostgreSQL only: SQLite has no such extension and scans its smaller tables."""

from django.db import migrations


def create_extension(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")


class Migration(migrations.Migration):
    dependencies = [("core", "0002_worker_leases")]

    operations = [migrations.RunPython(create_extension, migrations.RunPython.noop, elidable=False)]
