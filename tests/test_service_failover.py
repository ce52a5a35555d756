"""Failover on one PostgreSQL store: a killed instance's sync is taken over; SIGTERM stops cleanly."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from conftest import assert_same_rows, store_rows
from service_world import Serve, child_pids, fresh_database, job_runs, write_config
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
            # Mid-sync: a page or more committed (a fixed sleep was too short on a loaded machine)
            _wait(lambda: _items(url) > 0, 30, "the sync committed no page")
            rc, took = a.terminate()
            assert rc == 0, a.log.read_text()
            assert took < 8
        finally:
            a.stop_quietly()
        [row] = [r for r in job_runs(url) if r["job"] == "sync:jira"]
        assert row["status"] == "pending" and row["holder"] is None  # handed back, not lost
        assert _items(url) > 0  # pages committed before the stop are kept
        b = Serve(cfg, tmp_path / "b.log")
        try:
            b.wait_ready()
            done = _wait(lambda: next((r for r in job_runs(url) if r["job"] == "sync:jira"
                                       and r["status"] == "done"), None), 90, "the next start did not resume")
            assert done["attempts"] == 2
            assert b.terminate()[0] == 0
        finally:
            b.stop_quietly()


def _items(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            return int(c.execute(sa.text("SELECT count(*) FROM item")).scalar_one())
    finally:
        engine.dispose()


def _nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


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
        kids = _wait(lambda: child_pids(serve.proc.pid), 30, "serve started no evaluator process")
        # Two evaluators (beside multiprocessing's resource tracker): the scoped one at serve's
        # niceness, the whole one (background work) 5 below it.
        base = _nice(serve.proc.pid)

        def evaluators() -> list[int]:
            return sorted(_nice(k) for k in child_pids(serve.proc.pid)
                          if "spawn_main" in Path(f"/proc/{k}/cmdline").read_text())

        _wait(lambda: evaluators() == [base, base + 5], 30,
              "not one scoped evaluator at serve's niceness and one whole evaluator 5 below")
        if how == "SIGTERM":
            rc, _ = serve.terminate()
            assert rc == 0, serve.log.read_text()
        else:
            serve.kill()
        _wait(lambda: all(_gone(k) for k in kids), 15, f"the evaluator outlived serve ({how})")
    finally:
        serve.stop_quietly()
    assert "Traceback" not in serve.log.read_text()


def test_serve_killed_inside_a_webhook_batch_applies_each_delivery_once_after_restart(
        tmp_path: Path, jira_sim: Any) -> None:
    """Deliveries are committed on arrival and applied in batches of one transaction
    (`apply_webhooks`, several deliveries of one item sharing a write). A test session holds the
    item rows locked, so `serve`'s batch is blocked mid-transaction when it gets SIGKILL. The
    restarted `serve` applies every delivery; the store equals one fresh sync plus the same
    deliveries applied one at a time, and none is lost or counted twice."""
    from datetime import timedelta

    from trackpulse.connectors.jira import apply_webhook, open_connector

    from trackpulse.simulator.jira_render import JiraRenderer
    from trackpulse.simulator.jira_world import PROFILES
    from trackpulse.simulator.webhooks import jira_build_delivery, jira_webhook_payload

    secret = "kill-secret"
    sim = jira_sim(issues_per_project=15)
    with fresh_database() as url:
        cfg_path = write_config(tmp_path / "tp.toml", url, sim.base_url, sorted(sim.world.projects),
                                sync_seconds=600)
        cfg_path.write_text(cfg_path.read_text().replace("page_size = 100",
                                                         f'page_size = 100\nwebhook_secret = "{secret}"'))
        source = load_config(str(cfg_path)).sources[0]
        one_by_one = open_store(f"sqlite:///{tmp_path / 'one_by_one.db'}")
        open_connector(source).sync(one_by_one, full=True)

        serve = Serve(cfg_path, tmp_path / "a.log")
        engine = sa.create_engine(url)
        try:
            serve.wait_ready()
            _wait(lambda: any(r["status"] == "done" for r in job_runs(url)), 60, "the start-up sync did not finish")
            renderer = JiraRenderer(sim.world, PROFILES["cloud"], sim.base_url, api_version=2)
            seen, bodies = len(sim.world.events), []
            for step in range(8):
                sim.world.advance(timedelta(minutes=7))
                sim.world.mutate(step, 0.2)
                bodies += [jira_webhook_payload(sim.world, renderer, ev) for ev in sim.world.events[seen:]]
                seen = len(sim.world.events)
            assert len(bodies) > 20
            sends = [jira_build_delivery(b, "", secret=secret) for b in bodies]
            with engine.connect() as lock:
                lock.execute(sa.text("SELECT item_id FROM item FOR UPDATE")).all()  # held until rollback
                with httpx.Client(base_url=serve.base, timeout=30) as http:
                    for d in sends:  # in order: each answers once its row has committed
                        assert http.post("/webhooks/jira/jira", content=d.body, headers=d.headers).status_code == 202
                def blocked() -> bool:
                    with engine.connect() as c:
                        return bool(c.execute(sa.text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar_one())

                _wait(blocked, 30, "the webhook batch never waited on the locked items")
                serve.kill()
                lock.rollback()
            with engine.connect() as c:
                applied = c.execute(sa.text(
                    "SELECT count(*) FROM webhook_delivery WHERE processed_at IS NOT NULL")).scalar_one()
            assert applied < len(sends)  # the kill came inside a batch

            serve = Serve(cfg_path, tmp_path / "b.log")
            serve.wait_ready()

            def all_applied() -> bool:
                with engine.connect() as c:
                    return c.execute(sa.text(
                        "SELECT count(*) FROM webhook_delivery WHERE processed_at IS NOT NULL")).scalar_one() == len(sends)

            _wait(all_applied, 60, "the restarted serve did not apply every stored delivery")
            assert serve.terminate()[0] == 0, serve.log.read_text()
        finally:
            serve.stop_quietly()
            engine.dispose()

        for d, body in zip(sends, bodies, strict=True):
            apply_webhook(one_by_one, source, body, d.headers)
        store = open_store(url)
        try:
            assert_same_rows(store_rows(store, "jira", with_raw=False), store_rows(one_by_one, "jira", with_raw=False))
            with store.session() as s:
                rows = s.execute(sa.text("SELECT count(*), count(DISTINCT delivery_id) FROM webhook_delivery")).one()
            assert tuple(rows) == (len(sends), len(sends))
        finally:
            store.dispose()
            one_by_one.dispose()


def test_serve_evaluates_the_rules_after_its_start_up_sync(tmp_path: Path, jira_sim: Any) -> None:
    """After a sync the runner hands the evaluation to the evaluator process (as webhook batches
    do): the start-up sync alone, no webhook, opens the episodes of a rule that holds for every
    project."""
    sim = jira_sim(issues_per_project=5)
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    cfg = write_config(tmp_path / "tp.toml", store_url, sim.base_url, sorted(sim.world.projects), sync_seconds=600,
                       extra={"alerts": {"rules": [{"name": "any", "when": "defects_open_above",
                                                    "threshold": -1.0}]}})
    serve = Serve(cfg, tmp_path / "serve.log")
    engine = sa.create_engine(store_url)

    def subjects() -> set[str]:
        with engine.connect() as c:
            return set(c.execute(sa.text("SELECT subject FROM alert WHERE rule = 'any'")).scalars())

    try:
        serve.wait_ready()
        got = _wait(lambda: len(subjects()) == len(sim.world.projects) and subjects(), 60,
                    "the rules were not evaluated after the start-up sync")
        assert got == {f"jira/{p}" for p in sim.world.projects}
        assert serve.terminate()[0] == 0, serve.log.read_text()
    finally:
        serve.stop_quietly()
        engine.dispose()
