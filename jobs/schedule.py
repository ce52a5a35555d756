"""What is scheduled and when: the jobs the configuration asks for and their due firings.

Pure: no store, no threads, no clock of its own (every function takes `now`). The timer
(APScheduler, in `runner.py`) only wakes the process; which firing a wake-up stands for is
decided here, so every instance, every restart and every test computes the same firing keys:

- interval jobs (a source's incremental sync) fire on slots aligned to the epoch,
  `floor(epoch / interval)`; the firing key is the slot's start instant, so instances started
  at different moments agree on the slots;
- cron jobs (the weekly full sync, digests) fire at the cron's times in the job's time zone;
  the firing key is the LOCAL wall time (`2026-10-25T02:30`), so the fall-back hour's second
  02:30 is the same firing and a digest is sent once. A wall time that does not exist
  (spring-forward) fires once, at the instant APScheduler's CronTrigger gives it (an hour late);
- a firing is due while `now - scheduled instant <= misfire grace`; past it, it is dropped.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

from trackpulse.config import AppConfig, cron_trigger

SYNC, FULL_SYNC, DIGEST, ALERTS = "sync", "full_sync", "digest", "alerts"


@dataclass(frozen=True)
class Interval:
    seconds: float


@dataclass(frozen=True)
class Cron:
    expression: str
    timezone: str

    def trigger(self) -> CronTrigger:
        trigger: CronTrigger = cron_trigger(self.expression, self.timezone)
        return trigger

    @property
    def has_seconds(self) -> bool:
        return len(self.expression.split()) == 6


@dataclass(frozen=True)
class JobSpec:
    """One scheduled job: `key` names it in the claim table, `lock` is the resource its runs
    must never share (a source's cursors: its incremental and its full sync share one)."""

    key: str
    kind: str
    target: str  # the source or digest name
    timing: Interval | Cron
    lock: str
    grace: timedelta


@dataclass(frozen=True)
class Firing:
    job: str
    key: str  # the claim key: local wall time (cron) or slot start (interval)
    at: datetime  # the scheduled instant, UTC


def jobs_from_config(cfg: AppConfig) -> list[JobSpec]:
    grace = timedelta(minutes=cfg.schedule.misfire_grace_minutes)
    specs: list[JobSpec] = []
    for src in cfg.sources:
        minutes = src.sync_every_minutes or cfg.schedule.sync_every_minutes
        lock = f"sync:{src.name}"
        # An incremental sync missed by more than one interval is simply the next slot's work.
        specs.append(JobSpec(f"sync:{src.name}", SYNC, src.name, Interval(round(minutes * 60, 3)), lock,
                             timedelta(seconds=minutes * 60)))
        if cfg.schedule.full_sync_cron:
            specs.append(JobSpec(f"full-sync:{src.name}", FULL_SYNC, src.name,
                                 Cron(cfg.schedule.full_sync_cron, cfg.schedule.timezone), lock, grace))
    for d in cfg.digests:
        specs.append(JobSpec(f"digest:{d.name}", DIGEST, d.name, Cron(d.cron, d.timezone), f"digest:{d.name}",
                             grace))
    return specs


def interval_firing(spec: JobSpec, now: datetime) -> Firing:
    """The slot `now` falls in."""
    assert isinstance(spec.timing, Interval)
    step = spec.timing.seconds
    slot = math.floor(now.timestamp() / step)
    at = datetime.fromtimestamp(slot * step, UTC)
    return Firing(spec.key, _utc_key(at), at)


def _utc_key(at: datetime) -> str:
    text = at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return text.replace(".000Z", "Z")


def _local_key(at: datetime, seconds: bool = False) -> str:
    # `at` comes from the trigger in the job's zone. A non-existent spring-forward time keeps
    # the cron's wall-clock fields (02:30) with the pre-change offset: the key wants exactly those.
    return f"{at:%Y-%m-%dT%H:%M:%S}" if seconds else f"{at:%Y-%m-%dT%H:%M}"


def cron_firings(spec: JobSpec, since: datetime, until: datetime) -> Iterator[Firing]:
    """Firings with `since < at <= until`, in order, one per local wall time."""
    assert isinstance(spec.timing, Cron)
    trigger = spec.timing.trigger()
    last_key: str | None = None
    probe = since + timedelta(microseconds=1)
    while True:
        nxt = trigger.get_next_fire_time(None, probe)
        if nxt is None or nxt.astimezone(UTC) > until:
            return
        key = _local_key(nxt, spec.timing.has_seconds)
        if key != last_key:  # the fall-back hour's repeat of a wall time is the same firing
            yield Firing(spec.key, key, nxt.astimezone(UTC))
        last_key = key
        # Stepped on the UTC line: wall-clock arithmetic on a folded time (the fall-back repeat)
        # hands APScheduler the same instant again, and it answers with it forever.
        probe = nxt.astimezone(UTC) + timedelta(microseconds=1)


def latest_due(spec: JobSpec, now: datetime) -> Firing | None:
    """The firing a wake-up at `now` stands for: the newest one not past its grace."""
    if isinstance(spec.timing, Interval):
        return interval_firing(spec, now)
    found = None
    for f in cron_firings(spec, now - spec.grace, now):
        found = f
    return found


def next_firing(spec: JobSpec, now: datetime) -> datetime:
    """The next scheduled instant after `now` (for `trackpulse status`)."""
    if isinstance(spec.timing, Interval):
        step = spec.timing.seconds
        return datetime.fromtimestamp((math.floor(now.timestamp() / step) + 1) * step, UTC)
    nxt = spec.timing.trigger().get_next_fire_time(None, now + timedelta(microseconds=1))
    assert nxt is not None
    return nxt.astimezone(UTC)
