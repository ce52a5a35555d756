"""The schedule inside `trackpulse serve`: timers per process, runs decided by the store.

APScheduler 3 (in-memory jobs built from the configuration) only wakes the process; a job
store is never shared (APScheduler does not support that). On each wake-up the pure schedule
(`schedule.py`) names the firing, and the process runs it only if it wins the firing's claim
(`claims.py`). So every firing runs once across any number of instances:

- a run holds a lease on the database clock, renewed by a heartbeat thread every lease/3;
- a sweep (every few seconds) takes over runs whose holder died (lease expired) or that were
  handed back by a graceful stop; a resumed sync continues from its committed progress point
  (the connectors commit each page with its cursor);
- at start, each job's newest firing within its grace runs once (missed cron firings while
  every instance was down); older ones are dropped;
- `stop(grace)` takes no new runs, asks runs in hand to stop at their next page (a page is
  committed with its progress, so nothing is lost), hands back what did not finish in time.

After every sync the alert rules are evaluated and due deliveries dispatched.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from trackpulse.jobs import claims
from trackpulse.jobs.schedule import (
    DIGEST,
    FULL_SYNC,
    SYNC,
    Firing,
    Interval,
    JobSpec,
    jobs_from_config,
    latest_due,
    next_firing,
)

from trackpulse.config import AppConfig
from trackpulse.store.db import Store

log = logging.getLogger("trackpulse.jobs")

Clock = Callable[[], datetime]


class JobEvents(Protocol):
    """What the runner reports (the server's Prometheus telemetry implements it)."""

    def job_run(self, job: str, outcome: str, seconds: float) -> None: ...

    def job_claim_lost(self, job: str) -> None: ...

    def job_takeover(self, job: str) -> None: ...

    def sync_done(self, result: Any) -> None: ...

    def sync_failed(self, source: str) -> None: ...


class _NoEvents:
    def job_run(self, job: str, outcome: str, seconds: float) -> None:
        pass

    def job_claim_lost(self, job: str) -> None:
        pass

    def job_takeover(self, job: str) -> None:
        pass

    def sync_done(self, result: Any) -> None:
        pass

    def sync_failed(self, source: str) -> None:
        pass


class Checkpoint(Exception):
    """Raised at a page boundary when the run must stop (shutdown, or its lease was lost)."""


@dataclass
class _Active:
    spec: JobSpec
    firing: str
    stop: threading.Event = field(default_factory=threading.Event)


class _StopAware:
    """A sync Progress that stops the run at the next page once asked to (pages commit first)."""

    def __init__(self, active: _Active) -> None:
        self.active = active

    def begin(self, source: str, entity: str, total: int | None = None) -> None:
        self._check()

    def advance(self, source: str, entity: str, n: int = 1) -> None:
        self._check()

    def end(self, source: str, entity: str) -> None:
        pass

    def _check(self) -> None:
        if self.active.stop.is_set():
            raise Checkpoint(f"{self.active.spec.key} stopped at a page boundary")


def instance_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Runner:
    def __init__(self, cfg: AppConfig, store: Store, *, events: JobEvents | None = None,
                 clock: Clock = _utcnow, holder: str | None = None, sweep_seconds: float | None = None) -> None:
        self.cfg = cfg
        self.store = store
        self.events = events or _NoEvents()
        self.clock = clock
        self.holder = holder or instance_id()
        self.specs = {s.key: s for s in jobs_from_config(cfg)}
        self.lease = cfg.schedule.lease_seconds
        self.sweep_seconds = sweep_seconds or max(0.5, min(self.lease / 3, 5.0))
        self._active: dict[tuple[str, str], _Active] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._scheduler: BackgroundScheduler | None = None
        self._heartbeat: threading.Thread | None = None
        self.last_tick: float = 0.0  # time.monotonic() of the last sweep (readiness)
        # Set by `serve`: hand the evaluation after a sync to its evaluator process instead.
        self.evaluate_elsewhere: Callable[[], None] | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        sched = BackgroundScheduler(timezone="UTC", executors={
            "default": ThreadPoolExecutor(max_workers=len(self.specs) * 2 + 2)})
        defaults: dict[str, Any] = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
        for spec in self.specs.values():
            if isinstance(spec.timing, Interval):
                # Aligned to the epoch like schedule.interval_firing, so instances wake on the same slots.
                trigger: Any = IntervalTrigger(seconds=spec.timing.seconds,
                                               start_date=datetime.fromtimestamp(0, UTC), timezone=UTC)
            else:
                trigger = spec.timing.trigger()
            sched.add_job(self.wake, trigger, args=[spec.key], id=spec.key, **defaults)
        sched.add_job(self.sweep, IntervalTrigger(seconds=self.sweep_seconds), id="sweep",
                      next_run_time=datetime.now(UTC), **defaults)
        # Catch-up: each job's newest firing within its grace (a claim makes this a no-op when done).
        for spec in self.specs.values():
            sched.add_job(self.wake, args=[spec.key], id=f"start:{spec.key}", next_run_time=datetime.now(UTC),
                          **defaults)
        self._scheduler = sched
        self._heartbeat = threading.Thread(target=self._beat, name="trackpulse-heartbeat", daemon=True)
        self._heartbeat.start()
        sched.start()
        log.info("schedule started as %s: %s", self.holder, ", ".join(sorted(self.specs)) or "no jobs")

    @property
    def running(self) -> bool:
        return (self._scheduler is not None and self._scheduler.running and not self._stopping.is_set()
                and time.monotonic() - self.last_tick < max(3 * self.sweep_seconds, 10.0))

    def stop(self, grace: float | None = None) -> None:
        """Take no new runs; let runs in hand reach a page boundary; hand back the rest."""
        grace = self.cfg.schedule.shutdown_grace_seconds if grace is None else grace
        deadline = time.monotonic() + max(grace - 1.0, grace * 0.8)
        self._stopping.set()
        with self._lock:
            for a in self._active.values():
                a.stop.set()
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        while time.monotonic() < deadline:
            with self._lock:
                if not self._active:
                    break
            time.sleep(0.05)
        with self._lock:
            left = list(self._active.values())
        for a in left:  # still busy: hand it back so another instance (or the next start) resumes it
            claims.finish(self.store, a.spec.key, a.firing, a.spec.lock, self.holder, status="pending",
                          note="handed back at shutdown")
        if self._heartbeat is not None:
            self._heartbeat.join(2.0)

    # ------------------------------------------------------------------ timers

    def wake(self, job: str) -> None:
        if self._stopping.is_set():
            return
        spec = self.specs[job]
        firing = latest_due(spec, self.clock())
        if firing is None:
            return
        try:
            got = claims.claim(self.store, spec, firing, self.holder, self.lease)
        except Exception:
            log.exception("claim of %s %s failed", job, firing.key)
            return
        self._after_claim(spec, firing.key, firing.at, got)

    def sweep(self) -> None:
        """Take over runs whose holder died or handed them back, within each job's grace."""
        self.last_tick = time.monotonic()
        if self._stopping.is_set():
            return
        now = self.clock()
        try:
            found = claims.orphans(self.store, list(self.specs), {k: now - s.grace for k, s in self.specs.items()})
            for job, firing in found:
                if self._stopping.is_set():
                    return
                spec = self.specs[job]
                got = claims.take(self.store, spec, job, firing, self.holder, self.lease)
                self._after_claim(spec, firing, None, got)
        except Exception:
            log.exception("schedule sweep failed")

    def _after_claim(self, spec: JobSpec, firing: str, at: datetime | None, got: claims.Claim) -> None:
        if got.outcome == claims.LOST:
            self.events.job_claim_lost(spec.key)
            return
        if got.outcome == claims.BUSY:
            log.info("%s %s waits: %s is held by another run", spec.key, firing, spec.lock)
            return
        if got.takeover:
            self.events.job_takeover(spec.key)
            log.warning("%s %s taken over from a holder whose lease expired", spec.key, firing)
        self._execute(spec, firing)

    def _beat(self) -> None:
        while True:
            with self._lock:
                active = list(self._active.values())
            if self._stopping.is_set() and not active:
                return
            for a in active:
                try:
                    if not claims.renew(self.store, a.spec.key, a.firing, a.spec.lock, self.holder, self.lease):
                        log.warning("%s %s: lease lost, stopping the run", a.spec.key, a.firing)
                        a.stop.set()
                except Exception:
                    log.warning("lease renewal of %s failed; retrying", a.spec.key, exc_info=True)
            time.sleep(min(self.lease / 3, 5.0))

    # ------------------------------------------------------------------ runs

    def _execute(self, spec: JobSpec, firing: str) -> None:
        active = _Active(spec, firing)
        with self._lock:
            self._active[(spec.key, firing)] = active
        if self._stopping.is_set():
            active.stop.set()
        t0 = time.perf_counter()
        status, error, outcome = "done", None, "ok"
        try:
            self._body(spec, firing, active)
        except Checkpoint as exc:
            status, outcome, error = "pending", "checkpointed", None
            log.info("%s", exc)
        except Exception as exc:  # noqa: BLE001 - any failure of a run is recorded on its claim row
            status, outcome = "failed", "failed"
            one_line = getattr(exc, "one_line", None)
            error = one_line() if callable(one_line) else " ".join(f"{type(exc).__name__}: {exc}".split())
            log.warning("%s %s failed: %s", spec.key, firing, error)
        finally:
            seconds = time.perf_counter() - t0
            try:
                claims.finish(self.store, spec.key, firing, spec.lock, self.holder, status=status, error=error)
            finally:
                with self._lock:
                    self._active.pop((spec.key, firing), None)
            self.events.job_run(spec.key, outcome, seconds)
        if spec.kind in (SYNC, FULL_SYNC) and status == "done":
            self.alerts()

    def _body(self, spec: JobSpec, firing: str, active: _Active) -> None:
        if spec.kind in (SYNC, FULL_SYNC):
            from trackpulse.jobs.sync import sync_source

            try:
                result = sync_source(self.store, self.cfg.source(spec.target), full=spec.kind == FULL_SYNC,
                                     progress=_StopAware(active))
            except Checkpoint:
                raise
            except Exception:
                self.events.sync_failed(spec.target)
                raise
            self.events.sync_done(result)
            log.info("%s %s: %d items, %d requests, %.1f s", spec.key, firing, result.items, result.requests,
                     result.seconds)
        elif spec.kind == DIGEST:
            from trackpulse.digests.send import send_digest

            with self.store.session() as s:
                from trackpulse.store.models import JobRun

                row = s.get(JobRun, (spec.key, firing))
                assert row is not None
                at = claims.aware(row.scheduled_at)
            assert at is not None
            send_digest(self.cfg, self.store, spec.target, scheduled_for=at)

    def alerts(self) -> None:
        """Evaluate the rules and dispatch what is due (every instance may; the ledger and the
        outbox claims make each episode and each delivery happen once)."""
        if not self.cfg.alerts.rules:
            return
        if self.evaluate_elsewhere is not None:
            self.evaluate_elsewhere()
            return
        try:
            from trackpulse.alerts import evaluate_and_dispatch

            evaluate_and_dispatch(self.cfg, self.store)
        except Exception:
            log.exception("alert evaluation failed")


def describe(cfg: AppConfig, store: Store, now: datetime | None = None) -> list[dict[str, Any]]:
    """Per job: the last run, the next one, who holds it, the last error (`trackpulse status`)."""
    now = now or datetime.now(UTC)
    rows = claims.job_rows(store)
    out = []
    for spec in jobs_from_config(cfg):
        mine = [r for r in rows if r.job == spec.key]
        last = mine[-1] if mine else None
        failed = [r for r in mine if r.error]
        holder = next((r.holder for r in reversed(mine) if r.status == "running"), None)
        out.append({
            "job": spec.key, "kind": spec.kind, "target": spec.target,
            "last_run": _iso(claims.aware(last.started_at or last.scheduled_at)) if last else None,
            "last_firing": last.firing if last else None,
            "last_status": last.status if last else None,
            "next_run": _iso(next_firing(spec, now)),
            "holder": holder,
            "last_error": failed[-1].error if failed else None,
            "runs": len(mine),
            "takeovers": sum(r.takeovers for r in mine),
        })
    return out


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


__all__ = ["Checkpoint", "Firing", "JobEvents", "Runner", "describe", "instance_id"]
