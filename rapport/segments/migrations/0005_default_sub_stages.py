"""The practice's default sub-stages (rapport/segments/lifecycle.py) for workspaces
whose lifecycle was written before they shipped: added under each stage that still has
its default key, unless a stage of the workspace already has the sub-stage's key. New
workspaces get them with their stages (lifecycle_stages_ensure)."""

from django.db import migrations

DEFAULT_PURCHASE_EVENT = "Order Completed"
DEFAULT_KEY_EVENT = "Key Feature Used"


def add_sub_stages(apps, schema_editor):
    from rapport.segments.lifecycle import default_sub_stages

    LifecycleStage = apps.get_model("segments", "LifecycleStage")
    CommerceSettings = apps.get_model("tenancy", "CommerceSettings")
    workspaces = LifecycleStage.objects.values_list("workspace_id", flat=True).distinct()
    for workspace_id in list(workspaces):
        config = CommerceSettings.objects.filter(workspace_id=workspace_id).first()
        subs = default_sub_stages(
            config.purchase_event if config else DEFAULT_PURCHASE_EVENT,
            config.key_event if config else DEFAULT_KEY_EVENT,
        )
        stages = LifecycleStage.objects.filter(workspace_id=workspace_id)
        taken = set(stages.values_list("key", flat=True))
        tops = {s.key: s for s in stages.filter(parent__isnull=True)}
        for parent_key, children in subs.items():
            parent = tops.get(parent_key)
            if parent is None:
                continue
            # Added after the workspace's own sub-stages, which keep being tried first.
            last = stages.filter(parent=parent).order_by("-position").first()
            start = last.position + 1 if last else 0
            for position, child in enumerate(children, start=start):
                if child["key"] in taken:
                    continue
                LifecycleStage.objects.create(
                    workspace_id=workspace_id,
                    key=child["key"],
                    name=child["name"],
                    description=child["description"],
                    parent=parent,
                    position=position,
                    rule=child["rule"],
                )


class Migration(migrations.Migration):
    dependencies = [
        ("segments", "0004_audience_schedules"),
        ("tenancy", "0006_commerce_key_event"),
    ]

    operations = [migrations.RunPython(add_sub_stages, migrations.RunPython.noop)]
