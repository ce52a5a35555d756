"""The outbox's state changes: claim due rows, count an attempt, record its outcome.

Every change is a short transaction of its own, so a crash between two leaves a row in a
state the next dispatcher understands: a claim expires with its lease (`claimed_until`), an
attempt is counted (and committed) BEFORE the message goes out, so `attempts > 0` on a
pending row means "an earlier attempt's outcome is unknown" (post-back then looks for its
marker before posting again). Claiming uses FOR UPDATE SKIP LOCKED on PostgreSQL so two
dispatchers never wait on each other; on SQLite the UPDATE's own guard (still unclaimed)
decides, writers being serialised by the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col

from trackpulse.outcomes import Failed, Outcome, RetryAfter, Sent
from trackpulse.store.db import Store
from trackpulse.store.models import Delivery

ANSWER_CHARS = 500  # what `alerts history` shows of a service's answer


def aware(ts: datetime) -> datetime:
    """SQLite hands instants back without their zone; every instant here is UTC."""
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _unclaimed(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(col(Delivery.claimed_until).is_(None), col(Delivery.claimed_until) < now)


def claim(store: Store, *, worker: str, now: datetime, lease_seconds: float, limit: int = 1000) -> list[Delivery]:
    """Claim up to `limit` due pending rows for `worker` until now + lease; committed on return."""
    with store.session() as s:
        due = (sa.select(col(Delivery.id))
               .where(col(Delivery.status) == "pending", col(Delivery.not_before) <= now, _unclaimed(now))
               .order_by(col(Delivery.not_before), col(Delivery.created_at), col(Delivery.id)).limit(limit))
        if s.get_bind().dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        ids = list(s.execute(due).scalars())
        if not ids:
            return []
        until = now + timedelta(seconds=lease_seconds)
        s.execute(sa.update(Delivery).where(col(Delivery.id).in_(ids), col(Delivery.status) == "pending",
                                            _unclaimed(now))
                  .values(claimed_by=worker, claimed_until=until, updated_at=now))
        s.commit()
        rows = s.execute(sa.select(Delivery).where(col(Delivery.id).in_(ids), col(Delivery.claimed_by) == worker,
                                                   col(Delivery.claimed_until) == until)).scalars().all()
        return sorted(rows, key=lambda d: (aware(d.created_at), d.id))


def count_attempt(store: Store, ids: Sequence[str], now: datetime, message_id: str | None = None) -> None:
    """Before sending: the attempt is on record even if the process dies mid-send."""
    with store.session() as s:
        s.execute(sa.update(Delivery).where(col(Delivery.id).in_(list(ids)))
                  .values(attempts=Delivery.attempts + 1, message_id=message_id, updated_at=now))
        s.commit()


def defer(store: Store, ids: Sequence[str], not_before: datetime, now: datetime) -> None:
    """Give rows back unsent (pacing): due again at `not_before`, no attempt counted."""
    with store.session() as s:
        s.execute(sa.update(Delivery).where(col(Delivery.id).in_(list(ids)))
                  .values(not_before=not_before, claimed_by=None, claimed_until=None, updated_at=now))
        s.commit()


def record_outcome(store: Store, ids: Sequence[str], outcome: Outcome, now: datetime) -> None:
    """Sent: done. RetryAfter: pending again from now + seconds. Failed: never retried."""
    values: dict[str, object] = {"claimed_by": None, "claimed_until": None, "updated_at": now}
    if isinstance(outcome, Sent):
        values.update(status="sent", sent_at=now, remote_id=outcome.remote_id, answer=None)
    elif isinstance(outcome, RetryAfter):
        values.update(not_before=now + timedelta(seconds=max(outcome.seconds, 0.0)),
                      answer=outcome.answer[:ANSWER_CHARS])
    elif isinstance(outcome, Failed):
        values.update(status="failed", answer=outcome.answer[:ANSWER_CHARS])
    with store.session() as s:
        s.execute(sa.update(Delivery).where(col(Delivery.id).in_(list(ids))).values(**values))
        s.commit()


def recent_sends(store: Store, channel: str, since: datetime) -> list[datetime]:
    """When the channel's messages since `since` went out, one instant per message (pacing)."""
    with store.session() as s:
        rows = s.execute(sa.select(col(Delivery.message_id), sa.func.min(col(Delivery.sent_at)))
                         .where(col(Delivery.target_kind) == "channel", col(Delivery.target) == channel,
                                col(Delivery.sent_at) >= since)
                         .group_by(col(Delivery.message_id))).all()
    return sorted(aware(at) for _, at in rows if at is not None)
