"""What this connector's `sync_cursor` rows mean, for `trackpulse status`.

The watermark (`issues`) is JSON with the tracker's clock in epoch milliseconds at the start of
the last complete run; the Cloud worklog feeds (`worklogs.updated`, `worklogs.deleted`) are
epoch milliseconds; `issues.progress` is the run in flight (no instant of its own); `meta.*`
rows are bookkeeping, not positions.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from trackpulse.connectors.jira.sync import PROGRESS, WATERMARK, WORKLOGS_DELETED, WORKLOGS_UPDATED

from trackpulse.sync_api import CursorView

_MS_CURSORS = (WORKLOGS_UPDATED, WORKLOGS_DELETED)


def describe_cursor(entity: str, value: str) -> CursorView:
    at: datetime | None = None
    if entity == WATERMARK:
        try:
            ms = json.loads(value).get("at")
        except (ValueError, AttributeError):
            ms = None
        if isinstance(ms, (int, float)):
            at = datetime.fromtimestamp(ms / 1000, UTC)
    elif entity in _MS_CURSORS and value.strip().isdigit():
        at = datetime.fromtimestamp(int(value) / 1000, UTC)
    if at is not None:
        return CursorView(entity, at, at.isoformat().replace("+00:00", "Z"))
    reading = "run in progress" if entity == PROGRESS else value.strip()
    return CursorView(entity, None, reading if len(reading) <= 40 else reading[:37] + "...")
