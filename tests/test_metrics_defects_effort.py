"""Defect figures and effort (METRICS.md §3): density per KLOC and per 100 points, worklog
hours per project and per author, and the timesheet and cost extras."""

from __future__ import annotations

from typing import Any

from trackpulse.metrics import CostSettings, MetricsInput, SourceSettings, build_extras, build_report

STATUSES = [
    {"status_id": "1", "name": "To Do", "category": "todo"},
    {"status_id": "3", "name": "Done", "category": "done"},
]


def issue(i: int, *, defect: bool, status: str = "1", created: str = "2026-01-05T00:00Z",
          points: float | None = None) -> dict[str, Any]:
    return {"item_id": str(i), "key": f"ABC-{i}", "status_id": status, "created": created, "is_defect": defect,
            "type": "Bug" if defect else "Story", "points": points}


def defect_world(kloc: dict[str, float]) -> MetricsInput:
    return MetricsInput.from_records(
        statuses=STATUSES, sources=[SourceSettings(name="src", kloc=kloc)],
        items=[
            issue(1, defect=True, status="3"), issue(2, defect=True, status="3"), issue(3, defect=True),
            issue(4, defect=True, created="2026-01-01T00:00Z"),  # before the window
            issue(5, defect=False, status="3", points=6),
        ],
        transitions=[{"item_id": str(i), "at": "2026-01-06T00:00Z", "from_status_id": "1", "to_status_id": "3"}
                     for i in (1, 2, 5)],
    )


def test_defect_density_per_kloc_and_per_100_points_done() -> None:
    (p,) = build_report(defect_world({"ABC": 2.0}), as_of="2026-01-10T00:00Z", since="2026-01-02T00:00Z")["projects"]
    assert (p["defects_total"], p["defects_open"]) == (3, 1)
    assert p["defect_density_per_kloc"] == 1.5  # 3 defects / 2 KLOC
    assert p["points_done"] == 6.0
    assert p["defects_per_100_points"] == 50.0  # 100 x 3 / 6


def test_defect_density_is_null_without_a_configured_size() -> None:
    (p,) = build_report(defect_world({"OTHER": 10.0}), as_of="2026-01-10T00:00Z")["projects"]
    assert p["defects_total"] == 4 and p["defect_density_per_kloc"] is None


WORKLOGS = [
    {"item_id": "1", "author": "Ada Li", "started": "2026-01-05T09:00Z", "seconds": 7200},
    {"item_id": "2", "author": "Ada Li", "started": "2026-01-13T09:00Z", "seconds": 5400},
    {"item_id": "1", "author": "Bo Chen", "started": "2026-01-06T09:00Z", "seconds": 1800},
    {"item_id": "1", "author": "Bo Chen", "started": "2026-01-20T09:00Z", "seconds": 3600},  # after until
    {"item_id": "gone", "author": "Cy", "started": "2026-01-06T09:00Z", "seconds": 3600},  # deleted item
]


def effort_world(**cost: Any) -> MetricsInput:
    return MetricsInput.from_records(
        statuses=STATUSES, worklogs=WORKLOGS, cost=CostSettings(**cost),
        items=[issue(1, defect=False), issue(2, defect=False)],
    )


def test_worklog_hours_sum_worklogs_started_in_the_window_per_project_and_author() -> None:
    report = build_report(effort_world(), as_of="2026-01-31T00:00Z", until="2026-01-15T00:00Z")
    assert report["projects"][0]["worklog_hours"] == 4.0  # 2 + 1.5 + 0.5
    assert report["worklogs_by_author"] == [
        {"source": "src", "project": "ABC", "author": "Ada Li", "hours": 3.5},
        {"source": "src", "project": "ABC", "author": "Bo Chen", "hours": 0.5},
    ]


def test_timesheet_groups_hours_by_person_and_iso_week() -> None:
    extras = build_extras(effort_world(), as_of="2026-01-31T00:00Z", until="2026-01-15T00:00Z")
    assert [(t["author"], t["week"], t["hours"]) for t in extras["timesheet"]] == [
        ("Ada Li", "2026-W02", 2.0), ("Ada Li", "2026-W03", 1.5), ("Bo Chen", "2026-W02", 0.5),
    ]


def test_cost_is_hours_times_rate_against_budget() -> None:
    inp = effort_world(default_rate=50.0, rates={"Ada Li": 100.0}, budgets={("src", "ABC"): 1000.0})
    (cost,) = build_extras(inp, as_of="2026-01-31T00:00Z", until="2026-01-15T00:00Z")["cost"]
    assert cost == {"source": "src", "project": "ABC", "currency": "USD", "hours": 4.0, "cost": 375.0,
                    "budget": 1000.0, "remaining": 625.0, "budget_used": 0.375}
