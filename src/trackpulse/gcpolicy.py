"""Fewer cyclic garbage collections during bulk work (syncs, webhook intake).

A sync decodes pages of JSON into millions of small dicts and lists that live for a page, and
none of them forms a reference cycle: reference counting frees them all. CPython's cyclic
collector, triggered every 700 net allocations, still walked them, and its full collections
walked the whole heap: 27% of a Data Center sync's time (2.65 s of 9.7 s for 5,000 issues with
their changelogs; bench/bench_peers.py). Under `sparse_collections()` the collector runs once
per 50,000 allocations and rarely walks the old generations; it is not switched off, so a
cycle made by a library is still freed.

The thresholds are the process's: the first holder raises them, the last one to leave puts
back what it found, so concurrent syncs (one thread per source under `serve`) can nest freely.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

BULK_THRESHOLDS = (50_000, 20, 100)

_lock = threading.Lock()
_holders = 0
_saved: tuple[int, int, int] | None = None


@contextmanager
def sparse_collections() -> Iterator[None]:
    global _holders, _saved
    with _lock:
        if _holders == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(*(max(a, b) for a, b in zip(_saved, BULK_THRESHOLDS, strict=True)))
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                _saved = None
