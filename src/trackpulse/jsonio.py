"""JSON in and out of the hot paths (tracker responses, the store's JSON columns) with orjson.

A full sync decodes every response and encodes every raw payload into the store; with the
standard library those two were about a quarter of a Data Center sync's CPU, and orjson does
each in a third of the time or less (bench/bench_peers.py). The results are the same Python
values: what orjson refuses (integers beyond 64 bits, NaN literals, keys that are not strings
it cannot coerce) goes through the standard library instead, so nothing readable becomes an error.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS


def loads(data: bytes | bytearray | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)  # raises ValueError itself when the text is not JSON at all


def dumps(value: Any) -> str:
    """Compact JSON text (the store's JSON columns)."""
    try:
        return orjson.dumps(value, option=_OPTIONS).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
