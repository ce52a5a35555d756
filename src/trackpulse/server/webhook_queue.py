"""The durable webhook queue: store first, answer fast, apply in the same commit or in the background.

Trackers retry slow or failed deliveries and give up after a while, so a delivery is
committed to `WebhookDelivery` before we answer. Deliveries that arrive together are stored by
one intake thread in one transaction (group commit). The tracker-specific work (the
connector's `apply_webhook`, found in `trackpulse.connectors.registry`) is done in one of two
ways, never both at once (one lock), so deliveries are applied in arrival order and never race
each other on the same item:
- fused, when the worker has nothing outstanding and the connector has a batch path
  (`apply_webhooks`; Jira): the intake transaction that stores the new deliveries also applies
  them, inside a SAVEPOINT in the same session, and marks them processed; one commit, then the
  HTTP answers. The savepoint keeps the stored rows whatever the apply does: a delivery the
  connector rejects stays pending, and any error in the savepoint (on PostgreSQL also a lock
  held elsewhere for more than `FUSED_LOCK_TIMEOUT`) rolls back only the apply; those
  deliveries go to the worker, which records why one fails. Trello deliveries always do;
- on one worker thread otherwise (busy worker, a backlog, retries, deliveries stored before a
  restart). What has queued up meanwhile is applied as one batch: one transaction through the
  connector's `apply_webhooks` (a few statements for the lot) and one statement marking them
  processed, so intake keeps up with bursts instead of paying a handful of round trips per
  delivery.

A delivery id seen before is a duplicate (Jira retries keep `X-Atlassian-Webhook-Identifier`;
Trello's action id is unique) and is not applied again.

A delivery that fails is classified (`classify_failure`):
- transient (the store was busy, a lock timed out, the connection dropped): tried again after
  `server.webhook_retry_seconds`, doubling, at most `server.webhook_max_attempts` times; the
  next try time is the row's `retry_at`, so a restart keeps the schedule;
- permanent (a body the connector rejects, a mapping error, a source no longer configured, a
  bug): marked failed (`failed_at`, with the reason in `error`) after one try. A failed delivery
  is never tried again by itself; `trackpulse webhooks retry --failed` re-queues it on purpose
  (`requeue`), after a fix.
Pending deliveries (neither processed nor failed) are applied again when the queue starts, so a
crash between storing and applying loses nothing. The worker also looks at the store every
`poll_seconds` for deliveries whose `retry_at` has come (backoff, or `webhooks retry` run while
the server is up).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import col

from trackpulse.config import AppConfig, JiraSourceConfig, TrelloSourceConfig
from trackpulse.connectors.registry import connector_kind
from trackpulse.errors import RequestFailed, StoreError, TrackpulseError, UnreachableError
from trackpulse.server.telemetry import Telemetry
from trackpulse.store.db import Store
from trackpulse.store.models import WebhookDelivery
from trackpulse.store.writer import insert_new
from trackpulse.sync_api import WebhookResult

log = logging.getLogger("trackpulse.webhooks")

ApplyFn = Callable[[Store, JiraSourceConfig | TrelloSourceConfig, dict[str, Any], Mapping[str, str]], WebhookResult]
Failure = Literal["transient", "permanent"]

_STOP = ("", "")
# Delivery ids made from the body when a tracker sends no delivery id of its own.
BODY_HASH_PREFIX = "body-sha256:"
# The longest wait between two tries of a transiently failing delivery.
MAX_BACKOFF_SECONDS = 3600.0


def connector_apply(kind: str) -> ApplyFn:
    """The connector's `apply_webhook` for a source kind (the one registry)."""
    fn: ApplyFn = connector_kind(kind).apply_webhook
    return fn


def classify_failure(exc: BaseException) -> Failure:
    """Transient when trying again later can succeed without anyone changing anything: the
    store was busy or locked (SQLite "database is locked", PostgreSQL lock or statement timeout,
    deadlock, serialization failure: all DBAPI OperationalErrors), its connection dropped or the
    pool was exhausted, or a tracker the connector asked could not be reached. Everything else
    (a body the connector rejects, a mapping error, a bug) fails the same way every time."""
    if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)):
        return "transient"
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return "transient"
    if isinstance(exc, (StoreError, UnreachableError)):
        return "transient"
    if isinstance(exc, RequestFailed) and (exc.status is None or exc.status == 429 or exc.status >= 500):
        return "transient"
    return "permanent"


