"""Flow figures (METRICS.md §1-§3): derived instants, throughput, cycle/lead time, WIP,
the window, as_of replay, null-vs-zero, and the weekly/CFD extras."""

from __future__ import annotations

from typing import Any

import pytest

from trackpulse.metrics import MetricsInput, build_extras, build_report

STATUSES = [
    {"status_id": "1", "name": "To Do", "category": "todo"},
    {"status_id": "2", "name": "In Progress", "category": "in_progress"},
    {"status_id": "3", "name": "Done", "category": "done"},
    {"status_id": "5", "name": "Closed", "category": "done"},
]


def world(items: list[dict[str, Any]], transitions: list[dict[str, Any]] = (), **more: Any) -> MetricsInput:  # type: ignore[assignment]
    return MetricsInput.from_records(statuses=STATUSES, items=items, transitions=list(transitions), **more)


def move(item: str, at: str, frm: str | None, to: str) -> dict[str, Any]:
    return {"item_id": item, "at": at, "from_status_id": frm, "to_status_id": to}


def project(report: dict[str, Any], name: str = "ABC") -> dict[str, Any]:
    (row,) = [p for p in report["projects"] if p["project"] == name]
    return row


REOPENED: dict[str, Any] = {
    "items": [{"item_id": "1", "key": "ABC-1", "status_id": "3", "created": "2026-01-05T00:00Z", "points": 3}],
    "transitions": [
        move("1", "2026-01-06T00:00Z", "1", "2"),
        move("1", "2026-01-07T00:00Z", "2", "3"),
        move("1", "2026-01-08T00:00Z", "3", "2"),  # reopened
        move("1", "2026-01-10T00:00Z", "2", "3"),
    ],
}


def test_reopened_item_is_resolved_at_its_last_entry_into_done() -> None:
    p = project(build_report(world(**REOPENED), as_of="2026-01-20T00:00Z"))
    assert p["issues_done"] == 1
    # started = first in-progress (01-06), resolved = last entry into done (01-10)
    assert p["cycle_time_days"] == {"count": 1, "mean": 4.0, "p50": 4.0, "p85": 4.0, "p95": 4.0}
    assert p["lead_time_days"]["mean"] == 5.0
    assert p["points_done"] == 3.0
    assert p["wip"] == 0 and p["wip_age_days_p85"] is None


def test_reopened_item_not_done_as_of_is_not_resolved_and_is_in_wip() -> None:
    p = project(build_report(world(**REOPENED), as_of="2026-01-09T00:00Z"))
    assert p["issues_done"] == 0
    assert p["cycle_time_days"] == {"count": 0, "mean": None, "p50": None, "p85": None, "p95": None}
    assert p["wip"] == 1
    assert p["wip_age_days_p85"] == 3.0  # as_of 01-09 - started 01-06


def test_move_between_two_done_statuses_is_not_an_entry_into_done() -> None:
    inp = world(
        [{"item_id": "1", "key": "ABC-1", "status_id": "5", "created": "2026-01-05T00:00Z"}],
        [move("1", "2026-01-07T00:00Z", "1", "3"), move("1", "2026-01-09T00:00Z", "3", "5")],
    )
    p = project(build_report(inp, as_of="2026-01-20T00:00Z"))
    assert p["lead_time_days"]["mean"] == 2.0
    assert p["cycle_time_days"]["count"] == 0  # never in progress: no started


def test_item_created_in_a_done_status_is_resolved_at_creation() -> None:
    # A Trello createCard record: from_status_id None sets the first list.
    inp = world(
        [{"item_id": "1", "key": "ABC-1", "status_id": "3", "created": "2026-01-05T00:00Z"}],
        [move("1", "2026-01-05T00:00Z", None, "3")],
    )
    p = project(build_report(inp, as_of="2026-01-20T00:00Z"))
    assert p["issues_done"] == 1
    assert p["lead_time_days"]["mean"] == 0.0


