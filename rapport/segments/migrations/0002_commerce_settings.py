# The purchase event setting moves to the workspace's commerce settings
# (tenancy.CommerceSettings), beside the reporting currency: the KPIs, RFM and CLV all
# read it. Each workspace's row is copied before the old table goes; back again on
# reverse.

from django.db import migrations, models


def copy_to_commerce(apps, schema_editor):
    old = apps.get_model("segments", "SegmentSettings")
    new = apps.get_model("tenancy", "CommerceSettings")
    db = schema_editor.connection.alias
    for row in old.objects.using(db).all().iterator():
        new.objects.using(db).update_or_create(
            workspace_id=row.workspace_id,
            defaults={
                "purchase_event": row.purchase_event,
                "value_properties": row.value_properties,
            },
        )


def copy_back(apps, schema_editor):
    old = apps.get_model("segments", "SegmentSettings")
    new = apps.get_model("tenancy", "CommerceSettings")
    db = schema_editor.connection.alias
    for row in new.objects.using(db).all().iterator():
        old.objects.using(db).update_or_create(
            workspace_id=row.workspace_id,
            defaults={
                "purchase_event": row.purchase_event,
                "value_properties": row.value_properties,
            },
        )


class Migration(migrations.Migration):

    dependencies = [
        ('segments', '0001_initial'),
        ('tenancy', '0005_commerce_settings'),
    ]

    operations = [
        migrations.AddField(
            model_name='rfmscore',
            name='currency',
            field=models.CharField(blank=True, max_length=3),
        ),
        migrations.RunPython(copy_to_commerce, copy_back),
        migrations.DeleteModel(
            name='SegmentSettings',
        ),
    ]
