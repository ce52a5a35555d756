"""Benchmark: full and incremental Trello sync of one board with 5,000 cards and ~50,000 actions.

Runs the simulator on a loopback port with Trello's real limits (100 requests per 10 s per
token, 300 per key) and the connector at its default pacing (9 requests/s), into a fresh
SQLite store (or `--store URL`). Prints requests, wall time, rows, and the most requests the
simulator saw in any sliding 10-second window (must stay under 100).

    .venv/bin/python bench/bench_trello_sync.py [--cards 5000] [--actions 50000] [--latency-ms 0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from trackpulse.connectors.trello.connector import TrelloConnector

from trackpulse.config import TrelloSourceConfig
from trackpulse.simulator.runner import serve_in_thread
from trackpulse.simulator.trello_app import create_trello_app
from trackpulse.simulator.trello_world import TrelloWorld
from trackpulse.store.db import open_store
from trackpulse.store.models import Comment, EstimateChange, History, Item, Transition

KEY, TOKEN, SECRET = "k" * 32, "t" * 64, "s" * 32


def _counts(store) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with store.transaction() as s:
        return {m.__tablename__: s.execute(sa.select(sa.func.count()).select_from(m)).scalar_one()
                for m in (Item, History, Transition, EstimateChange, Comment)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cards", type=int, default=5000)
    ap.add_argument("--actions", type=int, default=50000)
    ap.add_argument("--changes", type=int, default=500, help="random changes before the incremental run")
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--rps", type=float, default=9.0, help="connector pacing (requests per second)")
    ap.add_argument("--store", default=None, help="store URL (default: a fresh SQLite file)")
    args = ap.parse_args()

    t = time.perf_counter()
    world = TrelloWorld.generate(2026, boards=1, cards_per_board=args.cards,
                                 actions_per_card=args.actions / args.cards * 1.06)
    board = next(iter(world.boards))
    print(f"world: {args.cards} cards, {world.action_count()} actions generated in {time.perf_counter() - t:.1f} s")

    app = create_trello_app(world, key=KEY, token=TOKEN, app_secret=SECRET, latency_ms=args.latency_ms)
    sim = app.state.sim
    with tempfile.TemporaryDirectory() as tmp, serve_in_thread(app) as url:
        store = open_store(args.store or f"sqlite:///{Path(tmp) / 'bench.db'}")
        cfg = TrelloSourceConfig(name="bench-trello", kind="trello", api_url=url, key=KEY, token=TOKEN,
                                 boards=[board], requests_per_second=args.rps,
                                 in_progress_lists=["Doing", "Review"], priority_labels=["P1", "P2", "P3"])
        for label, full in (("full", True), ("incremental", False)):
            if not full:
                world.mutate(args.changes)
            sim.reset_stats()
            t = time.perf_counter()
            with TrelloConnector(cfg) as connector:
                result = connector.sync(store, full=full)
            wall = time.perf_counter() - t
            by_path: dict[str, int] = {}
            for r in sim.requests:
                kind = r.path.rsplit("/", 1)[-1] if r.path.count("/") > 3 else "board"
                by_path[kind] = by_path.get(kind, 0) + 1
            peak = sim.max_in_window(10.0, token=TOKEN)
            print(f"\n{label} sync: {len(sim.requests)} requests {by_path}, {wall:.1f} s wall, "
                  f"{sim.count('', status=429)} x 429")
            print(f"  written: {result.items} items, {result.histories} histories, {result.comments} comments, "
                  f"{result.deleted} deleted")
            print(f"  max requests in any 10 s window: {peak} (limit 100 per token) -> "
                  f"{'OK' if peak < 100 else 'OVER'}")
        print(f"\nstore rows: {_counts(store)}")
        store.dispose()


if __name__ == "__main__":
    main()
