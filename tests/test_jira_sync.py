"""Jira sync against the simulator over real HTTP, on SQLite and PostgreSQL, Cloud and Data Center.

The simulator's world is the truth: a full sync must store exactly what it holds, an incremental
sync must fetch only what changed and end equal to a fresh full sync, and a sync killed at any
instant must lose and duplicate nothing.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import JiraSimFactory, StoreFactory, assert_same_rows, store_rows
from trackpulse.connectors.jira import apply_webhook, open_connector
from trackpulse.connectors.jira.sync import PROGRESS, WATERMARK

from trackpulse.simulator.jira_render import JiraRenderer
from trackpulse.simulator.jira_world import F_ASSIGNEE, F_POINTS, F_SPRINT, F_STATUS, ISSUE_TYPES, PROFILES
from trackpulse.simulator.webhooks import jira_webhook_payload
from trackpulse.store.db import Store
from trackpulse.store.models import (
    AssigneeChange,
    Comment,
    EstimateChange,
    History,
    Item,
    Sprint,
    SprintChange,
    Transition,
    Worklog,
)
from trackpulse.store.writer import get_cursor
from trackpulse.sync_api import NoProgress

PROFILE_NAMES = ["cloud", "dc"]


def _ms(t: datetime) -> datetime:
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def _by_item(store: Store, model: Any, source: str, value: Any = None) -> Counter[str]:
    with store.session() as s:
        q = sa.select(model.item_id, value if value is not None else sa.literal(1)).where(
            model.source == source
        )
        if hasattr(model, "deleted"):
            q = q.where(model.deleted.is_(False))
        c: Counter[str] = Counter()
        for item_id, v in s.execute(q).all():
            c[item_id] += v
        return c


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_full_sync_stores_exactly_what_the_simulator_holds(
    profile: str, jira_sim: JiraSimFactory, store: Store
) -> None:
    sim = jira_sim(profile, seed=3, issues_per_project=60)
    world = sim.world
    cfg = sim.source()
    result = open_connector(cfg).sync(store, full=True, progress=NoProgress())
    live = {i.id: i for i in world.live_issues()}
    assert result.items == len(live) and result.full

    with store.session() as s:
        items = {i.item_id: i for i in s.execute(sa.select(Item).where(Item.source == cfg.name)).scalars()}
        sprints = {
            sp.sprint_id: sp for sp in s.execute(sa.select(Sprint).where(Sprint.source == cfg.name)).scalars()
        }
    assert set(items) == set(live)
    for iid, issue in live.items():
        it = items[iid]
        assert (it.key, it.project, it.status_id) == (issue.key, issue.project_key, issue.status)
        assert it.points == issue.points
        assert it.sprint_ids == [str(x) for x in issue.sprints]
        assert it.is_defect == (ISSUE_TYPES[issue.issue_type].name in cfg.defect_types)
        assert (
            it.status_category
            == {"new": "todo", "indeterminate": "in_progress", "done": "done"}[issue.status_category]
        )
        assert (it.created, it.updated) == (
            _ms(issue.created),
            _ms(issue.updated),
        )  # Jira renders milliseconds

    # Cloud reads changelogs through changelog/bulkfetch limited to status, Sprint, assignee and
    # story points; Data Center embeds every history.
    relevant = {F_STATUS, F_SPRINT, F_POINTS, F_ASSIGNEE}
    hist = {
        iid: [h for h in i.histories if profile == "dc" or any(x.field in relevant for x in h.items)]
        for iid, i in live.items()
    }
    assert _by_item(store, History, cfg.name) == Counter({k: len(v) for k, v in hist.items() if v})

    def count(field: str) -> Counter[str]:
        return Counter(
            {
                iid: n
                for iid, i in live.items()
                if (n := sum(1 for h in i.histories for x in h.items if x.field == field))
            }
        )

    assert _by_item(store, Transition, cfg.name) == count(F_STATUS)
    assert _by_item(store, SprintChange, cfg.name) == count(F_SPRINT)
    assert _by_item(store, EstimateChange, cfg.name) == count(F_POINTS)
    assert _by_item(store, AssigneeChange, cfg.name) == count(F_ASSIGNEE)
    assert _by_item(store, Worklog, cfg.name, Worklog.seconds) == Counter(
        {iid: s for iid, i in live.items() if (s := sum(w.seconds for w in i.live_worklogs))}  # noqa: RUF018
    )
    assert _by_item(store, Comment, cfg.name) == Counter(
        {iid: len(i.live_comments) for iid, i in live.items() if i.live_comments}
    )
    assert {k: v.state for k, v in sprints.items()} == {str(k): v.state for k, v in world.sprints.items()}
    assert all(sp.board_id == str(world.sprints[int(k)].board_id) for k, sp in sprints.items())
    with store.session() as s:
        assert get_cursor(s, cfg.name, PROGRESS) is None  # the run completed
        assert json.loads(get_cursor(s, cfg.name, WATERMARK) or "{}")["at"] == int(
            world.now.timestamp() * 1000
        )


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_incremental_sync_fetches_only_changes_and_equals_a_fresh_full_sync(
    profile: str, jira_sim: JiraSimFactory, store_factory: StoreFactory
) -> None:
    sim = jira_sim(profile, seed=5, issues_per_project=60)
    world = sim.world
    cfg = sim.source()
    store = store_factory()
    open_connector(cfg).sync(store, full=True)
    first_run_start = world.now

    world.advance(timedelta(hours=3))
    before_events = len(world.events)
    world.mutate(11, fraction=0.08)
    world.advance(timedelta(minutes=2))  # past the worklog feed's one-minute lag
    changed = {
        str(e.issue_nid)
        for e in world.events[before_events:]
        if e.issue_nid is not None and e.name != "jira:issue_deleted"
    }
    deleted = {str(e.issue_nid) for e in world.events[before_events:] if e.name == "jira:issue_deleted"}
    changed -= deleted
    # The run re-reads the overlap window before the last run's start (clock-skew safety).
    window = {i.id for i in world.live_issues() if i.updated >= first_run_start - timedelta(minutes=5)}
    assert changed <= window and len(window) < 0.2 * len(world.issues)

    sim.stats.reset()
    conn = open_connector(cfg)
    result = conn.sync(store)
    assert not result.full and result.items == len(window)
    used = conn.http.stats.by_path
    api = "/rest/api/3" if profile == "cloud" else "/rest/api/2"
    if profile == "cloud":
        assert used["/rest/api/3/search/jql"] == 1
        assert used["/rest/api/3/issue/bulkfetch"] == math.ceil(len(window) / 100)
        assert used["/rest/api/3/changelog/bulkfetch"] == 1
    else:
        assert used["/rest/api/2/search"] == math.ceil(len(window) / cfg.page_size)
    # Per-issue calls only for long worklog lists; the catalogue comes from the cache.
    per_issue = [p for p in used if p.startswith(f"{api}/issue/") and not p.endswith("bulkfetch")]
    assert all(p.endswith("/worklog") for p in per_issue)
    assert used[f"{api}/field"] == 0 and used[f"{api}/status"] == 0
    assert sum(used.values()) == sim.stats.total  # what we count is what the tracker saw

    fresh = store_factory()
    open_connector(cfg).sync(fresh, full=True)
    inc_rows, fresh_rows = store_rows(store, cfg.name), store_rows(fresh, cfg.name)
    # Only a deletion is invisible to an incremental run...
    dropped = store_rows(store, cfg.name, exclude_items=deleted)
    assert len(dropped["item"]) == len(inc_rows["item"]) - len(deleted)
    assert_same_rows(dropped, fresh_rows)
    # ... until the `jira:issue_deleted` webhook arrives.
    renderer = JiraRenderer(world, PROFILES[profile], sim.base_url, api_version=2)
    for ev in world.events[before_events:]:
        if ev.name == "jira:issue_deleted":
            apply_webhook(store, cfg, jira_webhook_payload(world, renderer, ev), {})
    assert_same_rows(store_rows(store, cfg.name), fresh_rows)
    with store.session() as s:
        tomb = s.execute(sa.select(Item.item_id, Item.deleted_at).where(Item.deleted.is_(True))).all()
    assert {t[0] for t in tomb} == deleted and all(t[1] is not None for t in tomb)


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_full_sync_tombstones_issues_the_tracker_no_longer_has(
    profile: str, jira_sim: JiraSimFactory, store: Store
) -> None:
    sim = jira_sim(profile, seed=7, issues_per_project=40)
    world = sim.world
    cfg = sim.source()
    open_connector(cfg).sync(store, full=True)
    victim = min(world.live_issues(), key=lambda i: -len(i.live_worklogs))
    world.advance(timedelta(hours=1))
    world.delete_issue(victim.nid)
    world.advance(timedelta(minutes=2))
    open_connector(cfg).sync(store)  # incremental: cannot see the deletion
    with store.session() as s:
        assert not s.get(Item, (cfg.name, victim.id)).deleted  # type: ignore[union-attr]
    result = open_connector(cfg).sync(store, full=True)
    assert result.deleted == 1
    with store.session() as s:
        item = s.get(Item, (cfg.name, victim.id))
        assert item is not None and item.deleted and item.deleted_at is not None
        live_wl = s.execute(
            sa.select(sa.func.count())
            .select_from(Worklog)
            .where(Worklog.item_id == victim.id, Worklog.deleted.is_(False))
        ).scalar()
    assert live_wl == 0


_CHILD = """
import json, sys
from trackpulse.config import JiraSourceConfig
from trackpulse.store.db import open_store
from trackpulse.jobs.sync import sync_source
cfg = JiraSourceConfig(**json.loads(sys.argv[1]))
sync_source(open_store(sys.argv[2]), cfg, full=False)
print("completed")
"""


def _store_url(store: Store) -> str:
    return store.engine.url.render_as_string(hide_password=False)


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_sync_killed_mid_way_and_rerun_loses_and_duplicates_nothing(
    profile: str, jira_sim: JiraSimFactory, store_factory: StoreFactory
) -> None:
    sim = jira_sim(profile, seed=9, latency_ms=20, issues_per_project=60)
    cfg = sim.source(page_size=5 if profile == "cloud" else 25)
    store = store_factory()
    args = [
        sys.executable,
        "-c",
        _CHILD,
        json.dumps({**cfg.model_dump(), "token": "sim-token"}),
        _store_url(store),
    ]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    committed = None
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            with store.session() as s:
                committed = get_cursor(s, cfg.name, PROGRESS)
            if committed and json.loads(committed)["last_id"] > 0:
                break
            time.sleep(0.01)
        assert proc.poll() is None, f"the sync ended before it could be killed: {proc.communicate()}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    with store.session() as s:
        progress = json.loads(get_cursor(s, cfg.name, PROGRESS) or "{}")
        assert get_cursor(s, cfg.name, WATERMARK) is None  # the watermark moves only when a run completes
        n_items = s.execute(sa.select(sa.func.count()).select_from(Item)).scalar()
    assert 0 < progress["last_id"] and 0 < n_items < sum(1 for _ in sim.world.live_issues())

    conn = open_connector(cfg)
    result = conn.sync(store)
    assert result.notes and "resumed" in result.notes[0]
    assert result.full  # it finished the interrupted first (full) run
    # Nothing up to the committed point is fetched again.
    remaining = sum(1 for i in sim.world.live_issues() if int(i.id) > progress["last_id"])
    assert result.items == remaining
    if profile == "cloud":
        assert conn.http.stats.by_path["/rest/api/3/issue/bulkfetch"] == math.ceil(remaining / cfg.page_size)
    else:
        assert (
            conn.http.stats.by_path["/rest/api/2/search"] == math.ceil(remaining / cfg.page_size) + 1
        )  # + id sweep

    sim.app.state.sim.latency_ms = 0
    fresh = store_factory()
    open_connector(cfg.model_copy(update={"page_size": 100})).sync(fresh, full=True)
    assert_same_rows(store_rows(store, cfg.name), store_rows(fresh, cfg.name))


def test_sqlites_bulk_write_path_stores_exactly_what_the_generic_path_stores(
    jira_sim: JiraSimFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer hands big SQLite batches straight to the driver (`writer._execute_many`): the
    database files it writes hold the same text, row for row, as SQLAlchemy's own path."""
    import sqlite3

    from trackpulse.store import writer
    from trackpulse.store.db import open_store

    sim = jira_sim("dc", seed=3, issues_per_project=60)
    dumps = []
    for name, threshold in (("generic", 10**9), ("bulk", 1)):
        monkeypatch.setattr(writer, "FAST_MANY_MIN_ROWS", threshold)
        store = open_store(f"sqlite:///{tmp_path / name}.db")
        open_connector(sim.source(concurrency=1)).sync(store, full=True)
        store.dispose()
        con = sqlite3.connect(tmp_path / f"{name}.db")
        tables = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                  if t not in ("source_state", "sync_run", "sync_cursor", "alembic_version")]  # wall-clock times
        dumps.append({t: sorted(map(repr, con.execute(f'SELECT * FROM "{t}"'))) for t in tables})
        con.close()
    assert dumps[0].keys() == dumps[1].keys()
    for t in dumps[0]:
        assert dumps[0][t] == dumps[1][t], t
    assert len(dumps[1]["history"]) > 100
