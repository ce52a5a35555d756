"""Helpers for the Trello tests: the Trello simulator on a real loopback port, source
configs, a webhook receiver, and the store read back as plain sets (the `store` and
`store_factory` fixtures over SQLite and PostgreSQL come from conftest.py).

(No tests here; the other test_trello_* modules import from it.)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from trackpulse.connectors.trello import apply_webhook, verify_trello_signature

from trackpulse.config import TrelloSourceConfig
from trackpulse.errors import WebhookRejected
from trackpulse.simulator.runner import serve_in_thread
from trackpulse.simulator.trello_app import TrelloSimulator, create_trello_app
from trackpulse.simulator.trello_world import TrelloWorld
from trackpulse.store.db import Store, open_store
from trackpulse.store.models import AssigneeChange, Comment, EstimateChange, History, Item, Transition
from trackpulse.sync_api import WebhookResult

KEY = "0123456789abcdef0123456789abcdef"
TOKEN = "ATTA" + "f" * 60
APP_SECRET = "s3cr3t-app-secret-" + "e" * 46
SOURCE = "team-trello"


@contextmanager
def fresh_store(tmp_path: Any) -> Iterator[Store]:
    """An empty SQLite store, for tests that are not about the database (the conftest `store`
    fixture runs the others on SQLite and PostgreSQL)."""
    store = open_store(f"sqlite:///{tmp_path}/trello-{uuid.uuid4().hex[:6]}.db")
    try:
        yield store
    finally:
        store.dispose()


@dataclass
class RunningSim:
    world: TrelloWorld
    sim: TrelloSimulator
    url: str


@contextmanager
def running(world: TrelloWorld, **app_kw: Any) -> Iterator[RunningSim]:
    app = create_trello_app(world, key=KEY, token=TOKEN, app_secret=APP_SECRET, **app_kw)
    with serve_in_thread(app) as url:
        yield RunningSim(world, app.state.sim, url)


def source_cfg(url: str, boards: list[str], **overrides: Any) -> TrelloSourceConfig:
    values: dict[str, Any] = {
        "name": SOURCE, "kind": "trello", "api_url": url, "key": KEY, "token": TOKEN, "app_secret": APP_SECRET,
        "boards": boards, "done_lists": ["Done"], "in_progress_lists": ["Doing", "Review"],
        "defect_labels": ["bug"], "priority_labels": ["P1", "P2", "P3"], "points_field": "Points",
        "requests_per_second": 0, "max_retries": 8,
    }
    values.update(overrides)
    return TrelloSourceConfig(**values)


def store_state(store: Store, source: str = SOURCE) -> dict[str, Any]:
    """The store as sets and dicts that two stores can be compared by.

    Deleted items are compared by id only: a card deleted before we ever saw it is a
    tombstone built from its deleteCard action, one we knew keeps its last state."""
    with store.transaction() as s:
        items = s.execute(sa.select(Item).where(Item.source == source)).scalars().all()
        live = {i.item_id: (i.key, i.project, i.type, i.status_id, i.status_category, i.archived, i.points,
                            i.priority, i.is_defect, i.summary, i.created, i.updated, tuple(i.assignees or ()))
                for i in items if not i.deleted}
        deleted = {i.item_id for i in items if i.deleted}
        transitions = {(t.item_id, t.history_id, t.from_status_id, t.to_status_id, t.at)
                       for t in s.execute(sa.select(Transition).where(Transition.source == source)).scalars()}
        estimates = {(e.item_id, e.history_id, e.from_points, e.to_points)
                     for e in s.execute(sa.select(EstimateChange).where(EstimateChange.source == source)).scalars()}
        comments = {(c.comment_id, c.item_id, c.author, c.created)
                    for c in s.execute(sa.select(Comment).where(Comment.source == source,
                                                                 Comment.deleted.is_(False))).scalars()}
        histories = set(s.execute(sa.select(History.history_id).where(History.source == source)).scalars())
        members = {(a.item_id, a.history_id, tuple(a.added or ()), tuple(a.removed or ()), a.at)
                   for a in s.execute(sa.select(AssigneeChange).where(AssigneeChange.source == source)).scalars()}
    return {"live": live, "deleted": deleted, "transitions": transitions, "estimates": estimates,
            "comments": comments, "histories": histories, "members": members}


def assert_store_matches_world(store: Store, world: TrelloWorld, boards: list[str]) -> None:
    """Every card, list move, points change and comment of the simulator's truth, exactly."""
    state = store_state(store)
    truth = world.truth_cards()
    tracked = {cid: c for cid, c in truth.items() if c.board_id in boards}
    live = {cid for cid, c in tracked.items() if not c.deleted}
    assert set(state["live"]) == live
    assert {cid for cid, c in tracked.items() if c.deleted} <= state["deleted"]
    for cid in live:
        card = tracked[cid]
        key, project, type_, status, _, archived, points, priority, is_defect, summary, *_ = state["live"][cid]
        board = world.boards[card.board_id]
        names = {board.labels[x]["name"] for x in card.label_ids}
        assert (key, project, status, archived, points, summary) == (
            card.short_link, card.board_id, card.list_id, card.closed, card.points, card.name), cid
        assert type_ == ("Bug" if "bug" in names else "Card")
        assert is_defect == ("bug" in names)
        assert priority == next((p for p in ("P1", "P2", "P3") if p in names), None)
    moves = {(cid, aid, f, t) for cid, aid, f, t, _ in state["transitions"]}
    assert moves == world.truth_moves(boards)
    assert state["estimates"] == world.truth_points_changes(boards)
    assert {(a, c, m) for a, c, m, _ in state["comments"]} == world.truth_comments(boards)


