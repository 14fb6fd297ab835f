"""Periods in the workspace's own time zone: a day or a month starts at local
midnight, so that a purchase at 23:30 on 31 March in London belongs to March even
though it is 30 minutes into April in UTC... or the reverse in summer time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.utils.translation import gettext

from rapport.core.errors import InvalidInputError

MAX_PERIOD_DAYS = 731


def zone_get(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInputError(
            gettext("%(name)r is not a time zone name like Europe/London") % {"name": name},
            field="timezone",
        ) from None


def zone_names() -> list[str]:
    return sorted(available_timezones())


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The instant a local day starts (timezone-aware)."""
    return datetime.combine(day, time(0), tzinfo=zone)


@dataclass(frozen=True)
class Period:
    """Whole local days from `first` to `last` inclusive; `start` and `end` are the
    instants [start, end) they cover."""

    first: date
    last: date
    zone: ZoneInfo

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def start(self) -> datetime:
        return local_midnight(self.first, self.zone)

    @property
    def end(self) -> datetime:
        return local_midnight(self.last + timedelta(days=1), self.zone)

    def previous(self) -> Period:
        """The period of the same number of days just before this one."""
        return Period(
            self.first - timedelta(days=self.days), self.first - timedelta(days=1), self.zone
        )

    def as_dict(self) -> dict:
        return {"first": self.first.isoformat(), "last": self.last.isoformat(), "days": self.days}


def period_make(first: date, last: date, zone: ZoneInfo, *, field: str = "start") -> Period:
    if last < first:
        raise InvalidInputError(gettext("the period ends before it starts"), field="end")
    if (last - first).days + 1 > MAX_PERIOD_DAYS:
        raise InvalidInputError(
            gettext("a period is at most %(max_period_days)s days")
            % {"max_period_days": MAX_PERIOD_DAYS},
            field=field,
        )
    return Period(first, last, zone)


def month_add(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def month_starts(first_month: date, count: int, zone: ZoneInfo) -> list[datetime]:
    """The instants `count` + 1 local months start, from `first_month` on (the last one
    is the end of the last month)."""
    return [local_midnight(month_add(first_month, i), zone) for i in range(count + 1)]
