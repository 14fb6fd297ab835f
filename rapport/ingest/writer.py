"""The bulk write of events, the hottest path in Rapport: one statement a batch
(`rapport.core.bulk.rows_insert`), the unique messageId deciding what is a duplicate.
No model instances are built: that costs more than the insert itself."""

from collections.abc import Sequence
from typing import Any

from rapport.core.bulk import rows_insert
from rapport.ingest.models import Event


def events_write(rows: Sequence[dict[str, Any]]) -> None:
    """Insert events given as {attname: value}, skipping any whose (workspace,
    messageId) is already stored."""
    rows_insert(Event, rows, conflict=["workspace_id", "message_id"])
