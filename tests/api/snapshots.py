"""What a workspace holds, to prove that a refused request changed nothing."""

from django.apps import apps
from django.core import serializers


def workspace_snapshot(workspace) -> dict[str, list]:
    """Every row of every model that carries a workspace, serialised."""
    snapshot = {}
    for model in apps.get_models():
        field_names = {f.name for f in model._meta.get_fields()}
        if "workspace" not in field_names:
            continue
        rows = model.objects.filter(workspace=workspace).order_by("pk")
        snapshot[model._meta.label] = serializers.serialize("python", rows)
    return snapshot


def database_counts() -> dict[str, int]:
    return {
        model._meta.label: model.objects.count()
        for model in apps.get_models()
        if model._meta.app_label not in {"sessions", "django_tasks_db"}
    }
