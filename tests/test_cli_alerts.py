"""`trackpulse alerts` on a store synced from the Jira simulator: `--dry-run --json` shows what
would open and changes nothing; a real run posts back; afterwards the same alerts show as open.
A run killed inside its ledger transaction leaves nothing, and the next opens each alert once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from trackpulse.simulator.jira_app import create_jira_app
from trackpulse.simulator.jira_world import JiraWorld
from trackpulse.simulator.runner import serve_in_thread

SIM_EMAIL, SIM_TOKEN = "sim@example.com", "sim-token"
ENV = {"JIRA_API_TOKEN": SIM_TOKEN}


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKPULSE_", "JIRA_", "TRELLO_"))}
    env.update(ENV)
    return subprocess.run([sys.executable, "-m", "trackpulse", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def world() -> JiraWorld:
    return JiraWorld.generate(seed=5, projects=1, issues_per_project=10, closed_sprints=2)


@pytest.fixture
def synced(tmp_path: Path, world: JiraWorld) -> Iterator[Path]:
    with serve_in_thread(create_jira_app(world, profile="cloud", email=SIM_EMAIL, token=SIM_TOKEN)) as url:
        (tmp_path / "tp.toml").write_text(f"""
[store]
url = "sqlite:///{tmp_path}/tp.db"

[[sources]]
name = "acme"
kind = "jira"
url = "{url}"
email = "{SIM_EMAIL}"
token = "${{JIRA_API_TOKEN}}"
projects = ["ABC"]

[[sla.policies]]
name = "p1"
resolution_hours = 1

[[alerts.rules]]
name = "late"
when = "sla_breached"
clocks = ["resolution"]
post_back = ["comment"]
""", encoding="utf-8")
        r = run_cli("--config", "tp.toml", "sync", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        yield tmp_path


def test_alerts_dry_run_json_shows_new_alerts_and_changes_nothing(synced: Path, world: JiraWorld) -> None:
    comments = sum(len(i.live_comments) for i in world.issues.values())
    as_of = world.now.strftime("%Y-%m-%dT%H:%M:%SZ")
    r = run_cli("--config", "tp.toml", "alerts", "--as-of", as_of, "--dry-run", "--json", cwd=synced)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["dry_run"] is True and doc["dispatch"] is None
    assert doc["conditions"] and {c["state"] for c in doc["conditions"]} == {"new"}
    assert len(doc["opened"]) == len(doc["conditions"])
    engine = sa.create_engine(f"sqlite:///{synced}/tp.db")
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM alert")).scalar_one() == 0
        assert c.execute(sa.text("SELECT count(*) FROM delivery")).scalar_one() == 0
    engine.dispose()
    assert sum(len(i.live_comments) for i in world.issues.values()) == comments

    r = run_cli("--config", "tp.toml", "alerts", "--as-of", as_of, "--json", cwd=synced)
    assert r.returncode == 0, r.stderr
    real = json.loads(r.stdout)
    assert sorted(real["opened"]) == sorted(doc["opened"]) and real["dispatch"]["sent"] == len(doc["opened"])
    assert sum(len(i.live_comments) for i in world.issues.values()) == comments + len(doc["opened"])

    r = run_cli("--config", "tp.toml", "alerts", "--as-of", as_of, "--dry-run", "--json", cwd=synced)
    again = json.loads(r.stdout)
    assert again["opened"] == [] and {c["state"] for c in again["conditions"]} == {"open"}


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_alerts_killed_inside_its_ledger_transaction_leave_nothing_and_the_next_run_opens_each_once(
    synced: Path, world: JiraWorld
) -> None:
    """The ledger opens every new episode and its outbox rows in one transaction (one statement
    each). A run SIGKILLed while that transaction waits for the store's write lock leaves no
    alert, no delivery and no comment; the next run opens each episode once and posts one
    comment for each, and a third run opens nothing."""
    import signal
    import time

    comments = sum(len(i.live_comments) for i in world.issues.values())
    as_of = world.now.strftime("%Y-%m-%dT%H:%M:%SZ")
    blocker = sa.create_engine(f"sqlite:///{synced}/tp.db").raw_connection()
    blocker.execute("BEGIN IMMEDIATE")  # the write lock: the run's ledger waits for it (busy timeout)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKPULSE_", "JIRA_", "TRELLO_"))}
    env.update(ENV)
    proc = subprocess.Popen([sys.executable, "-m", "trackpulse", "--config", "tp.toml", "alerts", "--as-of", as_of,
                             "--json"], cwd=synced, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Figures done, the ledger waiting in `insert_new` (seen with py-spy): no CPU while it waits.
        deadline, last, still = time.monotonic() + 60, -1, 0
        while time.monotonic() < deadline and still < 5 and proc.poll() is None:
            ticks = _cpu_ticks(proc.pid)
            still, last = (still + 1 if ticks == last else 0), ticks
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        blocker.rollback()
        blocker.close()
    engine = sa.create_engine(f"sqlite:///{synced}/tp.db")
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM alert")).scalar_one() == 0
        assert c.execute(sa.text("SELECT count(*) FROM delivery")).scalar_one() == 0
    assert sum(len(i.live_comments) for i in world.issues.values()) == comments

    r = run_cli("--config", "tp.toml", "alerts", "--as-of", as_of, "--json", cwd=synced)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["opened"] and len(doc["opened"]) == len(doc["conditions"]) and doc["dispatch"]["sent"] == len(doc["opened"])
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM delivery")).scalar_one() == len(doc["opened"])
        assert c.execute(sa.text("SELECT count(DISTINCT id) FROM alert")).scalar_one() == len(doc["opened"])
    engine.dispose()
    assert sum(len(i.live_comments) for i in world.issues.values()) == comments + len(doc["opened"])
    again = json.loads(run_cli("--config", "tp.toml", "alerts", "--as-of", as_of, "--json", cwd=synced).stdout)
    assert again["opened"] == [] and again["dispatch"]["sent"] == 0
