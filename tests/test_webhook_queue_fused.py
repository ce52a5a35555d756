"""The fused intake path of the webhook queue (server/webhook_queue.py), on SQLite and PostgreSQL.

With the worker idle, the intake thread stores new Jira deliveries, applies them through the
connector's batch path inside a SAVEPOINT and marks them processed: one commit before the
caller's answer. What the fused apply cannot do (a rejected delivery, a store error, a row locked
elsewhere) is rolled back to the savepoint and left to the worker, which applies it once or
records why it fails.

`accept_together` submits deliveries under the intake lock so that the intake thread takes them
as one batch, as it does with deliveries that arrive at the same moment.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from test_server_webhooks import issue_body, make_config

from trackpulse.config import AppConfig
from trackpulse.server.webhook_queue import WebhookQueue
from trackpulse.store.db import Store
from trackpulse.store.models import Item, WebhookDelivery

INTAKE = "trackpulse-webhook-intake"
WORKER = "trackpulse-webhooks"


def delivery(delivery_id: str, issue_id: str = "10001", key: str = "ABC-1",
             updated: str = "2026-01-01T00:00:00.000+0000", summary: str = "Login fails") -> tuple[Any, ...]:
    body = json.loads(issue_body(issue_id, key))
    body["issue"]["fields"].update(updated=updated, summary=summary)
    return ("acme", delivery_id, body["webhookEvent"], body, {"X-Atlassian-Webhook-Identifier": delivery_id})


def accept_together(queue: WebhookQueue, deliveries: list[tuple[Any, ...]]) -> list[bool]:
    with queue._intake_cv:  # held: the intake thread takes all of them in one batch
        tickets = [queue._submit(*d, None) for d in deliveries]
    for t in tickets:
        assert t.done.wait(30)
    return [queue._outcome(t) for t in tickets]


class Batches:
    """`on_batch` calls: (thread name, size, touched items)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, Any]] = []
        self.cv = threading.Condition()

    def __call__(self, n: int, items: Any) -> None:
        with self.cv:
            self.calls.append((threading.current_thread().name, n, items))
            self.cv.notify_all()

    def wait(self, count: int, timeout: float = 10) -> list[tuple[str, int, Any]]:
        with self.cv:
            assert self.cv.wait_for(lambda: len(self.calls) >= count, timeout), self.calls
            return list(self.calls)