def test_item_created_in_progress_is_started_at_creation() -> None:
    inp = world(
        [{"item_id": "1", "key": "ABC-1", "status_id": "3", "created": "2026-01-05T00:00Z"}],
        [move("1", "2026-01-07T12:00Z", "2", "3")],  # the earliest "from" is the creation status
    )
    p = project(build_report(inp, as_of="2026-01-20T00:00Z"))
    assert p["cycle_time_days"]["mean"] == 2.5


def test_cycle_time_percentiles_interpolate_linearly_between_closest_ranks() -> None:
    days = [1, 2, 3, 4, 10]
    items = [{"item_id": str(i), "key": f"ABC-{i}", "status_id": "3", "created": "2026-01-01T00:00Z"}
             for i in range(5)]
    moves = []
    for i, d in enumerate(days):
        moves.append(move(str(i), "2026-01-02T00:00Z", "1", "2"))
        moves.append(move(str(i), f"2026-01-{2 + d:02d}T00:00Z", "2", "3"))
    p = project(build_report(world(items, moves), as_of="2026-02-01T00:00Z"))
    # ranks 0.5*4=2 -> 3; 0.85*4=3.4 -> 4+0.4*6=6.4; 0.95*4=3.8 -> 4+0.8*6=8.8
    assert p["cycle_time_days"] == {"count": 5, "mean": 4.0, "p50": 3.0, "p85": pytest.approx(6.4),
                                    "p95": pytest.approx(8.8)}


def test_window_selects_created_items_for_counts_and_resolved_items_for_throughput() -> None:
    inp = world(
        [
            {"item_id": "1", "key": "ABC-1", "status_id": "3", "created": "2026-01-01T00:00Z"},  # before since
            {"item_id": "2", "key": "ABC-2", "status_id": "1", "created": "2026-01-10T00:00Z"},
            {"item_id": "3", "key": "ABC-3", "status_id": "1", "created": "2026-01-20T00:00Z"},  # at until: out
        ],
        [move("1", "2026-01-12T00:00Z", "1", "3")],
    )
    p = project(build_report(inp, as_of="2026-02-01T00:00Z", since="2026-01-06T00:00Z", until="2026-01-20T00:00Z"))
    assert p["issues_total"] == 1  # only ABC-2 was created in [since, until)
    assert p["issues_done"] == 1  # ABC-1 resolved in the window though created before it
    assert p["throughput_per_week"] == 0.5  # 1 item over the 2-week window
    assert p["lead_time_days"]["mean"] == 11.0


def test_throughput_window_starts_at_first_created_when_since_is_unset() -> None:
    inp = world(
        [{"item_id": "1", "key": "ABC-1", "status_id": "3", "created": "2026-01-01T00:00Z"},
         {"item_id": "2", "key": "ABC-2", "status_id": "3", "created": "2026-01-08T00:00Z"}],
        [move("1", "2026-01-03T00:00Z", "1", "3"), move("2", "2026-01-09T00:00Z", "1", "3")],
    )
    assert project(build_report(inp, as_of="2026-01-29T00:00Z"))["throughput_per_week"] == 0.5  # 2 in 4 weeks


def test_figures_over_nothing_are_null_while_counts_and_sums_are_zero() -> None:
    inp = world([{"item_id": "1", "key": "ABC-1", "status_id": "1", "created": "2026-01-01T00:00Z"}])
    p = project(build_report(inp, as_of="2026-01-15T00:00Z", since="2026-01-08T00:00Z"))
    empty = {"count": 0, "mean": None, "p50": None, "p85": None, "p95": None}
    section_3 = dict(list(p.items())[:17])  # §8-§12 figures follow; tests/test_metrics_figures.py owns them
    assert section_3 == {
        "source": "src", "project": "ABC", "project_name": "ABC", "issues_total": 0, "issues_done": 0, "defects_total": 0,
        "defects_open": 0, "points_done": 0.0, "defect_density_per_kloc": None, "defects_per_100_points": None,
        "throughput_per_week": 0.0, "cycle_time_days": empty, "lead_time_days": empty, "worklog_hours": 0.0,
        "wip": 0, "wip_age_days_p85": None, "sla_compliance": None,
    }
    assert isinstance(p["points_done"], float) and isinstance(p["worklog_hours"], float)


