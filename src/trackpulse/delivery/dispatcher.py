"""The dispatcher: due outbox rows out to channels and trackers, paced and grouped.

One `run_once` claims the due rows, then per channel packs as many alerts into a message as
fit under the channel's `max_message_bytes` and sends it if the channel's pacing allows
(`min_interval` since its last message and at most `per_minute` messages in any 60 s, both
read back from the outbox's `sent_at`, so pacing holds across runs and processes). Rows that
must wait are deferred through `not_before`, never slept on. Post-back rows (`comment`,
`label`) go one by one through the source's post-back class. Time comes from an injectable
clock so tests can run minutes of pacing in no time.
"""

from __future__ import annotations

import importlib
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx
import sqlalchemy as sa
from sqlmodel import col

from trackpulse.channels.base import AlertView, Channel
from trackpulse.config import AppConfig, ChannelConfig, JiraSourceConfig, SourceConfig
from trackpulse.delivery import outbox, prepared
from trackpulse.delivery.alert_view import view_of
from trackpulse.errors import ConfigError
from trackpulse.outcomes import Failed, Outcome, RetryAfter, Sent
from trackpulse.store.db import Store
from trackpulse.store.models import Alert, Delivery

ChannelFactory = Callable[[ChannelConfig, httpx.Client], Channel]
Clock = Callable[[], datetime]


class PostBack(Protocol):
    def post_comment(self, key: str, segments: Sequence[tuple[str, bool]], marker: str, *,
                     check_first: bool) -> Outcome: ...

    def add_label(self, key: str, label: str) -> Outcome: ...


PostBackFactory = Callable[[SourceConfig, httpx.Client], PostBack]


def default_channel(cfg: ChannelConfig, client: httpx.Client) -> Channel:
    # Looked up when first needed: the channel modules are their own package, built beside this one.
    open_channel = importlib.import_module("trackpulse.channels").open_channel
    channel: Channel = open_channel(cfg, client=client)
    return channel


def default_postback(cfg: SourceConfig, client: httpx.Client) -> PostBack:
    if isinstance(cfg, JiraSourceConfig):
        from trackpulse.connectors.jira.postback import JiraPostBack

        return JiraPostBack.detect(cfg, client, None)
    from trackpulse.connectors.trello.postback import TrelloPostBack

    return TrelloPostBack(cfg, client)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class DispatchResult:
    sent: int = 0  # deliveries
    messages: int = 0  # channel messages and post-back calls made
    retry: int = 0
    failed: int = 0
    deferred: int = 0
    next_due: datetime | None = None  # the earliest instant a deferred row becomes due


