"""The CLI's failure contract: one line on stderr naming what and where; exit 2 for usage and
configuration, 1 when the work fails; never a traceback for an expected failure."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from trackpulse.store.db import open_store
from trackpulse.store.models import Item, SyncCursor


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKPULSE_", "JIRA_", "TRELLO_"))}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "trackpulse", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=120, check=False)


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


JIRA_SOURCE = """
[[sources]]
name = "acme"
kind = "jira"
url = "{url}"
token = "${{JIRA_TOKEN}}"
projects = ["ABC"]
max_retries = 0
"""


def test_toml_syntax_error_names_the_file_and_exits_2(tmp_path: Path) -> None:
    write(tmp_path / "broken.toml", "[store\nurl = 'x'\n")
    r = run_cli("--config", "broken.toml", "status", cwd=tmp_path)
    assert_one_line_error(r, 2, "broken.toml", "TOML", "line 1")


def test_unknown_key_names_the_file_and_key_and_exits_2(tmp_path: Path) -> None:
    write(tmp_path / "tp.toml", "[store]\nurll = 'sqlite:///x.db'\n")
    r = run_cli("--config", "tp.toml", "status", cwd=tmp_path)
    assert_one_line_error(r, 2, "tp.toml", "store.urll", "unknown key")


def test_missing_environment_variable_names_variable_and_key_and_exits_2(tmp_path: Path) -> None:
    write(tmp_path / "tp.toml", JIRA_SOURCE.format(url="http://127.0.0.1:9"))
    r = run_cli("--config", "tp.toml", "sync", cwd=tmp_path)
    assert_one_line_error(r, 2, "tp.toml", "JIRA_TOKEN", "sources[0].token")


def test_missing_config_file_exits_2_and_suggests_init(tmp_path: Path) -> None:
    r = run_cli("status", cwd=tmp_path)
    assert_one_line_error(r, 2, "trackpulse.toml", "trackpulse init")


def test_config_path_comes_from_the_environment_variable(tmp_path: Path) -> None:
    write(tmp_path / "elsewhere.toml", "[store]\nurll = 1\n")
    r = run_cli("status", cwd=tmp_path, env={"TRACKPULSE_CONFIG": str(tmp_path / "elsewhere.toml")})
    assert_one_line_error(r, 2, "elsewhere.toml")


@pytest.mark.parametrize("command", [["sync", "--source", "nope"], ["metrics", "--source", "nope"],
                                     ["check", "--source", "nope"]])
def test_unknown_source_exits_2_and_names_it(tmp_path: Path, command: list[str]) -> None:
    write(tmp_path / "tp.toml", f"[store]\nurl = 'sqlite:///{tmp_path}/tp.db'\n"
          + JIRA_SOURCE.format(url="http://127.0.0.1:9"))
    r = run_cli("--config", "tp.toml", *command, cwd=tmp_path, env={"JIRA_TOKEN": "t"})
    assert_one_line_error(r, 2, "'nope'", "acme")


def test_bad_timestamp_option_exits_2_and_names_the_option(tmp_path: Path) -> None:
    r = run_cli("metrics", "--as-of", "last tuesday", cwd=tmp_path)
    assert_one_line_error(r, 2, "--as-of", "last tuesday")


def test_unknown_option_exits_2_on_one_line(tmp_path: Path) -> None:
    r = run_cli("sync", "--fulll", cwd=tmp_path)
    assert_one_line_error(r, 2, "--fulll")


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    write(tmp_path / "trackpulse.toml", "# mine\n")
    r = run_cli("init", cwd=tmp_path)
    assert_one_line_error(r, 2, "trackpulse.toml", "--force")
    assert (tmp_path / "trackpulse.toml").read_text() == "# mine\n"
    assert run_cli("init", "--force", cwd=tmp_path).returncode == 0
    assert "[[sources]]" in (tmp_path / "trackpulse.toml").read_text()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sync_against_an_unreachable_tracker_exits_1_naming_source_and_url_and_changes_no_data(
        tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    db = tmp_path / "tp.db"
    write(tmp_path / "tp.toml", f"[store]\nurl = 'sqlite:///{db}'\n" + JIRA_SOURCE.format(url=url))
    r = run_cli("--config", "tp.toml", "sync", cwd=tmp_path, env={"JIRA_TOKEN": "t"})
    assert_one_line_error(r, 1, "source acme", url)
    assert r.stdout == ""
    store = open_store(f"sqlite:///{db}")
    with store.session() as s:
        assert s.execute(sa.select(sa.func.count()).select_from(Item)).scalar_one() == 0
        assert s.execute(sa.select(sa.func.count()).select_from(SyncCursor)).scalar_one() == 0
    store.dispose()
    # status then reports the failure for that source
    status = run_cli("--config", "tp.toml", "status", "--json", cwd=tmp_path, env={"JIRA_TOKEN": "t"})
    assert status.returncode == 0
    assert url in status.stdout and "last_error" in status.stdout


def test_sync_with_wrong_credentials_exits_1_naming_the_source(tmp_path: Path) -> None:
    from trackpulse.simulator.jira_app import create_jira_app
    from trackpulse.simulator.jira_world import JiraWorld
    from trackpulse.simulator.runner import serve_in_thread

    world = JiraWorld.generate(seed=1, projects=1, issues_per_project=3, closed_sprints=1)
    with serve_in_thread(create_jira_app(world, profile="dc", token="right")) as url:
        write(tmp_path / "tp.toml", f"[store]\nurl = 'sqlite:///{tmp_path}/tp.db'\n" + JIRA_SOURCE.format(url=url))
        r = run_cli("--config", "tp.toml", "sync", cwd=tmp_path, env={"JIRA_TOKEN": "wrong"})
    assert_one_line_error(r, 1, "source acme", "401")