def test_history_after_as_of_is_ignored() -> None:
    inp = world(
        [{"item_id": "1", "key": "ABC-1", "status_id": "3", "created": "2026-01-05T00:00Z", "points": 8},
         {"item_id": "2", "key": "ABC-2", "status_id": "1", "created": "2026-01-12T00:00Z"}],  # created later
        [move("1", "2026-01-06T00:00Z", "1", "2"), move("1", "2026-01-07T00:00Z", "2", "3"),
         move("1", "2026-01-10T00:00Z", "3", "2"), move("1", "2026-01-11T00:00Z", "2", "3")],
        estimate_changes=[{"item_id": "1", "at": "2026-01-10T00:00Z", "from_points": 2, "to_points": 8}],
        worklogs=[{"item_id": "1", "author": "Ada", "started": "2026-01-06T00:00Z", "seconds": 3600},
                  {"item_id": "1", "author": "Ada", "started": "2026-01-10T00:00Z", "seconds": 3600}],
    )
    p = project(build_report(inp, as_of="2026-01-09T00:00Z"))
    assert p["issues_total"] == 1
    assert p["issues_done"] == 1
    assert p["lead_time_days"]["mean"] == 2.0  # resolved at 01-07: the later reopen is not known yet
    assert p["points_done"] == 2.0  # the estimate changed only after as_of: its "from" value
    assert p["worklog_hours"] == 1.0


def test_wip_age_is_p85_of_time_since_started() -> None:
    items = [{"item_id": str(i), "key": f"ABC-{i}", "status_id": "2", "created": "2026-01-01T00:00Z"}
             for i in range(3)]
    moves = [move(str(i), f"2026-01-0{i + 2}T00:00Z", "1", "2") for i in range(3)]
    p = project(build_report(world(items, moves), as_of="2026-01-11T00:00Z"))
    assert p["wip"] == 3
    assert p["wip_age_days_p85"] == pytest.approx(8.0 + 0.7 * 1.0)  # ages 7, 8, 9: rank 1.7


def test_weekly_throughput_lists_empty_weeks_between_resolutions() -> None:
    inp = world(
        [{"item_id": "1", "key": "ABC-1", "status_id": "3", "created": "2026-01-01T00:00Z", "points": 2},
         {"item_id": "2", "key": "ABC-2", "status_id": "3", "created": "2026-01-01T00:00Z"}],
        [move("1", "2026-01-06T00:00Z", "1", "3"), move("2", "2026-01-21T00:00Z", "1", "3")],
    )
    weekly = build_extras(inp, as_of="2026-02-01T00:00Z")["weekly_throughput"]
    assert [(w["week_start"], w["items_done"], w["points_done"]) for w in weekly] == [
        ("2026-01-05T00:00:00Z", 1, 2.0), ("2026-01-12T00:00:00Z", 0, 0.0), ("2026-01-19T00:00:00Z", 1, 0.0),
    ]


def test_cumulative_flow_counts_items_per_category_at_each_day_end() -> None:
    inp = world(
        [{"item_id": "1", "key": "ABC-1", "status_id": "3", "created": "2026-01-01T10:00Z"},
         {"item_id": "2", "key": "ABC-2", "status_id": "1", "created": "2026-01-02T10:00Z"}],
        [move("1", "2026-01-02T12:00Z", "1", "2"), move("1", "2026-01-03T12:00Z", "2", "3")],
    )
    cfd = build_extras(inp, as_of="2026-01-03T18:00Z")["cfd"]
    assert [(c["day"], c["todo"], c["in_progress"], c["done"]) for c in cfd] == [
        ("2026-01-01", 1, 0, 0), ("2026-01-02", 1, 1, 0), ("2026-01-03", 1, 0, 1),
    ]
