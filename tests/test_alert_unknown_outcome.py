"""A comment whose POST reached Jira but whose answer never came back is not posted twice.

Two ways an outcome is lost: the process is killed (SIGKILL) while the request is in flight,
and the request times out although the server stored the comment. The Jira simulator stores
the comment, then stalls before answering (`comment_stall_seconds`), which produces both.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from trackpulse.alerts import evaluate_and_dispatch
from trackpulse.config import load_config
from trackpulse.simulator.jira_app import create_jira_app
from trackpulse.simulator.jira_world import JiraWorld
from trackpulse.simulator.runner import serve_in_thread
from trackpulse.store.db import open_store

SIM_EMAIL, SIM_TOKEN = "sim@example.com", "sim-token"
MARKER = "trackpulse alert id"


@dataclass
class Site:
    dir: Path
    world: JiraWorld
    app: object

    def comments_with_marker(self) -> dict[str, int]:
        with self.world.lock:
            return {i.key: sum(MARKER in c.body for c in i.live_comments) for i in self.world.issues.values()
                    if any(MARKER in c.body for c in i.live_comments)}

    def stall(self, seconds: float) -> None:
        self.app.state.sim.comment_stall_seconds = seconds  # type: ignore[attr-defined]


def cli(*args: str, cwd: Path, popen: bool = False) -> subprocess.CompletedProcess[str] | subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKPULSE_", "JIRA_", "TRELLO_"))}
    env["JIRA_API_TOKEN"] = SIM_TOKEN
    cmd = [sys.executable, "-m", "trackpulse", "--config", "tp.toml", *args]
    if popen:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    world = JiraWorld.generate(seed=5, projects=1, issues_per_project=10, closed_sprints=2)
    app = create_jira_app(world, profile="cloud", email=SIM_EMAIL, token=SIM_TOKEN)
    with serve_in_thread(app) as url:
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
timeout_seconds = 1

[[sla.policies]]
name = "p1"
resolution_hours = 1

[alerts]
delivery_lease_seconds = 2

[[alerts.rules]]
name = "late"
when = "sla_breached"
clocks = ["resolution"]
post_back = ["comment"]
""", encoding="utf-8")
        r = cli("sync", cwd=tmp_path)
        assert isinstance(r, subprocess.CompletedProcess) and r.returncode == 0, r.stderr
        yield Site(tmp_path, world, app)


def history(site: Site) -> list[dict]:
    r = cli("alerts", "history", "--json", "--limit", "1000", cwd=site.dir)
    assert isinstance(r, subprocess.CompletedProcess) and r.returncode == 0, r.stderr
    return json.loads(r.stdout)["alerts"]


def test_a_dispatcher_killed_between_posting_a_comment_and_recording_it_leaves_one_comment(site: Site) -> None:
    as_of = site.world.now.strftime("%Y-%m-%dT%H:%M:%SZ")
    site.stall(60)
    proc = cli("alerts", "--as-of", as_of, cwd=site.dir, popen=True)
    assert isinstance(proc, subprocess.Popen)
    deadline = time.monotonic() + 60
    while not site.comments_with_marker():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no comment arrived"
        time.sleep(0.05)
    # The comment is stored; its answer is held back: kill the dispatcher now.
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    first = site.comments_with_marker()
    assert sum(first.values()) == 1

    site.stall(0)
    time.sleep(2.5)  # the killed dispatcher's lease on its deliveries runs out
    r = cli("alerts", "--as-of", as_of, cwd=site.dir)
    assert isinstance(r, subprocess.CompletedProcess) and r.returncode == 0, r.stderr
    alerts = history(site)
    assert alerts and all(d["status"] == "sent" for a in alerts for d in a["deliveries"])
    after = site.comments_with_marker()
    assert after == {a["item"]: 1 for a in alerts}  # one comment per breached clock, none twice
    killed = next(key for key in first)
    [row] = [d for a in alerts if a["item"] == killed for d in a["deliveries"]]
    assert row["attempts"] == 2  # the killed attempt counted; the second found the marker

    r = cli("alerts", "--as-of", as_of, cwd=site.dir)  # and nothing the next time
    assert isinstance(r, subprocess.CompletedProcess) and r.returncode == 0
    assert site.comments_with_marker() == after


def test_a_comment_post_that_timed_out_after_the_server_stored_it_is_not_posted_again(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JIRA_API_TOKEN", SIM_TOKEN)
    cfg = load_config(str(site.dir / "tp.toml"))
    store = open_store(cfg.store.url)
    now = site.world.now
    clock = [now]
    try:
        site.stall(2.5)  # longer than the source's timeout_seconds = 1
        with httpx.Client() as http:
            first = evaluate_and_dispatch(cfg, store, as_of=now, http=http, clock=lambda: clock[0])
            assert first.dispatch is not None and first.dispatch.retry >= 1 and first.dispatch.sent == 0
            timed_out = site.comments_with_marker()
            assert timed_out and set(timed_out.values()) == {1}
            site.stall(0)
            clock[0] = now + timedelta(hours=1)  # past every retry's not_before
            second = evaluate_and_dispatch(cfg, store, as_of=now, http=http, clock=lambda: clock[0])
        assert second.dispatch is not None and second.dispatch.failed == 0 and second.dispatch.retry == 0
    finally:
        store.dispose()
    alerts = history(site)
    assert site.comments_with_marker() == {a["item"]: 1 for a in alerts}
