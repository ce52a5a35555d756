"""The periodic sync inside `trackpulse serve` (APScheduler 3.x, one background thread).

`max_instances=1` and `coalesce=True`: a slow run is never overlapped by the next one,
and runs missed while one was going are folded into a single catch-up run.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

from trackpulse.config import AppConfig
from trackpulse.jobs.sync import sync_all
from trackpulse.server.telemetry import Telemetry
from trackpulse.store.db import Store

log = logging.getLogger("trackpulse.scheduler")


def run_scheduled_sync(cfg: AppConfig, store: Store, telemetry: Telemetry) -> None:
    """One scheduled round over every source; failures are logged and counted, never raised."""
    try:
        results, errors = sync_all(cfg, store)
    except Exception:
        log.exception("scheduled sync failed")
        return
    for r in results:
        telemetry.sync_done(r)
        log.info("sync %s: %d items, %d requests, %.1f s", r.source, r.items, r.requests, r.seconds)
    for e in errors:
        source = getattr(e, "source", "?")
        telemetry.sync_failed(str(source))
        log.warning("sync failed: %s", e.one_line())


def start_scheduler(cfg: AppConfig, store: Store, telemetry: Telemetry, *, run_now: bool = True) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="UTC")
    minutes = cfg.schedule.sync_every_minutes
    scheduler.add_job(
        run_scheduled_sync, "interval", minutes=minutes, args=[cfg, store, telemetry], id="sync_all",
        max_instances=1, coalesce=True, misfire_grace_time=max(1, int(minutes * 60)),
        **({"next_run_time": datetime.now(UTC)} if run_now else {}),
    )
    scheduler.start()
    return scheduler
