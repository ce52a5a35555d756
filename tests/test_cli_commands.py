"""The CLI's working paths against the Jira simulator: init → check, sync, status, metrics, --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from trackpulse.simulator.jira_app import create_jira_app
from trackpulse.simulator.jira_world import JiraWorld
from trackpulse.simulator.runner import serve_in_thread

SIM_EMAIL, SIM_TOKEN = "sim@example.com", "sim-token"


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKPULSE_", "JIRA_", "TRELLO_"))}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "trackpulse", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def jira_url() -> Iterator[str]:
    world = JiraWorld.generate(seed=5, projects=1, issues_per_project=25, closed_sprints=2)
    with serve_in_thread(create_jira_app(world, profile="cloud", email=SIM_EMAIL, token=SIM_TOKEN)) as url:
        yield url


@pytest.fixture
def synced(tmp_path: Path, jira_url: str) -> Path:
    (tmp_path / "tp.toml").write_text(f"""
[store]
url = "sqlite:///{tmp_path}/tp.db"

[[sources]]
name = "acme"
kind = "jira"
url = "{jira_url}"
email = "{SIM_EMAIL}"
token = "${{JIRA_API_TOKEN}}"
projects = ["ABC"]
""", encoding="utf-8")
    r = run_cli("--config", "tp.toml", "sync", cwd=tmp_path, env={"JIRA_API_TOKEN": SIM_TOKEN})
    assert r.returncode == 0, r.stderr
    return tmp_path


ENV = {"JIRA_API_TOKEN": SIM_TOKEN}


def test_sync_prints_a_summary_table_and_nothing_on_stderr_when_piped(synced: Path) -> None:
    r = run_cli("--config", "tp.toml", "sync", cwd=synced, env=ENV)
    assert r.returncode == 0
    assert "sync summary" in r.stdout and "incremental" in r.stdout and "requests/item" in r.stdout
    assert r.stderr == ""  # no progress bars when output is not a terminal


def test_sync_json_prints_only_json(synced: Path) -> None:
    r = run_cli("--config", "tp.toml", "sync", "--full", "--json", cwd=synced, env=ENV)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    [result] = doc["results"]
    assert (result["source"], result["full"], result["items"]) == ("acme", True, 25)
    assert result["requests"] > 0 and doc["errors"] == []


def test_status_json_prints_only_json(synced: Path) -> None:
    r = run_cli("--config", "tp.toml", "status", "--json", cwd=synced, env=ENV)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    [acme] = doc["sources"]
    assert acme["name"] == "acme" and acme["last_success"] and acme["last_error"] is None
    assert acme["counts"]["items"] == 25 and acme["cursors"]


def test_status_table_shows_each_source(synced: Path) -> None:
    r = run_cli("--config", "tp.toml", "status", cwd=synced, env=ENV)
    assert r.returncode == 0 and "acme" in r.stdout


def test_metrics_json_prints_exactly_the_report(synced: Path) -> None:
    r = run_cli("--config", "tp.toml", "metrics", "--json", "--as-of", "2026-03-01T00:00:00Z", "--source", "acme",
                cwd=synced, env=ENV)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["schema"] == "trackpulse.metrics/1"
    assert report["as_of"] == "2026-03-01T00:00:00Z"
    assert [p["project"] for p in report["projects"]] == ["ABC"]
    assert set(report) >= {"projects", "sprints", "iterations", "worklogs_by_author", "sla"}


def test_metrics_tables_and_csv_export(synced: Path) -> None:
    r = run_cli("--config", "tp.toml", "metrics", "--since", "2025-01-01", "--csv", "out", cwd=synced, env=ENV)
    assert r.returncode == 0, r.stderr
    assert "ABC" in r.stdout
    assert (synced / "out" / "projects.csv").read_text().startswith("source,project,")
    assert "Forecast" in r.stdout and "People" in r.stdout and "bus factor" in r.stdout
    assert "forecast_date_p85" in (synced / "out" / "projects.csv").read_text().splitlines()[0]
    for section in ("people_by_project", "kpis", "versions", "epics"):
        assert (synced / "out" / f"{section}.csv").exists()


def test_init_writes_a_file_that_check_can_load(tmp_path: Path, jira_url: str) -> None:
    assert run_cli("init", cwd=tmp_path).returncode == 0
    path = tmp_path / "trackpulse.toml"
    # Point the template's Jira source at the simulator; every other line stays as written.
    path.write_text(path.read_text().replace("https://acme.atlassian.net", jira_url), encoding="utf-8")
    env = {"JIRA_EMAIL": SIM_EMAIL, "JIRA_API_TOKEN": SIM_TOKEN, "JIRA_WEBHOOK_SECRET": "w", "TRELLO_KEY": "k",
           "TRELLO_TOKEN": "t", "TRELLO_APP_SECRET": "s", "TRACKPULSE_API_TOKEN": "a"}
    r = run_cli("check", "--source", "acme-jira", "--json", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    [row] = json.loads(r.stdout)["sources"]
    assert (row["source"], row["ok"], row["deployment"]) == ("acme-jira", True, "Cloud")


def test_check_reports_refused_credentials_with_exit_1(tmp_path: Path, jira_url: str) -> None:
    (tmp_path / "tp.toml").write_text(f"""
[[sources]]
name = "acme"
kind = "jira"
url = "{jira_url}"
email = "{SIM_EMAIL}"
token = "wrong"
projects = ["ABC"]
max_retries = 0
""", encoding="utf-8")
    r = run_cli("--config", "tp.toml", "check", "--json", cwd=tmp_path)
    assert r.returncode == 1
    assert json.loads(r.stdout)["sources"][0]["ok"] is False
    assert "source acme" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_python_dash_m_and_version(tmp_path: Path) -> None:
    r = run_cli("--version", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("trackpulse ")


@pytest.mark.parametrize("command", ["init", "check", "sync", "status", "metrics", "serve", "demo"])
def test_every_command_help_teaches_with_examples(tmp_path: Path, command: str) -> None:
    r = run_cli(command, "--help", cwd=tmp_path, env={"COLUMNS": "120"})
    assert r.returncode == 0
    assert "Examples" in r.stdout and f"trackpulse {command}" in r.stdout
