"""A synced simulator world served by the real app on uvicorn, and a headless Debian Chromium
driven by Playwright (no browser download), for the dashboard tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TOKEN = "dash-token-5f3a"
WEBHOOK_SECRET = "dash-hook-secret"
SCRIPT_KEY = "ABC-<script>alert(1)</script>"
ROOT = Path(__file__).resolve().parents[1]

needs_chromium = pytest.mark.skipif(shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists(),
                                    reason=f"{CHROMIUM} is not installed (Debian package chromium; .ci/run installs it)")


def screenshot_dir() -> Path:
    path = Path(os.environ.get("TRACKPULSE_SCREENSHOTS") or ROOT / "build" / "screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Served:
    base: str  # the dashboard's URL
    jira_url: str  # the simulator's URL (item links point there)
    cfg: Any
    script_item: str  # the key of the item renamed to SCRIPT_KEY (before renaming)
    world: Any = None  # the simulator's JiraWorld
    app: Any = None  # the trackpulse app (its webhook queue)


@contextmanager
def served_world(tmp: Path) -> Iterator[Served]:
    """A Jira Cloud simulator world (2 projects, 6 closed sprints each) synced into SQLite, with
    an SLA policy that breaches every item open longer than a day; then one breached item's key
    is set to a `<script>` tag, as a hostile tracker could send it; then trackpulse serves it."""
    from trackpulse.jobs.sync import sync_source

    from trackpulse.config import parse_config
    from trackpulse.reports import compute_report
    from trackpulse.server.app import close_app, create_app
    from trackpulse.simulator.jira_app import create_jira_app
    from trackpulse.simulator.jira_world import JiraWorld
    from trackpulse.simulator.runner import serve_in_thread
    from trackpulse.store.db import open_store
    from trackpulse.store.models import Item

    world = JiraWorld.generate(3, projects=2, issues_per_project=60,
                               now=datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2))
    with serve_in_thread(create_jira_app(world, profile="cloud")) as jira_url:
        cfg = parse_config({
            "store": {"url": f"sqlite:///{tmp}/dash.db"},
            "server": {"token": TOKEN},
            "sources": [{"name": "acme", "kind": "jira", "url": jira_url, "email": "sim@example.com",
                         "token": "sim-token", "projects": sorted(world.projects),
                         "webhook_secret": WEBHOOK_SECRET}],
            "sla": {"policies": [{"name": "all", "resolution_hours": 24}]},
        })
        store = open_store(cfg.store.url)
        sync_source(store, cfg.sources[0], full=True)
        breached = sorted((c for c in compute_report(cfg, store)["sla"] if c["status"] == "breached"),
                          key=lambda c: c["breached_at"])
        victim = breached[-1]["item"]  # the newest breach: first in the overview's table
        with store.engine.begin() as conn:
            conn.execute(sa.update(Item.__table__).where(Item.__table__.c.key == victim)  # type: ignore[attr-defined]
                         .values(key=SCRIPT_KEY))
        app = create_app(cfg, store)
        try:
            with serve_in_thread(app) as base:
                yield Served(base, jira_url, cfg, victim, world, app)
        finally:
            close_app(app)


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def login(page: Any, base: str, token: str = TOKEN) -> None:
    page.goto(f"{base}/login")
    page.fill("#token", token)
    page.click("#login-submit")
    page.wait_for_load_state("load")
