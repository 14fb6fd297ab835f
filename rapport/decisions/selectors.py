"""The action catalogue and the decision settings, read. The reports on what the
decisions gave and earned are in reports.py."""

from typing import Any

from django.db.models import Q, QuerySet
from django.utils.translation import gettext

from rapport.core.errors import NotFoundError
from rapport.decisions.models import Action, DecisionSettings
from rapport.tenancy.models import Workspace


def action_list(
    *, workspace: Workspace, q: str = "", channel: str | None = None, enabled: bool | None = None
) -> QuerySet[Action]:
    found = Action.objects.filter(workspace=workspace).order_by("key")
    if q:
        found = found.filter(Q(key__icontains=q) | Q(name__icontains=q))
    if channel:
        found = (
            found.filter(channels__contains=[channel])
            if _json_contains()
            else found.filter(pk__in=[a.pk for a in found if channel in (a.channels or [])])
        )
    if enabled is not None:
        found = found.filter(enabled=enabled)
    return found


def _json_contains() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"


def action_get(*, workspace: Workspace, key: Any) -> Action:
    found = Action.objects.filter(workspace=workspace, key=str(key)).first()
    if found is None:
        raise NotFoundError(
            gettext("No action with the key %(key)r in this workspace") % {"key": str(key)[:64]}
        )
    return found


def decision_settings_get(workspace: Workspace) -> DecisionSettings:
    """The workspace's settings, made with the defaults the first time."""
    found, _ = DecisionSettings.objects.get_or_create(workspace=workspace)
    return found
