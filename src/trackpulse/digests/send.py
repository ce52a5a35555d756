"""Sending a digest once per firing: claim (digest, scheduled local time) in `digest_firing`
with `insert_once`, then hand one message per channel to a delivery function.

A firing's identity is its scheduled LOCAL wall time in the digest's timezone, to the minute:
the October daylight-saving repeat of 02:30 (two UTC instants) is one firing, and so are two
`serve` instances or a restart that fire the same schedule. The claim commits before anything
is sent, so a crash after it loses that firing rather than sending it twice (the outbox, once
wired, makes the hand-over itself durable).

`deliver` is the seam to the alerts engineer's outbox (trackpulse.delivery): it receives the
channel's config, the message and a stable delivery id, and answers with an Outcome. Until the
outbox lands, `deliver_now` makes one attempt through the channels package.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from trackpulse.channels.base import Message
from trackpulse.config import AppConfig, ChannelConfig
from trackpulse.digests.build import DigestData, build_digest
from trackpulse.digests.content import build_content
from trackpulse.digests.messages import channel_messages
from trackpulse.errors import TrackpulseError
from trackpulse.outcomes import Failed, Outcome, RetryAfter, Sent
from trackpulse.store.db import Store
from trackpulse.store.models import DigestFiring
from trackpulse.store.writer import insert_once

Deliver = Callable[[ChannelConfig, Message, str], Outcome]


class DigestFailed(TrackpulseError):
    """A digest could not be delivered to one of its channels (exit 1)."""


@dataclass
class DigestSendResult:
    digest: str
    scheduled_local: str
    sent: bool  # False: this firing was already claimed (by us earlier or by another instance)
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    @property
    def failed(self) -> dict[str, Outcome]:
        return {k: v for k, v in self.outcomes.items() if not isinstance(v, Sent)}


def firing_key(scheduled_for: datetime, timezone: str) -> str:
    """The firing's local wall time to the minute: one key for both instants of a DST repeat."""
    if scheduled_for.tzinfo is None:
        raise ValueError("scheduled_for must be timezone-aware")
    return scheduled_for.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%dT%H:%M")


def deliver_now(channel: ChannelConfig, message: Message, delivery_id: str) -> Outcome:
    """One attempt through the channels package (`trackpulse.channels.open_channel`); e-mail
    falls back to a plain SMTP submission while that package has no e-mail module."""
    try:
        from trackpulse.channels import open_channel  # type: ignore[attr-defined]
    except ImportError:
        open_channel = None
    if open_channel is not None:
        ch = open_channel(channel)
        try:
            outcome: Outcome = ch.send(message, delivery_id=delivery_id)
            return outcome
        finally:
            ch.close()
    if channel.kind == "email":
        from trackpulse.digests.smtp import submit

        return submit(channel, message.body)
    return Failed(f"channel {channel.name}: no {channel.kind} channel module is installed")


def _open_channels(channels: list[ChannelConfig]) -> dict[str, object]:
    """The channels package's channel objects for chat kinds, when it provides them (their
    render_markdown makes the body); empty until that package lands."""
    try:
        from trackpulse.channels import open_channel  # type: ignore[attr-defined]
    except ImportError:
        return {}
    return {c.name: open_channel(c) for c in channels if c.kind != "email"}


def send_digest(cfg: AppConfig, store: Store, name: str, *, scheduled_for: datetime,
                as_of: datetime | None = None, deliver: Deliver = deliver_now,
                data: DigestData | None = None, now: datetime | None = None) -> DigestSendResult:
    """Send the digest `name` for the firing scheduled at `scheduled_for`, unless that firing
    was already claimed. `as_of` (default `scheduled_for`) is the end of the digest's window."""
    digest = cfg.digest(name)
    channels = [cfg.channel(c) for c in digest.channels]
    key = firing_key(scheduled_for, digest.timezone)
    as_of = (as_of or scheduled_for).astimezone(UTC)
    claimed_at = (now or datetime.now(UTC)).astimezone(UTC)
    with store.transaction() as s:
        won = insert_once(s, DigestFiring, {
            "digest": name, "scheduled_local": key, "timezone": digest.timezone,
            "scheduled_utc": scheduled_for.astimezone(UTC), "as_of": as_of, "claimed_at": claimed_at,
            "finished_at": None, "outcome": None})
    if not won:
        return DigestSendResult(name, key, sent=False)
    data = data or build_digest(cfg, store, name, as_of=as_of)
    content = build_content(data)
    opened = _open_channels(channels)
    try:
        messages = channel_messages(content, channels, when=claimed_at, opened=opened)
    finally:
        for ch in opened.values():
            ch.close()  # type: ignore[attr-defined]
    outcomes: dict[str, Outcome] = {}
    for ch in channels:
        outcomes[ch.name] = deliver(ch, messages[ch.name], f"digest:{name}:{key}:{ch.name}")
    with store.transaction() as s:
        row = s.get(DigestFiring, (name, key))
        if row is not None:
            row.finished_at = datetime.now(UTC)
            row.outcome = "; ".join(f"{n}={_outcome_text(o)}" for n, o in outcomes.items())[:2000]
    return DigestSendResult(name, key, sent=True, outcomes=outcomes)


def _outcome_text(o: Outcome) -> str:
    if isinstance(o, Sent):
        return "sent"
    if isinstance(o, RetryAfter):
        return f"retry after {o.seconds:.0f} s: {o.answer}"
    return f"failed: {o.answer}"
