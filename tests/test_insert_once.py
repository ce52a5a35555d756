"""`insert_once`: the one "first writer wins" primitive, raced by two writers on both databases."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from trackpulse.store.db import Store
from trackpulse.store.models import WebhookDelivery
from trackpulse.store.writer import insert_once


def _row(n: int = 0) -> dict[str, object]:
    return {"source": "s", "delivery_id": "d-1", "received_at": datetime(2026, 1, 1, tzinfo=UTC),
            "event": f"writer-{n}", "body": {}, "processed_at": None, "error": None}


def test_insert_once_is_true_for_the_first_writer_only(store: Store) -> None:
    with store.transaction() as s:
        assert insert_once(s, WebhookDelivery, _row(1)) is True
    with store.transaction() as s:
        assert insert_once(s, WebhookDelivery, _row(2)) is False
    with store.session() as s:
        assert s.get(WebhookDelivery, ("s", "d-1")).event == "writer-1"  # type: ignore[union-attr]


def test_two_concurrent_writers_of_one_key_win_exactly_once(store: Store) -> None:
    # Both writers insert inside open transactions at the same moment; the database decides.
    results: list[bool] = []
    barrier = threading.Barrier(2)
    lock = threading.Lock()

    def writer(n: int) -> None:
        with store.transaction() as s:
            barrier.wait()
            won = insert_once(s, WebhookDelivery, _row(n))
        with lock:
            results.append(won)

    for _round in range(5):
        with store.transaction() as s:
            s.query(WebhookDelivery).delete()
        results.clear()
        threads = [threading.Thread(target=writer, args=(n,)) for n in (1, 2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
        assert sorted(results) == [False, True]
