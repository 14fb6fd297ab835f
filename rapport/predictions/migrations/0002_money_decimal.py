# A buyer's expected order value and lifetime value become Decimal (18 digits, 4 after
# the point: rapport.core.money.MONEY_DIGITS / MONEY_PLACES) with the currency they are
# in beside them. The floats are rounded to 4 places in the database (PostgreSQL's
# cast to numeric does it; SQLite, which keeps the number as it was, by ROUND).
# Existing rows take the currency their model learnt in (`config.currency`), or the
# workspace's reporting currency for a model trained before currencies were kept.
# Back again: the currency goes, and a row with no amount (the old columns could not
# say "unknown") is removed; the next scoring writes it again.

from django.db import migrations, models
from django.db.models.functions import Round


def currency_fill(apps, schema_editor):
    db = schema_editor.connection.alias
    Score = apps.get_model("predictions", "ClvScore")
    Model = apps.get_model("predictions", "PredictionModel")
    Commerce = apps.get_model("tenancy", "CommerceSettings")
    reporting = dict(Commerce.objects.using(db).values_list("workspace_id", "reporting_currency"))
    Score.objects.using(db).update(
        clv=Round("clv", 4), expected_order_value=Round("expected_order_value", 4)
    )
    models_in_use = Score.objects.using(db).values("model_id").distinct()
    for model in Model.objects.using(db).filter(pk__in=models_in_use):
        learnt = (model.config or {}).get("currency")
        currency = learnt or reporting.get(model.workspace_id) or "USD"
        Score.objects.using(db).filter(model_id=model.pk).update(currency=currency)


def unknown_remove(apps, schema_editor):
    Score = apps.get_model("predictions", "ClvScore")
    Score.objects.using(schema_editor.connection.alias).filter(
        models.Q(clv__isnull=True) | models.Q(expected_order_value__isnull=True)
    ).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('predictions', '0001_initial'),
        ('tenancy', '0005_commerce_settings'),
    ]

    operations = [
        migrations.AddField(
            model_name='clvscore',
            name='currency',
            field=models.CharField(blank=True, max_length=3),
        ),
        migrations.AlterField(
            model_name='clvscore',
            name='clv',
            field=models.DecimalField(decimal_places=4, max_digits=18, null=True),
        ),
        migrations.AlterField(
            model_name='clvscore',
            name='expected_order_value',
            field=models.DecimalField(decimal_places=4, max_digits=18, null=True),
        ),
        migrations.RunPython(currency_fill, unknown_remove),
    ]
