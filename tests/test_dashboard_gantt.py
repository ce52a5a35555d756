"""The Schedule tab's Gantt in Chromium: one bar per version and epic, drawn from start to
release (or today), an unfinished version's hatched extension to its 85 % forecast date.

This test renders the dashboard's Gantt from a report dict with hand-chosen §13 rows (dates, an
unreleased version's forecast, a name with markup), through the same `chart_specs` → `svg_markup`
path the page uses, and reads the bars and their geometry back from the SVG. The bars of the
store synced from the Jira simulator are checked in tests/test_dashboard_browser.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from dashboard_support import chromium, needs_chromium, screenshot_dir

pytestmark = needs_chromium

TODAY = datetime(2026, 11, 20, tzinfo=UTC)
VERSIONS = [
    {"source": "acme", "project": "ABC", "version": "1.0", "start": "2026-09-01T00:00:00Z",
     "release_date": "2026-10-01T00:00:00Z", "released": True, "forecast_date_p85": None},
    {"source": "acme", "project": "ABC", "version": "2.0 <b>", "start": "2026-10-05T00:00:00Z",
     "release_date": None, "released": False, "forecast_date_p85": "2026-12-10T00:00:00Z"},
]
EPICS = [{"source": "acme", "project": "ABC", "epic": "ABC-9", "summary": "支付改版", "started": "2026-09-15T00:00:00Z",
          "finished": "2026-11-01T00:00:00Z"}]


def _view() -> Any:
    from trackpulse.server.dashboard_data import DashboardView, WindowChoice

    report = {"as_of": "2026-11-20T00:00:00Z", "window": {"since": None, "until": "2026-11-20T00:00:00Z"},
              "sprints": [], "worklogs_by_author": [], "versions": VERSIONS, "epics": EPICS}
    extras = {"burndown": [], "cfd": [], "weekly_throughput": [], "cost": []}
    return DashboardView(as_of=TODAY, window=WindowChoice("30d", None, None), projects=[], report=report,
                         extras=extras, cycle_points=[], clocks=[], wip=[], all_projects=[])


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def _days(a: str, b: str) -> float:
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds() / 86400


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_gantt_bars_match_the_report_versions_and_epics(browser: Any, lang: str) -> None:
    from trackpulse.server.dashboard_charts import chart_specs, svg_markup

    [spec] = [s for s in chart_specs(_view(), lang) if s.slug == "gantt"]
    page = browser.new_page(viewport={"width": 900, "height": 500})
    try:
        page.set_content(f"<!doctype html><meta charset=utf-8><body>{svg_markup(spec, lang)}</body>")
        bars = page.eval_on_selector_all(
            "#chart-gantt .tp-mark[data-start]",
            "els => els.map(e => ({label: e.dataset.label, start: e.dataset.start, end: e.dataset.end,"
            " x: e.getBBox().x, w: e.getBBox().width}))")
        forecasts = page.eval_on_selector_all(
            "#chart-gantt .tp-mark[data-forecast]",
            "els => els.map(e => ({label: e.dataset.label, forecast: e.dataset.forecast,"
            " x: e.getBBox().x, w: e.getBBox().width}))")
        page.screenshot(path=str(screenshot_dir() / f"gantt-{lang}.png"))
        labels = page.locator("#chart-gantt").text_content() or ""
    finally:
        page.close()
    assert [b["label"] for b in bars] == ["ABC 1.0", "ABC 2.0 <b>", "ABC-9 支付改版"]
    assert [(b["start"], b["end"]) for b in bars] == [
        ("2026-09-01T00:00:00Z", "2026-10-01T00:00:00Z"),
        ("2026-10-05T00:00:00Z", "2026-11-20T00:00:00Z"),  # unreleased: the bar runs to today
        ("2026-09-15T00:00:00Z", "2026-11-01T00:00:00Z"),
    ]
    # One linear date scale: pixels per day is the same for every bar, and starts line up with it.
    scale = bars[0]["w"] / _days(bars[0]["start"], bars[0]["end"])
    for b in bars:
        assert b["w"] / _days(b["start"], b["end"]) == pytest.approx(scale, rel=0.01)
        assert b["x"] - bars[0]["x"] == pytest.approx(scale * _days(bars[0]["start"], b["start"]), abs=1.0)
    [fc] = forecasts
    assert fc["forecast"] == "2026-12-10T00:00:00Z" and fc["label"] == "ABC 2.0 <b>"
    assert fc["w"] == pytest.approx(scale * _days("2026-11-20T00:00:00Z", fc["forecast"]), rel=0.01)
    assert "支付改版" in labels and "ABC 2.0 <b>" in labels  # escaped in the SVG, shown as text
