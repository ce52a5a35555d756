"""Sprint velocity (METRICS.md §4), velocity_avg_3, burndown, and Trello iterations (§5)."""

from __future__ import annotations

from datetime import date
from typing import Any

from trackpulse.metrics import MetricsInput, SourceSettings, build_extras, build_report

STATUSES = [
    {"status_id": "1", "name": "To Do", "category": "todo"},
    {"status_id": "2", "name": "In Progress", "category": "in_progress"},
    {"status_id": "3", "name": "Done", "category": "done"},
]
BEFORE = "2026-01-01T00:00Z"
SPRINT_10 = {"board_id": "12", "sprint_id": "10", "name": "Sprint 10", "state": "closed",
             "start": "2026-01-05T00:00Z", "end": "2026-01-19T00:00Z", "complete": "2026-01-19T00:00Z"}
SPRINT_11 = {"board_id": "12", "sprint_id": "11", "name": "Sprint 11", "state": "active",
             "start": "2026-01-19T01:00Z", "end": "2026-02-02T00:00Z"}


def item(i: str, status: str = "1", points: float | None = None, sprints: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"item_id": i, "key": f"ABC-{i}", "status_id": status, "created": BEFORE, "points": points,
            "sprint_ids": sprints}


def done(i: str, at: str) -> dict[str, Any]:
    return {"item_id": i, "at": at, "from_status_id": "1", "to_status_id": "3"}


def sprint_change(i: str, at: str, frm: tuple[str, ...], to: tuple[str, ...]) -> dict[str, Any]:
    return {"item_id": i, "at": at, "from_sprint_ids": frm, "to_sprint_ids": to}


def sprint_rows(as_of: str, **world: Any) -> dict[str, dict[str, Any]]:
    inp = MetricsInput.from_records(statuses=STATUSES, **world)
    return {s["sprint_id"]: s for s in build_report(inp, as_of=as_of)["sprints"]}


def points(s: dict[str, Any]) -> tuple[float, float, float, float]:
    return s["committed_points"], s["completed_points"], s["added_points"], s["removed_points"]


def test_sprint_counts_committed_items_at_start_and_completed_at_close() -> None:
    s = sprint_rows("2026-01-25T00:00Z", items=[item("1", "3", 3, ("10",)), item("2", "1", 5, ("10",))],
                    transitions=[done("1", "2026-01-10T00:00Z")], sprints=[SPRINT_10])["10"]
    assert points(s) == (8.0, 3.0, 0.0, 0.0)
    assert (s["state"], s["start"], s["complete"]) == ("closed", "2026-01-05T00:00:00Z", "2026-01-19T00:00:00Z")


def test_sprint_counts_item_added_mid_sprint_as_completed() -> None:
    s = sprint_rows("2026-01-25T00:00Z", items=[item("1", "3", 5, ("10",))],
                    sprint_changes=[sprint_change("1", "2026-01-07T00:00Z", (), ("10",))],
                    transitions=[done("1", "2026-01-12T00:00Z")], sprints=[SPRINT_10])["10"]
    assert points(s) == (0.0, 5.0, 5.0, 0.0)


def test_item_created_into_a_running_sprint_is_added() -> None:
    late = {**item("1", "1", 2, ("10",)), "created": "2026-01-08T00:00Z"}
    s = sprint_rows("2026-01-25T00:00Z", items=[late], sprints=[SPRINT_10])["10"]
    assert points(s) == (0.0, 0.0, 2.0, 0.0)


def test_sprint_counts_item_removed_mid_sprint_as_removed_not_completed() -> None:
    s = sprint_rows("2026-01-25T00:00Z", items=[item("1", "3", 2, ())],
                    sprint_changes=[sprint_change("1", "2026-01-08T00:00Z", ("10",), ())],
                    transitions=[done("1", "2026-01-10T00:00Z")], sprints=[SPRINT_10])["10"]
    assert points(s) == (2.0, 0.0, 0.0, 2.0)


