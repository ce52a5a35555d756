"""Failover on one PostgreSQL store: a killed instance's sync is taken over; SIGTERM stops cleanly."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import assert_same_rows, store_rows
from service_world import Serve, fresh_database, job_runs, write_config
from trackpulse.jobs.sync import sync_source

from trackpulse.config import load_config
from trackpulse.store.db import open_store


def _running(url: str) -> dict[str, Any] | None:
    return next((r for r in job_runs(url) if r["job"] == "sync:jira" and r["status"] == "running"), None)


def _wait(cond: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(what)


@pytest.mark.parametrize("store_factory", ["postgresql"], indirect=True)
def test_a_sync_killed_mid_run_is_taken_over_after_its_lease_and_the_store_equals_a_fresh_full_sync(
        tmp_path: Path, jira_sim: Any, store_factory: Any) -> None:
    sim = jira_sim(issues_per_project=60, latency_ms=250)
    with fresh_database() as url:
        cfg = write_config(tmp_path / "tp.toml", url, sim.base_url, sorted(sim.world.projects), sync_seconds=600,
                           lease_seconds=3, page_size=10)
        procs = [Serve(cfg, tmp_path / "a.log"), Serve(cfg, tmp_path / "b.log")]
        try:
            for p in procs:
                p.wait_ready()
            run = _wait(lambda: _running(url), 30, "no instance started the sync")
            time.sleep(1)  # a few pages committed
            holder = next(p for p in procs if f":{p.proc.pid}:" in run["holder"])
            other = next(p for p in procs if p is not holder)
            holder.kill()  # SIGKILL mid-sync: its lease stops being renewed
            done = _wait(lambda: next((r for r in job_runs(url) if r["job"] == "sync:jira"
                                       and r["status"] == "done"), None), 90, "no instance finished the sync")
            assert done["takeovers"] == 1 and done["attempts"] == 2
            rc, _ = other.terminate()
            assert rc == 0, other.log.read_text()
        finally:
            for p in procs:
                p.stop_quietly()
        fresh = store_factory()
        sync_source(fresh, load_config(str(cfg)).sources[0], full=True)
        served = open_store(url)
        try:
            assert_same_rows(store_rows(served, "jira"), store_rows(fresh, "jira"))
        finally:
            served.dispose()


def test_sigterm_mid_sync_exits_0_within_the_grace_and_the_next_start_resumes(tmp_path: Path, jira_sim: Any) -> None:
    sim = jira_sim(issues_per_project=60, latency_ms=150)
    with fresh_database() as url:
        cfg = write_config(tmp_path / "tp.toml", url, sim.base_url, sorted(sim.world.projects), sync_seconds=600,
                           lease_seconds=3, page_size=10, grace_seconds=8)
        a = Serve(cfg, tmp_path / "a.log")
        try:
            a.wait_ready()
            _wait(lambda: _running(url), 30, "the sync never started")
            time.sleep(2)
            rc, took = a.terminate()
            assert rc == 0, a.log.read_text()
            assert took < 8
        finally:
            a.stop_quietly()
        [row] = [r for r in job_runs(url) if r["job"] == "sync:jira"]
        assert row["status"] == "pending" and row["holder"] is None  # handed back, not lost
        engine = sa.create_engine(url)
        with engine.connect() as c:
            before = c.execute(sa.text("SELECT count(*) FROM item")).scalar_one()
        engine.dispose()
        assert before > 0  # pages committed before the stop are kept
        b = Serve(cfg, tmp_path / "b.log")
        try:
            b.wait_ready()
            done = _wait(lambda: next((r for r in job_runs(url) if r["job"] == "sync:jira"
                                       and r["status"] == "done"), None), 90, "the next start did not resume")
            assert done["attempts"] == 2
            assert b.terminate()[0] == 0
        finally:
            b.stop_quietly()


def _children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        out |= {int(t) for t in (task / "children").read_text().split()}
    return out


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"  # exited, waiting for a parent that is gone too


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_the_alert_evaluator_process_ends_with_its_serve_however_serve_ends(
        tmp_path: Path, jira_sim: Any, how: str) -> None:
    """With alert rules, `serve` evaluates them in a child process (server/evaluator.py). A
    graceful stop ends it in order; a SIGKILL of serve closes its pipe and it ends by itself:
    no evaluator outlives its service to send alerts nobody supervises."""
    sim = jira_sim(issues_per_project=5)
    cfg = write_config(tmp_path / "tp.toml", f"sqlite:///{tmp_path / 'store.db'}", sim.base_url,
                       sorted(sim.world.projects), sync_seconds=600,
                       extra={"alerts": {"rules": [{"name": "defects", "when": "defects_open_above",
                                                    "threshold": 1000.0}]}})
    serve = Serve(cfg, tmp_path / "serve.log")
    try:
        serve.wait_ready()
        kids = _wait(lambda: _children(serve.proc.pid), 30, "serve started no evaluator process")
        if how == "SIGTERM":
            rc, _ = serve.terminate()
            assert rc == 0, serve.log.read_text()
        else:
            serve.kill()
        _wait(lambda: all(_gone(k) for k in kids), 15, f"the evaluator outlived serve ({how})")
    finally:
        serve.stop_quietly()
    assert "Traceback" not in serve.log.read_text()
