# A KPI snapshot's money moves out of its JSON figures into Decimal columns (18 digits,
# 4 after the point: rapport.core.money.MONEY_DIGITS / MONEY_PLACES) with the currency
# beside them: the figures' own `currency`, or the workspace's reporting currency for
# a snapshot taken before currencies were kept. Back again: into the figures as
# numbers, the currency with them.

from decimal import ROUND_HALF_EVEN, Decimal

from django.db import migrations, models

# As rapport.analytics.kpis.MONEY_FIGURES was when this was written.
MONEY = {
    "revenue": ("revenue",),
    "average_order_value": ("average_order_value",),
    "clv_average": ("clv_average",),
    "clv_total": ("clv_total",),
    "gross_purchase_value": ("parts", "gross_purchase_value"),
    "refunded": ("parts", "refunded"),
}
PLACE = Decimal("0.0001")


def _holder(figures, path):
    return figures if len(path) == 1 else figures.setdefault("parts", {})


def _amount(value):
    if not isinstance(value, int | float | str) or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        return None
    return amount.quantize(PLACE, rounding=ROUND_HALF_EVEN) if amount.is_finite() else None


def money_to_columns(apps, schema_editor):
    db = schema_editor.connection.alias
    Snapshot = apps.get_model("analytics", "KpiSnapshot")
    Commerce = apps.get_model("tenancy", "CommerceSettings")
    reporting = dict(Commerce.objects.using(db).values_list("workspace_id", "reporting_currency"))
    for snapshot in Snapshot.objects.using(db).all().iterator(chunk_size=1000):
        figures = dict(snapshot.figures or {})
        figures["parts"] = dict(figures.get("parts") or {})
        for column, path in MONEY.items():
            setattr(snapshot, column, _amount(_holder(figures, path).pop(path[-1], None)))
        snapshot.currency = (
            figures.pop("currency", None) or reporting.get(snapshot.workspace_id) or "USD"
        )
        snapshot.figures = figures
        snapshot.save(update_fields=["figures", "currency", *MONEY])


def money_to_figures(apps, schema_editor):
    Snapshot = apps.get_model("analytics", "KpiSnapshot")
    for snapshot in Snapshot.objects.using(schema_editor.connection.alias).all().iterator(
        chunk_size=1000
    ):
        figures = dict(snapshot.figures or {})
        figures["parts"] = dict(figures.get("parts") or {})
        for column, path in MONEY.items():
            value = getattr(snapshot, column)
            _holder(figures, path)[path[-1]] = None if value is None else float(value)
        figures["currency"] = snapshot.currency
        snapshot.figures = figures
        snapshot.save(update_fields=["figures"])


class Migration(migrations.Migration):

    dependencies = [
        ('analytics', '0001_initial'),
        ('tenancy', '0005_commerce_settings'),
    ]

    operations = [
        migrations.AddField(
            model_name='kpisnapshot',
            name='average_order_value',
            field=models.DecimalField(decimal_places=4, max_digits=18, null=True),
        ),
        migrations.AddField(
            model_name='kpisnapshot',
            name='clv_average',
            field=models.DecimalField(decimal_places=4, max_digits=18, null=True),
        ),
        migrations.AddField(
            model_name='kpisnapshot',
            name='clv_total',
            field=models.DecimalField(decimal_places=4, max_digits=18, null=True),
        ),
        migrations.AddField(
            model_name='kpisnapshot',
            name='currency',
            field=models.CharField(blank=True, max_length=3),
        ),
        migrations.AddField(
            model_name='kpisnapshot',
            name='gross_purchase_value',
            field=models.DecimalField(decimal_places=4, max_digits=18, null=True),
        ),
        migrations.AddField(
            model_name='kpisnapshot',
            name='refunded',
            field=models.DecimalField(decimal_places=4, max_digits=18, null=True),
        ),
        migrations.AddField(
            model_name='kpisnapshot',
            name='revenue',
            field=models.DecimalField(decimal_places=4, max_digits=18, null=True),
        ),
        migrations.RunPython(money_to_columns, money_to_figures),
    ]
