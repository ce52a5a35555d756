"""Benchmark: the `jira` library beside `trackpulse sync` on one simulator (a program, not a test).

One generated site (default 20,000 issues in 4 projects) is served as Jira Data Center and then
as Jira Cloud, each with per-request latency and a per-endpoint rate limit. On each, in one run:
- the `jira` library reads every issue with its changelog: on Data Center
  `search_issues(jql, maxResults=False, expand="changelog")`, on Cloud
  `enhanced_search_issues(jql, maxResults=False, expand="changelog")` (where the installed
  version has it);
- `trackpulse sync --full` reads the same issues with complete changelogs, worklogs, comments
  and sprints into a fresh SQLite store.
Each runs in its own spawned process, so neither pays for the other's memory or imports; the
requests are counted by the simulator, the same way for both. Prints both walls, both request
counts, requests per item and the ratio (library wall / trackpulse wall), and the CPU seconds of
each client process and of the simulator meanwhile: the machine is shared, and CPU seconds move
less with its load than walls do.

The simulator enforces Data Center's 10,000-result search window (research/API_NOTES.md §1.5), which
`startAt` paging cannot pass; the library is therefore called once per project (5,000 issues each),
as a user of it on such a server must.

    .venv/bin/python bench/bench_peers.py [--issues 20000] [--latency-ms 20] [--rate 100 --burst 30]
                                          [--profiles dc,cloud] [--concurrency 4] [--page-size N]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import tempfile
import time
from typing import Any

EMAIL = "sim@example.com"
TOKEN = "sim-token"


def run_library(url: str, profile: str, projects: list[str], out: Any) -> None:
    """In a spawned process: the `jira` library's read of every issue with its changelog."""
    import jira

    t0 = time.perf_counter()
    if profile == "dc":
        client = jira.JIRA(server=url, token_auth=TOKEN, get_server_info=True)
    else:
        client = jira.JIRA(server=url, basic_auth=(EMAIL, TOKEN), get_server_info=True)
    issues = 0
    histories = 0
    call = ""
    for key in projects:
        jql = f"project = {key} ORDER BY id ASC"
        if profile == "cloud" and hasattr(client, "enhanced_search_issues"):
            call = 'enhanced_search_issues(jql, maxResults=False, expand="changelog")'
            found = client.enhanced_search_issues(jql, maxResults=False, expand="changelog")
        else:
            call = 'search_issues(jql, maxResults=False, expand="changelog")'
            found = client.search_issues(jql, maxResults=False, expand="changelog")
        for issue in found:
            issues += 1
            changelog = getattr(issue, "changelog", None)
            histories += len(getattr(changelog, "histories", []) or [])
    out.send({"seconds": time.perf_counter() - t0, "items": issues, "histories": histories,
              "call": call, "version": jira.__version__, "cpu": _cpu_seconds()})


def run_trackpulse(cfg_json: str, store_url: str, out: Any) -> None:
    """In a spawned process: one full `trackpulse sync` of the source."""
    from trackpulse.connectors.jira import open_connector

    from trackpulse.config import JiraSourceConfig
    from trackpulse.store.db import open_store

    cfg = JiraSourceConfig.model_validate_json(cfg_json)
    store = open_store(store_url)
    t0 = time.perf_counter()
    result = open_connector(cfg).sync(store, full=True)
    seconds = time.perf_counter() - t0
    store.dispose()
    out.send({"seconds": seconds, "items": result.items, "histories": result.histories,
              "worklogs": result.worklogs, "comments": result.comments, "cpu": _cpu_seconds()})


