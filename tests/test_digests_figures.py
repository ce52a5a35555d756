"""`trackpulse digest NAME --json` (trackpulse.digest/1): every figure is the METRICS.md figure
for the digest's window and for the period before it, checked against values worked out by hand
from the two-week world of tests/digest_worlds.py (window [01-12T01:00Z, 01-19T01:00Z), previous
[01-05T01:00Z, 01-12T01:00Z)), not against our own metrics code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from digest_worlds import AS_OF, digest_config, two_week_records, two_week_world, write_world

from trackpulse.digests import build_from_input, digest_json
from trackpulse.store.db import open_store

H = 1 / 24

# Per project, what METRICS.md §3 gives, worked out item by item (see two_week_records).
WINDOW = {
    "ABC": {"issues_total": 2,  # ABC-3 (01-13), ABC-4 (01-14)
            "issues_done": 2,  # ABC-2 (01-15 09:00), ABC-3 (01-16 20:00)
            "defects_total": 1, "defects_open": 1,  # ABC-4, in progress
            "points_done": 7.0,  # 5 + 2
            "cycle": (2, 2.25, 2.25),  # 2.0 d and 2.5 d: (count, mean, p50)
            "lead": (2, (8 + 23 * H + 3.5) / 2),  # 01-06 10:00 -> 01-15 09:00, 01-13 08:00 -> 01-16 20:00
            "worklog_hours": 3.5, "wip": 1,
            "wip_age_days_p85": 3 + 17 * H,  # ABC-4 started 01-15 08:00, as of 01-19 01:00
            "sla_compliance": 0.0},  # ABC-4's response clock stopped at 01-15 08:00 after 24 h > 1 h
    "DEF": {"issues_total": 1, "issues_done": 0, "defects_total": 0, "defects_open": 0, "points_done": 0.0,
            "cycle": (0, None, None), "lead": (0, None), "worklog_hours": 0.0, "wip": 0,
            "wip_age_days_p85": None, "sla_compliance": None},
}
PREVIOUS = {
    "ABC": {"issues_total": 2, "issues_done": 1, "defects_total": 0, "defects_open": 0, "points_done": 3.0,
            "cycle": (1, 2.0, 2.0),  # ABC-1 01-07 09:00 -> 01-09 09:00
            "lead": (1, 3 + 1 * H), "worklog_hours": 1.0,
            "wip": 0,  # as of 01-12 01:00 ABC-2 is still to do
            "wip_age_days_p85": None, "sla_compliance": None},
    "DEF": {"issues_total": 1, "issues_done": 1, "defects_total": 1, "defects_open": 0, "points_done": 0.0,
            "cycle": (0, None, None),  # DEF-1 went straight to done: never started
            "lead": (1, 2.0), "worklog_hours": 0.0, "wip": 0, "wip_age_days_p85": None,
            "sla_compliance": 0.0},  # both of DEF-1's clocks stopped breached (48 h > 1 h, > 8 h)
}
# METRICS.md §4, board 12: sprint 34 (closed 01-12 00:00) had no member at its start (ABC-1 was
# created into it on 01-06); sprint 35 starts 01-12 02:00, after the previous period's as_of.
SPRINTS_WINDOW = {"34": (0.0, 3.0, 3.0), "35": (5.0, 7.0, 2.0)}  # committed, completed, added
SPRINTS_PREVIOUS = {"34": (0.0, 3.0, 3.0)}


def _approx(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    return a == pytest.approx(b, abs=1e-9)


def assert_report(report: dict[str, Any], projects: dict[str, dict[str, Any]], sprints: dict[str, tuple]) -> None:
    rows = {p["project"]: p for p in report["projects"]}
    assert set(rows) == set(projects)
    for key, want in projects.items():
        got = rows[key]
        for field in ("issues_total", "issues_done", "defects_total", "defects_open", "points_done",
                      "worklog_hours", "wip", "wip_age_days_p85", "sla_compliance"):
            assert _approx(got[field], want[field]), (key, field, got[field], want[field])
        count, mean, p50 = want["cycle"]
        assert got["cycle_time_days"]["count"] == count, (key, got["cycle_time_days"])
        assert _approx(got["cycle_time_days"]["mean"], mean) and _approx(got["cycle_time_days"]["p50"], p50)
        assert got["lead_time_days"]["count"] == want["lead"][0]
        assert _approx(got["lead_time_days"]["mean"], want["lead"][1]), (key, got["lead_time_days"])
        assert _approx(got["throughput_per_week"], want["issues_done"] / 1.0)  # 7-day windows
    got_sprints = {s["sprint_id"]: (s["committed_points"], s["completed_points"], s["added_points"])
                   for s in report["sprints"]}
    assert got_sprints == sprints


def test_digest_json_of_a_hand_built_world_has_the_window_and_previous_period_figures() -> None:
    doc = digest_json(build_from_input(two_week_world(), digest_config(), as_of=AS_OF))
    assert doc["schema"] == "trackpulse.digest/1" and doc["name"] == "weekly"
    assert doc["window"] == {"since": "2026-01-12T01:00:00Z", "until": "2026-01-19T01:00:00Z"}
    assert doc["previous"] == {"since": "2026-01-05T01:00:00Z", "until": "2026-01-12T01:00:00Z"}
    assert doc["report"]["window"] == doc["window"] and doc["previous_report"]["window"] == doc["previous"]
    assert_report(doc["report"], WINDOW, SPRINTS_WINDOW)
    assert_report(doc["previous_report"], PREVIOUS, SPRINTS_PREVIOUS)


CONFIG = """
[store]
url = "sqlite:///{db}"

