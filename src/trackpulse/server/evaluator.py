"""Alert rules after syncs and webhook batches, evaluated in a process of their own (and,
with no rules, the per-project figures of `/metrics`, so that `serve` never runs the metrics).

A rule evaluation reads the store into frames and runs the metrics engine: a few hundred
milliseconds of Python for a few hundred items. On a thread of `serve` it shared one GIL with
webhook intake, and under 200 deliveries a second both slowed four- to fivefold (an evaluation
took 1.6-2.2 s instead of 0.4 s, intake queued behind it; bench/bench_webhook_intake.py). Here
it runs in a child process with its own store connection: intake keeps its own pace, and an
evaluation runs at the speed it has alone.

The parent only counts: deliveries applied since the last request are sent as one number when
the child is idle (a sync asks with 0), with the items they changed (source -> store item ids).
The child evaluates the item rules (SLA clocks, WIP age) for those items only
(`evaluate_and_dispatch(scope=...)`: ~30 ms of CPU, where a whole evaluation replays the
store), and the whole rule set after a sync, when a batch changed what it cannot name (a
sprint, a version), and at least every `WHOLE_EVERY_SECONDS` even when nothing arrives (what
changes with time alone: a clock running into its target). It answers with how many its run
covered and, after a whole run, the per-project figures of the report it built (the service's
gauges read them instead of running the metrics again). Exactly once is the ledger's and
the outbox's promise (ACTIONS.md "The service"), not this module's: a run cut off by a kill
leaves nothing half-sent that the next run would repeat. The child ends when the parent asks, or when its end of the pipe closes (the parent died).
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

from trackpulse.config import AppConfig

log = logging.getLogger("trackpulse.server")

# After a whole run the child rests this share of the run's time before the next one: whole
# runs back to back would take a whole core from the other processes of a small machine under a
# stream. A scoped run is cheap and the next batch is waiting for it: no rest.
REST_RATIO = 0.5
# A whole evaluation at least this often, and at most a tenth of the time.
WHOLE_EVERY_SECONDS = 60.0
WHOLE_SHARE = 0.1

Figures = dict[tuple[str, str], dict[str, float]]
Scope = dict[str, set[str]] | None  # source -> store item ids; None: everything


def merge_scope(into: Scope, items: Scope) -> Scope:
    """The scope covering both (None, everything, wins)."""
    if into is None or items is None:
        return None
    for source, ids in items.items():
        into.setdefault(source, set()).update(ids)
    return into



class ProcessEvaluator:
    """`notify(n)` after n deliveries were applied (or a sync finished, n = 0); `done(n)` is told,
    on a thread of this process, how many deliveries each finished evaluation covered."""

    def __init__(self, cfg: AppConfig, done: Callable[[int], None], name: str = "trackpulse-alerts") -> None:
        self.done = done
        self.last_figures: tuple[float, Figures] | None = None  # (time.monotonic(), per-project figures)
        self._pending = 0
        self._scope: Scope = None  # what the next run must cover (None: everything)
        self._wanted = False
        self._busy = False
        self._lock = threading.Lock()
        ctx = multiprocessing.get_context("spawn")  # no fork of a process that runs threads
        self._conn, child_end = ctx.Pipe()
        self._proc = ctx.Process(target=_child_main, args=(cfg, child_end), name=name, daemon=True)
        self._proc.start()
        child_end.close()
        self._reader = threading.Thread(target=self._read, name=f"{name}-results", daemon=True)
        self._reader.start()

    def notify(self, n: int = 0, items: Scope = None) -> None:
        """Evaluate soon, covering `n` more applied deliveries that changed `items` (source ->
        store item ids; None, as after a sync: evaluate everything)."""
        with self._lock:
            self._pending += n
            if self._wanted:
                self._scope = merge_scope(self._scope, items)
            else:
                self._scope = None if items is None else {s: set(ids) for s, ids in items.items()}
            self._wanted = True
            self._send_if_idle()

    def _send_if_idle(self) -> None:
        if self._busy or not self._wanted:
            return
        n, scope, self._pending, self._wanted, self._scope = self._pending, self._scope, 0, False, None
        try:
            self._conn.send((n, scope))
            self._busy = True
        except (OSError, ValueError):  # the child is gone: nothing to evaluate with
            log.error("the alert evaluator process has stopped; webhook batches are no longer evaluated")

    def _read(self) -> None:
        while True:
            try:
                n, figures = self._conn.recv()
            except (EOFError, OSError):
                return
            if figures is not None:
                self.last_figures = (time.monotonic(), figures)
            try:
                self.done(n)
            except Exception:
                log.exception("after-evaluation hook failed")
            with self._lock:
                self._busy = False
                self._send_if_idle()

    def stop(self, timeout: float = 3.0) -> None:
        """Let a run in hand finish (within `timeout`), then end the child. A run cut short is
        safe to cut: its ledger writes are one transaction, and a delivery claimed but not
        recorded is retried under the outbox's rules (a comment is looked for before it is
        posted again). `serve` must exit within its shutdown grace, so the wait is short."""
        try:
            with self._lock:
                self._conn.send(None)
        except (OSError, ValueError):
            pass
        self._proc.join(timeout)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(2)
        self._conn.close()


def _child_main(cfg: AppConfig, conn: Connection) -> None:
    # Ctrl-C reaches the whole process group: the parent stops us in order (`stop`).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import httpx

    # Imported now, not on the first batch: the metrics engine's imports take a second.
    from trackpulse.alerts import evaluate_and_dispatch
    from trackpulse.alerts.inputs import build_figures  # noqa: F401
    from trackpulse.delivery.dispatcher import Dispatcher  # noqa: F401
    from trackpulse.gcpolicy import sparse_collections
    from trackpulse.server.telemetry import project_figures, project_figures_of
    from trackpulse.store.db import open_store

    store = open_store(cfg.store.url, migrate_schema=False)  # the parent migrated before it started us
    gc.collect()
    gc.freeze()  # what is loaded now stays: no collection walks it again
    # One client for every run: a new one loads the CA bundle again (50 ms a run).
    http = httpx.Client()
    next_whole = 0.0  # time.monotonic() when a whole evaluation is due
    try:
        while True:
            asked = True
            try:
                if conn.poll(max(0.0, next_whole - time.monotonic())):
                    msg = conn.recv()
                    if msg is None:
                        return
                    n, scope = msg
                else:  # nothing arrived and a whole evaluation is due: run it unasked
                    asked, n, scope = False, 0, None
            except (EOFError, OSError):
                return
            t0 = time.monotonic()
            whole = scope is None or t0 >= next_whole
            figures: Any = None
            result = None
            try:
                with sparse_collections():  # an evaluation builds frames of acyclic objects
                    if cfg.alerts.rules:
                        result = evaluate_and_dispatch(cfg, store, http=http, scope=None if whole else scope)
                        if result.report is not None:
                            figures = project_figures_of(result.report)
                    if whole and figures is None:  # no rule needed a report: the gauges' figures alone
                        figures = project_figures(cfg, store, datetime.now(UTC))
            except Exception:
                log.exception("alert evaluation failed")
            took = time.monotonic() - t0
            if result is not None:
                log.debug("%s evaluation of %d deliveries (%s items) in %.0f ms: %d opened, %d closed",
                          "whole" if whole else "scoped", n, "all" if whole or scope is None else
                          sum(map(len, scope.values())), took * 1000, len(result.opened), len(result.closed))
            if whole:
                next_whole = time.monotonic() + max(WHOLE_EVERY_SECONDS, took / WHOLE_SHARE)
            if asked:
                try:
                    conn.send((n, figures))
                except (OSError, ValueError):
                    return
            if whole:
                time.sleep(took * REST_RATIO)
    finally:
        http.close()
        store.dispose()
