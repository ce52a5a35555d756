"""Alert rules after syncs and webhook batches, evaluated in a process of their own (and,
with no rules, the per-project figures of `/metrics`, so that `serve` never runs the metrics).

A rule evaluation reads the store into frames and runs the metrics engine: a few hundred
milliseconds of Python for a few hundred items. On a thread of `serve` it shared one GIL with
webhook intake, and under 200 deliveries a second both slowed four- to fivefold (an evaluation
took 1.6-2.2 s instead of 0.4 s, intake queued behind it; bench/bench_webhook_intake.py). Here
it runs in a child process with its own store connection: intake keeps its own pace, and an
evaluation runs at the speed it has alone.

The parent only counts: deliveries applied since the last request are sent as one number when
a child is idle (a sync asks with 0), with the items they changed (source -> store item ids).
The scoped child evaluates the item rules (SLA clocks, WIP age) for those items only
(`evaluate_and_dispatch(scope=...)`: ~30 ms of CPU, where a whole evaluation replays the
store). The whole child evaluates the whole rule set after a sync, when a batch changed what it
cannot name (a sprint, a version), and at least every `WHOLE_EVERY_SECONDS` even when nothing
arrives (what changes with time alone: a clock running into its target). Each answers with how
many its run covered and, after a whole run, the per-project figures of the report it built (the
service's gauges read them instead of running the metrics again). Exactly once is the ledger's
and the outbox's promise (ACTIONS.md "The service"), not this module's: a run cut off by a kill
leaves nothing half-sent that the next run would repeat. The children end when the parent asks,
or when their end of the pipe closes (the parent died).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
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
# The whole evaluator's niceness, added to serve's (Linux: at 5 it gets about a quarter of the CPU a
# busy niceness-0 process gets).
WHOLE_NICENESS = 5

Figures = dict[tuple[str, str], dict[str, float]]
Scope = dict[str, set[str]] | None  # source -> store item ids; None: everything


def merge_scope(into: Scope, items: Scope) -> Scope:
    """The scope covering both (None, everything, wins)."""
    if into is None or items is None:
        return None
    for source, ids in items.items():
        into.setdefault(source, set()).update(ids)
    return into



class _Child:
    """One evaluator process, the pipe to it and what it is to run next."""

    def __init__(self, cfg: AppConfig, whole: bool, done: Callable[[int], None], name: str,
                 on_figures: Callable[[Figures], None]) -> None:
        self.done = done
        self.on_figures = on_figures
        self.pending = 0
        self.scope: Scope = None
        self.wanted = False
        self.busy = False
        self.lock = threading.Lock()
        ctx = multiprocessing.get_context("spawn")  # no fork of a process that runs threads
        self.conn, child_end = ctx.Pipe()
        self.proc = ctx.Process(target=_child_main, args=(cfg, child_end, whole), name=name, daemon=True)
        self.proc.start()
        child_end.close()
        self.reader = threading.Thread(target=self._read, name=f"{name}-results", daemon=True)
        self.reader.start()

    def want(self, n: int, items: Scope) -> None:
        with self.lock:
            self.pending += n
            if self.wanted:
                self.scope = merge_scope(self.scope, items)
            else:
                self.scope = None if items is None else {s: set(ids) for s, ids in items.items()}
            self.wanted = True
            self._send_if_idle()

    def _send_if_idle(self) -> None:
        if self.busy or not self.wanted:
            return
        n, scope, self.pending, self.wanted, self.scope = self.pending, self.scope, 0, False, None
        try:
            self.conn.send((n, scope))
            self.busy = True
        except (OSError, ValueError):  # the child is gone: nothing to evaluate with
            log.error("an alert evaluator process has stopped; webhook batches are no longer evaluated")

    def _read(self) -> None:
        while True:
            try:
                n, figures = self.conn.recv()
            except (EOFError, OSError):
                return
            if figures is not None:
                self.on_figures(figures)
            try:
                self.done(n)
            except Exception:
                log.exception("after-evaluation hook failed")
            with self.lock:
                self.busy = False
                self._send_if_idle()

    def ask_stop(self) -> None:
        try:
            with self.lock:
                self.conn.send(None)
        except (OSError, ValueError):
            pass

    def end(self, timeout: float) -> None:
        self.proc.join(timeout)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(2)
        self.conn.close()


class ProcessEvaluator:
    """`notify(n, items)` after n deliveries were applied (or a sync finished, n = 0); `done(n)`
    is told, on a thread of this process, how many deliveries each finished evaluation covered.

    Two child processes: one runs the scoped evaluations of webhook batches back to back, the
    other the whole ones (after syncs, after a batch that changed what it cannot name, and at
    least every `WHOLE_EVERY_SECONDS`). A whole run takes a second or more at a few hundred
    items; in the same process every batch arriving meanwhile waited for it (the p99 of the
    intake benchmark was that wait). The two write one ledger as two instances' evaluators do:
    episodes open first-writer-wins and an evaluation as of an earlier instant never closes
    what a later one opened (alerts.ledger)."""

    def __init__(self, cfg: AppConfig, done: Callable[[int], None], name: str = "trackpulse-alerts") -> None:
        self.last_figures: tuple[float, Figures] | None = None  # (time.monotonic(), per-project figures)
        self._whole = _Child(cfg, True, done, f"{name}-whole", self._figures)
        self._scoped = _Child(cfg, False, done, f"{name}-scoped", self._figures)

    def _figures(self, figures: Figures) -> None:
        self.last_figures = (time.monotonic(), figures)

    def notify(self, n: int = 0, items: Scope = None) -> None:
        """Evaluate soon, covering `n` more applied deliveries that changed `items` (source ->
        store item ids; None, as after a sync: evaluate everything)."""
        (self._whole if items is None else self._scoped).want(n, items)

    def stop(self, timeout: float = 3.0) -> None:
        """Let the runs in hand finish (within `timeout`), then end the children. A run cut short
        is safe to cut: its ledger writes are one transaction, and a delivery claimed but not
        recorded is retried under the outbox's rules (a comment is looked for before it is
        posted again). `serve` must exit within its shutdown grace, so the wait is short."""
        for child in (self._scoped, self._whole):
            child.ask_stop()
        deadline = time.monotonic() + timeout
        for child in (self._scoped, self._whole):
            child.end(max(0.0, deadline - time.monotonic()))


def _child_main(cfg: AppConfig, conn: Connection, whole_runs: bool) -> None:
    """The loop of one evaluator: `whole_runs`, every run evaluates everything and one comes
    unasked when due; otherwise every run is the scoped one it was asked for."""
    # Ctrl-C reaches the whole process group: the parent stops us in order (`stop`).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if whole_runs:
        # Background work: on a small machine under a stream, intake and the scoped runs (what
        # a delivery waits for) go first; a whole run takes the CPU they leave.
        with contextlib.suppress(OSError):
            os.nice(WHOLE_NICENESS)
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
                if conn.poll(max(0.0, next_whole - time.monotonic()) if whole_runs else None):
                    msg = conn.recv()
                    if msg is None:
                        return
                    n, scope = msg
                else:  # nothing arrived and a whole evaluation is due: run it unasked
                    asked, n, scope = False, 0, None
            except (EOFError, OSError):
                return
            t0 = time.monotonic()
            whole = whole_runs
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
