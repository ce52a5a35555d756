"""How `serve` starts, stops and says it is healthy.

- `GracefulServer`: uvicorn re-raises SIGTERM/SIGINT after its own shutdown (so the process
  would die by the signal, exit 143/130); here `handle_exit` records nothing to re-raise, starts
  the schedule's stop at once (no new runs; the run in hand stops at its next committed page,
  or is handed back) and the process exits 0 within `shutdown_grace_seconds`.
- `readiness`: `/readyz` is 200 only when the store answers and the schedule is running.
- `refresh_project_gauges`: the per-project gauges of `/metrics`, from one metrics run,
  cached a few seconds so scrapes stay cheap.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import sqlalchemy as sa
import uvicorn
from fastapi import Response
from fastapi.responses import JSONResponse

from trackpulse.server.state import ServerState
from trackpulse.server.telemetry import project_figures

log = logging.getLogger("trackpulse.server")


class GracefulServer(uvicorn.Server):
    def __init__(self, app: Any, *, host: str, port: int, on_stop: Callable[[], None] | None, grace: float) -> None:
        super().__init__(uvicorn.Config(app, host=host, port=port, log_level="info", access_log=False,
                                        timeout_graceful_shutdown=max(1, int(grace / 2))))
        self.on_stop = on_stop
        self.grace = grace
        self._stopper: threading.Thread | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping (grace %.0f s)", sig, self.grace)
        self.should_exit = True  # not appended to _captured_signals: nothing is re-raised, exit 0
        if self.on_stop is not None and self._stopper is None:
            self._stopper = threading.Thread(target=self.on_stop, name="trackpulse-stop", daemon=True)
            self._stopper.start()

    def serve_until_stopped(self) -> None:
        t0 = time.monotonic()
        self.run()
        if self._stopper is not None:
            self._stopper.join(max(0.0, self.grace - (time.monotonic() - t0)))
        elif self.on_stop is not None:  # uvicorn stopped by itself (e.g. the port was taken)
            self.on_stop()


def start_schedule(state: ServerState) -> Any:
    """The schedule (`jobs.runner.Runner`) for this process, and alerts after each sync and
    webhook batch, in a process of their own (`server.evaluator`). That process also computes the
    per-project gauges, with rules or without: a metrics run here would hold webhook intake up."""
    from trackpulse.jobs.runner import Runner
    from trackpulse.server.evaluator import ProcessEvaluator

    runner = Runner(state.cfg, state.store, events=state.telemetry)
    state.runner = runner
    state.evaluator = ProcessEvaluator(state.cfg, state.telemetry.evaluated)
    runner.evaluate_elsewhere = state.evaluator.notify
    if state.cfg.alerts.rules:
        state.webhooks.on_batch = state.evaluator.notify
    else:  # nothing to evaluate: a batch is evaluated once applied
        evaluated = state.telemetry.evaluated
        state.webhooks.on_batch = lambda n, _items: evaluated(n)
    runner.start()
    return runner


def readiness(state: ServerState) -> Response:
    store_ok = True
    try:
        with state.store.engine.connect() as c:
            c.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        store_ok = False
    schedule_ok = state.runner is not None and state.runner.running
    ok = store_ok and schedule_ok
    return JSONResponse({"ready": ok, "store": store_ok, "schedule": schedule_ok}, status_code=200 if ok else 503)


_CACHE: dict[int, tuple[float, dict[tuple[str, str], dict[str, float]]]] = {}
_REFRESHING: set[int] = set()
PROJECT_GAUGE_SECONDS = 15.0


def refresh_project_gauges(state: ServerState, status: dict[str, Any]) -> None:
    """Per-project gauges from the freshest report at hand. Under `serve` that is the evaluator
    process's last one: it runs a whole evaluation after each sync and at least every minute
    (`evaluator.WHOLE_EVERY_SECONDS`), and no metrics run happens here. An app without the
    schedule (tests, the demo) computes them here at most every 15 s: only the very first scrape
    waits, later ones keep the last figures while a thread computes the next (a metrics run
    inside a scrape held webhook intake up for a second under load)."""
    now = datetime.now(UTC)
    ages = {}
    for s in status["sources"]:
        last = s.get("last_success")
        if last:
            ages[s["name"]] = (now - datetime.fromisoformat(last)).total_seconds()
    key = id(state)
    cached = _CACHE.get(key)
    evaluated = getattr(state.evaluator, "last_figures", None)
    if evaluated is not None and (cached is None or evaluated[0] > cached[0]):
        cached = _CACHE[key] = evaluated
    if cached is None:
        if state.evaluator is not None:  # its first figures come a second or two after the start
            state.telemetry.refresh_project_gauges({}, ages)
            return
        _compute_project_figures(state, key)
        cached = _CACHE[key]
    elif (evaluated is None and time.monotonic() - cached[0] > PROJECT_GAUGE_SECONDS
          and key not in _REFRESHING):
        _REFRESHING.add(key)
        threading.Thread(target=_compute_project_figures, args=(state, key), daemon=True,
                         name="trackpulse-project-gauges").start()
    state.telemetry.refresh_project_gauges(cached[1], ages)


def _compute_project_figures(state: ServerState, key: int) -> None:
    try:
        figures = project_figures(state.cfg, state.store, datetime.now(UTC))
    except Exception:
        log.exception("project gauges could not be computed")
        figures = {}
    finally:
        _REFRESHING.discard(key)
    _CACHE[key] = (time.monotonic(), figures)