def backoff_seconds(attempts: int, base: float) -> float:
    """Wait before try `attempts + 1`: base, 2×base, 4×base … capped at an hour."""
    return float(min(base * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS))


# The most deliveries one intake transaction stores.
INTAKE_MAX = 500
# PostgreSQL: how long the fused apply waits for a row lock someone else holds (a sync's page,
# another instance's batch) before it gives the deliveries to the worker, which waits as long as
# it takes. The HTTP answers wait on the fused apply, so it must not wait long.
FUSED_LOCK_TIMEOUT = "500ms"


@dataclass
class _Ticket:
    """One delivery waiting for the intake thread's commit."""

    row: dict[str, Any]
    headers: dict[str, str]
    done: threading.Event = field(default_factory=threading.Event)
    created: bool = False
    error: BaseException | None = None
    waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None  # an async caller's

    def finish(self) -> None:
        self.done.set()
        if self.waiter is not None:
            loop, fut = self.waiter
            loop.call_soon_threadsafe(_resolve, fut)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _pending() -> Any:
    return sa.and_(col(WebhookDelivery.processed_at).is_(None), col(WebhookDelivery.failed_at).is_(None))


def _mark_processed(source: str, ids: list[str]) -> Any:
    """One statement marking applied deliveries processed (a try more, no error). Run on the
    session's connection: the ORM's bulk UPDATE would look for loaded rows to refresh (none are)."""
    return (sa.update(WebhookDelivery)
            .where(col(WebhookDelivery.source) == source, col(WebhookDelivery.delivery_id).in_(ids))
            .values(processed_at=datetime.now(UTC), attempts=sa.func.coalesce(col(WebhookDelivery.attempts), 0) + 1,
                    retry_at=None, error=None, failure=None))


Touched = dict[str, set[str]] | None


def _touched_with(touched: Touched, source: str, items: tuple[str, ...] | None) -> Touched:
    """`touched` with what an applied delivery changed, for `on_batch` (None wins: evaluate everything)."""
    if touched is None or items is None:
        return None
    if items:
        touched.setdefault(source, set()).update(items)
    return touched


