"""How Python values are written into PostgreSQL statements, where psycopg's default
is not enough.

A date-time with a UTC offset beyond ±15:59 is a valid ISO-8601 value (and Python's),
but PostgreSQL refuses it as a literal ("time zone displacement out of range"), and
Django binds parameters as literals: a filter such as `?since=2026-01-01T00:00:00+16:00`
answered 500. Such a time is written in UTC instead; any other keeps its offset.
"""

from datetime import UTC, datetime, timedelta

from psycopg.types.datetime import DatetimeDumper

MAX_OFFSET = timedelta(hours=15, minutes=59, seconds=59)


class OffsetSafeDatetimeDumper(DatetimeDumper):
    def dump(self, obj: datetime):
        offset = obj.utcoffset()
        if offset is not None and abs(offset) > MAX_OFFSET:
            obj = obj.astimezone(UTC)
        return super().dump(obj)


def pgtypes_register() -> None:
    import psycopg

    psycopg.adapters.register_dumper(datetime, OffsetSafeDatetimeDumper)
