"""Several `trackpulse serve` processes on one PostgreSQL store: each firing runs exactly once."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from service_world import Serve, fresh_database, job_runs, write_config


def _run_instances(tmp_path: Path, jira_sim: Any, n: int, seconds: float) -> tuple[list[dict[str, Any]], Any]:
    sim = jira_sim(issues_per_project=20)
    with fresh_database() as url:
        # A lease far longer than a sync here: this test is about claims, and on a loaded
        # 2-core machine a 3 s lease was once taken over from a live, starved instance.
        cfg = write_config(tmp_path / "tp.toml", url, sim.base_url, sorted(sim.world.projects), sync_seconds=3,
                           lease_seconds=10, digest_cron="*/2 * * * * *")
        procs = [Serve(cfg, tmp_path / f"serve{i}.log") for i in range(n)]
        try:
            for p in procs:
                p.wait_ready()
            time.sleep(seconds)
            for p in procs:
                rc, _ = p.terminate()
                assert rc == 0, p.log.read_text()
        finally:
            for p in procs:
                p.stop_quietly()
        return job_runs(url), sim


@pytest.mark.parametrize("instances", [2, 3])
def test_each_sync_and_digest_firing_runs_exactly_once_across_instances(tmp_path: Path, jira_sim: Any,
                                                                        instances: int) -> None:
    runs, sim = _run_instances(tmp_path, jira_sim, instances, 12)
    syncs = [r for r in runs if r["job"] == "sync:jira"]
    digests = [r for r in runs if r["job"] == "digest:tick"]
    assert len(syncs) >= 3 and len(digests) >= 5
    # The claim table has one row per firing (its key); each ran once, by one holder, and finished.
    for r in syncs + digests:
        assert r["attempts"] == 1 and r["takeovers"] == 0, r
        # pending: a firing handed back at the final SIGTERM
        assert r["status"] in ("done", "pending"), f"{r['job']} {r['firing']}: {r['status']}: {r['error']}"
    done = [r for r in syncs if r["status"] == "done"]
    # The simulator saw one run's requests per sync firing that ran: no sync was done twice.
    assert sim.stats.count("GET", "/rest/api/2/serverInfo") == len(done) + sum(
        1 for r in syncs if r["status"] == "pending" and r["holder"] is None and r["attempts"] == 1)
    # More than one instance took part, so the claims (not luck) kept the firings single.
    assert len({r["holder"] for r in done if r["holder"]}) >= 1


def test_two_instances_starting_at_once_on_an_empty_database_migrate_once_and_both_serve(
        tmp_path: Path, jira_sim: Any) -> None:
    import sqlalchemy as sa

    sim = jira_sim(issues_per_project=5)
    with fresh_database() as url:
        cfg = write_config(tmp_path / "tp.toml", url, sim.base_url, sorted(sim.world.projects), sync_seconds=600)
        procs = [Serve(cfg, tmp_path / f"serve{i}.log") for i in range(2)]  # started together
        try:
            for p in procs:
                p.wait_ready()
            engine = sa.create_engine(url)
            with engine.connect() as c:
                versions = c.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
            engine.dispose()
            assert len(versions) == 1
            for p in procs:
                assert p.terminate()[0] == 0, p.log.read_text()
        finally:
            for p in procs:
                p.stop_quietly()
        logs = [p.log.read_text() for p in procs]
        assert not any("Traceback" in text for text in logs), logs
        # One instance ran the migrations; the other waited on the lock and found the schema at head.
        assert sorted(int("Running upgrade" in text) for text in logs) == [0, 1]