def test_estimate_changed_mid_sprint_commits_old_value_and_completes_new_one() -> None:
    s = sprint_rows("2026-01-25T00:00Z", items=[item("1", "3", 8, ("10",))],
                    estimate_changes=[{"item_id": "1", "at": "2026-01-09T00:00Z", "from_points": 1, "to_points": 8}],
                    transitions=[done("1", "2026-01-15T00:00Z")], sprints=[SPRINT_10])["10"]
    assert points(s) == (1.0, 8.0, 0.0, 0.0)


def test_unfinished_item_carried_over_stays_in_closed_sprint_and_is_committed_to_the_next() -> None:
    rows = sprint_rows(
        "2026-01-25T00:00Z", items=[item("1", "3", 4, ("10", "11"))],
        sprint_changes=[sprint_change("1", "2026-01-19T00:00Z", ("10",), ("10", "11"))],
        transitions=[done("1", "2026-01-22T00:00Z")], sprints=[SPRINT_10, SPRINT_11],
    )
    assert points(rows["10"]) == (4.0, 0.0, 0.0, 0.0)  # not completed, not removed
    assert points(rows["11"]) == (4.0, 4.0, 0.0, 0.0)  # active: C = as_of
    assert (rows["11"]["state"], rows["11"]["complete"]) == ("active", None)


def test_items_without_points_count_zero() -> None:
    s = sprint_rows("2026-01-25T00:00Z", items=[item("1", "3", None, ("10",)), item("2", "3", 3, ("10",))],
                    transitions=[done("1", "2026-01-10T00:00Z"), done("2", "2026-01-10T00:00Z")],
                    sprints=[SPRINT_10])["10"]
    assert points(s) == (3.0, 3.0, 0.0, 0.0)


def test_sprint_is_replayed_as_of_evaluation_time() -> None:
    rows = sprint_rows("2026-01-10T00:00Z", items=[item("1", "3", 3, ("10",))],
                       transitions=[done("1", "2026-01-12T00:00Z")], sprints=[SPRINT_10, SPRINT_11])
    assert list(rows) == ["10"]  # sprint 11 had not started; sprint 10 was still active
    assert rows["10"]["state"] == "active" and rows["10"]["complete"] is None
    assert points(rows["10"]) == (3.0, 0.0, 0.0, 0.0)


def test_velocity_avg_3_averages_the_three_latest_closed_sprints_of_the_board() -> None:
    sprints, items, transitions = [], [], []
    for k, completed in enumerate([10, 20, 30, 40]):
        start = f"2026-02-{1 + 7 * k:02d}T00:00Z"
        sprints.append({"board_id": "12", "sprint_id": f"s{k}", "name": f"S{k}", "state": "closed", "start": start,
                        "end": f"2026-02-{7 + 7 * k:02d}T00:00Z", "complete": f"2026-02-{7 + 7 * k:02d}T00:00Z"})
        items.append(item(str(k), "3", completed, (f"s{k}",)))
        transitions.append(done(str(k), f"2026-02-{3 + 7 * k:02d}T00:00Z"))
    sprints.append({"board_id": "99", "sprint_id": "x", "name": "X", "state": "active",
                    "start": "2026-02-01T00:00Z", "end": "2026-03-10T00:00Z"})
    inp = MetricsInput.from_records(statuses=STATUSES, items=items, transitions=transitions, sprints=sprints)
    velocity = build_extras(inp, as_of="2026-03-01T00:00Z")["velocity"]
    assert velocity == [
        {"source": "src", "board": "12", "velocity_avg_3": 30.0, "sprints_averaged": 3},
        {"source": "src", "board": "99", "velocity_avg_3": None, "sprints_averaged": 0},
    ]


def test_sprints_without_members_give_empty_figures_not_an_error() -> None:
    """A board's sprints stored before any of its items (a first sync's catalogue has committed,
    its issue pages not yet: a digest firing then failed with an IndexError), or items that were
    never in a sprint: the sprints report nothing committed and the burndown is flat zero."""
    sprint = {**SPRINT_11, "start": "2026-01-19T00:00Z"}
    for items in ([], [item("1", "1", 3)]):
        inp = MetricsInput.from_records(statuses=STATUSES, sprints=[sprint], items=items)
        report = build_report(inp, as_of="2026-01-21T12:00Z")
        assert [points(s) for s in report["sprints"]] == [(0.0, 0.0, 0.0, 0.0)]
        burndown = build_extras(inp, as_of="2026-01-21T12:00Z")["burndown"]
        assert {b["scope_points"] for b in burndown} <= {0.0}