@dataclass
class Dispatcher:
    cfg: AppConfig
    store: Store
    http: httpx.Client
    clock: Clock = _utcnow
    channel_factory: ChannelFactory = default_channel
    postback_factory: PostBackFactory = default_postback
    lease_seconds: float = 120.0
    worker: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}")
    _channels: dict[str, Channel] = field(default_factory=dict)
    _postbacks: dict[str, PostBack] = field(default_factory=dict)

    def close(self) -> None:
        for ch in self._channels.values():
            ch.close()
        self._channels.clear()

    def _channel(self, name: str) -> Channel:
        if name not in self._channels:
            self._channels[name] = self.channel_factory(self.cfg.channel(name), self.http)
        return self._channels[name]

    def run_once(self) -> DispatchResult:
        now = self.clock()
        result = DispatchResult()
        rows = outbox.claim(self.store, worker=self.worker, now=now, lease_seconds=self.lease_seconds)
        if not rows:
            return result
        ready = [r for r in rows if r.target_kind == prepared.TARGET_KIND]
        rows = [r for r in rows if r.target_kind != prepared.TARGET_KIND]
        for r in ready:
            self._send_prepared(r, result)
        if not rows:
            return result
        with self.store.session() as s:
            alerts = {a.id: a for a in s.execute(sa.select(Alert).where(
                col(Alert.id).in_(list({r.alert_id for r in rows})))).scalars()}
        by_channel: dict[str, list[Delivery]] = {}
        for r in rows:
            if r.target_kind == "channel":
                by_channel.setdefault(r.target, []).append(r)
            else:
                self._post_back(r, alerts[r.alert_id], result)
        for name, group in sorted(by_channel.items()):
            self._send_channel(name, group, alerts, result)
        return result

    def _note(self, result: DispatchResult, outcome: Outcome, n: int) -> None:
        if isinstance(outcome, Sent):
            result.sent += n
        elif isinstance(outcome, RetryAfter):
            result.retry += n
        else:
            result.failed += n

    def _next_slot(self, name: str, channel: Channel, now: datetime) -> datetime:
        """The earliest instant the channel's next message may go out."""
        sends = outbox.recent_sends(self.store, name, now - timedelta(seconds=60))
        slot = now
        if sends:
            slot = max(slot, sends[-1] + timedelta(seconds=channel.min_interval))
        if channel.per_minute is not None and len(sends) >= channel.per_minute:
            slot = max(slot, sends[-channel.per_minute] + timedelta(seconds=60))
        return slot

    def _send_channel(self, name: str, rows: list[Delivery], alerts: dict[str, Alert],
                      result: DispatchResult) -> None:
        channel = self._channel(name)
        lang = self.cfg.channel(name).language
        while rows:
            now = self.clock()
            slot = self._next_slot(name, channel, now)
            if slot > now:
                outbox.defer(self.store, [r.id for r in rows], slot, now)
                result.deferred += len(rows)
                result.next_due = slot if result.next_due is None else min(result.next_due, slot)
                return
            batch, views = self._pack(channel, rows, alerts, lang)
            rows = rows[len(batch):]
            message = channel.render(views, lang)
            ids = [r.id for r in batch]
            outbox.count_attempt(self.store, ids, now, message_id=uuid.uuid4().hex)
            outcome = channel.send(message, delivery_id=ids[0])
            outbox.record_outcome(self.store, ids, outcome, self.clock())
            result.messages += 1
            self._note(result, outcome, len(ids))
            if not isinstance(outcome, Sent) and rows:
                # The service is refusing or throttling now: the rest waits its turn as well.
                wait = outcome.seconds if isinstance(outcome, RetryAfter) else channel.min_interval
                later = self.clock() + timedelta(seconds=wait)
                outbox.defer(self.store, [r.id for r in rows], later, self.clock())
                result.deferred += len(rows)
                return

    def _send_prepared(self, row: Delivery, result: DispatchResult) -> None:
        """A ready-made message (a digest's): paced like the channel's alerts, sent as stored."""
        now = self.clock()
        try:
            channel = self._channel(row.target)
        except ConfigError as exc:  # the channel left the configuration since: failed for good, named
            outbox.count_attempt(self.store, [row.id], now)
            outcome: Outcome = Failed(f"channel {row.target!r}: {exc}")
        else:
            slot = self._next_slot(row.target, channel, now)
            if slot > now:
                outbox.defer(self.store, [row.id], slot, now)
                result.deferred += 1
                result.next_due = slot if result.next_due is None else min(result.next_due, slot)
                return
            outbox.count_attempt(self.store, [row.id], now, message_id=row.id)
            outcome = channel.send(prepared.message_of(row.payload or {}), delivery_id=row.id)
        outbox.record_outcome(self.store, [row.id], outcome, self.clock())
        result.messages += 1
        self._note(result, outcome, 1)

    def _pack(self, channel: Channel, rows: list[Delivery], alerts: dict[str, Alert],
              lang: Any) -> tuple[list[Delivery], list[AlertView]]:
        """The longest prefix of `rows` whose message fits (at least one: the channel cuts it).
        A message only grows with more alerts, so the prefix is found by galloping (1, 2, 4, …)
        then bisecting: a few renders, and views built only for about twice what fits, however
        many rows are waiting (10,000 breaches to one channel cost a handful of renders)."""
        views: list[AlertView] = []

        def fits(n: int) -> bool:
            while len(views) < n:
                views.append(view_of(alerts[rows[len(views)].alert_id], self.cfg))
            return channel.render(views[:n], lang).size <= channel.max_message_bytes

        n = len(rows)
        lo = hi = 1  # a prefix of `lo` is what goes out (one alert always does: the channel cuts it)
        while hi < n:
            bigger = min(2 * hi, n)
            if not fits(bigger):
                hi = bigger - 1
                break
            lo = hi = bigger
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(mid):
                lo = mid
            else:
                hi = mid - 1
        fits(lo)
        return rows[:lo], views[:lo]

    def _post_back(self, row: Delivery, alert: Alert, result: DispatchResult) -> None:
        now = self.clock()
        src = next((s for s in self.cfg.sources if s.name == row.target), None)
        key = alert.item if isinstance(src, JiraSourceConfig) else alert.item_id
        if src is None or key is None:
            outbox.count_attempt(self.store, [row.id], now)
            outcome: Outcome = Failed(f"post-back to {row.target!r}: no such source or no item in alert")
        else:
            if src.name not in self._postbacks:
                self._postbacks[src.name] = self.postback_factory(src, self.http)
            pb = self._postbacks[src.name]
            payload = row.payload or {}
            check_first = row.attempts > 0  # an earlier attempt's outcome is unknown
            outbox.count_attempt(self.store, [row.id], now)
            if row.target_kind == "comment":
                segments = [(str(t), bool(b)) for t, b in payload.get("segments", [])]
                outcome = pb.post_comment(key, segments, str(payload.get("marker", alert.id)),
                                          check_first=check_first)
            else:
                outcome = pb.add_label(key, str(payload.get("label", alert.rule)))
        outbox.record_outcome(self.store, [row.id], outcome, self.clock())
        result.messages += 1
        self._note(result, outcome, 1)