class WebhookQueue:
    def __init__(
        self,
        cfg: AppConfig,
        store: Store,
        telemetry: Telemetry | None = None,
        *,
        apply_for_kind: Callable[[str], ApplyFn] | None = None,
        poll_seconds: float = 5.0,
        batch_max: int = 500,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.telemetry = telemetry or Telemetry()
        self._apply_for_kind = apply_for_kind
        self.max_attempts = cfg.server.webhook_max_attempts
        self.retry_seconds = cfg.server.webhook_retry_seconds
        self.poll_seconds = poll_seconds
        self.batch_max = batch_max
        self._queue: queue.Queue[tuple[str, str]] = queue.Queue()
        # Headers of live deliveries; after a restart they are rebuilt from the stored id.
        self._headers: dict[tuple[str, str], dict[str, str]] = {}
        self._bodies: dict[tuple[str, str], dict[str, Any]] = {}  # of live deliveries, until applied
        self._queued: set[tuple[str, str]] = set()  # on the queue or being applied
        self._outstanding = 0
        self._idle = threading.Condition()
        # Held while deliveries are applied, by the worker (a batch) or by the intake thread
        # (the fused path, which only tries it without waiting): never two applies at once.
        self._apply_lock = threading.Lock()
        self._next_scan = 0.0  # time.monotonic() of the next look for due retries
        self._thread: threading.Thread | None = None
        self._intake: list[_Ticket] = []
        self._intake_cv = threading.Condition()
        self._intake_thread: threading.Thread | None = None
        # Called after each applied batch (by the worker, or by the intake thread after a fused
        # commit) with its size and the items it changed (source -> store item ids; None when a
        # delivery may have changed figures of items it does not name): alerts in the loop. It
        # must return quickly and be thread-safe: `serve` hands both to the alert evaluator
        # process.
        self.on_batch: Callable[[int, dict[str, set[str]] | None], None] | None = None
        self._touched: dict[str, set[str]] | None = {}

    # ------------------------------------------------------------------ intake

    def accept(
        self, source: str, delivery_id: str, event: str, body: dict[str, Any], headers: Mapping[str, str]
    ) -> bool:
        """Store a verified delivery; False when it was seen before. Returns once the row is
        committed (and, on the fused path, applied in that same commit). Deliveries that arrive
        together are committed together (group commit, one transaction and one INSERT for all
        of them) by the intake thread, so a burst costs a few transactions a second, not one
        per delivery."""
        ticket = self._submit(source, delivery_id, event, body, headers, None)
        ticket.done.wait()
        return self._outcome(ticket)

    async def accept_async(
        self, source: str, delivery_id: str, event: str, body: dict[str, Any], headers: Mapping[str, str]
    ) -> bool:
        """`accept` for the event loop: it waits for the commit without holding a thread (a
        thread per delivery in flight, and its hand-offs, cost more than the commit)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        ticket = self._submit(source, delivery_id, event, body, headers, (loop, fut))
        await fut
        return self._outcome(ticket)

    def _submit(self, source: str, delivery_id: str, event: str, body: dict[str, Any], headers: Mapping[str, str],
                waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None) -> _Ticket:
        ticket = _Ticket({"source": source, "delivery_id": delivery_id, "received_at": datetime.now(UTC),
                          "event": event[:200], "body": body, "processed_at": None, "error": None},
                         dict(headers), waiter=waiter)
        with self._intake_cv:
            if self._intake_thread is None:
                self._intake_thread = threading.Thread(target=self._run_intake, name="trackpulse-webhook-intake",
                                                       daemon=True)
                self._intake_thread.start()
            self._intake.append(ticket)
            self._intake_cv.notify()
        return ticket

    @staticmethod
    def _outcome(ticket: _Ticket) -> bool:
        if ticket.error is not None:
            raise ticket.error
        return ticket.created

    def _run_intake(self) -> None:
        while True:
            with self._intake_cv:
                self._intake_cv.wait_for(lambda: bool(self._intake))
                tickets, self._intake = self._intake[:INTAKE_MAX], self._intake[INTAKE_MAX:]
            self._commit_intake(tickets)

    def _commit_intake(self, tickets: list[_Ticket]) -> None:
        first: dict[tuple[str, str], _Ticket] = {}
        for t in tickets:  # a repeat inside one batch is a duplicate of its first occurrence
            first.setdefault((t.row["source"], t.row["delivery_id"]), t)
        fused = self._fuse_begin()
        applied: dict[tuple[str, str], WebhookResult] = {}
        try:
            with self.store.transaction() as s:
                created = insert_new(s, WebhookDelivery, [t.row for t in first.values()])
                if fused and created:
                    applied = self._apply_fused(s, [(k, t) for k, t in first.items() if k in created])
        except Exception as exc:  # noqa: BLE001 - handed to every caller waiting on this commit
            for t in tickets:
                t.error = exc
                t.finish()
            return
        finally:
            if fused:
                self._apply_lock.release()
        touched: Touched = {}
        for key, t in first.items():
            if key in created:
                t.created = True
                result = applied.get(key)
                if result is not None:
                    touched = _touched_with(touched, key[0], result.items)
                    continue
                self._headers[key] = t.headers
                self._bodies[key] = t.row["body"]
                self._enqueue(*key)
        for t in tickets:
            t.finish()
        if not applied:
            return
        for source, _ in applied:
            src = self._source_cfg(source)
            self.telemetry.delivery(source, src.kind if src else "unknown", "processed")
        if self.on_batch is not None:
            try:
                self.on_batch(len(applied), touched)
            except Exception:
                log.exception("after-batch hook failed")

    def _fuse_begin(self) -> bool:
        """May this intake batch be applied in its own transaction? Only when the worker runs
        (it has queued what was pending before, and it will take what the fused path leaves),
        has nothing outstanding (what is queued is older and goes first) and is not applying
        (the apply lock is taken without waiting; True means it is held)."""
        if self._thread is None or self._apply_for_kind is not None:
            return False
        with self._idle:
            if self._outstanding:
                return False
        return self._apply_lock.acquire(blocking=False)

    def _apply_fused(self, s: Session, new: list[tuple[tuple[str, str], _Ticket]]) -> dict[tuple[str, str], WebhookResult]:
        """Apply newly stored deliveries in the intake transaction `s`, inside a SAVEPOINT,
        through each source's batch path, and mark the applied ones processed. Returns what
        applied; what does not appear (a source without a batch path, a delivery the connector
        rejected, everything when the savepoint failed) is left pending for the worker."""
        by_source: dict[str, list[tuple[str, _Ticket]]] = {}
        for (source, delivery_id), t in new:
            by_source.setdefault(source, []).append((delivery_id, t))
        plans = []
        for source, entries in by_source.items():
            src = self._source_cfg(source)
            batch_fn = connector_kind(src.kind).apply_webhooks if src is not None else None
            if src is not None and batch_fn is not None:
                plans.append((source, src, batch_fn, entries))
        if not plans:
            return {}
        applied: dict[tuple[str, str], WebhookResult] = {}
        try:
            with s.begin_nested():
                if self.store.dialect == "postgresql":
                    # Undone with the savepoint when it rolls back; else it ends with the commit.
                    s.execute(sa.text(f"SET LOCAL lock_timeout = '{FUSED_LOCK_TIMEOUT}'"))
                for source, src, batch_fn, entries in plans:
                    results = batch_fn(self.store, src, [(t.row["body"], httpx.Headers(t.headers))
                                                         for _, t in entries], session=s)
                    ok = []
                    for (delivery_id, _), result in zip(entries, results, strict=True):
                        if isinstance(result, BaseException):
                            continue  # rejected: the worker tries it alone and records why
                        log.debug("webhook %s/%s: %s", source, delivery_id, result)
                        applied[(source, delivery_id)] = result
                        ok.append(delivery_id)
                    if ok:
                        s.connection().execute(_mark_processed(source, ok))
        except Exception as exc:  # noqa: BLE001 - the worker applies them, and records why one fails
            log.info("webhook deliveries not applied at intake (%s: %s); the worker applies them",
                     type(exc).__name__, " ".join(str(exc).split())[:200])
            return {}
        return applied

    def _enqueue(self, source: str, delivery_id: str) -> None:
        with self._idle:
            if (source, delivery_id) in self._queued:
                return
            self._queued.add((source, delivery_id))
            self._outstanding += 1
        self._queue.put((source, delivery_id))

    # ------------------------------------------------------------------ worker

    def start(self) -> None:
        """Queue every pending delivery that is due, then start the worker thread."""
        if self._thread is not None:
            return
        with self.store.session() as s:
            due = s.execute(
                sa.select(col(WebhookDelivery.source), col(WebhookDelivery.delivery_id))
                .where(_pending())
                .where(sa.or_(col(WebhookDelivery.retry_at).is_(None),
                              col(WebhookDelivery.retry_at) <= datetime.now(UTC)))
                .order_by(col(WebhookDelivery.received_at))
            ).all()
        for source, delivery_id in due:
            self._enqueue(source, delivery_id)
        if due:
            log.info("re-processing %d stored webhook deliveries", len(due))
        self._next_scan = time.monotonic() + self.poll_seconds
        self._thread = threading.Thread(target=self._run, name="trackpulse-webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while True:
            if time.monotonic() >= self._next_scan:
                self._scan_due()
            try:
                key = self._queue.get(timeout=max(0.0, self._next_scan - time.monotonic()))
            except queue.Empty:
                continue
            # Whatever else has arrived meanwhile joins this batch (up to `batch_max`): under
            # load one transaction carries many deliveries, at rest a batch is one delivery.
            keys: list[tuple[str, str]] = []
            stop = False
            while True:
                if key == _STOP:
                    stop = True
                    break
                keys.append(key)
                if len(keys) >= self.batch_max:
                    break
                try:
                    key = self._queue.get_nowait()
                except queue.Empty:
                    break
            self._touched = {}
            try:
                if keys:
                    with self._apply_lock:
                        self._process_batch(keys)
            except Exception:
                log.exception("webhook deliveries %s could not be processed", ", ".join("/".join(k) for k in keys))
            finally:
                with self._idle:
                    self._queued.difference_update(keys)
                    self._outstanding -= len(keys)
                    self._idle.notify_all()
            if keys and self.on_batch is not None:
                try:
                    self.on_batch(len(keys), self._touched)
                except Exception:
                    log.exception("after-batch hook failed")
            if stop:
                return

    def _scan_due(self) -> None:
        """Queue pending deliveries whose retry time has come; plan the next look."""
        now = datetime.now(UTC)
        self._next_scan = time.monotonic() + self.poll_seconds
        try:
            with self.store.session() as s:
                due = s.execute(
                    sa.select(col(WebhookDelivery.source), col(WebhookDelivery.delivery_id))
                    .where(_pending(), col(WebhookDelivery.retry_at) <= now)
                    .order_by(col(WebhookDelivery.retry_at))
                ).all()
                later = s.execute(
                    sa.select(sa.func.min(col(WebhookDelivery.retry_at)))
                    .where(_pending(), col(WebhookDelivery.retry_at) > now)
                ).scalar_one()
        except sa.exc.SQLAlchemyError as exc:
            # The store is busy or away: look again at the next poll.
            log.warning("webhook queue could not look for due retries: %s", type(exc).__name__)
            return
        for source, delivery_id in due:
            self._enqueue(source, delivery_id)
        if later is not None:
            self._plan_scan(later)

    def _plan_scan(self, at: datetime) -> None:
        wait = (at - datetime.now(UTC)).total_seconds()
        self._next_scan = min(self._next_scan, time.monotonic() + max(wait, 0.0))

    def _source_cfg(self, name: str) -> JiraSourceConfig | TrelloSourceConfig | None:
        return next((s for s in self.cfg.sources if s.name == name), None)

    def _apply(self, src: JiraSourceConfig | TrelloSourceConfig, delivery: WebhookDelivery,
               headers: Mapping[str, str] | None) -> WebhookResult:
        apply = (self._apply_for_kind or connector_apply)(src.kind)
        # Case-insensitive, whatever case the connector looks names up in.
        hdrs = httpx.Headers(headers if headers is not None else rebuilt_headers(src.kind, delivery.delivery_id))
        return apply(self.store, src, delivery.body or {}, hdrs)

    def _process_batch(self, keys: list[tuple[str, str]]) -> None:
        """Apply a batch: per source, in one transaction through the connector's batch path
        when it has one (and the outcomes in one more); one by one otherwise, or when the
        batch's transaction fails (so one bad delivery cannot hold the others back)."""
        by_source: dict[str, list[str]] = {}
        for source, delivery_id in keys:
            by_source.setdefault(source, []).append(delivery_id)
        for source, ids in by_source.items():
            src = self._source_cfg(source)
            batch_fn = None
            if src is not None and self._apply_for_kind is None and len(ids) > 1:
                batch_fn = connector_kind(src.kind).apply_webhooks
            if src is None or batch_fn is None:
                for delivery_id in ids:
                    self._process(source, delivery_id)
                continue
            deliveries = self._pending_rows(source, ids)
            try:
                results = batch_fn(self.store, src, [
                    (body, httpx.Headers(self._headers.get((source, delivery_id))
                                         or rebuilt_headers(src.kind, delivery_id)))
                    for delivery_id, body in deliveries])
            except Exception as exc:  # noqa: BLE001 - each is tried alone next, which records why
                log.warning("webhook batch of %d from %s failed as a whole (%s); trying them one by one",
                            len(deliveries), source, type(exc).__name__)
                for delivery_id, _ in deliveries:
                    self._process(source, delivery_id)
                continue
            applied = []
            for (delivery_id, _), result in zip(deliveries, results, strict=True):
                self._headers.pop((source, delivery_id), None)
                if isinstance(result, BaseException):
                    error = result.one_line() if isinstance(result, TrackpulseError) else str(result)
                    outcome = self._record(source, delivery_id, error, classify_failure(result))
                    self.telemetry.delivery(source, src.kind, outcome)
                    log.warning("webhook delivery %s/%s failed: %s", source, delivery_id, error)
                else:
                    log.debug("webhook %s/%s: %s", source, delivery_id, result)
                    applied.append(delivery_id)
                    self._touch(source, result.items)
            self._record_applied(source, applied)
            for _ in applied:
                self.telemetry.delivery(source, src.kind, "processed")

    def _touch(self, source: str, items: tuple[str, ...] | None) -> None:
        """Note what an applied delivery changed, for `on_batch` (None wins: evaluate everything)."""
        self._touched = _touched_with(self._touched, source, items)

    def _pending_rows(self, source: str, ids: list[str]) -> list[tuple[str, dict[str, Any]]]:
        """(delivery id, body) of the stored deliveries among `ids` still to apply, in the order
        given. A body received by this process is taken from memory (the row holds the same);
        only deliveries from before a restart are read back."""
        with self.store.session() as s:
            pending = set(s.execute(
                sa.select(col(WebhookDelivery.delivery_id)).where(
                    col(WebhookDelivery.source) == source, col(WebhookDelivery.delivery_id).in_(ids), _pending())
            ).scalars())
            missing = [i for i in ids if i in pending and (source, i) not in self._bodies]
            stored: dict[str, Any] = dict(s.execute(
                sa.select(col(WebhookDelivery.delivery_id), col(WebhookDelivery.body)).where(
                    col(WebhookDelivery.source) == source, col(WebhookDelivery.delivery_id).in_(missing))
            ).tuples().all()) if missing else {}
        out = []
        for delivery_id in ids:
            body = self._bodies.pop((source, delivery_id), None)
            if delivery_id not in pending:
                self._headers.pop((source, delivery_id), None)
                continue
            out.append((delivery_id, body if body is not None else stored.get(delivery_id) or {}))
        return out

    def _record_applied(self, source: str, ids: list[str]) -> None:
        """Mark applied deliveries processed: one statement for the whole batch."""
        if not ids:
            return
        with self.store.transaction() as s:
            s.connection().execute(_mark_processed(source, ids))

    def _process(self, source: str, delivery_id: str) -> None:
        self._bodies.pop((source, delivery_id), None)  # read back below: the row is the truth here
        with self.store.session() as s:
            delivery = s.get(WebhookDelivery, (source, delivery_id))
        if delivery is None or delivery.processed_at is not None or delivery.failed_at is not None:
            return
        headers = self._headers.pop((source, delivery_id), None)
        src = self._source_cfg(source)
        error: str | None = None
        failure: Failure | None = None
        if src is None:
            error, failure = f"source {source} is no longer configured", "permanent"
        else:
            try:
                result = self._apply(src, delivery, headers)
                log.debug("webhook %s/%s: %s", source, delivery_id, result)
                self._touch(source, result.items)
            except TrackpulseError as exc:
                error, failure = exc.one_line(), classify_failure(exc)
            except Exception as exc:
                failure = classify_failure(exc)
                if failure == "permanent":  # not a store hiccup: most likely a bug, keep the traceback
                    log.exception("webhook delivery %s/%s failed", source, delivery_id)
                error = " ".join(f"{type(exc).__name__}: {exc}".split())
        outcome = self._record(source, delivery_id, error, failure)
        self.telemetry.delivery(source, src.kind if src else "unknown", outcome)
        if error is not None:
            log.warning("webhook delivery %s/%s %s: %s", source, delivery_id,
                        "will be retried" if outcome == "retry_later" else "failed", error)

    def _record(self, source: str, delivery_id: str, error: str | None, failure: Failure | None) -> str:
        """Write the try's outcome on the row: processed, retry later, or failed for good."""
        now = datetime.now(UTC)
        with self.store.transaction() as s:
            row = s.get(WebhookDelivery, (source, delivery_id))
            if row is None:
                return "processed"
            row.attempts = (row.attempts or 0) + 1
            row.retry_at = None
            if error is None:
                row.processed_at, row.error, row.failure = now, None, None
                return "processed"
            row.failure = failure
            if failure == "transient" and row.attempts < self.max_attempts:
                row.error = error[:2000]
                row.retry_at = now + timedelta(seconds=backoff_seconds(row.attempts, self.retry_seconds))
                retry_at = row.retry_at
            else:
                if failure == "transient":
                    error = f"gave up after {row.attempts} attempts: {error}"
                row.error = error[:2000]
                row.failed_at = now
                return "failed"
        self._plan_scan(retry_at)
        return "retry_later"

    # ------------------------------------------------------------------ observation

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every queued delivery has been tried (True) or `timeout` passes (False).
        A delivery waiting for its retry time is not queued."""
        with self._idle:
            return self._idle.wait_for(lambda: self._outstanding == 0, timeout)

    def outstanding(self) -> int:
        with self._idle:
            return self._outstanding

    def pending_in_store(self) -> int:
        """Deliveries neither applied nor failed (including those waiting for a retry)."""
        return delivery_counts(self.store)["pending"]


def delivery_counts(store: Store, source: str | None = None) -> dict[str, int]:
    """pending (not yet applied, not failed), retrying (pending after a transient failure) and failed."""
    with store.session() as s:
        def count(*where: Any) -> int:
            stmt = sa.select(sa.func.count()).select_from(WebhookDelivery).where(*where)
            if source is not None:
                stmt = stmt.where(col(WebhookDelivery.source) == source)
            return int(s.execute(stmt).scalar_one())

        return {
            "pending": count(_pending()),
            "retrying": count(_pending(), col(WebhookDelivery.failure) == "transient"),
            "failed": count(col(WebhookDelivery.failed_at).is_not(None)),
        }


def failed_deliveries(store: Store, *, source: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Failed deliveries, newest failure first, without their bodies (they may be large)."""
    stmt = (sa.select(WebhookDelivery).where(col(WebhookDelivery.failed_at).is_not(None))
            .order_by(col(WebhookDelivery.failed_at).desc()).limit(limit))
    if source is not None:
        stmt = stmt.where(col(WebhookDelivery.source) == source)
    with store.session() as s:
        rows = list(s.execute(stmt).scalars())
    return [{"source": r.source, "delivery_id": r.delivery_id, "event": r.event,
             "received_at": _iso(r.received_at), "failed_at": _iso(r.failed_at), "attempts": r.attempts,
             "failure": r.failure, "error": r.error} for r in rows]


def requeue(store: Store, *, failed: bool = False, source: str | None = None) -> int:
    """Make deliveries due now: every pending one (skipping its backoff) and, with `failed`,
    every failed one too (attempts start again). A running server picks them up at its next
    poll, a stopped one when it starts. Returns how many were re-queued."""
    now = datetime.now(UTC)
    where = [_pending()]
    if failed:
        where = [sa.or_(_pending(), col(WebhookDelivery.failed_at).is_not(None))]
    if source is not None:
        where.append(col(WebhookDelivery.source) == source)
    where.append(col(WebhookDelivery.processed_at).is_(None))
    values: dict[str, Any] = {"retry_at": now}
    if failed:
        values.update(failed_at=None, attempts=0)
    with store.transaction() as s:
        result = s.execute(sa.update(WebhookDelivery).where(*where).values(**values))
    return int(result.rowcount)  # type: ignore[attr-defined]


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat().replace("+00:00", "Z") if ts else None


def rebuilt_headers(kind: str, delivery_id: str) -> dict[str, str]:
    """The headers a connector may read, reconstructed from what the store keeps."""
    if kind == "jira" and not delivery_id.startswith(BODY_HASH_PREFIX):
        return {"X-Atlassian-Webhook-Identifier": delivery_id}
    return {}