class Transactions:
    """What the engine's connections did: commits (by thread), savepoints released and rolled back."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.commits: list[str] = []
        self.released = 0
        self.rolled_back = 0
        self._hooks = [("commit", self._commit), ("release_savepoint", self._release),
                       ("rollback_savepoint", self._rollback)]
        for name, fn in self._hooks:
            sa.event.listen(engine, name, fn)

    def _commit(self, _conn: Any) -> None:
        self.commits.append(threading.current_thread().name)

    def _release(self, *_args: Any) -> None:
        self.released += 1

    def _rollback(self, *_args: Any) -> None:
        self.rolled_back += 1

    def close(self) -> None:
        for name, fn in self._hooks:
            sa.event.remove(self.engine, name, fn)


@contextmanager
def running(cfg: AppConfig, store: Store) -> Iterator[tuple[WebhookQueue, Batches, Transactions]]:
    queue = WebhookQueue(cfg, store, poll_seconds=60)
    batches = Batches()
    queue.on_batch = batches
    queue.start()
    tx = Transactions(store.engine)
    try:
        yield queue, batches, tx
    finally:
        tx.close()
        queue.stop()


def row(store: Store, delivery_id: str) -> WebhookDelivery:
    with store.session() as s:
        got = s.get(WebhookDelivery, ("acme", delivery_id))
    assert got is not None
    return got


def items(store: Store) -> dict[str, str]:
    with store.session() as s:
        return {k: v for k, v in s.execute(sa.select(Item.key, Item.summary))}


def processed(queue: WebhookQueue) -> float:
    return queue.telemetry.registry.get_sample_value(
        "trackpulse_webhook_deliveries_total", {"source": "acme", "tracker": "jira", "outcome": "processed"}) or 0.0


def test_with_an_idle_worker_a_delivery_is_stored_applied_and_marked_processed_in_one_commit(
        tmp_path: Any, store: Store) -> None:
    with running(make_config(tmp_path), store) as (queue, batches, tx):
        assert queue.accept(*delivery("d-1"))
        # Right after the answer, without waiting for the worker: applied and processed.
        r = row(store, "d-1")
        assert r.processed_at is not None and r.attempts == 1 and r.error is None and r.failed_at is None
        assert items(store) == {"ABC-1": "Login fails"}
        assert queue.outstanding() == 0
        assert tx.commits == [INTAKE] and tx.released == 1 and tx.rolled_back == 0
        assert batches.wait(1) == [(INTAKE, 1, {"acme": {"10001"}})]
        assert processed(queue) == 1

        # A later change of the item goes the same way.
        assert queue.accept(*delivery("d-2", updated="2026-01-02T00:00:00.000+0000", summary="Login fails again"))
        assert row(store, "d-2").processed_at is not None
        assert items(store) == {"ABC-1": "Login fails again"}
        assert tx.commits == [INTAKE, INTAKE]
        assert batches.wait(2)[1] == (INTAKE, 1, {"acme": {"10001"}})


def test_a_delivery_the_connector_rejects_leaves_the_others_of_its_fused_batch_applied_and_is_failed_by_the_worker(
        tmp_path: Any, store: Store) -> None:
    bad = ("acme", "bad", "jira:issue_updated", {"webhookEvent": "jira:issue_updated", "issue": {}},
           {"X-Atlassian-Webhook-Identifier": "bad"})
    with running(make_config(tmp_path), store) as (queue, batches, tx):
        assert accept_together(queue, [delivery("ok-1"), bad, delivery("ok-2", "10002", "ABC-2")]) == [True] * 3
        for good in ("ok-1", "ok-2"):  # applied in the intake's commit
            r = row(store, good)
            assert r.processed_at is not None and r.attempts == 1
        assert set(items(store)) == {"ABC-1", "ABC-2"}
        assert queue.wait_idle(10)
        r = row(store, "bad")
        assert r.processed_at is None and r.failed_at is not None and r.failure == "permanent"
        assert r.attempts == 1 and "issue id" in (r.error or "")
        calls = batches.wait(2)
        assert calls[0] == (INTAKE, 2, {"acme": {"10001", "10002"}})
        assert (calls[1][0], calls[1][1]) == (WORKER, 1)
        assert tx.commits[0] == INTAKE and tx.released == 1 and tx.rolled_back == 0
        assert processed(queue) == 2


@contextmanager
def item_writes_fail_once(store: Store) -> Iterator[list[int]]:
    """The store itself raises on the first item write (a trigger), and never again. The list
    yielded holds one entry per item write tried, once the block has ended (SQLite: counted by
    the trigger's function; PostgreSQL: a sequence's value, which no rollback takes back)."""
    tries: list[int] = []
    if store.dialect == "sqlite":
        def fail_once() -> int:
            tries.append(1)
            if len(tries) == 1:
                raise RuntimeError("injected store error")
            return 0

        def register(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.create_function("tp_fail_once", 0, fail_once)

        sa.event.listen(store.engine, "connect", register)
        store.engine.dispose()  # every connection from now on knows the function
        with store.engine.begin() as c:
            c.execute(sa.text("CREATE TRIGGER tp_fail_once BEFORE INSERT ON item BEGIN SELECT tp_fail_once(); END"))
        try:
            yield tries
        finally:
            with store.engine.begin() as c:
                c.execute(sa.text("DROP TRIGGER IF EXISTS tp_fail_once"))
            sa.event.remove(store.engine, "connect", register)
        return
    with store.engine.begin() as c:
        c.execute(sa.text("CREATE SEQUENCE tp_fail_once_seq"))
        c.execute(sa.text("""
            CREATE FUNCTION tp_fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF nextval('tp_fail_once_seq') = 1 THEN RAISE EXCEPTION 'injected store error'; END IF;
                RETURN NEW;
            END $$"""))
        c.execute(sa.text("CREATE TRIGGER tp_fail_once BEFORE INSERT ON item FOR EACH ROW "
                          "EXECUTE FUNCTION tp_fail_once()"))
    try:
        yield tries
    finally:
        with store.engine.begin() as c:
            value = c.execute(sa.text("SELECT last_value FROM tp_fail_once_seq")).scalar_one()
            c.execute(sa.text("DROP TRIGGER IF EXISTS tp_fail_once ON item"))
            c.execute(sa.text("DROP FUNCTION IF EXISTS tp_fail_once()"))
            c.execute(sa.text("DROP SEQUENCE IF EXISTS tp_fail_once_seq"))
        tries.extend([1] * int(value))


def test_a_store_error_in_the_fused_apply_falls_back_to_the_worker_which_applies_the_delivery_once(
        tmp_path: Any, store: Store) -> None:
    with item_writes_fail_once(store) as tries, running(make_config(tmp_path), store) as (queue, batches, tx):
        assert queue.accept(*delivery("d-1"))  # stored although the apply failed
        assert tx.rolled_back == 1 and tx.released == 0
        assert queue.wait_idle(10)
        r = row(store, "d-1")
        assert r.processed_at is not None and r.attempts == 1 and r.error is None and r.failed_at is None
        assert items(store) == {"ABC-1": "Login fails"}
        assert [(name, n) for name, n, _ in batches.wait(1)] == [(WORKER, 1)]
        assert tx.commits[0] == INTAKE  # the inserts committed on their own
        assert processed(queue) == 1
    with store.session() as s:
        assert s.execute(sa.select(sa.func.count()).select_from(WebhookDelivery)).scalar_one() == 1
    assert len(tries) == 2  # the fused try failed, the worker's wrote the item


@pytest.mark.parametrize("store_factory", ["postgresql"], indirect=True)
def test_rows_locked_elsewhere_make_the_fused_apply_give_up_within_its_lock_timeout_and_nothing_leaks(
        tmp_path: Any, store: Store) -> None:
    # One connection for the queue: what the fused path leaves on it is seen by the next user.
    one = Store(sa.create_engine(store.engine.url, pool_size=1, max_overflow=0))
    try:
        with running(make_config(tmp_path), one) as (queue, batches, _tx):
            assert queue.accept(*delivery("d-1"))
            with one.session() as s:  # after a released savepoint and the commit
                assert s.execute(sa.text("SHOW lock_timeout")).scalar_one() == "0"
            with store.engine.connect() as lock:
                lock.execute(sa.text("SELECT item_id FROM item FOR UPDATE")).all()
                started = time.monotonic()
                assert queue.accept(*delivery("d-2", updated="2026-01-02T00:00:00.000+0000", summary="changed"))
                took = time.monotonic() - started
                assert took < 5, f"the answer waited {took:.1f} s on a lock held elsewhere"
                assert row(store, "d-2").processed_at is None  # stored; the worker waits for the lock
                assert queue.outstanding() == 1
                lock.rollback()
            assert queue.wait_idle(10)
            r = row(store, "d-2")
            assert r.processed_at is not None and r.attempts == 1 and r.error is None
            assert items(store) == {"ABC-1": "changed"}
            assert [(name, n) for name, n, _ in batches.wait(2)] == [(INTAKE, 1), (WORKER, 1)]
            with one.session() as s:  # after a savepoint rolled back by the lock timeout
                assert s.execute(sa.text("SHOW lock_timeout")).scalar_one() == "0"
    finally:
        one.dispose()


def test_a_duplicate_inside_one_fused_batch_is_applied_once(tmp_path: Any, store: Store) -> None:
    with running(make_config(tmp_path), store) as (queue, batches, tx):
        d = delivery("same")
        assert accept_together(queue, [d, d, delivery("other", "10002", "ABC-2"), d]) == [True, False, True, False]
        assert row(store, "same").attempts == 1 and row(store, "same").processed_at is not None
        assert batches.wait(1) == [(INTAKE, 2, {"acme": {"10001", "10002"}})]
        assert tx.commits == [INTAKE]
        assert processed(queue) == 2
        # ... and again later: a duplicate, not applied again.
        assert queue.accept(*d) is False
        assert queue.wait_idle(10)
        assert row(store, "same").attempts == 1
        assert len(batches.calls) == 1
    with store.session() as s:
        assert s.execute(sa.select(sa.func.count()).select_from(WebhookDelivery)).scalar_one() == 2