@contextmanager
def webhook_receiver(store: Store, cfg_holder: dict[str, TrelloSourceConfig]) -> Iterator[str]:
    """What `trackpulse serve` does for /webhooks/trello/{source}, reduced to the Trello part:
    HEAD answers 200; POST verifies the signature against the registered callback URL and
    applies the delivery. `cfg_holder["cfg"]` is read per request (its callback_url is known
    only once the receiver has a port)."""
    outcomes: list[WebhookResult] = []

    async def endpoint(request: Request) -> Response:
        if request.method == "HEAD":
            return Response(status_code=200)
        cfg = cfg_holder["cfg"]
        raw = await request.body()
        assert cfg.app_secret is not None and cfg.callback_url is not None
        if not verify_trello_signature(cfg.app_secret.get_secret_value(), raw, cfg.callback_url,
                                       request.headers.get("x-trello-webhook")):
            return PlainTextResponse("bad signature", 401)
        import json

        try:
            outcome = apply_webhook(store, cfg, json.loads(raw), dict(request.headers))
        except WebhookRejected as exc:
            return PlainTextResponse(str(exc), exc.status)
        outcomes.append(outcome)
        return PlainTextResponse(str(outcome))

    app = Starlette(routes=[Route("/webhooks/trello/{source}", endpoint, methods=["HEAD", "POST"])])
    app.state.outcomes = outcomes
    with serve_in_thread(app) as url:
        yield f"{url}/webhooks/trello/{SOURCE}"


def assert_same_store(a: Store, b: Store) -> None:
    """Two stores hold the same Trello data; the message names the first differences."""
    left, right = store_state(a), store_state(b)
    problems = []
    for part in left:
        x, y = left[part], right[part]
        if x == y:
            continue
        if isinstance(x, dict):
            for k in sorted(set(x) | set(y)):
                if x.get(k) != y.get(k):
                    problems.append(f"{part} {k}: {x.get(k)} != {y.get(k)}")
        else:
            problems.append(f"{part}: only left {sorted(x - y)[:5]}, only right {sorted(y - x)[:5]}")
    assert not problems, "\n".join(problems[:10])


def sync(cfg: TrelloSourceConfig, store: Store, *, full: bool, **kw: Any) -> Any:
    """One sync run with a connector that is closed after (no keep-alive left to the simulator,
    whose shutdown would otherwise wait for it)."""
    from trackpulse.connectors.trello.connector import TrelloConnector

    with TrelloConnector(cfg, **kw) as connector:
        return connector.sync(store, full=full)
