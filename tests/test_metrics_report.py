"""The §7 report as a whole: schema, exact keys, sort orders, empty input, CSV and tables."""

from __future__ import annotations

import csv
import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import pytest
from rich.console import Console

from trackpulse.metrics import (
    MetricsInput,
    SlaPolicy,
    SlaSettings,
    SourceSettings,
    build_extras,
    build_report,
    build_report_and_extras,
    render_report,
    write_csv,
)
from trackpulse.metrics.frames import COLUMNS, make_frame

SCHEMA = json.loads(files("trackpulse").joinpath("schemas/metrics-report.schema.json").read_text("utf-8"))
STATUSES = [
    {"source": s, "status_id": i, "name": n, "category": c}
    for s in ("acme-jira", "team-trello")
    for i, n, c in (("1", "To Do", "todo"), ("2", "In Progress", "in_progress"), ("3", "Done", "done"))
]


def rich_world() -> MetricsInput:
    def issue(src: str, proj: str, key: str, status: str, **more: Any) -> dict[str, Any]:
        return {"source": src, "project": proj, "item_id": key, "key": key, "status_id": status,
                "created": "2026-01-05T08:00Z", "reporter": "u1", **more}

    def mv(src: str, key: str, at: str, frm: str, to: str) -> dict[str, Any]:
        return {"source": src, "item_id": key, "at": at, "from_status_id": frm, "to_status_id": to}

    return MetricsInput.from_records(
        statuses=STATUSES,
        items=[
            issue("acme-jira", "DEF", "DEF-2", "3", points=5, is_defect=True, priority="P1", sprint_ids=("34",)),
            issue("acme-jira", "ABC", "ABC-12", "2", points=3, priority="P1", sprint_ids=("34",)),
            issue("acme-jira", "ABC", "ABC-2", "3", points=2.5),
            issue("team-trello", "5f1c", "c1", "3", points=1),
        ],
        transitions=[
            mv("acme-jira", "DEF-2", "2026-01-05T09:00Z", "1", "2"), mv("acme-jira", "DEF-2", "2026-01-06T09:00Z", "2", "3"),
            mv("acme-jira", "ABC-12", "2026-01-05T10:00Z", "1", "2"), mv("acme-jira", "ABC-2", "2026-01-07T10:00Z", "1", "3"),
            mv("team-trello", "c1", "2026-01-05T08:00Z", None, "1"), mv("team-trello", "c1", "2026-01-08T08:00Z", "1", "3"),
        ],
        worklogs=[{"source": "acme-jira", "item_id": "ABC-12", "author": "Ada Li", "started": "2026-01-06T08:00Z",
                   "seconds": 9000}],
        sprints=[{"source": "acme-jira", "board_id": "12", "sprint_id": "34", "name": "ABC Sprint 7", "state": "active",
                  "start": "2026-01-05T00:00Z", "end": "2026-01-19T00:00Z"}],
        sources=[SourceSettings(name="acme-jira", kloc={"ABC": 12.0}),
                 SourceSettings(name="team-trello", kind="trello", iteration_days=14)],
        sla=SlaSettings(policies=(SlaPolicy(name="P1", priorities=("P1",), response_hours=1, resolution_hours=8),)),
    )


AS_OF = "2026-01-10T00:00Z"


def test_report_validates_against_the_schema_and_has_exactly_the_contract_keys() -> None:
    report = build_report(rich_world(), as_of=AS_OF)
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(report, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert list(report) == ["schema", "as_of", "window", "projects", "sprints", "iterations",
                            "worklogs_by_author", "sla", "people_by_project", "kpis", "versions", "epics"]
    assert report["schema"] == "trackpulse.metrics/1"
    assert report["window"] == {"since": None, "until": "2026-01-10T00:00:00Z"}
    json.dumps(report, allow_nan=False)  # plain JSON: no NaN, no numpy scalars


def test_empty_input_gives_a_valid_report_of_empty_lists() -> None:
    report = build_report(MetricsInput.empty(), as_of=AS_OF, since="2026-01-01T00:00Z")
    jsonschema.validate(report, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert report["projects"] == report["sprints"] == report["sla"] == []
    assert report["window"]["since"] == "2026-01-01T00:00:00Z"
    assert all(v == [] for k, v in build_extras(MetricsInput.empty(), as_of=AS_OF).items()
               if k not in {"schema", "as_of", "window"})


def test_schema_rejects_a_report_with_a_missing_or_extra_key() -> None:
    report = build_report(rich_world(), as_of=AS_OF)
    broken = {**report, "extra": 1}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA, cls=jsonschema.Draft202012Validator)
    broken = json.loads(json.dumps(report))
    broken["projects"][0]["cycle_time_days"]["mean"] = 0
    broken["projects"][0]["cycle_time_days"]["count"] = 0
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA, cls=jsonschema.Draft202012Validator)