[[sources]]
name = "acme-jira"
kind = "jira"
url = "http://127.0.0.1:9"
token = "unused"
projects = ["ABC", "DEF"]

[[sla.policies]]
name = "P1"
priorities = ["P1"]
response_hours = 1
resolution_hours = 8

[[digests]]
name = "weekly"
cron = "0 9 * * mon"
timezone = "Asia/Shanghai"
language = "{lang}"
projects = {projects}
"""


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKPULSE_", "JIRA_", "TRELLO_"))}
    return subprocess.run([sys.executable, "-m", "trackpulse", "--config", str(tmp_path / "tp.toml"), *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def stored_world(tmp_path: Path) -> Path:
    store = open_store(f"sqlite:///{tmp_path}/tp.db")
    try:
        write_world(store, two_week_records())
    finally:
        store.dispose()
    return tmp_path


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_digest_cli_json_on_a_store_equals_the_figures_worked_out_by_hand(stored_world: Path, lang: str) -> None:
    (stored_world / "tp.toml").write_text(CONFIG.format(db=stored_world / "tp.db", lang=lang, projects="[]"),
                                          encoding="utf-8")
    r = _cli(stored_world, "digest", "weekly", "--json", "--as-of", "2026-01-19T01:00:00Z")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema"] == "trackpulse.digest/1" and doc["as_of"] == "2026-01-19T01:00:00Z"
    assert doc["previous"] == {"since": "2026-01-05T01:00:00Z", "until": "2026-01-12T01:00:00Z"}
    assert_report(doc["report"], WINDOW, SPRINTS_WINDOW)
    assert_report(doc["previous_report"], PREVIOUS, SPRINTS_PREVIOUS)


def test_digest_cli_json_keeps_only_the_digests_projects(stored_world: Path) -> None:
    (stored_world / "tp.toml").write_text(CONFIG.format(db=stored_world / "tp.db", lang="en", projects='["DEF"]'),
                                          encoding="utf-8")
    r = _cli(stored_world, "digest", "weekly", "--json", "--as-of", "2026-01-19T01:00:00Z")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert_report(doc["report"], {"DEF": WINDOW["DEF"]}, {})
    assert_report(doc["previous_report"], {"DEF": PREVIOUS["DEF"]}, {})


MAIL = """
[[channels]]
name = "pmo-mail"
kind = "email"
smtp_host = "127.0.0.1"
smtp_port = {port}
smtp_security = "none"
sender = "trackpulse@example.com"
to = ["pmo@example.com"]
"""


def _send_config(world: Path, port: int) -> None:
    config = CONFIG.format(db=world / "tp.db", lang="zh", projects="[]") + 'channels = ["pmo-mail"]\n'
    (world / "tp.toml").write_text(config + MAIL.format(port=port), encoding="utf-8")


def test_digest_cli_send_delivers_it_and_a_second_send_in_that_minute_sends_nothing(stored_world: Path) -> None:
    from trackpulse.simulator.smtp import SmtpReceiver

    with SmtpReceiver() as smtp:
        _send_config(stored_world, smtp.port)
        r = _cli(stored_world, "digest", "weekly", "--send", "--as-of", "2026-01-19T01:00:00Z")
        assert r.returncode == 0, r.stderr
        assert "渠道 pmo-mail：已发送" in r.stderr and len(smtp.received) == 1
        assert smtp.messages()[0]["Subject"] == "weekly：2026年1月19日 交付周报"
        again = _cli(stored_world, "digest", "weekly", "--send", "--as-of", "2026-01-19T01:00:00Z")
        assert again.returncode == 0, again.stderr
        # --send is a firing of the current minute: the same minute sends nothing, a later one anew.
        assert len(smtp.received) == (1 if "这一次已发送过" in again.stderr else 2)


def test_digest_cli_send_refused_for_good_exits_1_with_the_servers_answer(stored_world: Path) -> None:
    from trackpulse.simulator.smtp import SmtpReceiver

    with SmtpReceiver() as smtp:
        smtp.refuse("550 5.7.1 relay denied")
        _send_config(stored_world, smtp.port)
        r = _cli(stored_world, "digest", "weekly", "--send", "--as-of", "2026-01-19T01:00:00Z")
        assert r.returncode == 1, r.stderr
        assert "pmo-mail" in r.stderr and "550 5.7.1 relay denied" in r.stderr
