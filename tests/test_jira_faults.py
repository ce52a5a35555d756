"""Jira sync under rate limits and failures: storms are ridden out, Retry-After is honoured,
and what cannot be done fails with one clear line while the store keeps its committed pages."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import JiraSimFactory, StoreFactory, assert_same_rows, store_rows
from trackpulse.connectors.jira import open_connector
from trackpulse.connectors.jira.sync import PROGRESS, WATERMARK

from trackpulse.errors import AuthError, RequestFailed, UnreachableError
from trackpulse.simulator.ratelimit import BucketSpec
from trackpulse.store.db import Store
from trackpulse.store.models import Item
from trackpulse.store.writer import get_cursor
from trackpulse.sync_api import NoProgress


def _items(store: Store) -> int:
    with store.session() as s:
        return int(s.execute(sa.select(sa.func.count()).select_from(Item)).scalar() or 0)


def test_429_storm_is_ridden_out_honouring_retry_after(
    jira_sim: JiraSimFactory, store_factory: StoreFactory
) -> None:
    # 8 requests a second per endpoint with a burst of 3: the parallel bulk reads hit 429s.
    sim = jira_sim("cloud", seed=4, issues_per_project=30, rate_limit=BucketSpec(rate=8, burst=3))
    cfg = sim.source(page_size=10, max_retries=6)
    store = store_factory()
    conn = open_connector(cfg)
    result = conn.sync(store, full=True)
    assert sim.stats.by_status[429] > 0 and conn.http.stats.by_status[429] == sim.stats.by_status[429]
    waits = conn.http.stats.retry_after_waits
    assert len(waits) == sim.stats.by_status[429]
    assert all(w >= 1.0 for w in waits)  # the simulator's Retry-After is at least one second
    assert result.items == sum(1 for _ in sim.world.live_issues())

    sim.app.state.rate_limiter.configure(None)
    fresh = store_factory()
    open_connector(cfg).sync(fresh, full=True)
    assert_same_rows(store_rows(store, cfg.name), store_rows(fresh, cfg.name))


@pytest.mark.parametrize("profile", ["cloud", "dc"])
def test_503_storm_with_retry_after_is_ridden_out(
    profile: str, jira_sim: JiraSimFactory, store: Store
) -> None:
    sim = jira_sim(profile, seed=4, issues_per_project=20)
    search = "/rest/api/3/search/jql" if profile == "cloud" else "/rest/api/2/search"
    sim.faults.fail_next(search, 2, status=503, retry_after=1)
    sim.faults.fail_next("/rest/agile/1.0/board/*/sprint", 1, status=503, retry_after=2)
    sim.faults.fail_next("/rest/api/*/field", 1, status=502, retry_after=None)  # no header: backoff
    conn = open_connector(sim.source())
    result = conn.sync(store, full=True)
    assert result.items == 40
    waits = sorted(conn.http.stats.retry_after_waits)
    # Exactly what was asked, never less: two waits of Retry-After 1, one of Retry-After 2.
    assert len(waits) == 3 and min(waits[:2]) >= 1.0 and waits[2] >= 2.0 and max(waits[:2]) < 2.0
    assert conn.http.stats.by_status[502] == 1 and conn.http.stats.retries == 4


@pytest.mark.parametrize("profile", ["cloud", "dc"])
def test_wrong_credentials_fail_with_one_line_naming_source_and_url(
    profile: str, jira_sim: JiraSimFactory, store: Store
) -> None:
    sim = jira_sim(profile, seed=2, issues_per_project=5)
    cfg = sim.source(token="wrong-token")
    with pytest.raises(AuthError) as err:
        open_connector(cfg).check()
    line = err.value.one_line()
    assert "\n" not in line and cfg.name in line and sim.base_url in line and "401" in line
    with pytest.raises(AuthError):
        open_connector(cfg).sync(store)
    assert _items(store) == 0


def test_unreachable_url_fails_with_one_line(store: Store) -> None:
    from trackpulse.config import JiraSourceConfig

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    cfg = JiraSourceConfig(
        name="gone", kind="jira", url=url, token="t", email="e@x", projects=["ABC"], max_retries=1
    )
    with pytest.raises(UnreachableError) as err:
        open_connector(cfg).check()
    line = err.value.one_line()
    assert "\n" not in line and "gone" in line and url in line
    with pytest.raises(UnreachableError):
        open_connector(cfg).sync(store)
    assert _items(store) == 0


class FailAfterFirstPage(NoProgress):
    """Turns every later request into a 500 once the first page of issues has committed."""

    def __init__(self, sim: Any, glob: str) -> None:
        self.sim, self.glob, self.armed = sim, glob, False

    def advance(self, source: str, entity: str, n: int = 1) -> None:
        if entity == "issues" and not self.armed:
            self.armed = True
            self.sim.faults.fail_randomly(self.glob, 1.0, status=500)


@pytest.mark.parametrize("profile", ["cloud", "dc"])
def test_500_mid_sync_keeps_committed_pages_and_names_the_url(
    profile: str, jira_sim: JiraSimFactory, store_factory: StoreFactory
) -> None:
    sim = jira_sim(profile, seed=6, issues_per_project=40)
    cfg = sim.source(page_size=5 if profile == "cloud" else 30, max_retries=1)
    store = store_factory()
    glob = "/rest/api/3/issue/bulkfetch" if profile == "cloud" else "/rest/api/2/search"
    with pytest.raises(RequestFailed) as err:
        open_connector(cfg).sync(store, progress=FailAfterFirstPage(sim, glob))
    line = err.value.one_line()
    assert "\n" not in line and cfg.name in line and glob in line and "500" in line
    page = 50 if profile == "cloud" else 30  # Cloud commits ten bulkfetches (of page_size) at a time
    assert _items(store) == page
    with store.session() as s:
        assert json.loads(get_cursor(s, cfg.name, PROGRESS) or "{}")["last_id"] > 0
        assert get_cursor(s, cfg.name, WATERMARK) is None

    sim.faults.clear()
    open_connector(cfg).sync(store)  # resumes after the committed page
    fresh = store_factory()
    open_connector(cfg).sync(fresh, full=True)
    assert_same_rows(store_rows(store, cfg.name), store_rows(fresh, cfg.name))
