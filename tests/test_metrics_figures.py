"""METRICS.md §8-§13 on the smallest worlds that show each definition; expected values by hand."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

from trackpulse.errors import ConfigError
from trackpulse.metrics import MetricsInput, build_report
from trackpulse.metrics.coverage import read_coverage
from trackpulse.metrics.forecast import daily_distribution, days_to_finish, done_in_horizon
from trackpulse.metrics.frames import FigureSettings, KpiSpec, LineCoverage

SCHEMA = json.loads(files("trackpulse").joinpath("schemas/metrics-report.schema.json").read_text("utf-8"))

STATUSES = [
    {"status_id": "1", "name": "To Do", "category": "todo"},
    {"status_id": "2", "name": "In Progress", "category": "in_progress"},
    {"status_id": "3", "name": "Done", "category": "done"},
]
CREATED = "2026-01-01T00:00Z"
AS_OF = "2026-01-10T00:00Z"


def item(i: str, status: str = "1", points: float | None = None, project: str = "ABC", **extra: Any) -> dict[str, Any]:
    return {"item_id": i, "key": f"{project}-{i}", "project": project, "status_id": status, "created": CREATED,
            "points": points, **extra}


def done(i: str, at: str) -> dict[str, Any]:
    return {"item_id": i, "at": at, "from_status_id": "1", "to_status_id": "3"}


def report(as_of: str = AS_OF, **world: Any) -> dict[str, Any]:
    since = world.pop("since", None)
    out = build_report(MetricsInput.from_records(statuses=STATUSES, **world), as_of=as_of, since=since)
    jsonschema.validate(out, SCHEMA, cls=jsonschema.Draft202012Validator)
    return out


# --- §8 scope change -------------------------------------------------------------------

SPRINT = {"board_id": "12", "sprint_id": "10", "name": "Sprint 10", "state": "closed",
          "start": "2026-01-02T00:00Z", "end": "2026-01-09T00:00Z", "complete": "2026-01-09T00:00Z"}


def test_scope_change_ratio_is_added_plus_removed_over_committed() -> None:
    r = report(
        items=[item("1", points=8, sprint_ids=("10",)), item("2", points=5, sprint_ids=("10",)),
               item("3", points=3, sprint_ids=())],
        sprint_changes=[{"item_id": "2", "at": "2026-01-03T00:00Z", "from_sprint_ids": (), "to_sprint_ids": ("10",)},
                        {"item_id": "3", "at": "2026-01-01T12:00Z", "from_sprint_ids": (), "to_sprint_ids": ("10",)},
                        {"item_id": "3", "at": "2026-01-04T00:00Z", "from_sprint_ids": ("10",), "to_sprint_ids": ()}],
        sprints=[SPRINT],
    )
    sprint = r["sprints"][0]
    # committed: 1 (8) and 3 (3) = 11; added 2 (5); removed 3 (3): (5 + 3) / 11
    assert (sprint["committed_points"], sprint["added_points"], sprint["removed_points"]) == (11.0, 5.0, 3.0)
    assert sprint["scope_change_ratio"] == pytest.approx(8 / 11)
    project = r["projects"][0]
    assert (project["items_added_to_sprints"], project["items_removed_from_sprints"]) == (1, 1)


def test_scope_change_ratio_is_null_when_nothing_was_committed() -> None:
    r = report(items=[item("1", points=2, sprint_ids=("10",))],
               sprint_changes=[{"item_id": "1", "at": "2026-01-05T00:00Z", "from_sprint_ids": (),
                                "to_sprint_ids": ("10",)}], sprints=[SPRINT])
    assert r["sprints"][0]["scope_change_ratio"] is None
    assert r["projects"][0]["items_added_to_sprints"] == 1


# --- §9 people ---------------------------------------------------------------------------

def people(r: dict[str, Any]) -> dict[str, Any]:
    block: dict[str, Any] = r["projects"][0]["people"]
    return block


def test_reassigned_item_is_credited_to_the_assignee_at_resolution() -> None:
    r = report(items=[item("1", "3", points=5)], transitions=[done("1", "2026-01-06T00:00Z")],
               item_plans=[{"item_id": "1", "assignees": ("Cy",)}],  # reassigned after it was done
               assignee_changes=[
                   {"item_id": "1", "at": "2026-01-05T00:00Z", "from_assignees": ("Ada",), "to_assignees": ("Bo",)},
                   {"item_id": "1", "at": "2026-01-08T00:00Z", "from_assignees": ("Bo",), "to_assignees": ("Cy",)},
               ])
    assert people(r) == {"assignees": 1, "bus_factor": 1, "top_person": "Bo", "top_person_share": 1.0,
                         "unassigned_done": 0}
    assert r["people_by_project"] == [{"source": "src", "project": "ABC", "person": "Bo", "items_done": 1.0,
                                       "points_done": 5.0, "worklog_hours": 0.0}]


def test_trello_card_with_two_members_splits_the_credit() -> None:
    r = report(items=[item("c1", "3", points=3, project="board")], transitions=[done("c1", "2026-01-06T00:00Z")],
               item_plans=[{"item_id": "c1", "assignees": ("Bo", "Ada")}],
               worklogs=[{"item_id": "c1", "author": "Ada", "started": "2026-01-05T00:00Z", "seconds": 7200}])
    assert r["people_by_project"] == [
        {"source": "src", "project": "board", "person": "Ada", "items_done": 0.5, "points_done": 1.5,
         "worklog_hours": 2.0},
        {"source": "src", "project": "board", "person": "Bo", "items_done": 0.5, "points_done": 1.5,
         "worklog_hours": 0.0},
    ]
    # C = 1; the largest credit (0.5) already reaches C/2
    assert people(r) == {"assignees": 2, "bus_factor": 1, "top_person": "Ada", "top_person_share": 0.5,
                         "unassigned_done": 0}


def test_tied_top_people_name_the_alphabetically_first() -> None:
    r = report(items=[item("1", "3"), item("2", "3")],
               transitions=[done("1", "2026-01-05T00:00Z"), done("2", "2026-01-06T00:00Z")],
               item_plans=[{"item_id": "1", "assignees": ("Zoe",)}, {"item_id": "2", "assignees": ("Mia",)}])
    assert (people(r)["top_person"], people(r)["top_person_share"]) == ("Mia", 0.5)


def test_bus_factor_over_an_odd_total_needs_the_people_reaching_half() -> None:
    names = ["Ada", "Ada", "Bo", "Cy", "Di"]  # credits 2, 1, 1, 1: C = 5, C/2 = 2.5
    r = report(items=[item(str(i), "3") for i in range(5)] + [item("9", "3")],
               transitions=[done(str(i), "2026-01-05T00:00Z") for i in range(5)] + [done("9", "2026-01-05T00:00Z")],
               item_plans=[{"item_id": str(i), "assignees": (n,)} for i, n in enumerate(names)])
    # 2 < 2.5 <= 2 + 1: two people; item 9 has nobody
    assert people(r) == {"assignees": 4, "bus_factor": 2, "top_person": "Ada", "top_person_share": 0.4,
                         "unassigned_done": 1}


def test_people_without_resolved_work_are_null() -> None:
    r = report(items=[item("1")])
    assert people(r) == {"assignees": 0, "bus_factor": None, "top_person": None, "top_person_share": None,
                         "unassigned_done": 0}
    assert r["people_by_project"] == []


# --- §10 KPIs ------------------------------------------------------------------------------

def test_kpi_with_target_change_is_judged_against_its_baseline_window() -> None:
    kpis = (
        KpiSpec(name="effort down 50 %", figure="worklog_hours", op="<=", target_change=-0.5,
                baseline=("2026-01-01T00:00Z", "2026-02-01T00:00Z")),
        KpiSpec(name="no WIP", figure="wip", op="<=", target=0),
        KpiSpec(name="SLA", figure="sla_compliance", op=">=", target=0.9),
        KpiSpec(name="other project", figure="wip", op="<=", target=0, projects=("XYZ",)),
    )
    r = report(as_of="2026-03-01T00:00Z", since="2026-02-01T00:00Z", items=[item("1", "2")],
               worklogs=[{"item_id": "1", "author": "Ada", "started": "2026-01-10T00:00Z", "seconds": 36000},
                         {"item_id": "1", "author": "Ada", "started": "2026-02-10T00:00Z", "seconds": 14400}],
               figures=FigureSettings(kpis=kpis))
    rows = {k["name"]: k for k in r["kpis"]}
    assert rows["effort down 50 %"] == {
        "name": "effort down 50 %", "source": "src", "project": "ABC", "figure": "worklog_hours",
        "value": 4.0, "target": 5.0, "op": "<=", "baseline_value": 10.0, "status": "met"}
    assert (rows["no WIP"]["value"], rows["no WIP"]["target"], rows["no WIP"]["status"]) == (1.0, 0, "missed")
    assert "other project" not in rows


def test_kpi_without_a_value_is_no_data() -> None:
    r = report(items=[item("1")], figures=FigureSettings(kpis=(
        KpiSpec(name="SLA", figure="sla_compliance", op=">=", target=0.9),
        KpiSpec(name="cycle", figure="cycle_time_days.p85", op="<=", target=5),
        KpiSpec(name="defects down", figure="defects_per_100_points", op="<=", target_change=-0.5,
                baseline=("2025-01-01T00:00Z", "2025-02-01T00:00Z")),
    )))
    assert [(k["name"], k["value"], k["baseline_value"], k["status"]) for k in r["kpis"]] == [
        ("SLA", None, None, "no_data"), ("cycle", None, None, "no_data"), ("defects down", None, None, "no_data"),
    ]


# --- §11 forecast --------------------------------------------------------------------------

def forecast_of(r: dict[str, Any]) -> dict[str, Any]:
    block: dict[str, Any] = r["projects"][0]["forecast"]
    return block


def test_forecast_is_null_when_every_sample_is_zero() -> None:
    f = forecast_of(report(items=[item("1"), item("2", "2")]))
    assert f == {"remaining": 2, "window_days": 56, "horizon_days": 14, "days_p50": None, "days_p85": None,
                 "days_p95": None, "date_p50": None, "date_p85": None, "date_p95": None,
                 "done_in_horizon_p50": 0, "done_in_horizon_p85": 0, "done_in_horizon_p95": 0}


def test_forecast_with_nothing_remaining_is_done_today() -> None:
    f = forecast_of(report(items=[item("1", "3")], transitions=[done("1", "2026-01-09T12:00Z")]))
    assert (f["remaining"], f["days_p50"], f["days_p95"], f["date_p85"]) == (0, 0, 0, "2026-01-10T00:00:00Z")


def test_two_point_daily_distribution_gives_hand_computed_percentiles() -> None:
    # W = 2: day 1 (Jan 9) had 2 resolutions, day 2 (Jan 8) none: p(0) = p(2) = 1/2. R = 3.
    # T <= n  <=>  at least two of n fair draws are 2s: P = 1 - (n + 1) / 2^n
    #   n=3: 0.5 -> p50 = 3;  n=5: 0.8125, n=6: 0.890625 -> p85 = 6;  n=7: 0.9375, n=8: 0.96484 -> p95 = 8
    # H = 2: S_2 is 0, 2, 4 with 1/4, 1/2, 1/4; P(S >= 2) = 0.75, P(S >= 1) = 0.75, P(S >= 3) = 0.25
    r = report(items=[item("1", "3"), item("2", "3"), item("3"), item("4"), item("5", "2")],
               transitions=[done("1", "2026-01-09T06:00Z"), done("2", "2026-01-09T18:00Z")],
               figures=FigureSettings(forecast_window_days=2, forecast_horizon_days=2))
    f = forecast_of(r)
    assert (f["remaining"], f["days_p50"], f["days_p85"], f["days_p95"]) == (3, 3, 6, 8)
    assert (f["date_p50"], f["date_p95"]) == ("2026-01-13T00:00:00Z", "2026-01-18T00:00:00Z")
    assert (f["done_in_horizon_p50"], f["done_in_horizon_p85"], f["done_in_horizon_p95"]) == (2, 0, 0)


def test_exact_forecast_agrees_with_a_seeded_monte_carlo_of_200000_trials() -> None:
    samples = np.array([0, 3, 0, 4, 0, 5, 0, 2, 1, 0, 6, 0, 3, 2])
    remaining, horizon, trials = 30, 14, 200_000
    rng = np.random.default_rng(42)
    draws = samples[rng.integers(0, len(samples), size=(trials, 60))].astype(np.int16)
    totals = np.cumsum(draws, axis=1)
    finish = np.argmax(totals >= remaining, axis=1) + 1
    assert (totals[:, -1] >= remaining).all()  # 60 days are enough for every trial
    in_horizon = np.sort(totals[:, horizon - 1])
    p = daily_distribution(samples)
    exact_days = days_to_finish(p, remaining)
    exact_done = done_in_horizon(p, horizon)
    for q, days, done_m in zip((0.5, 0.85, 0.95), exact_days, exact_done, strict=True):
        sampled_days = int(np.sort(finish)[math.ceil(q * trials) - 1])  # smallest d covering q of the trials
        sampled_done = int(in_horizon[math.floor((1 - q) * trials)])  # q of the trials finish at least this
        assert days is not None and abs(days - sampled_days) <= 1
        assert done_m is not None and abs(done_m - sampled_done) <= 1


# --- §12 coverage ----------------------------------------------------------------------------

COBERTURA = ('<?xml version="1.0" ?>\n<coverage version="7.17.5" lines-valid="6" lines-covered="4" '
             'line-rate="0.6667" branches-valid="2" branches-covered="1" branch-rate="0.5"><packages/></coverage>')
COVERAGE_JSON = ('{"meta": {"format": 3}, "files": {}, "totals": {"covered_lines": 4, "num_statements": 6, '
                 '"percent_covered": 62.5, "num_branches": 2, "covered_branches": 1}}')
LCOV = "TN:\nSF:a.py\nDA:1,1\nDA:2,0\nLF:2\nLH:1\nend_of_record\nSF:b.py\nDA:1,1\nLF:4\nLH:3\nend_of_record\n"
JACOCO = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
          '<!DOCTYPE report PUBLIC "-//JACOCO//DTD Report 1.1//EN" "report.dtd">'
          '<report name="demo"><package name="p"><counter type="LINE" missed="9" covered="1"/></package>'
          '<counter type="INSTRUCTION" missed="5" covered="5"/><counter type="LINE" missed="2" covered="6"/></report>')


@pytest.mark.parametrize(("name", "text", "ratio", "valid"), [
    ("coverage.xml", COBERTURA, 4 / 6, 6),
    ("coverage.json", COVERAGE_JSON, 4 / 6, 6),  # line rate, never percent_covered's 62.5 with branches
    ("lcov.info", LCOV, 4 / 6, 6),
    ("jacoco.xml", JACOCO, 6 / 8, 8),  # the report-level counter, not the package's
])
def test_each_coverage_format_gives_covered_over_valid_lines(tmp_path: Path, name: str, text: str, ratio: float,
                                                             valid: int) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    cov = read_coverage(path)
    assert cov.line_coverage == pytest.approx(ratio)
    assert cov.lines_valid == valid


def test_cobertura_with_only_a_line_rate_has_no_lines_valid(tmp_path: Path) -> None:
    path = tmp_path / "coverage.xml"
    path.write_text('<coverage line-rate="0.8"/>', encoding="utf-8")
    assert read_coverage(path) == LineCoverage(0.8, None)


@pytest.mark.parametrize("content", [None, "not a coverage report", "<coverage/>", "{\"totals\": {}}"])
def test_unreadable_coverage_report_is_a_config_error_naming_it(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "cov.out"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=str(path)):
        read_coverage(path)


def test_coverage_sits_beside_defect_density_and_sizes_a_project_without_kloc() -> None:
    r = report(items=[item("1", is_defect=True), item("2", is_defect=True)],
               figures=FigureSettings(coverage={("src", "ABC"): LineCoverage.of_lines(3000, 4000)}))
    p = r["projects"][0]
    assert (p["line_coverage"], p["lines_valid"], p["defect_density_per_kloc"]) == (0.75, 4000, 0.5)


# --- §13 versions and epics --------------------------------------------------------------------

def test_version_counts_its_items_in_two_projects() -> None:
    r = report(
        items=[item("1", "3", points=3), item("1", "1", points=2, project="XYZ", item_id="x1")],
        transitions=[done("1", "2026-01-09T12:00Z")],
        item_plans=[{"item_id": "1", "fix_versions": ("100",)}, {"item_id": "x1", "fix_versions": ("100",)}],
        versions=[{"project": "ABC", "version_id": "100", "name": "1.0", "start": "2026-01-01",
                   "release_date": "2026-02-01"},
                  {"project": "XYZ", "version_id": "200", "name": "1.0", "released": True}],
    )
    abc, xyz = r["versions"]
    # one resolution in the 56 sampled days, one open item: P(T <= n) = 1 - (55/56)^n >= 0.85
    n85 = math.ceil(math.log(0.15) / math.log(55 / 56))  # 106
    date_p85 = (datetime(2026, 1, 10, tzinfo=UTC) + timedelta(days=n85)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert abc == {"source": "src", "project": "ABC", "version": "1.0", "start": "2026-01-01",
                   "release_date": "2026-02-01", "released": False, "items_total": 2, "items_done": 1,
                   "points_total": 5.0, "points_done": 3.0,
                   "forecast_date_p85": date_p85}
    assert xyz["items_total"] == 0 and xyz["forecast_date_p85"] is None  # released: no forecast


def test_epic_whose_last_item_is_open_has_started_but_not_finished() -> None:
    r = report(
        items=[item("1", "3", points=2), item("2", "2", points=3), item("3", "3"), item("E", type="Epic"),
               item("F", type="Epic")],
        transitions=[{"item_id": "1", "at": "2026-01-02T00:00Z", "from_status_id": "1", "to_status_id": "2"},
                     {"item_id": "1", "at": "2026-01-05T00:00Z", "from_status_id": "2", "to_status_id": "3"},
                     {"item_id": "2", "at": "2026-01-03T00:00Z", "from_status_id": "1", "to_status_id": "2"},
                     done("3", "2026-01-07T00:00Z")],
        item_plans=[{"item_id": "1", "epic": "ABC-E"}, {"item_id": "2", "epic": "ABC-E"},
                    {"item_id": "3", "epic": "ABC-F"}],
        epics=[{"project": "ABC", "epic": "ABC-E", "summary": "Checkout"},
               {"project": "ABC", "epic": "ABC-F", "summary": "Search"}],
    )
    checkout, search = r["epics"]
    assert checkout == {"source": "src", "project": "ABC", "epic": "ABC-E", "summary": "Checkout", "items_total": 2,
                        "items_done": 1, "points_total": 5.0, "points_done": 2.0,
                        "started": "2026-01-02T00:00:00Z", "finished": None, "item_url": "/browse/ABC-E"}
    # never in progress: no started; every item done: finished at the last resolution
    assert (search["started"], search["finished"]) == (None, "2026-01-07T00:00:00Z")


def test_configured_kpis_coverage_and_forecast_windows_reach_the_metrics(tmp_path: Path) -> None:
    from trackpulse.config import AppConfig
    from trackpulse.metrics.load import figure_settings

    (tmp_path / "lcov.info").write_text(LCOV, encoding="utf-8")
    cfg = AppConfig.model_validate({
        "metrics": {"forecast_window_days": 28, "forecast_horizon_days": 7},
        "kpis": [{"name": "bugs down", "figure": "defects_open", "op": "<=", "target_change": -0.5,
                  "baseline": {"since": "2026-01-01T00:00:00Z", "until": "2026-02-01T00:00:00Z"}}],
        "coverage": [{"source": "acme", "project": "ABC", "path": str(tmp_path / "lcov.info")}],
    })
    settings = figure_settings(cfg)
    assert (settings.forecast_window_days, settings.forecast_horizon_days) == (28, 7)
    assert settings.kpis[0].target_change == -0.5 and settings.kpis[0].baseline is not None
    assert settings.coverage[("acme", "ABC")].lines_valid == 6
    missing = AppConfig.model_validate({"coverage": [{"source": "acme", "project": "ABC",
                                                      "path": str(tmp_path / "gone.xml")}]})
    with pytest.raises(ConfigError, match=r"coverage\[0\]\.path: cannot read coverage report .*gone\.xml"):
        figure_settings(missing)


def test_tables_show_kpis_forecasts_people_and_versions() -> None:
    from rich.console import Console

    from trackpulse.metrics import render_report

    r = report(items=[item("1", "3", points=3), item("2")], transitions=[done("1", "2026-01-09T12:00Z")],
               item_plans=[{"item_id": "1", "assignees": ("Ada",), "fix_versions": ("100",)}],
               versions=[{"project": "ABC", "version_id": "100", "name": "1.0"}],
               figures=FigureSettings(kpis=(KpiSpec(name="no WIP", figure="wip", op="<=", target=0),)))
    console = Console(record=True, width=200)
    render_report(r, None, console)
    text = console.export_text()
    for expected in ("KPIs", "no WIP", "met", "<= 0.00", "Forecast", "People", "Ada", "100%", "Versions", "1.0"):
        assert expected in text
