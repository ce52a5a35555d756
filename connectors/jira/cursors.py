"""What this connector's `sync_cursor` rows mean, for `trackpulse status`.

The watermark (`issues`) is JSON with the tracker's clock in epoch milliseconds at the start of
the last complete run; the Cloud worklog feeds (`worklogs.updated`, `worklogs.deleted`) are
epoch milliseconds; `issues.progress` is the run in flight (no instant of its own: it reads as
the issue id it continues after, or, for a Data Center run read in parallel id slices, how many
slices are done); `meta.*` rows are bookkeeping, not positions.
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
    reading = _progress_reading(value) if entity == PROGRESS else value.strip()
    return CursorView(entity, None, reading if len(reading) <= 40 else reading[:37] + "...")


def _progress_reading(value: str) -> str:
    """A run in flight: how far it got. A Data Center run read in id slices says how many of
    its slices are done (each resumes from its own point)."""
    try:
        plan = json.loads(value)
    except ValueError:
        return "run in progress"
    slices = plan.get("slices") if isinstance(plan, dict) else None
    if isinstance(slices, list) and slices:
        done = sum(1 for sl in slices if isinstance(sl, dict) and sl.get("done"))
        return f"run in progress, {done}/{len(slices)} id slices done"
    last = plan.get("last_id") if isinstance(plan, dict) else None
    return f"run in progress after id {last}" if last else "run in progress"
