"""The API's one pagination: Ninja's limit/offset, with the offset bounded too.

An unbounded offset reaches the database as it is: past a 64-bit integer (or with the
limit added to it) SQLite and PostgreSQL fail, and the caller got a 500. No list comes
near two billion rows, so a larger offset is a mistake, refused as one (422)."""

from ninja import Field, Schema
from ninja.conf import settings
from ninja.pagination import LimitOffsetPagination as NinjaLimitOffsetPagination
from ninja.pagination import paginate

MAX_OFFSET = 2**31 - 1

__all__ = ["MAX_OFFSET", "LimitOffsetPagination", "paginate"]


class LimitOffsetPagination(NinjaLimitOffsetPagination):
    class Input(Schema):
        limit: int = Field(settings.PAGINATION_PER_PAGE, ge=1, le=settings.PAGINATION_MAX_LIMIT)
        offset: int = Field(0, ge=0, le=MAX_OFFSET)
