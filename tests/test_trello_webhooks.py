"""Trello webhooks: signatures, registration with the HEAD check, deliveries applied through
the sync's mapping, duplicates and reordering harmless."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
from typing import Any

import httpx
import pytest
from test_trello_support import (
    APP_SECRET,
    SOURCE,
    TOKEN,
    assert_same_store,
    fresh_store,
    running,
    source_cfg,
    store_state,
    sync,
    webhook_receiver,
)
from trackpulse.connectors.trello import apply_webhook, register_webhooks, verify_trello_signature

from trackpulse.config import TrelloSourceConfig
from trackpulse.errors import RequestFailed, WebhookRejected
from trackpulse.simulator.trello_world import TrelloWorld
from trackpulse.store.models import Item

CALLBACK = "https://hooks.example.com/webhooks/trello/team-trello"


def _sign(secret: str, message: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha1).digest()).decode()


def test_a_valid_signature_verifies_and_a_wrong_or_missing_one_does_not() -> None:
    body = json.dumps({"action": {"id": "1", "type": "commentCard", "data": {"text": "ça marche ✅"}}},
                      ensure_ascii=False).encode()
    good = _sign(APP_SECRET, body + CALLBACK.encode())
    assert verify_trello_signature(APP_SECRET, body, CALLBACK, good)
    assert not verify_trello_signature(APP_SECRET, body + b" ", CALLBACK, good)  # body changed
    assert not verify_trello_signature(APP_SECRET, body, CALLBACK + "x", good)  # another callback URL
    assert not verify_trello_signature("another-secret", body, CALLBACK, good)
    assert not verify_trello_signature(APP_SECRET, body, CALLBACK, None)
    assert not verify_trello_signature(APP_SECRET, body, CALLBACK, "")
    assert not verify_trello_signature(APP_SECRET, body, CALLBACK, "not base64 !!")
    assert not verify_trello_signature("", body, CALLBACK, good)


def test_a_legacy_binary_string_signature_of_a_non_ascii_body_verifies() -> None:
    body = json.dumps({"action": {"data": {"text": "完成 ✅ ça"}}}, ensure_ascii=False).encode()
    units = (body.decode() + CALLBACK).encode("utf-16-le")
    legacy = _sign(APP_SECRET, bytes(units[i] for i in range(0, len(units), 2)))
    assert legacy != _sign(APP_SECRET, body + CALLBACK.encode())
    assert verify_trello_signature(APP_SECRET, body, CALLBACK, legacy)


def test_register_webhooks_passes_the_head_check_and_is_idempotent(tmp_path: Any) -> None:
    world = TrelloWorld.generate(3, boards=2, cards_per_board=3, actions_per_card=2)
    with fresh_store(tmp_path) as store, running(world) as sim:
        holder: dict[str, TrelloSourceConfig] = {}
        with webhook_receiver(store, holder) as callback:
            cfg = source_cfg(sim.url, list(world.boards), callback_url=callback)
            first = register_webhooks(cfg)
            assert [r.created for r in first] == [True, True]
            assert {h["idModel"] for h in sim.sim.webhooks.values()} == set(world.boards)
            again = register_webhooks(cfg)
            assert [r.created for r in again] == [False, False]
            assert [r.webhook_id for r in again] == [r.webhook_id for r in first]
            assert len(sim.sim.webhooks) == 2
        # Trello refuses a callback that does not answer the HEAD check with 200.
        with pytest.raises(RequestFailed) as err:
            register_webhooks(source_cfg(sim.url, list(world.boards), callback_url=f"{sim.url}/nowhere"))
        line = err.value.one_line()
        assert "did not return 200" in line and SOURCE in line
        assert TOKEN not in line  # py-trello's webhook paths carry the token; errors must not


def _setup_hooks(store: Any, world: TrelloWorld, sim: Any, callback: str,
                 holder: dict[str, TrelloSourceConfig]) -> TrelloSourceConfig:
    cfg = source_cfg(sim.url, list(world.boards), callback_url=callback)
    holder["cfg"] = cfg
    sync(cfg, store, full=True)
    register_webhooks(cfg)
    return cfg


def test_deliveries_keep_the_store_equal_to_a_full_sync(store_factory: Any, store: Any) -> None:
    world = TrelloWorld.generate(23, boards=1, cards_per_board=25, actions_per_card=4)
    board = next(iter(world.boards.values()))
    with running(world) as sim:
        holder: dict[str, TrelloSourceConfig] = {}
        with webhook_receiver(store, holder) as callback:
            cfg = _setup_hooks(store, world, sim, callback, holder)
            world.mutate(40)
            card = world.create_card(board.id, board.list_id("To Do"), "via hook", labels=["bug"], points=5)
            world.move_card(card, board.list_id("Doing"))
            world.add_label(card, "P1")
            statuses = sim.sim.deliver_webhooks()
            assert statuses and all(s == 200 for s in statuses)
        fresh = store_factory()
        sync(cfg, fresh, full=True)
        assert_same_store(store, fresh)


def test_duplicate_and_reordered_deliveries_are_harmless(store_factory: Any, store: Any) -> None:
    world = TrelloWorld.generate(29, boards=1, cards_per_board=20, actions_per_card=4)
    board = next(iter(world.boards.values()))
    with running(world) as sim:
        holder: dict[str, TrelloSourceConfig] = {}
        with webhook_receiver(store, holder) as callback:
            cfg = _setup_hooks(store, world, sim, callback, holder)
            card = next(c for c in world.cards.values() if not c.deleted and not c.closed)
            # Back and forth: the last move must win whatever order the deliveries come in.
            for name in ("Doing", "Review", "Doing", "Review", "Done"):
                world.move_card(card.id, board.list_id(name))
            world.set_points(card.id, 8)
            world.mutate(30)
            deliveries = sim.sim.take_deliveries()
            shuffled = deliveries + deliveries[: len(deliveries) // 2]
            random.Random(5).shuffle(shuffled)
            with httpx.Client() as client:
                statuses = [sim.sim.send(d, client) for d in shuffled]
            assert all(s == 200 for s in statuses)
        fresh = store_factory()
        sync(cfg, fresh, full=True)
        assert_same_store(store, fresh)
        with store.transaction() as s:
            row = s.get(Item, (SOURCE, card.id))
            assert row is not None and row.status_id == world.cards[card.id].list_id


def test_member_deliveries_in_any_order_leave_each_card_with_its_members(store_factory: Any, store: Any) -> None:
    world = TrelloWorld.generate(31, boards=1, cards_per_board=12, actions_per_card=3)
    with running(world) as sim:
        holder: dict[str, TrelloSourceConfig] = {}
        with webhook_receiver(store, holder) as callback:
            cfg = _setup_hooks(store, world, sim, callback, holder)
            card = next(c for c in world.cards.values() if not c.deleted and not c.closed)
            a, b, c = sorted(world.members)[:3]
            for m in (a, b):
                world.add_member_to_card(card.id, m)  # None when already on the card
            world.remove_member_from_card(card.id, a)
            world.add_member_to_card(card.id, c)
            world.mutate_members(7, n=10)
            deliveries = sim.sim.take_deliveries()
            shuffled = deliveries + deliveries[: len(deliveries) // 2]
            random.Random(9).shuffle(shuffled)
            with httpx.Client() as client:
                assert all(sim.sim.send(d, client) == 200 for d in shuffled)
        fresh = store_factory()
        sync(cfg, fresh, full=True)
        assert_same_store(store, fresh)
        with store.transaction() as s:
            row = s.get(Item, (SOURCE, card.id))
            names = sorted(world.members[m].full_name for m in world.cards[card.id].member_ids)
            assert row is not None and row.assignees == names and len(names) >= 2


def test_a_forged_delivery_is_refused_by_the_signature_check(store: Any) -> None:
    world = TrelloWorld.generate(31, boards=1, cards_per_board=4, actions_per_card=2)
    with running(world) as sim:
        holder: dict[str, TrelloSourceConfig] = {}
        with webhook_receiver(store, holder) as callback:
            _setup_hooks(store, world, sim, callback, holder)
            card = next(c for c in world.cards.values() if not c.deleted)
            world.comment(card.id, "hello")
            (delivery,) = sim.sim.take_deliveries()
            before = store_state(store)
            forged = delivery.body.replace(b"hello", b"HELLO")
            with httpx.Client() as client:
                assert client.post(delivery.url, content=forged, headers=delivery.headers).status_code == 401
                unsigned = {k: v for k, v in delivery.headers.items() if k != "X-Trello-Webhook"}
                assert client.post(delivery.url, content=delivery.body, headers=unsigned).status_code == 401
            assert store_state(store) == before
            assert sim.sim.send(delivery) == 200
            assert len(store_state(store)["comments"]) == len(before["comments"]) + 1


def test_apply_webhook_rejects_what_is_not_a_trello_delivery_and_ignores_other_boards(tmp_path: Any) -> None:
    cfg = source_cfg("http://127.0.0.1:9", ["5f1c2b3a4d5e6f7081920a1b"])
    with fresh_store(tmp_path) as store:
        with pytest.raises(WebhookRejected) as err:
            apply_webhook(store, cfg, {"issue": {}}, {})
        assert err.value.status == 400
        outcome = apply_webhook(store, cfg, {"action": {
            "id": "5f1c2b3a4d5e6f7081920aff", "type": "createCard", "date": "2026-03-02T09:00:00.000Z",
            "data": {"board": {"id": "0" * 24}, "card": {"id": "5f1c2b3a4d5e6f7081920a00"}}}}, {})
        assert outcome.outcome == "ignored"
        # A createCard for a card never synced creates the item from the action alone.
        created = apply_webhook(store, cfg, {"action": {
            "id": "69a55154000000973ceb4400", "type": "createCard", "date": "2026-03-02T09:00:00.000Z",
            "idMemberCreator": "m1",
            "data": {"board": {"id": "5f1c2b3a4d5e6f7081920a1b"}, "list": {"id": "l" * 24, "name": "Doing"},
                     "card": {"id": "69a55154000000973ceb43ff", "name": "new", "shortLink": "abcdEFGH"}}}}, {})
        assert created.outcome == "applied"
        with store.transaction() as s:
            row = s.get(Item, (SOURCE, "69a55154000000973ceb43ff"))
            assert row is not None and (row.key, row.status_name, row.status_category) == ("abcdEFGH", "Doing",
                                                                                           "in_progress")
