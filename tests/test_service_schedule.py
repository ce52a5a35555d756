"""The schedule's clock, driven: daylight-saving days, missed firings, bad configuration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from service_world import job_runs
from trackpulse.jobs.runner import Runner
from trackpulse.jobs.schedule import cron_firings, jobs_from_config

from trackpulse.config import parse_config
from trackpulse.errors import ConfigError
from trackpulse.store.db import open_store


def _digest_cfg(tmp_path: Path, cron: str, tz: str, grace_minutes: float = 60) -> dict:
    return {"store": {"url": f"sqlite:///{tmp_path}/tp.db"},
            "schedule": {"misfire_grace_minutes": grace_minutes, "full_sync_cron": "0 3 1 1 *"},
            "digests": [{"name": "pmo", "cron": cron, "timezone": tz}]}


@pytest.mark.parametrize("day", ["2026-03-29", "2026-10-25"])
def test_a_0230_berlin_digest_fires_exactly_once_on_each_daylight_saving_day(tmp_path: Path, day: str) -> None:
    cfg = parse_config(_digest_cfg(tmp_path, "30 2 * * *", "Europe/Berlin"))
    [spec] = [s for s in jobs_from_config(cfg) if s.kind == "digest"]
    start = datetime.fromisoformat(f"{day}T00:00:00+00:00") - timedelta(hours=3)
    firings = list(cron_firings(spec, start, start + timedelta(hours=24)))
    assert [f.key for f in firings] == [f"{day}T02:30"]
    # The scheduler's own clock, stepped minute by minute through the day: one claim wins.
    store = open_store(cfg.store.url)
    try:
        now = [start]
        runner = Runner(cfg, store, clock=lambda: now[0])
        while now[0] < start + timedelta(hours=24):
            runner.wake("digest:pmo")
            now[0] += timedelta(minutes=10)
        rows = [r for r in job_runs(cfg.store.url) if r["job"] == "digest:pmo"]
        assert [r["firing"] for r in rows] == [f"{day}T02:30"] and rows[0]["attempts"] == 1
    finally:
        store.dispose()


def test_a_firing_missed_while_down_runs_once_on_start_within_the_grace(tmp_path: Path) -> None:
    cfg = parse_config(_digest_cfg(tmp_path, "0 9 * * *", "UTC", grace_minutes=60))
    store = open_store(cfg.store.url)
    try:
        # The process comes back at 09:40: the 09:00 firing is within the hour's grace.
        back = datetime(2026, 12, 2, 9, 40, tzinfo=UTC)
        Runner(cfg, store, clock=lambda: back).wake("digest:pmo")
        Runner(cfg, store, clock=lambda: back + timedelta(minutes=5)).wake("digest:pmo")  # a second instance
        rows = [r for r in job_runs(cfg.store.url) if r["job"] == "digest:pmo"]
        assert [(r["firing"], r["attempts"]) for r in rows] == [("2026-12-02T09:00", 1)]
    finally:
        store.dispose()


def test_a_firing_missed_past_the_grace_is_not_run(tmp_path: Path) -> None:
    cfg = parse_config(_digest_cfg(tmp_path, "0 9 * * *", "UTC", grace_minutes=60))
    store = open_store(cfg.store.url)
    try:
        Runner(cfg, store, clock=lambda: datetime(2026, 12, 2, 10, 30, tzinfo=UTC)).wake("digest:pmo")
        assert [r for r in job_runs(cfg.store.url) if r["job"] == "digest:pmo"] == []
    finally:
        store.dispose()


@pytest.mark.parametrize(("section", "key", "value", "named"), [
    ("schedule", "full_sync_cron", "61 * * * *", "schedule.full_sync_cron"),
    ("schedule", "timezone", "Mars/Olympus", "schedule.timezone"),
    ("digests", "cron", "every day", "digests"),
    ("digests", "timezone", "Europe/Atlantis", "digests"),
])
def test_a_bad_cron_or_unknown_time_zone_is_a_configuration_error_naming_the_key(
        tmp_path: Path, section: str, key: str, value: str, named: str) -> None:
    data = _digest_cfg(tmp_path, "0 9 * * *", "UTC")
    if section == "schedule":
        data["schedule"][key] = value
    else:
        data["digests"][0][key] = value
    with pytest.raises(ConfigError) as exc:
        parse_config(data)
    assert named in str(exc.value) and key in str(exc.value)