def test_lists_are_sorted_by_their_natural_keys() -> None:
    report = build_report(rich_world(), as_of=AS_OF)
    assert [(p["source"], p["project"]) for p in report["projects"]] == [
        ("acme-jira", "ABC"), ("acme-jira", "DEF"), ("team-trello", "5f1c")]
    assert [(c["item"], c["clock"]) for c in report["sla"]] == [
        ("ABC-12", "resolution"), ("ABC-12", "response"), ("DEF-2", "resolution"), ("DEF-2", "response")]
    assert [i["start"] for i in report["iterations"]] == ["2026-01-05T00:00:00Z"]  # first card's day


def test_sources_option_restricts_every_section() -> None:
    report = build_report(rich_world(), as_of=AS_OF, sources=["team-trello"])
    assert {p["source"] for p in report["projects"]} == {"team-trello"}
    assert report["sprints"] == [] and report["sla"] == [] and report["worklogs_by_author"] == []


def test_loader_frames_with_pandas_string_columns_and_microsecond_instants_work() -> None:
    inp = rich_world()
    for name in COLUMNS:
        frame = getattr(inp, name).copy()
        for col, kind in COLUMNS[name]:
            if kind == "str":
                frame[col] = frame[col].astype("str")
            elif kind in ("instant", "optinstant"):
                frame[col] = frame[col].dt.as_unit("us")
        setattr(inp, name, frame)
    assert build_report(inp, as_of=AS_OF) == build_report(rich_world(), as_of=AS_OF)


def test_csv_writes_one_file_per_section_with_flattened_blocks_and_empty_nulls(tmp_path: Path) -> None:
    report, extras = build_report_and_extras(rich_world(), as_of=AS_OF)
    written = write_csv(report, extras, tmp_path)
    assert sorted(p.name for p in written) == sorted(
        f"{n}.csv" for n in ("projects", "sprints", "iterations", "worklogs_by_author", "sla", "velocity",
                             "burndown", "weekly_throughput", "cfd", "timesheet", "cost",
                             "people_by_project", "kpis", "versions", "epics"))
    with (tmp_path / "projects.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    abc = rows[0]
    assert (abc["source"], abc["project"], abc["wip"], abc["worklog_hours"]) == ("acme-jira", "ABC", "1", "2.5")
    assert (abc["lead_time_days_count"], abc["defects_per_100_points"]) == ("1", "0.0")
    assert (abc["cycle_time_days_count"], abc["cycle_time_days_mean"]) == ("0", "")  # null -> empty cell
    empty = write_csv(build_report(MetricsInput.empty(), as_of=AS_OF), None, tmp_path / "empty")
    assert (tmp_path / "empty" / "sla.csv").read_text().startswith("source,project,item,item_url,policy,clock")
    assert len(empty) == 9  # the §7 sections and the §9-§13 lists


def test_rich_tables_render_projects_sprints_and_sla_clocks() -> None:
    report, extras = build_report_and_extras(rich_world(), as_of=AS_OF)
    console = Console(record=True, width=250)
    render_report(report, extras, console=console)
    text = console.export_text()
    assert "ABC Sprint 7" in text and "DEF-2" in text and "acme-jira" in text


def test_make_frame_gives_empty_frames_with_the_contract_columns() -> None:
    frame = make_frame("transitions", [])
    assert list(frame.columns) == [c for c, _ in COLUMNS["transitions"]]
    assert isinstance(frame["at"].dtype, pd.DatetimeTZDtype)


def test_iso_instants_from_tables_equal_numpys_formatting() -> None:
    """`iso_utc_array` assembles the text from character-pair tables; it must write exactly what
    numpy's datetime_as_string writes: whole seconds without a fraction, microseconds with one,
    NAT as None, across leap days, the epoch and centuries."""
    import numpy as np

    from trackpulse.metrics.frames import NAT, _iso_utc_numpy, iso_utc_array

    rng = np.random.default_rng(7)
    second = 1_000_000_000
    fixed = np.array([0, -1, second, 951_782_400 * second, 951_868_799 * second + 999_999_000,  # 2000-02-29
                      4_102_444_800 * second - 1000, -2_208_988_800 * second, NAT], dtype=np.int64)
    spread = rng.integers(-2_000_000_000, 4_000_000_000, 5000, dtype=np.int64) * second
    spread[::3] += rng.integers(0, second, len(spread[::3])) // 1000 * 1000  # microsecond fractions
    for ns in (fixed, spread, np.r_[spread, NAT], np.array([NAT, NAT], dtype=np.int64)):
        assert iso_utc_array(ns) == _iso_utc_numpy(ns, ns != NAT)
