"""SLA clocks (METRICS.md §6): response by comment or transition, pause statuses, reopen,
business calendars, statuses, breached_at, policy matching and compliance."""

from __future__ import annotations

from datetime import date
from typing import Any

from trackpulse.metrics import BusinessCalendar, MetricsInput, SlaPolicy, SlaSettings, build_report

STATUSES = [
    {"status_id": "1", "name": "To Do", "category": "todo"},
    {"status_id": "2", "name": "In Progress", "category": "in_progress"},
    {"status_id": "3", "name": "Done", "category": "done"},
    {"status_id": "4", "name": "Waiting for customer", "category": "in_progress"},
]
CREATED = "2026-01-05T09:00Z"


def move(at: str, frm: str, to: str, item: str = "1") -> dict[str, Any]:
    return {"item_id": item, "at": at, "from_status_id": frm, "to_status_id": to}


def clocks(*policies: SlaPolicy, transitions: list[dict[str, Any]] = (), comments: list[dict[str, Any]] = (),  # type: ignore[assignment]
           items: list[dict[str, Any]] | None = None, as_of: str = "2026-01-06T00:00Z",
           calendars: dict[str, BusinessCalendar] | None = None, **window: str) -> dict[tuple[str, str], dict[str, Any]]:
    items = items or [{"item_id": "1", "key": "ABC-1", "status_id": "1", "created": CREATED, "reporter": "u1",
                       "priority": "P1"}]
    inp = MetricsInput.from_records(statuses=STATUSES, items=items, transitions=list(transitions),
                                    comments=list(comments),
                                    sla=SlaSettings(calendars=calendars or {}, policies=tuple(policies)))
    report = build_report(inp, as_of=as_of, **window)
    return {(c["item"], c["clock"]): c for c in report["sla"]}


RESPONSE_1H = SlaPolicy(name="P1", response_hours=1)
RESOLUTION_8H = SlaPolicy(name="P1", resolution_hours=8, pause_statuses=("Waiting for customer",))


def test_response_clock_stops_at_first_comment_by_someone_other_than_the_reporter() -> None:
    c = clocks(RESPONSE_1H, comments=[{"item_id": "1", "author": "u2", "created": "2026-01-05T09:20Z"}],
               transitions=[move("2026-01-05T09:40Z", "1", "2")])[("ABC-1", "response")]
    assert (c["elapsed_hours"], c["status"], c["breached_at"]) == (20 / 60, "met", None)


def test_comment_by_the_reporter_is_not_a_response() -> None:
    c = clocks(RESPONSE_1H, comments=[{"item_id": "1", "author": "u1", "created": "2026-01-05T09:10Z"}],
               transitions=[move("2026-01-05T09:40Z", "1", "2")])[("ABC-1", "response")]
    assert c["elapsed_hours"] == 40 / 60 and c["status"] == "met"


def test_response_by_transition_out_of_todo_breached_at_target() -> None:
    c = clocks(RESPONSE_1H, transitions=[move("2026-01-05T10:30Z", "1", "2")])[("ABC-1", "response")]
    assert (c["elapsed_hours"], c["status"], c["breached_at"]) == (1.5, "breached", "2026-01-05T10:00:00Z")


def test_response_clock_without_response_keeps_running_to_as_of() -> None:
    c = clocks(RESPONSE_1H, as_of="2026-01-05T09:50Z")[("ABC-1", "response")]
    assert (c["elapsed_hours"], c["status"]) == (50 / 60, "at_risk")  # 50 min >= 0.8 x 60 min
    c = clocks(RESPONSE_1H, as_of="2026-01-05T09:30Z")[("ABC-1", "response")]
    assert c["status"] == "ongoing"


def test_resolution_clock_does_not_run_in_a_pause_status() -> None:
    c = clocks(RESOLUTION_8H, transitions=[
        move("2026-01-05T11:00Z", "1", "4"),  # 2 h running
        move("2026-01-05T14:00Z", "4", "2"),  # 3 h paused
        move("2026-01-05T16:00Z", "2", "3"),  # 2 h running, then done
    ])[("ABC-1", "resolution")]
    assert (c["elapsed_hours"], c["status"], c["breached_at"]) == (4.0, "met", None)


def test_resolution_clock_resumes_when_reopened_and_records_when_it_breached() -> None:
    transitions = [move("2026-01-05T12:00Z", "1", "3"), move("2026-01-05T19:00Z", "3", "2")]  # 3 h, done, reopened
    c = clocks(SlaPolicy(name="P1", resolution_hours=6), transitions=transitions,
               as_of="2026-01-05T21:00Z")[("ABC-1", "resolution")]
    assert (c["elapsed_hours"], c["status"], c["breached_at"]) == (5.0, "at_risk", None)  # 5 >= 0.8 x 6
    c = clocks(SlaPolicy(name="P1", resolution_hours=4), transitions=transitions,
               as_of="2026-01-05T21:00Z")[("ABC-1", "resolution")]
    # 3 h before it was done, 1 more hour after the reopen at 19:00.
    assert (c["elapsed_hours"], c["status"], c["breached_at"]) == (5.0, "breached", "2026-01-05T20:00:00Z")


