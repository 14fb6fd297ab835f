"""Writes: what the KPIs count, the daily KPI snapshots, the data version that ends
cached results, and a drill-down saved as a segment."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from rapport.analytics import kpis
from rapport.analytics.models import AnalyticsSettings, KpiSnapshot
from rapport.analytics.periods import Period, zone_get
from rapport.core.errors import InvalidInputError
from rapport.segments.models import Segment
from rapport.segments.services import segment_from_profiles
from rapport.tenancy.commerce import commerce_settings_get, money_rates_get
from rapport.tenancy.models import Workspace
from rapport.tenancy.services import Actor, audit_log_record

SNAPSHOT_WINDOWS = (7, 30, 90)
# Segments snapshotted beside every customer: the most recently refreshed ones.
SNAPSHOT_SEGMENTS = 25
EVENT_LIST_MAX = 50


def analytics_settings_get(*, workspace_id: Any) -> AnalyticsSettings:
    found = AnalyticsSettings.objects.filter(workspace_id=workspace_id).first()
    return found or AnalyticsSettings(workspace_id=workspace_id)


def _event_names(value: Any, field: str) -> list[str]:
    if not isinstance(value, list) or len(value) > EVENT_LIST_MAX:
        raise InvalidInputError(
            gettext("%(field)s is a list of at most %(event_list_max)s names")
            % {"field": field, "event_list_max": EVENT_LIST_MAX},
            field=field,
        )
    names = []
    for name in value:
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise InvalidInputError(gettext("event names are 1 to 255 characters"), field=field)
        names.append(name.strip())
    return sorted(set(names))


def analytics_settings_update(
    *, workspace: Workspace, actor: Actor, **changes: Any
) -> AnalyticsSettings:
    """Change what is given; the rest stays. Snapshots already taken keep the numbers
    of their time."""
    current = analytics_settings_get(workspace_id=workspace.pk)
    for name, value in changes.items():
        if value is None:
            continue
        if name == "timezone":
            zone_get(value)
        elif name in ("message_events", "engagement_events"):
            value = _event_names(value, name)
        elif name in ("refund_event", "nps_event", "nps_property"):
            value = value.strip() if isinstance(value, str) else value
            if not isinstance(value, str) or not value or len(value) > 255:
                raise InvalidInputError(
                    gettext("%(name)s must be 1 to 255 characters") % {"name": name}, field=name
                )
        else:
            raise InvalidInputError(
                gettext("unknown setting %(name)r") % {"name": name}, field=name
            )
        setattr(current, name, value)
    with transaction.atomic():
        current.save()
        audit_log_record(
            workspace=workspace,
            actor=actor,
            action="analytics.settings.update",
            details={k: v for k, v in changes.items() if v is not None},
        )
    analytics_data_changed(workspace.pk, ())
    return current


def definitions_get(*, workspace: Workspace) -> kpis.Definitions:
    return kpis.Definitions.of(
        commerce_settings_get(workspace=workspace),
        analytics_settings_get(workspace_id=workspace.pk),
        money_rates_get(workspace=workspace),
    )


def data_version(workspace_id: Any) -> str:
    """Changes whenever new data reaches the workspace's customers: cached results are
    keyed by it, so they last until then."""
    return cache.get(f"analytics:data:{workspace_id}") or "0"


def analytics_data_changed(workspace_id: Any, events: Iterable[Any]) -> int:
    """The `events_dispatch` consumer: a stored batch (or a settings change) ends the
    cached results of its workspace."""
    cache.set(f"analytics:data:{workspace_id}", uuid.uuid4().hex, timeout=None)
    return 0


def _yesterday(zone) -> date:
    return timezone.now().astimezone(zone).date() - timedelta(days=1)


def kpi_snapshots_take(
    *,
    workspace_id: Any,
    day: date | None = None,
    backfill_days: int = 0,
    backfill_segments: bool = False,
) -> dict[str, Any]:
    """The KPIs of the 7, 30 and 90 days ending with `day` (default: yesterday, the
    last complete day in the workspace's time zone), for every customer and for the
    most recently refreshed segments; with `backfill_days`, also for that many days
    before (marked as back-filled: computed now from today's data), for every customer
    and, with `backfill_segments`, for the segments too. Taking a day again replaces
    its snapshots."""
    workspace = Workspace.objects.get(pk=workspace_id)
    settings = analytics_settings_get(workspace_id=workspace_id)
    zone = zone_get(settings.timezone)
    last = day or _yesterday(zone)
    if not 0 <= backfill_days <= 730:
        raise InvalidInputError(gettext("backfill_days must be 0 to 730"), field="backfill_days")
    if last > _yesterday(zone) + timedelta(days=1):
        raise InvalidInputError(gettext("a snapshot is of a day that has begun"), field="day")
    definitions = definitions_get(workspace=workspace)
    segments = list(
        Segment.objects.filter(workspace_id=workspace_id)
        .order_by("-refreshed_at", "name")
        .values_list("pk", flat=True)[:SNAPSHOT_SEGMENTS]
    )
    began = time.perf_counter()
    taken = 0
    for back in range(backfill_days, -1, -1):
        the_day = last - timedelta(days=back)
        for window in SNAPSHOT_WINDOWS:
            period = Period(the_day - timedelta(days=window - 1), the_day, zone)
            scopes = [None, *segments] if back == 0 or backfill_segments else [None]
            for segment_id in scopes:
                scope = kpis.Scope(workspace_id=workspace_id, segment_id=segment_id)
                figures = kpis.kpis_compute(scope=scope, period=period, definitions=definitions)
                seconds = figures.pop("seconds")
                currency = figures["currency"]
                rest, money = kpis.snapshot_split(figures)
                KpiSnapshot.objects.update_or_create(
                    workspace_id=workspace_id,
                    segment_id=segment_id,
                    window_days=window,
                    day=the_day,
                    defaults={
                        "figures": rest,
                        "currency": currency,
                        **money,
                        "backfilled": back > 0 or day is not None,
                        "computed_at": timezone.now(),
                        "seconds": seconds,
                    },
                )
                taken += 1
    return {
        "snapshots": taken,
        "last_day": last.isoformat(),
        "seconds": round(time.perf_counter() - began, 2),
    }


def drill_down_save(
    *,
    workspace: Workspace,
    name: str,
    profile_ids: list[str],
    description: str,
    actor: Actor,
) -> Segment:
    """The customers behind a figure as a static segment."""
    return segment_from_profiles(
        workspace=workspace,
        name=name,
        profile_ids=profile_ids,
        description=description,
        actor=actor,
    )
