"""Prometheus figures of a running server: webhook deliveries, sync runs, requests, items.

Each app gets its own `CollectorRegistry` so several apps in one process (tests, the
demo) never collide on metric names. Labels carry source names and outcomes only, never
payload content or secrets.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST as PROMETHEUS_CONTENT_TYPE  # noqa: F401 - re-exported
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from trackpulse.sync_api import SyncResult

# How many evaluation marks `/api/webhooks/evaluated` keeps (a mark per evaluation: an hour
# of back-to-back runs under a stream).
EVALUATION_MARKS = 100_000

PROJECT_GAUGES = {
    "sla_breaches_open": "Open SLA breaches (items past their SLA, not done).",
    "sla_at_risk": "SLA clocks at risk (running, past the at-risk share of their target).",
    "wip": "Items in progress.",
    "defects_open": "Open defects.",
}


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

        self.webhook_evaluated = Counter(
            "trackpulse_webhook_evaluated", "Applied webhook deliveries whose batch the alert rules were evaluated on.",
            registry=self.registry)
        # (time.time(), deliveries evaluated so far) at the end of each evaluation: when the k-th
        # applied delivery was evaluated, to the millisecond, for whoever measures the lag (the
        # intake benchmark reads it once at the end instead of polling the counter).
        self.evaluation_marks: deque[tuple[float, int]] = deque(maxlen=EVALUATION_MARKS)
        self._evaluated_total = 0
        self._marks_lock = threading.Lock()
        self.job_runs = Counter("trackpulse_job_runs", "Scheduled runs by job and outcome (ok, failed, checkpointed).",
                                ["job", "outcome"], registry=self.registry)
        self.job_seconds = Counter("trackpulse_job_seconds", "Seconds spent in scheduled runs, per job.",
                                   ["job"], registry=self.registry)
        self.job_claims_lost = Counter("trackpulse_job_claims_lost",
                                       "Firings another instance had already claimed, per job.", ["job"],
                                       registry=self.registry)
        self.job_takeovers = Counter("trackpulse_job_lease_takeovers",
                                     "Runs taken over after their holder's lease expired, per job.", ["job"],
                                     registry=self.registry)
        self.project_gauges = {
            name: Gauge(f"trackpulse_project_{name}", text, ["source", "project"], registry=self.registry)
            for name, text in PROJECT_GAUGES.items()}
        self.last_sync_age = Gauge("trackpulse_last_sync_age_seconds",
                                   "Seconds since the source's last successful sync.", ["source"],
                                   registry=self.registry)

    def evaluated(self, n: int) -> None:
        """`n` more applied deliveries were evaluated by the alert rules (or needed none)."""
        self.webhook_evaluated.inc(n)
        with self._marks_lock:
            self._evaluated_total += n
            self.evaluation_marks.append((time.time(), self._evaluated_total))

    def evaluation_progress(self, since: float = 0.0) -> dict[str, Any]:
        with self._marks_lock:
            marks = [[round(at, 4), count] for at, count in self.evaluation_marks if at >= since]
            return {"evaluated": self._evaluated_total, "marks": marks}

    def job_run(self, job: str, outcome: str, seconds: float) -> None:
        self.job_runs.labels(job=job, outcome=outcome).inc()
        self.job_seconds.labels(job=job).inc(seconds)

    def job_claim_lost(self, job: str) -> None:
        self.job_claims_lost.labels(job=job).inc()

    def job_takeover(self, job: str) -> None:
        self.job_takeovers.labels(job=job).inc()

    def refresh_project_gauges(self, figures: dict[tuple[str, str], dict[str, float]],
                               sync_age: dict[str, float]) -> None:
        for (source, project), values in figures.items():
            for name, value in values.items():
                self.project_gauges[name].labels(source=source, project=project).set(value)
        for source, age in sync_age.items():
            self.last_sync_age.labels(source=source).set(age)

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


def project_figures(cfg: Any, store: Any, as_of: Any) -> dict[tuple[str, str], dict[str, float]]:
    """Per (source, project): open SLA breaches, at-risk clocks, WIP, open defects (one metrics run)."""
    from trackpulse.metrics.load import load_input
    from trackpulse.metrics.report import MetricsRun, report_of

    sources = [s.name for s in cfg.sources]
    if not sources:
        return {}
    return project_figures_of(
        report_of(MetricsRun.start(load_input(store, cfg, sources=sources), as_of=as_of, sources=sources)))


def project_figures_of(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, float]]:
    """`project_figures` of a report already built (the alert rules' last one)."""
    out: dict[tuple[str, str], dict[str, float]] = {}
    for p in report["projects"]:
        out[(p["source"], p["project"])] = {"sla_breaches_open": 0.0, "sla_at_risk": 0.0,
                                            "wip": float(p["wip"]), "defects_open": float(p["defects_open"])}
    for c in report["sla"]:
        row = out.setdefault((c["source"], c["project"]), {"sla_breaches_open": 0.0, "sla_at_risk": 0.0,
                                                           "wip": 0.0, "defects_open": 0.0})
        if c["status"] == "breached":
            row["sla_breaches_open"] += 1
        elif c["status"] == "at_risk":
            row["sla_at_risk"] += 1
    return out
