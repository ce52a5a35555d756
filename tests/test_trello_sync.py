"""The Trello pull path over real HTTP against the simulator, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from test_trello_support import (
    SOURCE,
    assert_same_store,
    assert_store_matches_world,
    fresh_store,
    running,
    source_cfg,
    store_state,
    sync,
)

from trackpulse.errors import RequestFailed
from trackpulse.simulator.ratelimit import FaultRule
from trackpulse.simulator.trello_world import FLOW, TrelloWorld
from trackpulse.store import writer
from trackpulse.store.models import Item, StatusDef
from trackpulse.store.writer import get_cursor


def test_full_sync_stores_exactly_the_simulators_boards_cards_moves_and_points(store: Any) -> None:
    world = TrelloWorld.generate(7, boards=2, cards_per_board=40)
    boards = list(world.boards)
    with running(world) as sim:
        result = sync(source_cfg(sim.url, boards), store, full=True)
    assert_store_matches_world(store, world, boards)
    # One snapshot, one cards/all and one actions page per board: nothing per card.
    assert sim.sim.count("/actions") == 2 and sim.sim.count("/cards/all") == 2 and len(sim.sim.requests) == 6
    assert result.histories > 0 and result.comments > 0
    with store.transaction() as s:
        lists = {r.status_id: (r.name, r.category) for r in s.execute(sa.select(StatusDef)).scalars()}
        cursor = writer.get_cursor(s, SOURCE, f"actions:{boards[0]}")
    for board in world.boards.values():
        for lid, lst in board.lists.items():
            expected = {"Done": "done", "Doing": "in_progress", "Review": "in_progress"}.get(lst["name"], "todo")
            assert lists[lid] == (lst["name"], expected)
    assert cursor == world.boards[boards[0]].action_ids[-1]  # the newest action id: tracker data


def test_card_reporter_is_the_member_who_created_it(store: Any) -> None:
    world = TrelloWorld.generate(7, boards=1, cards_per_board=30)
    boards = list(world.boards)
    creators = {a["data"]["card"]["id"]: a["idMemberCreator"] for a in world.boards[boards[0]].actions
                if a["type"] in ("createCard", "copyCard", "convertToCardFromCheckItem")}
    with running(world) as sim:
        sync(source_cfg(sim.url, boards), store, full=True)
    with store.transaction() as s:
        reporters = {r.item_id: r.reporter for r in s.execute(sa.select(Item)).scalars() if not r.deleted}
    assert reporters and all(reporters[c] == creators[c] for c in reporters if c in creators)
    assert sum(1 for c in reporters if c in creators) >= 20


def test_incremental_sync_fetches_only_new_actions_and_converges_to_a_full_sync(store_factory: Any,
                                                                                store: Any) -> None:
    world = TrelloWorld.generate(11, boards=1, cards_per_board=60)
    boards = list(world.boards)
    with running(world) as sim:
        cfg = source_cfg(sim.url, boards)
        sync(cfg, store, full=True)
        newest = world.boards[boards[0]].action_ids[-1]
        before = world.action_count()
        world.mutate(40)
        world.create_card(boards[0], world.boards[boards[0]].list_id("To Do"), "fresh", labels=["bug", "P2"], points=3)
        sim.sim.reset_stats()
        result = sync(cfg, store, full=False)
        actions_requests = [r for r in sim.sim.requests if r.path.endswith("/actions")]
        assert len(actions_requests) == 1 and actions_requests[0].params["since"] == newest
        assert len(sim.sim.requests) == 3  # snapshot, new actions, cards
        assert result.histories + result.comments == world.action_count() - before  # each new action once
        assert_store_matches_world(store, world, boards)
        # A second run with nothing new reads the board and one empty page, writes nothing.
        sim.sim.reset_stats()
        again = sync(cfg, store, full=False)
        assert (again.items, again.histories, len(sim.sim.requests)) == (0, 0, 2)
        other = store_factory()
        sync(cfg, other, full=True)
        assert_same_store(other, store)


def test_archived_and_deleted_cards_leave_the_metrics(store: Any) -> None:
    world = TrelloWorld.generate(5, boards=1, cards_per_board=10, actions_per_card=3)
    board = next(iter(world.boards.values()))
    with running(world) as sim:
        cfg = source_cfg(sim.url, [board.id])
        sync(cfg, store, full=True)
        live = [c for c in world.cards.values() if not c.deleted and not c.closed]
        archived, deleted, restored = live[0], live[1], live[2]
        world.archive_card(archived.id)
        world.archive_card(restored.id)
        world.unarchive_card(restored.id)
        world.delete_card(deleted.id)
        gone_unseen = world.create_card(board.id, board.list_id("Doing"), "short-lived")
        world.delete_card(gone_unseen)
        sync(cfg, store, full=False)
    with store.transaction() as s:
        rows = {i.item_id: i for i in s.execute(sa.select(Item)).scalars()}
    assert rows[archived.id].archived and not rows[archived.id].deleted
    assert not rows[restored.id].archived
    assert rows[deleted.id].deleted and rows[deleted.id].deleted_at is not None
    assert rows[gone_unseen].deleted  # created and deleted between two runs: a tombstone
    assert_store_matches_world(store, world, [board.id])


def test_full_sync_marks_cards_that_left_every_configured_board_deleted(tmp_path: Any) -> None:
    world = TrelloWorld.generate(9, boards=2, cards_per_board=15, actions_per_card=3)
    first, second = list(world.boards)
    with fresh_store(tmp_path) as store, running(world) as sim:
        sync(source_cfg(sim.url, [first, second]), store, full=True)
        mover = next(c for c in world.cards.values() if c.board_id == second and not c.deleted)
        # Now only the first board is tracked: the second board's cards are out of scope.
        result = sync(source_cfg(sim.url, [first]), store, full=True)
        with store.transaction() as s:
            row = s.get(Item, (SOURCE, mover.id))
        assert row is not None and row.deleted
        assert result.deleted >= 1


def test_cards_moved_between_tracked_boards_keep_one_history(store: Any) -> None:
    world = TrelloWorld.generate(13, boards=2, cards_per_board=20, actions_per_card=4)
    first, second = list(world.boards)
    with running(world) as sim:
        cfg = source_cfg(sim.url, [first, second])
        sync(cfg, store, full=True)
        card = next(c for c in world.cards.values() if c.board_id == first and not c.deleted)
        world.move_card_to_board(card.id, second, world.boards[second].list_id("Doing"))
        sync(cfg, store, full=False)
    with store.transaction() as s:
        row = s.get(Item, (SOURCE, card.id))
    assert row is not None and row.project == second and not row.deleted
    assert_store_matches_world(store, world, [first, second])


def test_killed_sync_resumes_without_losing_or_duplicating(store: Any) -> None:
    world = TrelloWorld.generate(17, boards=1, cards_per_board=40)
    board = next(iter(world.boards))
    with running(world) as sim:
        cfg = source_cfg(sim.url, [board], max_retries=0)
        # The third page of a 100-per-page backward walk fails for good: the run dies there.
        sim.sim.faults.add(_NthActionsPage("*/actions", status=503, remaining=None, nth=3))
        with pytest.raises(RequestFailed) as err:
            sync(cfg, store, full=True, page_limit=100)
        assert "HTTP 503" in err.value.one_line()
        with store.transaction() as s:
            assert get_cursor(s, SOURCE, f"actions:{board}") is None  # the walk is not done
            walk = get_cursor(s, SOURCE, f"actions-walk:{board}")
        assert walk is not None and '"floor": null' in walk
        halfway = store_state(store)
        assert len(halfway["histories"]) > 0
        # New activity while we were down lands above the walk's top: the next run picks it up.
        world.mutate(15)
        sim.sim.reset_stats()
        sync(cfg, store, full=False, page_limit=100)
        first_page = next(r for r in sim.sim.requests if r.path.endswith("/actions"))
        assert "before" in first_page.params  # resumed where it stopped, not from the top
        sync(cfg, store, full=False, page_limit=100)
        assert_store_matches_world(store, world, [board])
        with store.transaction() as s:
            assert get_cursor(s, SOURCE, f"actions:{board}") == world.boards[board].action_ids[-1]
            assert get_cursor(s, SOURCE, f"actions-walk:{board}") is None


@dataclass
class _NthActionsPage(FaultRule):
    """Fails only the `nth` request matching the glob."""

    nth: int = 1
    seen: int = 0

    def matches(self, method: str, path: str) -> bool:
        if not super().matches(method, path):
            return False
        self.seen += 1
        return self.seen == self.nth


def test_sync_reads_new_lists_and_categorises_them_by_name(store: Any) -> None:
    world = TrelloWorld.generate(19, boards=1, cards_per_board=5, actions_per_card=2)
    board = next(iter(world.boards.values()))
    with running(world) as sim:
        cfg = source_cfg(sim.url, [board.id], in_progress_lists=["doing", "QA"])
        sync(cfg, store, full=True)
        qa = world.add_list(board.id, "qa")
        card = next(c for c in world.cards.values() if not c.deleted and not c.closed)
        world.move_card(card.id, qa)
        sync(cfg, store, full=False)
    with store.transaction() as s:
        row = s.get(Item, (SOURCE, card.id))
        assert row is not None and (row.status_id, row.status_name, row.status_category) == (qa, "qa", "in_progress")
        doing = s.get(StatusDef, (SOURCE, board.list_id("Doing")))
        assert doing is not None and doing.category == "in_progress"  # config names match case-insensitively
    assert set(FLOW) <= {lst["name"] for lst in board.lists.values()}
