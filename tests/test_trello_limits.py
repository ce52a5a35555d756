"""Trello's rate limits and refusals: storms ridden out without losing data, bad credentials
and unknown boards reported as one clear line naming the source and the URL or board."""

from __future__ import annotations

from typing import Any

import pytest
from test_trello_support import (
    SOURCE,
    TOKEN,
    assert_store_matches_world,
    fresh_store,
    running,
    source_cfg,
    sync,
)
from trackpulse.connectors.trello.connector import TrelloConnector

from trackpulse.errors import AuthError, RequestFailed
from trackpulse.simulator.trello_world import TrelloWorld


def test_a_storm_of_429s_is_ridden_out_without_losing_data(tmp_path: Any) -> None:
    world = TrelloWorld.generate(41, boards=2, cards_per_board=30)
    boards = list(world.boards)
    # One-second windows keep the test short; the client learns the interval from the headers.
    with fresh_store(tmp_path) as store, running(world, window_seconds=1.0, token_limit=4) as sim:
        cfg = source_cfg(sim.url, boards)
        sim.sim.storm(3, kind="key")  # and a few forced key-limit refusals on top
        with TrelloConnector(cfg, page_limit=100) as connector:
            connector.sync(store, full=True)
            retries = connector.http.stats.retries
            assert connector.api.guard.limited >= 1
        assert sim.sim.count("", status=429) >= 3 and retries >= 3
        assert_store_matches_world(store, world, boards)
        # After a 429 the client waits for the window instead of hammering: refusals stay few.
        served = [r for r in sim.sim.requests if r.status != 429]
        assert sim.sim.count("", status=429) < len(served)


def test_pacing_keeps_under_the_per_token_limit_without_a_single_429(tmp_path: Any) -> None:
    world = TrelloWorld.generate(43, boards=1, cards_per_board=40)
    # The bucket allows its burst (= the rate) plus the rate per second: 10 + 10 in any second,
    # as 9 + 90 stays under Trello's 100 per 10 s. The window here is 1 s with 22 allowed.
    with fresh_store(tmp_path) as store, running(world, window_seconds=1.0, token_limit=22) as sim:
        cfg = source_cfg(sim.url, list(world.boards), requests_per_second=10)
        sync(cfg, store, full=True, page_limit=12)
        assert len(sim.sim.requests) >= 25
        assert sim.sim.count("", status=429) == 0
        assert sim.sim.max_in_window(1.0) <= 21


def test_a_bad_token_is_one_clear_line_naming_source_and_url(tmp_path: Any) -> None:
    world = TrelloWorld.generate(47, boards=1, cards_per_board=2, actions_per_card=1)
    with fresh_store(tmp_path) as store, running(world) as sim:
        for overrides, said in (({"token": "wrong"}, "invalid token"), ({"key": "wrong"}, "invalid key")):
            cfg = source_cfg(sim.url, list(world.boards), **overrides)
            with pytest.raises(AuthError) as err:
                sync(cfg, store, full=True)
            line = err.value.one_line()
            assert "\n" not in line and SOURCE in line and sim.url in line and said in line and "401" in line
            with TrelloConnector(cfg) as connector, pytest.raises(AuthError) as err:
                connector.check()
            assert SOURCE in err.value.one_line() and "/1/members/me" in err.value.one_line()
            assert TOKEN not in err.value.one_line()


def test_an_unknown_or_malformed_board_is_one_clear_line_naming_the_board(tmp_path: Any) -> None:
    world = TrelloWorld.generate(53, boards=1, cards_per_board=2, actions_per_card=1)
    real = next(iter(world.boards))
    with fresh_store(tmp_path) as store, running(world) as sim:
        for board in ("5f1c2b3a4d5e6f7081920a1b", "not-a-board"):
            cfg = source_cfg(sim.url, [real, board])
            with pytest.raises(RequestFailed) as err:
                sync(cfg, store, full=True)
            line = err.value.one_line()
            assert f"board {board} does not exist" in line and SOURCE in line and sim.url in line
            with TrelloConnector(cfg) as connector, pytest.raises(RequestFailed) as err:
                connector.check()
            assert f"board {board}" in err.value.one_line()
        with TrelloConnector(source_cfg(sim.url, [real])) as connector:
            result = connector.check()
        assert result.ok and result.deployment == "Trello" and result.user == "user0"


def test_server_errors_are_retried_and_the_sync_completes(tmp_path: Any) -> None:
    world = TrelloWorld.generate(59, boards=1, cards_per_board=20)
    with fresh_store(tmp_path) as store, running(world) as sim:
        sim.sim.faults.fail_next("*/actions", 2, status=503, retry_after=None)
        sim.sim.faults.fail_next("*/cards/all", 1, status=500, retry_after=None)
        cfg = source_cfg(sim.url, list(world.boards))
        with TrelloConnector(cfg, sleep=lambda s: None) as connector:
            connector.sync(store, full=True)
            assert connector.http.stats.retries == 3
        assert_store_matches_world(store, world, list(world.boards))