def test_burndown_of_active_sprint_shows_scope_change_and_remaining_points() -> None:
    sprint = {**SPRINT_11, "start": "2026-01-19T00:00Z"}
    inp = MetricsInput.from_records(
        statuses=STATUSES, sprints=[sprint],
        items=[item("1", "3", 3, ("11",)), item("2", "1", 5, ("11",))],
        sprint_changes=[sprint_change("2", "2026-01-20T12:00Z", (), ("11",))],
        transitions=[done("1", "2026-01-21T06:00Z")],
    )
    burndown = build_extras(inp, as_of="2026-01-21T12:00Z")["burndown"]
    assert [(b["at"], b["scope_points"], b["completed_points"], b["remaining_points"], b["added_points"])
            for b in burndown] == [
        ("2026-01-19T00:00:00Z", 3.0, 0.0, 3.0, 0.0),
        ("2026-01-20T00:00:00Z", 3.0, 0.0, 3.0, 0.0),
        ("2026-01-21T00:00:00Z", 8.0, 0.0, 8.0, 5.0),
        ("2026-01-21T12:00:00Z", 8.0, 3.0, 5.0, 5.0),
    ]


def trello(**world: Any) -> MetricsInput:
    return MetricsInput.from_records(
        statuses=[{"source": "team", "status_id": "L1", "name": "Doing", "category": "in_progress"},
                  {"source": "team", "status_id": "L2", "name": "Done", "category": "done"}],
        sources=[SourceSettings(name="team", kind="trello", iteration_days=7, iteration_start=date(2026, 1, 5))],
        **world,
    )


def card(i: str, points: float | None, status: str = "L2") -> dict[str, Any]:
    return {"source": "team", "project": "board1", "item_id": i, "key": i, "status_id": status,
            "created": "2026-01-01T00:00Z", "points": points}


def test_trello_iterations_list_every_started_iteration_including_empty_ones() -> None:
    inp = trello(
        items=[card("a", 3), card("b", 2), card("c", 9), card("d", 1, "L1")],
        transitions=[
            {"source": "team", "item_id": "a", "at": "2026-01-06T00:00Z", "from_status_id": "L1", "to_status_id": "L2"},
            {"source": "team", "item_id": "b", "at": "2026-01-20T00:00Z", "from_status_id": "L1", "to_status_id": "L2"},
            {"source": "team", "item_id": "c", "at": "2026-01-02T00:00Z", "from_status_id": "L1", "to_status_id": "L2"},
        ],
        estimate_changes=[{"source": "team", "item_id": "b", "at": "2026-01-25T00:00Z", "from_points": 5,
                           "to_points": 2}],
    )
    iterations = build_report(inp, as_of="2026-01-26T00:00Z")["iterations"]
    assert [(i["start"], i["end"], i["completed_points"]) for i in iterations] == [
        ("2026-01-05T00:00:00Z", "2026-01-12T00:00:00Z", 3.0),  # c resolved before the first iteration
        ("2026-01-12T00:00:00Z", "2026-01-19T00:00:00Z", 0.0),  # empty, still listed
        ("2026-01-19T00:00:00Z", "2026-01-26T00:00:00Z", 5.0),  # b's points at resolved, not today's 2
        ("2026-01-26T00:00:00Z", "2026-02-02T00:00:00Z", 0.0),  # starts exactly at as_of
    ]
    assert {(i["source"], i["project"]) for i in iterations} == {("team", "board1")}


def test_trello_board_without_cards_still_lists_its_iterations() -> None:
    inp = trello(boards=[{"source": "team", "board_id": "empty", "name": "Empty"}])
    iterations = build_report(inp, as_of="2026-01-13T00:00Z")["iterations"]
    assert [(i["project"], i["completed_points"]) for i in iterations] == [("empty", 0.0), ("empty", 0.0)]