def test_business_hours_sla_crosses_weekend_holidays_and_time_zone_offset() -> None:
    shanghai = BusinessCalendar(name="cn", timezone="Asia/Shanghai", hours=("09:00-12:00", "13:00-18:00"),
                                holidays=(date(2026, 10, 1), date(2026, 10, 2)))
    items = [{"item_id": "1", "key": "ABC-1", "status_id": "1", "created": "2026-09-30T08:00Z"}]  # Wed 16:00 local
    c = clocks(SlaPolicy(name="biz", resolution_hours=4, calendar="cn"), items=items, calendars={"cn": shanghai},
               as_of="2026-10-06T00:00Z")[("ABC-1", "resolution")]  # Tue 08:00 local
    # Wed 16-18 (2 h); Thu and Fri are holidays; weekend; Mon 9-12 and 13-18 (8 h): 10 h.
    # 4 h are first exceeded at Mon 11:00 local = 03:00Z.
    assert (c["elapsed_hours"], c["status"], c["breached_at"]) == (10.0, "breached", "2026-10-05T03:00:00Z")


def test_first_matching_policy_wins_and_filters_use_current_values() -> None:
    items = [
        {"item_id": "1", "key": "ABC-1", "status_id": "1", "created": CREATED, "priority": "P1"},
        {"item_id": "2", "key": "ABC-2", "status_id": "1", "created": CREATED, "priority": "P2"},
        {"item_id": "3", "key": "ABC-3", "status_id": "1", "created": CREATED, "priority": None, "type": "Bug"},
        {"item_id": "4", "key": "XYZ-4", "status_id": "1", "created": CREATED, "priority": "P2"},
    ]
    got = clocks(
        SlaPolicy(name="urgent", priorities=("P1",), response_hours=1),
        SlaPolicy(name="bugs", types=("Bug",), resolution_hours=40),
        SlaPolicy(name="abc", projects=("ABC",), priorities=("P1", "P2"), response_hours=4, resolution_hours=16),
        items=items,
    )
    assert {k: v["policy"] for k, v in got.items()} == {
        ("ABC-1", "response"): "urgent",  # also matches "abc", but "urgent" comes first; no resolution target
        ("ABC-2", "response"): "abc", ("ABC-2", "resolution"): "abc",
        ("ABC-3", "resolution"): "bugs",  # a policy with only resolution_hours has no response clock
    }  # XYZ-4 matches no policy


def test_sla_list_holds_items_created_in_window_and_compliance_clocks_stopped_in_it() -> None:
    items = [
        {"item_id": "1", "key": "ABC-1", "status_id": "3", "created": "2026-01-04T20:00Z"},  # before since
        {"item_id": "2", "key": "ABC-2", "status_id": "3", "created": "2026-01-05T00:00Z"},
        {"item_id": "3", "key": "ABC-3", "status_id": "1", "created": "2026-01-05T00:00Z"},  # breached, running
    ]
    transitions = [move("2026-01-05T01:00Z", "1", "3", item="1"),  # 5 h: met, stopped in window
                   move("2026-01-05T12:00Z", "1", "3", item="2")]  # 12 h: breached, stopped in window
    inp = MetricsInput.from_records(statuses=STATUSES, items=items, transitions=transitions,
                                    sla=SlaSettings(policies=(SlaPolicy(name="all", resolution_hours=200),)))
    inp_tight = MetricsInput.from_records(statuses=STATUSES, items=items, transitions=transitions,
                                          sla=SlaSettings(policies=(SlaPolicy(name="all", resolution_hours=8),)))
    report = build_report(inp_tight, as_of="2026-01-06T00:00Z", since="2026-01-05T00:00Z")
    assert [(c["item"], c["status"]) for c in report["sla"]] == [("ABC-2", "breached"), ("ABC-3", "breached")]
    assert report["projects"][0]["sla_compliance"] == 0.5  # ABC-1 met, ABC-2 breached; ABC-3 still running
    relaxed = build_report(inp, as_of="2026-01-06T00:00Z", since="2026-01-05T00:00Z")
    assert relaxed["projects"][0]["sla_compliance"] == 1.0
    assert [c["status"] for c in relaxed["sla"]] == ["met", "ongoing"]


def test_no_policy_means_no_clocks_and_null_compliance() -> None:
    report = build_report(MetricsInput.from_records(statuses=STATUSES, items=[
        {"item_id": "1", "key": "ABC-1", "status_id": "1", "created": CREATED}]), as_of="2026-01-06T00:00Z")
    assert report["sla"] == [] and report["projects"][0]["sla_compliance"] is None
