"""Prometheus figures of a running server: webhook deliveries, sync runs, requests, items.

Each app gets its own `CollectorRegistry` so several apps in one process (tests, the
demo) never collide on metric names. Labels carry source names and outcomes only, never
payload content or secrets.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST as PROMETHEUS_CONTENT_TYPE  # noqa: F401 - re-exported
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from trackpulse.sync_api import SyncResult


class Telemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.webhook_deliveries = Counter(
            "trackpulse_webhook_deliveries", "Webhook deliveries by source, tracker and outcome "
            "(accepted, duplicate, bad_signature, bad_body, unknown_source, processed, failed).",
            ["source", "tracker", "outcome"], registry=self.registry,
        )
        self.webhook_pending = Gauge(
            "trackpulse_webhook_queue_pending", "Stored webhook deliveries not processed yet.",
            registry=self.registry,
        )
        self.sync_runs = Counter(
            "trackpulse_sync_runs", "Sync runs by source and outcome (ok, failed).",
            ["source", "outcome"], registry=self.registry,
        )
        self.sync_requests = Counter(
            "trackpulse_sync_requests", "HTTP requests sent to the trackers by sync runs.",
            ["source"], registry=self.registry,
        )
        self.sync_items = Counter(
            "trackpulse_sync_items", "Items written by sync runs.", ["source"], registry=self.registry,
        )
        self.sync_seconds = Counter(
            "trackpulse_sync_seconds", "Seconds spent in sync runs.", ["source"], registry=self.registry,
        )
        self.store_items = Gauge(
            "trackpulse_store_items", "Live items in the store, per source.", ["source"], registry=self.registry,
        )

    def delivery(self, source: str, tracker: str, outcome: str) -> None:
        self.webhook_deliveries.labels(source=source, tracker=tracker, outcome=outcome).inc()

    def sync_done(self, result: SyncResult) -> None:
        self.sync_runs.labels(source=result.source, outcome="ok").inc()
        self.sync_requests.labels(source=result.source).inc(result.requests)
        self.sync_items.labels(source=result.source).inc(result.items)
        self.sync_seconds.labels(source=result.source).inc(result.seconds)

    def sync_failed(self, source: str) -> None:
        self.sync_runs.labels(source=source, outcome="failed").inc()

    def refresh_store_gauges(self, status_report: dict[str, Any], pending: int) -> None:
        for s in status_report["sources"]:
            self.store_items.labels(source=s["name"]).set(s["counts"]["items"])
        self.webhook_pending.set(pending)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
