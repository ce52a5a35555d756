"""The durable webhook queue: store first, answer fast, apply in the background.

Trackers retry slow or failed deliveries and give up after a while, so a delivery is
committed to `WebhookDelivery` before we answer, and the tracker-specific work (the
connector's `apply_webhook`) runs later on one worker thread. One thread on purpose:
deliveries are applied in arrival order and never race each other on the same item.

A delivery id seen before is a duplicate (Jira retries keep `X-Atlassian-Webhook-Identifier`;
Trello's action id is unique) and is not applied again. Deliveries without `processed_at`
are applied again when the queue starts, so a crash between storing and applying loses
nothing.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import col

from trackpulse.config import AppConfig, JiraSourceConfig, TrelloSourceConfig
from trackpulse.errors import TrackpulseError
from trackpulse.server.telemetry import Telemetry
from trackpulse.store.db import Store
from trackpulse.store.models import WebhookDelivery
from trackpulse.store.writer import insert_once

log = logging.getLogger("trackpulse.webhooks")

ApplyFn = Callable[[Store, JiraSourceConfig | TrelloSourceConfig, dict[str, Any], Mapping[str, str]], str]

_STOP = ("", "")
# Delivery ids made from the body when a tracker sends no delivery id of its own.
BODY_HASH_PREFIX = "body-sha256:"


def connector_apply(kind: str) -> ApplyFn:
    from trackpulse.jobs.sync import connector_module

    fn: ApplyFn = connector_module(kind).apply_webhook
    return fn


class WebhookQueue:
    def __init__(
        self,
        cfg: AppConfig,
        store: Store,
        telemetry: Telemetry | None = None,
        *,
        apply_for_kind: Callable[[str], ApplyFn] | None = None,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.telemetry = telemetry or Telemetry()
        self._apply_for_kind = apply_for_kind
        self._queue: queue.Queue[tuple[str, str]] = queue.Queue()
        # Headers of live deliveries; after a restart they are rebuilt from the stored id.
        self._headers: dict[tuple[str, str], dict[str, str]] = {}
        self._outstanding = 0
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ intake

    def accept(
        self, source: str, delivery_id: str, event: str, body: dict[str, Any], headers: Mapping[str, str]
    ) -> bool:
        """Store a verified delivery in one transaction; False when it was seen before."""
        row = {"source": source, "delivery_id": delivery_id, "received_at": datetime.now(UTC),
               "event": event[:200], "body": body, "processed_at": None, "error": None}
        with self.store.transaction() as s:
            created = insert_once(s, WebhookDelivery, row)
        if created:
            self._headers[(source, delivery_id)] = dict(headers)
            self._enqueue(source, delivery_id)
        return created

    def _enqueue(self, source: str, delivery_id: str) -> None:
        with self._idle:
            self._outstanding += 1
        self._queue.put((source, delivery_id))

    # ------------------------------------------------------------------ worker

    def start(self) -> None:
        """Queue every stored delivery not yet processed, then start the worker thread."""
        if self._thread is not None:
            return
        with self.store.session() as s:
            unprocessed = s.execute(
                sa.select(col(WebhookDelivery.source), col(WebhookDelivery.delivery_id))
                .where(col(WebhookDelivery.processed_at).is_(None))
                .order_by(col(WebhookDelivery.received_at))
            ).all()
        for source, delivery_id in unprocessed:
            self._enqueue(source, delivery_id)
        if unprocessed:
            log.info("re-processing %d stored webhook deliveries", len(unprocessed))
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
            source, delivery_id = self._queue.get()
            if (source, delivery_id) == _STOP:
                return
            try:
                self._process(source, delivery_id)
            except Exception:
                log.exception("webhook delivery %s/%s could not be processed", source, delivery_id)
            finally:
                with self._idle:
                    self._outstanding -= 1
                    self._idle.notify_all()

    def _source_cfg(self, name: str) -> JiraSourceConfig | TrelloSourceConfig | None:
        return next((s for s in self.cfg.sources if s.name == name), None)

    def _process(self, source: str, delivery_id: str) -> None:
        with self.store.session() as s:
            delivery = s.get(WebhookDelivery, (source, delivery_id))
        if delivery is None or delivery.processed_at is not None:
            return
        headers = self._headers.pop((source, delivery_id), None)
        src = self._source_cfg(source)
        error: str | None = None
        if src is None:
            error = f"source {source} is no longer configured"
        else:
            if headers is None:
                headers = rebuilt_headers(src.kind, delivery_id)
            try:
                # Case-insensitive, whatever case the connector looks names up in.
                apply = (self._apply_for_kind or connector_apply)(src.kind)
                outcome = apply(self.store, src, delivery.body or {}, httpx.Headers(headers))
                log.debug("webhook %s/%s (%s): %s", source, delivery_id, delivery.event, outcome)
            except TrackpulseError as exc:
                error = exc.one_line()
            except Exception as exc:
                log.exception("webhook delivery %s/%s failed", source, delivery_id)
                error = f"{type(exc).__name__}: {exc}"
        with self.store.transaction() as s:
            row = s.get(WebhookDelivery, (source, delivery_id))
            if row is not None:
                if error is None:
                    row.processed_at = datetime.now(UTC)
                    row.error = None
                else:
                    # processed_at stays empty: the next start tries again (the cause may be transient).
                    row.error = error[:2000]
        tracker = src.kind if src else "unknown"
        self.telemetry.delivery(source, tracker, "processed" if error is None else "failed")
        if error is not None:
            log.warning("webhook delivery %s/%s failed: %s", source, delivery_id, error)

    # ------------------------------------------------------------------ observation

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every accepted delivery has been processed (True) or `timeout` passes (False)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._outstanding == 0, timeout)

    def outstanding(self) -> int:
        with self._idle:
            return self._outstanding

    def pending_in_store(self) -> int:
        with self.store.session() as s:
            n = s.execute(
                sa.select(sa.func.count()).select_from(WebhookDelivery)
                .where(col(WebhookDelivery.processed_at).is_(None))
            ).scalar_one()
        return int(n)


def rebuilt_headers(kind: str, delivery_id: str) -> dict[str, str]:
    """The headers a connector may read, reconstructed from what the store keeps."""
    if kind == "jira" and not delivery_id.startswith(BODY_HASH_PREFIX):
        return {"X-Atlassian-Webhook-Identifier": delivery_id}
    return {}
