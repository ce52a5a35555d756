"""The `trackpulse serve` application: webhooks, API, dashboard, Prometheus, schedule, health.

`create_app(cfg)` builds a FastAPI app with its own store, webhook queue (worker thread
started at once, so stored but unprocessed deliveries are applied even when the app is
run without lifespan events) and Prometheus registry. `run_server` adds the schedule
(`jobs/runner.py`) and runs uvicorn in the foreground until SIGTERM/SIGINT (`lifecycle.py`).
"""

from __future__ import annotations

import gc
import logging
import sys
import time
from typing import Any

from fastapi import Depends, FastAPI, Request, Response

from trackpulse import __version__
from trackpulse.config import AppConfig
from trackpulse.gcpolicy import BULK_THRESHOLDS
from trackpulse.reports import build_status
from trackpulse.server import api, dashboard, webhooks
from trackpulse.server.auth import require_token
from trackpulse.server.lifecycle import readiness, refresh_project_gauges
from trackpulse.server.state import ServerState
from trackpulse.server.telemetry import PROMETHEUS_CONTENT_TYPE, Telemetry
from trackpulse.server.webhook_queue import WebhookQueue
from trackpulse.store.db import Store, open_store

log = logging.getLogger("trackpulse.server")

# How long the store gauges of /metrics (item counts, pending deliveries, per project) are reused.
STORE_GAUGE_SECONDS = 1.0
SWITCH_INTERVAL_SECONDS = 0.001


def create_app(cfg: AppConfig, store: Store | None = None, *, start_worker: bool = True) -> FastAPI:
    store = store or open_store(cfg.store.url)
    telemetry = Telemetry()
    queue = WebhookQueue(cfg, store, telemetry)
    app = FastAPI(title="trackpulse", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.tp = ServerState(cfg=cfg, store=store, telemetry=telemetry, webhooks=queue)
    # Tests and the demo wait on this: `app.state.webhooks.wait_idle(timeout)`.
    app.state.webhooks = queue
    app.include_router(webhooks.router)
    app.include_router(api.router)
    app.include_router(dashboard.router)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"ok": True, "version": __version__}

    @app.get("/readyz")
    def readyz(request: Request) -> Response:
        return readiness(request.app.state.tp)

    store_gauges = {"at": -1e9}

    @app.get("/metrics", dependencies=[Depends(require_token)])
    def prometheus(request: Request) -> Response:
        state: ServerState = request.app.state.tp
        # The store's gauges take a dozen queries: read at most once a second, however often
        # the endpoint is scraped; counters and job figures are always current.
        if time.monotonic() - store_gauges["at"] >= STORE_GAUGE_SECONDS:
            status = build_status(state.cfg, state.store)
            telemetry.refresh_store_gauges(status, state.webhooks.pending_in_store())
            refresh_project_gauges(state, status)
            store_gauges["at"] = time.monotonic()
        return Response(telemetry.exposition(), media_type=PROMETHEUS_CONTENT_TYPE)

    if start_worker:
        queue.start()
    return app


def close_app(app: FastAPI) -> None:
    """Stop the webhook worker and release the store (tests, the demo)."""
    state: ServerState = app.state.tp
    state.webhooks.stop()
    if state.evaluator is not None:
        state.evaluator.stop()
        state.evaluator = None
    state.store.dispose()


def run_server(cfg: AppConfig, *, host: str, port: int, schedule: bool = True, announce: Any = None) -> None:
    """Foreground server for `trackpulse serve`: returns (exit 0) on SIGTERM/SIGINT."""
    from trackpulse.server.lifecycle import GracefulServer, start_schedule

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The event loop, the intake, the webhook worker and the alert evaluator share one GIL; a
    # thread waking for a finished query waits up to the switch interval for it. 1 ms instead
    # of Python's 5 ms keeps a delivery's hops between them short.
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    app = create_app(cfg)
    # What exists now lives as long as the process: a collection of the oldest generation
    # walked all of it again, 110-150 ms a time every few seconds under webhook load (20 ms
    # frozen; bench/bench_webhook_intake.py).
    gc.collect()
    gc.freeze()
    # Deliveries become acyclic dicts and lists: collect cycles less often (trackpulse.gcpolicy).
    gc.set_threshold(*BULK_THRESHOLDS)
    state: ServerState = app.state.tp
    scheduler = start_schedule(state) if schedule else None
    if announce is not None:
        announce.print(f"trackpulse serving on http://{host}:{port} (dashboard /, API /api, webhooks /webhooks)"
                       + (f"; syncing every {cfg.schedule.sync_every_minutes:g} min" if scheduler else ""))
        if cfg.server.token is None:
            announce.print("note: server.token is not set: the API, dashboard and /metrics answer 503")
    server = GracefulServer(app, host=host, port=port, on_stop=scheduler.stop if scheduler else None,
                            grace=cfg.schedule.shutdown_grace_seconds)
    try:
        server.serve_until_stopped()
    finally:
        close_app(app)
