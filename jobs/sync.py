"""The sync job: run a source's connector against the store and record how it went.

This is the scheduled unit (`trackpulse sync`, the scheduler inside `serve`, `demo`).
Connectors (looked up in `trackpulse.connectors.registry`) do the tracker-specific work and
are closed after each run; this module owns the bookkeeping around a run (source_state) so
`trackpulse status` can report it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
from trackpulse.connectors.registry import open_connector

from trackpulse.config import AppConfig, JiraSourceConfig, TrelloSourceConfig
from trackpulse.errors import TrackpulseError
from trackpulse.store.db import Store
from trackpulse.store.writer import record_run
from trackpulse.sync_api import NoProgress, Progress, SyncResult


def sync_source(
    store: Store,
    source: JiraSourceConfig | TrelloSourceConfig,
    *,
    full: bool = False,
    progress: Progress | None = None,
    client: httpx.Client | None = None,
) -> SyncResult:
    progress = progress or NoProgress()
    started = datetime.now(UTC)
    with store.transaction() as s:
        record_run(s, source.name, source.kind, last_run_started=started, last_run_finished=None)
    t0 = time.perf_counter()
    with open_connector(source, client=client) as connector:
        try:
            result = connector.sync(store, full=full, progress=progress)
        except TrackpulseError as exc:
            with store.transaction() as s:
                record_run(s, source.name, source.kind, last_run_finished=datetime.now(UTC),
                           last_error=exc.one_line(), last_run_requests=connector.http.stats.requests)
            raise
    result.seconds = time.perf_counter() - t0
    result.requests = connector.http.stats.requests
    finished = datetime.now(UTC)
    with store.transaction() as s:
        record_run(s, source.name, source.kind, last_run_finished=finished, last_success=finished,
                   last_error=None, last_run_requests=result.requests)
    return result


def sync_all(
    cfg: AppConfig,
    store: Store,
    *,
    source_name: str | None = None,
    full: bool = False,
    progress: Progress | None = None,
) -> tuple[list[SyncResult], list[TrackpulseError]]:
    """Sync every configured source (or one); one source failing does not stop the others."""
    sources = [cfg.source(source_name)] if source_name else list(cfg.sources)
    results: list[SyncResult] = []
    errors: list[TrackpulseError] = []
    for src in sources:
        try:
            results.append(sync_source(store, src, full=full, progress=progress))
        except TrackpulseError as exc:
            errors.append(exc)
    return results, errors
