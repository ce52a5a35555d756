"""Benchmark: dashboard response times, cold and warm, for `/` and each tab (a program, not a test).

Builds a store of 10 projects and ~20,000 items by a full sync of two Jira simulator worlds
(5 projects × 2,000 issues each, over real HTTP), serves trackpulse with uvicorn on
127.0.0.1, and times each page with a bearer token:
- cold: the first request after start (it loads the store and replays the metrics), then the
  first request of every other tab (report cached, charts rendered);
- warm: median and max of 5 repeated requests per page (the < 300 ms target);
- after change: the first `/` after the store changed (the change counter moved, as after a
  webhook), then warm again.

    .venv/bin/python bench/bench_dashboard.py [--issues-per-project 2000] [--store-dir DIR]

With `--store-dir`, a store built by an earlier run there is reused (no sync).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

TOKEN = "bench-token"
PAGES = ["/", "/sprints", "/flow", "/schedule", "/people", "/sync"]


def build_store(store_dir: Path, per_project: int) -> tuple[dict, float]:
    from trackpulse.jobs.sync import sync_source

    from trackpulse.config import parse_config
    from trackpulse.simulator.jira_app import create_jira_app
    from trackpulse.simulator.jira_world import JiraWorld
    from trackpulse.simulator.runner import serve_in_thread
    from trackpulse.store.db import open_store

    db = store_dir / "bench.db"
    base_cfg = {"store": {"url": f"sqlite:///{db}"}, "server": {"token": TOKEN},
                "sla": {"policies": [{"name": "all", "response_hours": 8, "resolution_hours": 72}]}}
    if db.exists():
        sources = [{"name": f"jira-{i}", "kind": "jira", "url": "http://127.0.0.1:9", "token": "t",
                    "email": "sim@example.com", "projects": ["ABC", "DEF", "GHI", "JKL", "MNO"]} for i in (1, 2)]
        return {**base_cfg, "sources": sources}, 0.0
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    t0 = time.perf_counter()
    sources = []
    for i in (1, 2):
        world = JiraWorld.generate(10 + i, projects=5, issues_per_project=per_project, now=now)
        with serve_in_thread(create_jira_app(world, profile="cloud")) as url:
            src = {"name": f"jira-{i}", "kind": "jira", "url": url, "token": "sim-token",
                   "email": "sim@example.com", "projects": sorted(world.projects)}
            cfg = parse_config({**base_cfg, "sources": [src]})
            store = open_store(cfg.store.url)
            sync_source(store, cfg.sources[0], full=True)
            store.dispose()
        sources.append({**src, "url": "http://127.0.0.1:9"})  # the simulator is gone; serving needs no tracker
    return {**base_cfg, "sources": sources}, time.perf_counter() - t0


def timed(http: httpx.Client, path: str) -> float:
    t0 = time.perf_counter()
    r = http.get(path)
    elapsed = (time.perf_counter() - t0) * 1000
    assert r.status_code == 200, (path, r.status_code, r.text[:200])
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--issues-per-project", type=int, default=2000)
    ap.add_argument("--store-dir", type=Path, default=None)
    args = ap.parse_args()
    store_dir = args.store_dir or Path(tempfile.mkdtemp(prefix="tp-bench-dash-"))
    store_dir.mkdir(parents=True, exist_ok=True)
    cfg_dict, sync_s = build_store(store_dir, args.issues_per_project)

    import sqlalchemy as sa

    from trackpulse.config import parse_config
    from trackpulse.server.app import close_app, create_app
    from trackpulse.simulator.runner import serve_in_thread
    from trackpulse.store.db import open_store
    from trackpulse.store.models import Item

    cfg = parse_config(cfg_dict)
    store = open_store(cfg.store.url)
    with store.session() as s:
        items = s.execute(sa.select(sa.func.count()).select_from(Item)).scalar_one()
        projects = s.execute(sa.select(sa.func.count(sa.distinct(Item.source + "/" + Item.project)))).scalar_one()
    print(f"store: {items} items in {projects} projects ({store_dir}); sync took {sync_s:.1f} s"
          if sync_s else f"store: {items} items in {projects} projects (reused {store_dir})")
    app = create_app(cfg, store, start_worker=False)
    try:
        with serve_in_thread(app) as base, httpx.Client(base_url=base, timeout=300,
                                                       headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            print(f"{'page':<10} {'cold ms':>9} {'warm p50':>9} {'warm max':>9}")
            cold = {p: timed(http, p) for p in PAGES}
            warm = {p: [timed(http, p) for _ in range(5)] for p in PAGES}
            for p in PAGES:
                print(f"{p:<10} {cold[p]:>9.0f} {statistics.median(warm[p]):>9.1f} {max(warm[p]):>9.1f}")
            with store.engine.begin() as conn:  # what a webhook does to the change counter
                conn.execute(sa.update(Item.__table__).where(Item.__table__.c.item_id == sa.select(  # type: ignore[attr-defined]
                    sa.func.min(Item.__table__.c.item_id)).scalar_subquery())  # type: ignore[attr-defined]
                    .values(updated=datetime.now(UTC)))
            after = timed(http, "/")
            again = [timed(http, "/") for _ in range(5)]
            print(f"after a store change: first / {after:.0f} ms, then warm p50 {statistics.median(again):.1f} ms")
            for p in ("/sprints", "/flow"):
                print(f"  first {p} after the change: {timed(http, p):.0f} ms")
    finally:
        close_app(app)


if __name__ == "__main__":
    main()
