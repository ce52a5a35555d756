"""Sending a digest once per firing, through the alerts outbox.

A firing is identified by (digest, scheduled LOCAL wall time in the digest's timezone, to the
minute): the October daylight-saving repeat of 02:30 (two UTC instants) is one firing, and so
are a restart and two `serve` instances firing the same schedule. `send_digest` renders every
channel's message first, then in ONE transaction claims the firing (`insert_once` on
`digest_firing`) and puts the ready-made messages in the outbox (`delivery` rows of kind
"message", see `trackpulse.delivery.prepared`). Whoever loses the claim sends nothing; a crash
after the commit leaves the messages pending in the outbox, where the next dispatcher pass
(this call's, another instance's, `trackpulse alerts`) sends them with the outbox's retries and
backoff; a permanent refusal is marked failed and named by `trackpulse alerts history`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa
from sqlmodel import col

from trackpulse.config import AppConfig
from trackpulse.delivery import prepared
from trackpulse.delivery.dispatcher import Dispatcher
from trackpulse.digests.build import DigestData, build_digest
from trackpulse.digests.content import build_content
from trackpulse.digests.messages import channel_messages
from trackpulse.errors import TrackpulseError
from trackpulse.outcomes import Failed, Outcome, RetryAfter, Sent
from trackpulse.store.db import Store
from trackpulse.store.models import DigestFiring
from trackpulse.store.writer import insert_once

# Drains the outbox once (the digest's rows among whatever else is due).
Deliver = Callable[[AppConfig, Store], None]


class DigestFailed(TrackpulseError):
    """A digest could not be delivered to one of its channels (exit 1)."""


@dataclass
class DigestSendResult:
    digest: str
    scheduled_local: str
    sent: bool  # False: this firing was already claimed (by us earlier or by another instance)
    # Per channel: Sent, Failed, or RetryAfter while the message waits in the outbox.
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    @property
    def failed(self) -> dict[str, Outcome]:
        return {k: v for k, v in self.outcomes.items() if isinstance(v, Failed)}

    @property
    def pending(self) -> dict[str, Outcome]:
        return {k: v for k, v in self.outcomes.items() if isinstance(v, RetryAfter)}


def firing_key(scheduled_for: datetime, timezone: str) -> str:
    """The firing's local wall time to the minute: one key for both instants of a DST repeat."""
    if scheduled_for.tzinfo is None:
        raise ValueError("scheduled_for must be timezone-aware")
    return scheduled_for.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%dT%H:%M")


def firing_subject(name: str, key: str) -> str:
    """What the outbox rows of one firing carry as their subject (`alert_id` column)."""
    return f"digest:{name}:{key}"


def dispatch_now(cfg: AppConfig, store: Store) -> None:
    """One dispatcher pass over the outbox with a client of its own."""
    with httpx.Client() as client:
        dispatcher = Dispatcher(cfg, store, client)
        try:
            dispatcher.run_once()
        finally:
            dispatcher.close()


def _claimed(store: Store, name: str, key: str) -> bool:
    with store.session() as s:
        return s.execute(sa.select(col(DigestFiring.digest)).where(
            col(DigestFiring.digest) == name, col(DigestFiring.scheduled_local) == key)).first() is not None


def send_digest(cfg: AppConfig, store: Store, name: str, *, scheduled_for: datetime,
                as_of: datetime | None = None, deliver: Deliver = dispatch_now,
                data: DigestData | None = None, now: datetime | None = None) -> DigestSendResult:
    """Send the digest `name` for the firing scheduled at `scheduled_for`, unless that firing
    was already claimed. `as_of` (default `scheduled_for`) is the end of the digest's window;
    `data` a digest built already (the CLI's); `deliver` drains the outbox once."""
    digest = cfg.digest(name)
    channels = [cfg.channel(c) for c in digest.channels]
    key = firing_key(scheduled_for, digest.timezone)
    subject = firing_subject(name, key)
    ids = {ch.name: f"{subject}:{ch.name}" for ch in channels}
    if _claimed(store, name, key):  # cheap early exit; the claim below is what decides
        return _already_claimed(cfg, store, name, key, ids, deliver)
    as_of = (as_of or scheduled_for).astimezone(UTC)
    claimed_at = (now or datetime.now(UTC)).astimezone(UTC)
    data = data or build_digest(cfg, store, name, as_of=as_of)
    messages = channel_messages(build_content(data), channels, when=claimed_at)
    with store.transaction() as s:
        won = insert_once(s, DigestFiring, {
            "digest": name, "scheduled_local": key, "timezone": digest.timezone,
            "scheduled_utc": scheduled_for.astimezone(UTC), "as_of": as_of, "claimed_at": claimed_at,
            "finished_at": None, "outcome": None})
        if won:
            for ch in channels:
                prepared.enqueue(s, delivery_id=ids[ch.name], subject=subject, channel=ch.name,
                                 message=messages[ch.name], now=claimed_at)
    if not won:
        return _already_claimed(cfg, store, name, key, ids, deliver)
    if channels:
        deliver(cfg, store)
    states = prepared.outcomes(store, list(ids.values()), datetime.now(UTC))
    outcomes: dict[str, Outcome] = {}
    for channel, delivery_id in ids.items():
        state = states[delivery_id]
        outcomes[channel] = state if state is not None else Failed(f"delivery {delivery_id} is not in the outbox")
    with store.transaction() as s:
        row = s.get(DigestFiring, (name, key))
        if row is not None:
            if not any(isinstance(o, RetryAfter) for o in outcomes.values()):
                row.finished_at = datetime.now(UTC)
            row.outcome = "; ".join(f"{n}={outcome_text(o)}" for n, o in outcomes.items())[:2000] or None
    return DigestSendResult(name, key, sent=True, outcomes=outcomes)


def _already_claimed(cfg: AppConfig, store: Store, name: str, key: str, ids: dict[str, str],
                     deliver: Deliver) -> DigestSendResult:
    """Nothing new is sent. If the claimer died before its messages went out (they wait in the
    outbox), this caller's dispatcher pass sends them: the outbox's claim keeps that to once."""
    states = prepared.outcomes(store, list(ids.values()), datetime.now(UTC))
    if any(isinstance(o, RetryAfter) and o.seconds <= 0 for o in states.values()):
        deliver(cfg, store)
    return DigestSendResult(name, key, sent=False)


def outcome_text(o: Outcome) -> str:
    if isinstance(o, Sent):
        return "sent"
    if isinstance(o, RetryAfter):
        return f"pending, next try in {o.seconds:.0f} s: {o.answer}"
    return f"failed: {o.answer}"
