"""Benchmark: Jira Cloud sync against the simulator over real HTTP (a program, not a test).

A full sync of N issues (default 20,000) with per-request latency and a per-endpoint rate
limit, then an incremental sync after ~1 % of the issues changed. Prints issues per second,
requests per issue, the requests by endpoint, 429s ridden out, and the sync process's peak
memory (`resource.getrusage`, measured in a separate process so the simulator's world does
not count).

    .venv/bin/python bench/bench_jira_sync.py [--issues 20000] [--latency-ms 20] [--rate 60 --burst 30]
                                              [--store sqlite|postgresql+psycopg://...] [--profile cloud|dc]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import tempfile
import time
from datetime import timedelta
from typing import Any


def run_sync(cfg_json: str, store_url: str, full: bool, out: Any) -> None:
    """In a fresh (spawned) process: one sync; send back its figures."""
    from trackpulse.connectors.jira import open_connector

    from trackpulse.config import JiraSourceConfig
    from trackpulse.store.db import open_store

    cfg = JiraSourceConfig.model_validate_json(cfg_json)
    store = open_store(store_url)
    conn = open_connector(cfg)
    t0 = time.perf_counter()
    result = conn.sync(store, full=full)
    seconds = time.perf_counter() - t0
    st = conn.http.stats
    out.send(
        {
            "items": result.items,
            "histories": result.histories,
            "worklogs": result.worklogs,
            "seconds": seconds,
            "requests": st.requests,
            "retries": st.retries,
            "status_429": st.by_status[429],
            "waited": st.waited_seconds,
            "by_path": dict(st.by_path),
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )
    store.dispose()


def sync_in_child(cfg_json: str, store_url: str, full: bool) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=run_sync, args=(cfg_json, store_url, full, child))
    proc.start()
    figures = parent.recv()
    proc.join()
    return figures  # type: ignore[no-any-return]


def report(title: str, f: dict[str, Any]) -> None:
    print(f"\n== {title}")
    items = f["items"] or 1
    print(f"issues written      {f['items']:>10,}")
    print(f"histories, worklogs {f['histories']:>10,} {f['worklogs']:>10,}")
    print(f"seconds             {f['seconds']:>10.1f}")
    print(f"issues per second   {f['items'] / f['seconds']:>10.0f}")
    print(f"requests            {f['requests']:>10,}")
    print(f"requests per issue  {f['requests'] / items:>10.4f}")
    print(f"429s ridden out     {f['status_429']:>10,}  (waited {f['waited']:.1f} s in all)")
    print(f"peak RSS (sync)     {f['maxrss_mb']:>10.0f} MB")
    for path, n in sorted(f["by_path"].items(), key=lambda kv: -kv[1])[:12]:
        print(f"    {n:>7,}  {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--issues", type=int, default=20_000)
    ap.add_argument("--latency-ms", type=float, default=20)
    ap.add_argument("--rate", type=float, default=60, help="simulator: requests/s per endpoint+method")
    ap.add_argument("--burst", type=int, default=30)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--profile", choices=["cloud", "dc"], default="cloud")
    ap.add_argument("--store", default="sqlite")
    ap.add_argument(
        "--changed", type=float, default=0.01, help="share of issues changed before the incremental run"
    )
    args = ap.parse_args()

    from trackpulse.config import JiraSourceConfig
    from trackpulse.simulator.jira_app import create_jira_app
    from trackpulse.simulator.jira_world import JiraWorld
    from trackpulse.simulator.ratelimit import BucketSpec
    from trackpulse.simulator.runner import serve_in_thread

    t0 = time.perf_counter()
    projects = 4
    world = JiraWorld.generate(1, projects=projects, issues_per_project=args.issues // projects)
    print(
        f"world: {len(world.issues):,} issues, {sum(len(i.histories) for i in world.issues.values()):,} "
        f"histories, {len(world.worklogs):,} worklogs (generated in {time.perf_counter() - t0:.1f} s)"
    )
    app = create_jira_app(
        world,
        profile=args.profile,
        latency_ms=args.latency_ms,  # type: ignore[arg-type]
        rate_limit=BucketSpec(rate=args.rate, burst=args.burst),
    )
    store_url = f"sqlite:///{tempfile.mkdtemp()}/bench.db" if args.store == "sqlite" else args.store
    with serve_in_thread(app) as url:
        cfg = JiraSourceConfig(
            name="bench",
            kind="jira",
            url=url,
            token="sim-token",
            projects=sorted(world.projects),
            concurrency=args.concurrency,
            **({"email": "sim@example.com"} if args.profile == "cloud" else {}),
        )
        # SecretStr serialises masked; the child process needs the real (simulator) token.
        cfg_json = json.dumps({**cfg.model_dump(mode="json"), "token": "sim-token"})
        print(
            f"simulator: {args.profile}, {args.latency_ms:.0f} ms per request, {args.rate:.0f} req/s "
            f"(burst {args.burst}) per endpoint; concurrency {args.concurrency}; "
            f"store {store_url.split(':')[0]}"
        )

        full = sync_in_child(cfg_json, store_url, True)
        report(f"full sync of {args.issues:,} issues", full)

        world.advance(timedelta(hours=2))
        before = len(world.events)
        world.mutate(7, fraction=args.changed)
        world.advance(timedelta(minutes=2))
        touched = {e.issue_nid for e in world.events[before:] if e.issue_nid is not None}
        inc = sync_in_child(cfg_json, store_url, False)
        report(f"incremental sync after {len(touched)} issues changed ({args.changed:.0%})", inc)
        print(
            f"\nincremental requests: {inc['requests']} for {inc['items']} issues "
            f"({inc['requests'] / max(1, inc['items']):.3f} per issue, catalogue and feeds included)"
        )


if __name__ == "__main__":
    main()
