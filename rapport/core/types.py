"""Field types the API shares.

Pydantic reads a number as a Unix time where a date or a date-time is expected
(`?until=0.5` was 1970-01-01); the OpenAPI document says an ISO-8601 text, so a number
is refused as the schema says, naming the field."""

import re
from datetime import date
from typing import Annotated, Any

from django.utils.translation import gettext
from pydantic import AwareDatetime, BeforeValidator

_NUMBER = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")


def _iso_text(value: Any) -> Any:
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.match(value)):
        raise ValueError(
            gettext("must be an ISO-8601 text such as 2026-01-31 or 2026-01-31T12:00:00Z")
        )
    return value


IsoDatetime = Annotated[AwareDatetime, BeforeValidator(_iso_text)]
IsoDate = Annotated[date, BeforeValidator(_iso_text)]
