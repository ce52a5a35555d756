"""Jira Data Center full sync read in parallel id slices, against the simulator over real HTTP.

A fresh Data Center run whose first page shows many pages to come splits the ids above that page
into contiguous `id > a AND id <= b` slices read in parallel, each with its own progress point
in `issues.progress`. Whatever instant it is killed at, a re-run reads exactly what had not been
committed, and the store ends equal to a sequential sync of the same site.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import JiraSimFactory, StoreFactory, assert_same_rows, store_rows
from trackpulse.connectors.jira import describe_cursor, open_connector
from trackpulse.connectors.jira.sync import DC_SLICE_MIN_PAGES, PROGRESS, WATERMARK

from trackpulse.errors import RequestFailed
from trackpulse.store.db import Store
from trackpulse.store.models import Item
from trackpulse.store.writer import get_cursor
from trackpulse.sync_api import NoProgress

_CHILD = """
import json, sys
from trackpulse.config import JiraSourceConfig
from trackpulse.store.db import open_store
from trackpulse.jobs.sync import sync_source
cfg = JiraSourceConfig(**json.loads(sys.argv[1]))
sync_source(open_store(sys.argv[2]), cfg, full=False)
print("completed")
"""


def _items(store: Store, source: str) -> set[str]:
    with store.session() as s:
        return set(s.execute(sa.select(Item.item_id).where(Item.source == source)).scalars())


def _plan(store: Store, source: str) -> dict[str, Any] | None:
    with store.session() as s:
        raw = get_cursor(s, source, PROGRESS)
    return json.loads(raw) if raw else None


def _committed(plan: dict[str, Any], issue_id: int) -> bool:
    """What a progress point claims is stored: every id up to `last_id`, and in each slice the
    ids up to its own point."""
    if issue_id <= plan["last_id"]:
        return True
    return any(sl["lo"] < issue_id <= sl["last"] for sl in plan.get("slices") or ())


class PlanRecorder(NoProgress):
    """Reads the progress point after every committed page (what a crash would resume from)."""

    def __init__(self, store: Store, source: str) -> None:
        self.store, self.source, self.plans = store, source, []  # type: list[dict[str, Any]]

    def advance(self, source: str, entity: str, n: int = 1) -> None:
        if entity == "issues" and (plan := _plan(self.store, self.source)):
            self.plans.append(plan)


def test_dc_full_sync_reads_id_slices_in_parallel_and_equals_a_sequential_sync(
    jira_sim: JiraSimFactory, store_factory: StoreFactory
) -> None:
    sim = jira_sim("dc", seed=11, issues_per_project=150)
    live = sorted(int(i.id) for i in sim.world.live_issues())
    cfg = sim.source(page_size=10, concurrency=4)
    store = store_factory()
    recorder = PlanRecorder(store, cfg.name)
    result = open_connector(cfg).sync(store, full=True, progress=recorder)
    assert result.items == len(live)

    sliced = [p for p in recorder.plans if p.get("slices")]
    assert sliced, "the run was not read in id slices"
    slices = sliced[0]["slices"]
    assert len(slices) == 4  # up to `concurrency`
    # Contiguous, in order, above the first page, the last one open for issues created meanwhile.
    assert slices[0]["lo"] == sliced[0]["last_id"] == live[cfg.page_size - 1]
    assert all(a["hi"] == b["lo"] for a, b in itertools.pairwise(slices))
    assert slices[-1]["hi"] is None
    # Every slice's point only moves forward, over committed pages.
    for k in range(len(slices)):
        points = [p["slices"][k]["last"] for p in sliced]
        assert points == sorted(points)
    assert _plan(store, cfg.name) is None  # the run completed

    fresh = store_factory()
    sequential = open_connector(cfg.model_copy(update={"concurrency": 1})).sync(fresh, full=True)
    assert sequential.items == result.items
    assert_same_rows(store_rows(store, cfg.name), store_rows(fresh, cfg.name))


def test_dc_sync_in_slices_killed_mid_way_and_rerun_loses_and_duplicates_nothing(
    jira_sim: JiraSimFactory, store_factory: StoreFactory
) -> None:
    sim = jira_sim("dc", seed=12, latency_ms=30, issues_per_project=150)
    live = {int(i.id) for i in sim.world.live_issues()}
    cfg = sim.source(page_size=5, concurrency=4)
    store = store_factory()
    args = [sys.executable, "-c", _CHILD, json.dumps({**cfg.model_dump(), "token": "sim-token"}),
            store.engine.url.render_as_string(hide_password=False)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            plan = _plan(store, cfg.name)
            slices = (plan or {}).get("slices") or []
            # Killed once several slices have committed pages of their own and none is done.
            if sum(sl["last"] > sl["lo"] for sl in slices) >= 2:
                break
            time.sleep(0.005)
        assert proc.poll() is None, f"the sync ended before it could be killed: {proc.communicate()}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL

    plan = _plan(store, cfg.name)
    assert plan is not None and plan["slices"]
    with store.session() as s:
        assert get_cursor(s, cfg.name, WATERMARK) is None  # the watermark moves only when a run completes
    stored = {int(i) for i in _items(store, cfg.name)}
    # What is stored is exactly what the progress point claims: nothing beyond, nothing missing.
    assert stored == {i for i in live if _committed(plan, i)}
    assert 0 < len(stored) < len(live)
    reading = describe_cursor(PROGRESS, json.dumps(plan)).text
    assert reading.startswith("run in progress") and "id slices" in reading

    result = open_connector(cfg).sync(store)
    assert result.notes and "resumed" in result.notes[0] and "id slices" in result.notes[0]
    assert result.full  # it finished the interrupted first (full) run
    # Each issue was read once across both runs: none committed before the kill is read again.
    assert result.items == len(live) - len(stored)
    assert {int(i) for i in _items(store, cfg.name)} == live
    assert _plan(store, cfg.name) is None

    sim.app.state.sim.latency_ms = 0
    fresh = store_factory()
    open_connector(cfg.model_copy(update={"concurrency": 1, "page_size": 100})).sync(fresh, full=True)
    assert_same_rows(store_rows(store, cfg.name), store_rows(fresh, cfg.name))


class FailSearchAfter(NoProgress):
    """Once `pages` pages have committed, every later search answers 500."""

    def __init__(self, sim: Any, pages: int) -> None:
        self.sim, self.left, self.armed = sim, pages, False

    def advance(self, source: str, entity: str, n: int = 1) -> None:
        if entity == "issues" and not self.armed:
            self.left -= 1
            if self.left <= 0:
                self.armed = True
                self.sim.faults.fail_randomly("/rest/api/2/search", 1.0, status=500)


def test_dc_slice_failing_mid_run_stops_the_run_keeps_committed_pages_and_resumes(
    jira_sim: JiraSimFactory, store_factory: StoreFactory
) -> None:
    sim = jira_sim("dc", seed=13, issues_per_project=150)
    live = {int(i.id) for i in sim.world.live_issues()}
    cfg = sim.source(page_size=10, concurrency=4, max_retries=1)
    store = store_factory()
    with pytest.raises(RequestFailed) as err:
        open_connector(cfg).sync(store, full=True, progress=FailSearchAfter(sim, 3))
    line = err.value.one_line()
    assert "\n" not in line and cfg.name in line and "/rest/api/2/search" in line and "500" in line
    plan = _plan(store, cfg.name)
    assert plan is not None and plan["slices"]
    stored = {int(i) for i in _items(store, cfg.name)}
    assert stored == {i for i in live if _committed(plan, i)} and len(stored) < len(live)

    sim.faults.clear()
    result = open_connector(cfg).sync(store)
    assert result.items == len(live) - len(stored)
    fresh = store_factory()
    open_connector(cfg.model_copy(update={"concurrency": 1})).sync(fresh, full=True)
    assert_same_rows(store_rows(store, cfg.name), store_rows(fresh, cfg.name))


def test_dc_slices_are_sized_by_the_page_the_server_used_not_the_one_asked_for(
    jira_sim: JiraSimFactory, store: Store
) -> None:
    sim = jira_sim("dc", seed=14, issues_per_project=100)
    sim.app.state.sim.dc_search_max = 8  # an admin lowered jira.search.views.default.max
    live = sum(1 for _ in sim.world.live_issues())
    cfg = sim.source(page_size=1000, concurrency=3)
    recorder = PlanRecorder(store, cfg.name)
    conn = open_connector(cfg)
    result = conn.sync(store, full=True, progress=recorder)
    assert result.items == live
    sliced = [p for p in recorder.plans if p.get("slices")]
    assert sliced and len(sliced[0]["slices"]) == 3
    # Pages of 8 however many we asked for; each slice adds at most one partial page, plus one
    # request for the highest id.
    searches = conn.http.stats.by_path["/rest/api/2/search"]
    assert math.ceil(live / 8) <= searches <= math.ceil(live / 8) + 3 + 1


def test_dc_scope_of_few_pages_is_read_sequentially(jira_sim: JiraSimFactory, store: Store) -> None:
    sim = jira_sim("dc", seed=15, issues_per_project=40)
    live = sum(1 for _ in sim.world.live_issues())
    cfg = sim.source(page_size=10, concurrency=4)
    assert math.ceil(live / 10) - 1 < 2 * DC_SLICE_MIN_PAGES  # too few pages for two slices
    recorder = PlanRecorder(store, cfg.name)
    conn = open_connector(cfg)
    conn.sync(store, full=True, progress=recorder)
    assert recorder.plans and not any(p.get("slices") for p in recorder.plans)
    assert conn.http.stats.by_path["/rest/api/2/search"] == math.ceil(live / 10)  # no probe, no partial pages
