"""`trackpulse demo`: the whole product offline, as a fresh user runs it (a subprocess, no config)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def _env() -> dict[str, str]:
    # No configuration of the user's may leak in: the demo must work on embedded defaults alone.
    return {k: v for k, v in os.environ.items() if not k.startswith(("TRACKPULSE_", "JIRA_", "TRELLO_"))}


def test_demo_runs_end_to_end_and_exits_0(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "trackpulse", "demo", "--issues", "30", "--dir", "demo"],
                       cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=180, check=False)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for heading in ("full sync", "incremental sync", "webhooks", "status", "Projects"):
        assert heading in r.stdout
    assert "0 failed" in r.stdout and "401" in r.stdout and "duplicate" in r.stdout
    assert (tmp_path / "demo" / "trackpulse.toml").is_file()


def test_demo_json_prints_only_the_metrics_report_and_leaves_a_usable_config(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "trackpulse", "demo", "--issues", "20", "--dir", str(tmp_path / "d"),
                        "--json"], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=180,
                       check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(r.stdout)
    assert report["schema"] == "trackpulse.metrics/1"
    assert {p["source"] for p in report["projects"]} == {"jira-cloud", "jira-dc", "trello"}
    # The written configuration (with its secrets file) works with the ordinary commands.
    status = subprocess.run([sys.executable, "-m", "trackpulse", "--config", str(tmp_path / "d" / "trackpulse.toml"),
                             "status", "--json"], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=60,
                            check=False)
    assert status.returncode == 0, status.stderr
    assert [s["name"] for s in json.loads(status.stdout)["sources"]] == ["jira-cloud", "jira-dc", "trello"]
