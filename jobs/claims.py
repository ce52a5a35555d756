"""Claims and leases: which `serve` instance runs a firing, on the database's word and clock.

- `claim` inserts the firing's `job_run` row with `insert_once` (the first instance wins; a
  repeated wake-up, a restart or another instance finds the row and does nothing), then takes
  it: holder and `lease_until` (database clock + lease) are set by an UPDATE whose WHERE only
  matches a row nobody holds or whose lease has expired, so two takers cannot both match.
  The same transaction takes the job's lock row (`job_lease`, a source's cursors); when
  another run holds the lock the row stays pending for a later sweep.
- `renew` extends both leases (the heartbeat); False means this instance lost them and must stop.
- `finish` records the outcome and frees the lock; `release` puts an unfinished run back to
  pending (graceful stop) so another instance, or the next start, resumes it.
- `orphans` lists runs a sweep may take over: pending and unheld, or held with an expired lease.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col
from trackpulse.jobs.schedule import Firing, JobSpec

from trackpulse.store.db import Store
from trackpulse.store.models import JobLease, JobRun
from trackpulse.store.writer import insert_once

WON, LOST, BUSY = "won", "lost", "busy"
OPEN = ("pending", "running")


def aware(ts: datetime | None) -> datetime | None:
    """SQLite hands instants back without their zone; every instant here is UTC."""
    return None if ts is None else (ts if ts.tzinfo else ts.replace(tzinfo=UTC))


def db_now(session: Session) -> datetime:
    """The database's clock on PostgreSQL (every instance agrees on it); SQLite is one host's file."""
    if session.get_bind().dialect.name == "postgresql":
        value = session.execute(sa.text("SELECT clock_timestamp()")).scalar_one()
        return aware(value)  # type: ignore[return-value]
    return datetime.now(UTC)


@dataclass
class Claim:
    outcome: str  # won | lost | busy
    takeover: bool = False  # the run had a holder whose lease expired


def claim(store: Store, spec: JobSpec, firing: Firing, holder: str, lease_seconds: float) -> Claim:
    with store.transaction() as s:
        insert_once(s, JobRun, {"job": firing.job, "firing": firing.key, "kind": spec.kind,
                                "scheduled_at": firing.at, "status": "pending", "holder": None,
                                "lease_until": None, "attempts": 0, "takeovers": 0})
    return take(store, spec, firing.job, firing.key, holder, lease_seconds)


def take(store: Store, spec: JobSpec, job: str, firing: str, holder: str, lease_seconds: float) -> Claim:
    """Take an open run nobody holds (or whose holder's lease expired) and its lock, atomically."""
    with store.session() as s:
        now = db_now(s)
        until = now + timedelta(seconds=lease_seconds)
        row = s.execute(sa.select(JobRun.holder).where(col(JobRun.job) == job, col(JobRun.firing) == firing)
                        ).first()
        prior = row[0] if row else None
        free = sa.and_(col(JobRun.job) == job, col(JobRun.firing) == firing, col(JobRun.status).in_(OPEN),
                       sa.or_(col(JobRun.holder).is_(None), col(JobRun.lease_until) < now))
        took = s.execute(sa.update(JobRun).where(free).values(
            holder=holder, lease_until=until, status="running", claimed_at=now,
            started_at=sa.func.coalesce(col(JobRun.started_at), now), attempts=col(JobRun.attempts) + 1,
            takeovers=col(JobRun.takeovers) + (1 if prior is not None else 0)).returning(col(JobRun.job))).first()
        if took is None:
            s.rollback()
            return Claim(LOST)
        if not _lock(s, spec.lock, holder, job, firing, now, until):
            s.rollback()  # the run stays pending and unheld: a sweep takes it when the lock frees
            return Claim(BUSY)
        s.commit()
        return Claim(WON, takeover=prior is not None)


def _lock(s: Session, lock: str, holder: str, job: str, firing: str, now: datetime, until: datetime) -> bool:
    insert: Any = postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
    table = JobLease.__table__  # type: ignore[attr-defined]
    stmt = insert(table).values(lock=lock, holder=holder, job=job, firing=firing, lease_until=until)
    stmt = stmt.on_conflict_do_update(
        index_elements=["lock"],
        set_={"holder": stmt.excluded.holder, "job": stmt.excluded.job, "firing": stmt.excluded.firing,
              "lease_until": stmt.excluded.lease_until},
        where=sa.or_(table.c.holder == holder, table.c.lease_until < now),
    ).returning(table.c.lock)
    return s.execute(stmt).first() is not None


def renew(store: Store, job: str, firing: str, lock: str, holder: str, lease_seconds: float) -> bool:
    with store.session() as s:
        now = db_now(s)
        until = now + timedelta(seconds=lease_seconds)
        mine = s.execute(sa.update(JobRun).where(
            col(JobRun.job) == job, col(JobRun.firing) == firing, col(JobRun.holder) == holder,
            col(JobRun.status) == "running").values(lease_until=until).returning(col(JobRun.job))).first()
        s.execute(sa.update(JobLease).where(col(JobLease.lock) == lock, col(JobLease.holder) == holder)
                  .values(lease_until=until))
        s.commit()
        return mine is not None


def finish(store: Store, job: str, firing: str, lock: str, holder: str, *, status: str,
           error: str | None = None, note: str | None = None) -> bool:
    """Close the run (done | failed) or hand it back (`status="pending"`); frees the lock."""
    with store.session() as s:
        now = db_now(s)
        values: dict[str, Any] = {"status": status, "lease_until": None, "error": error, "note": note}
        if status == "pending":
            values["holder"] = None
        else:
            values["finished_at"] = now
        mine = s.execute(sa.update(JobRun).where(
            col(JobRun.job) == job, col(JobRun.firing) == firing, col(JobRun.holder) == holder)
            .values(**values).returning(col(JobRun.job))).first()
        s.execute(sa.delete(JobLease).where(col(JobLease.lock) == lock, col(JobLease.holder) == holder))
        s.commit()
        return mine is not None


def orphans(store: Store, jobs: list[str], not_before: dict[str, datetime]) -> list[tuple[str, str]]:
    """Open runs of `jobs` nobody holds or whose lease expired, not older than each job's grace."""
    if not jobs:
        return []
    with store.session() as s:
        now = db_now(s)
        rows = s.execute(sa.select(JobRun.job, JobRun.firing, JobRun.scheduled_at).where(
            col(JobRun.job).in_(jobs), col(JobRun.status).in_(OPEN),
            sa.or_(col(JobRun.holder).is_(None), col(JobRun.lease_until) < now))
            .order_by(col(JobRun.scheduled_at))).all()
    return [(j, f) for j, f, at in rows if aware(at) >= not_before[j]]  # type: ignore[operator]


def job_rows(store: Store) -> list[JobRun]:
    with store.session() as s:
        return list(s.execute(sa.select(JobRun).order_by(col(JobRun.job), col(JobRun.scheduled_at))).scalars())
