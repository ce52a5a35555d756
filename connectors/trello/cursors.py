"""What this connector's `sync_cursor` rows mean, for `trackpulse status`.

`actions:{board}` holds the newest action id stored; a Trello id starts with its creation
time in seconds (8 hex digits), which is the instant the cursor stands at. `actions-walk:*`
is a walk in flight; `points-field:*` and `members:*` are mapping bookkeeping: neither is an instant.
"""

from __future__ import annotations

from datetime import UTC, datetime

from trackpulse.sync_api import CursorView

from .connector import SINCE_CURSOR

_SINCE_PREFIX = SINCE_CURSOR.split("{", 1)[0]
_HEX = frozenset("0123456789abcdef")


def describe_cursor(entity: str, value: str) -> CursorView:
    text = value.strip()
    if entity.startswith(_SINCE_PREFIX) and len(text) == 24 and set(text) <= _HEX:
        at = datetime.fromtimestamp(int(text[:8], 16), UTC)
        return CursorView(entity, at, "action at " + at.isoformat().replace("+00:00", "Z"))
    return CursorView(entity, None, text if len(text) <= 40 else text[:37] + "...")