def _cpu_seconds() -> float:
    """CPU time of this process so far (user + system), all threads."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def in_child(target: Any, *args: Any) -> dict[str, Any]:
    """Run `target` in a spawned process; its figures, plus the CPU the simulator (this process's
    server thread) spent meanwhile: on a shared machine, CPU seconds are steadier than walls."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=target, args=(*args, child))
    cpu0 = _cpu_seconds()
    proc.start()
    figures: dict[str, Any] = parent.recv()
    proc.join()
    figures["sim_cpu"] = _cpu_seconds() - cpu0
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--issues", type=int, default=20_000)
    ap.add_argument("--projects", type=int, default=4)
    ap.add_argument("--latency-ms", type=float, default=20)
    ap.add_argument("--rate", type=float, default=100, help="simulator: requests/s per endpoint and method")
    ap.add_argument("--burst", type=int, default=30)
    ap.add_argument("--concurrency", type=int, default=4, help="trackpulse: the source's `concurrency`")
    ap.add_argument("--page-size", type=int, default=None,
                    help="trackpulse: the source's `page_size` (default: the configuration's default)")
    ap.add_argument("--profiles", default="dc,cloud")
    ap.add_argument("--skip", default="", help="comma list of runs to skip: library, trackpulse")
    args = ap.parse_args()

    from trackpulse.config import JiraSourceConfig
    from trackpulse.simulator.jira_app import create_jira_app
    from trackpulse.simulator.jira_world import JiraWorld
    from trackpulse.simulator.ratelimit import BucketSpec
    from trackpulse.simulator.runner import serve_in_thread

    t0 = time.perf_counter()
    world = JiraWorld.generate(1, projects=args.projects, issues_per_project=args.issues // args.projects)
    projects = sorted(world.projects)
    print(f"world: {len(world.issues):,} issues in {len(projects)} projects, "
          f"{sum(len(i.histories) for i in world.issues.values()):,} histories, {len(world.worklogs):,} worklogs "
          f"(generated in {time.perf_counter() - t0:.1f} s)")
    skip = set(filter(None, args.skip.split(",")))
    summary: list[str] = []
    for profile in args.profiles.split(","):
        app = create_jira_app(world, profile=profile,  # type: ignore[arg-type]
                              latency_ms=args.latency_ms, rate_limit=BucketSpec(rate=args.rate, burst=args.burst))
        stats = app.state.stats
        with serve_in_thread(app) as url:
            print(f"\n== Jira {profile}: {args.latency_ms:.0f} ms per request, {args.rate:.0f} req/s "
                  f"(burst {args.burst}) per endpoint")
            lib: dict[str, Any] | None = None
            ours: dict[str, Any] | None = None
            if "library" not in skip:
                stats.reset()
                lib = in_child(run_library, url, profile, projects)
                lib["requests"], lib["429"] = stats.total, stats.by_status[429]
                print(f"jira {lib['version']} {lib['call']}, once per project")
                print(f"  wall {lib['seconds']:8.1f} s  requests {lib['requests']:6,}  "
                      f"per item {lib['requests'] / max(1, lib['items']):.4f}  items {lib['items']:,}  "
                      f"histories {lib['histories']:,}  429s {lib['429']}")
                print(f"  cpu: client {lib['cpu']:.1f} s, simulator {lib['sim_cpu']:.1f} s")
            if "trackpulse" not in skip:
                sized = {"page_size": args.page_size} if args.page_size else {}
                cfg = JiraSourceConfig(name="bench", kind="jira", url=url, token=TOKEN, projects=projects,
                                       concurrency=args.concurrency, **sized,
                                       **({"email": EMAIL} if profile == "cloud" else {}))
                cfg_json = json.dumps({**cfg.model_dump(mode="json"), "token": TOKEN})
                store_url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
                stats.reset()
                ours = in_child(run_trackpulse, cfg_json, store_url)
                ours["requests"], ours["429"] = stats.total, stats.by_status[429]
                print(f"trackpulse sync --full (concurrency {cfg.concurrency}, page_size {cfg.page_size})")
                print(f"  wall {ours['seconds']:8.1f} s  requests {ours['requests']:6,}  "
                      f"per item {ours['requests'] / max(1, ours['items']):.4f}  items {ours['items']:,}  "
                      f"histories {ours['histories']:,}  worklogs {ours['worklogs']:,}  "
                      f"comments {ours['comments']:,}  429s {ours['429']}")
                print(f"  cpu: client {ours['cpu']:.1f} s, simulator {ours['sim_cpu']:.1f} s")
                for route, n in sorted(stats.snapshot().items(), key=lambda kv: -kv[1])[:6]:
                    print(f"      {n:>7,}  {route}")
            if lib and ours:
                ratio = lib["seconds"] / ours["seconds"]
                print(f"  ratio (library wall / trackpulse wall) {ratio:.2f}x")
                summary.append(f"{profile:>5}: library {lib['seconds']:.1f} s / {lib['requests']} req, "
                               f"trackpulse {ours['seconds']:.1f} s / {ours['requests']} req, ratio {ratio:.2f}x")
    if summary:
        print("\nsummary")
        for line in summary:
            print("  " + line)


if __name__ == "__main__":
    main()
