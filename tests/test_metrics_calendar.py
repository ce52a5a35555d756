"""Business-time arithmetic (METRICS.md §6 calendars): working days, several hour ranges,
holidays, IANA time zones, and when a budget of working time is first exceeded."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from trackpulse.metrics.calendar import WorkingClock, working_clock
from trackpulse.metrics.frames import BusinessCalendar

HOUR = 3_600_000_000_000
# Shanghai is UTC+8 all year: 09:00 local is 01:00Z. 2026-10-01 is a Thursday.
SHANGHAI = BusinessCalendar(name="cn", timezone="Asia/Shanghai", days=("mon", "tue", "wed", "thu", "fri"),
                            hours=("09:00-12:00", "13:00-18:00"), holidays=(date(2026, 10, 1), date(2026, 10, 2)))


def ns(text: str) -> np.ndarray:
    return np.array([pd.Timestamp(text).value], dtype=np.int64)


def clock_for(calendar: BusinessCalendar) -> WorkingClock:
    return WorkingClock.for_calendar(calendar, ns("2026-09-01T00:00Z")[0], ns("2026-12-31T00:00Z")[0])


def test_working_time_skips_the_weekend_in_the_calendars_time_zone() -> None:
    clock = clock_for(SHANGHAI)
    # Fri 2026-09-25 17:00 local (09:00Z) to Mon 09-28 10:00 local (02:00Z): 1 h Friday + 1 h Monday.
    assert clock.working_between(ns("2026-09-25T09:00Z"), ns("2026-09-28T02:00Z"))[0] == 2 * HOUR


def test_working_time_skips_holidays_and_the_lunch_break() -> None:
    clock = clock_for(SHANGHAI)
    # Wed 09-30 11:00 local to Mon 10-05 14:00 local: Wed 11-12, 13-18 (6 h); Thu, Fri holidays;
    # Mon 9-12, 13-14 (4 h).
    assert clock.working_between(ns("2026-09-30T03:00Z"), ns("2026-10-05T06:00Z"))[0] == 10 * HOUR


def test_budget_is_first_exceeded_after_the_weekend_and_holidays() -> None:
    clock = clock_for(SHANGHAI)
    # Wed 09-30 17:30 local + 2 h: 0.5 h Wednesday, then Mon 10-05 09:00 + 1.5 h = 10:30 local = 02:30Z.
    got = clock.instant_exceeding(ns("2026-09-30T09:30Z"), np.array([2 * HOUR]))
    assert got[0] == ns("2026-10-05T02:30Z")[0]


def test_budget_ending_with_a_working_range_is_exceeded_when_the_next_range_opens() -> None:
    clock = clock_for(SHANGHAI)
    # Mon 09:00 local + 3 h reaches the budget at 12:00; it is first exceeded at 13:00 local (05:00Z).
    got = clock.instant_exceeding(ns("2026-09-28T01:00Z"), np.array([3 * HOUR]))
    assert got[0] == ns("2026-09-28T05:00Z")[0]


def test_daylight_saving_change_moves_working_hours_in_utc() -> None:
    berlin = BusinessCalendar(name="de", timezone="Europe/Berlin", days=("sat", "mon"), hours=("09:00-10:00",))
    clock = clock_for(berlin)
    # Clocks go back on Sunday 2026-10-25: 09:00 is 07:00Z (CEST) on Saturday, 08:00Z (CET) on Monday.
    assert clock.working_between(ns("2026-10-24T07:00Z"), ns("2026-10-24T08:00Z"))[0] == HOUR
    assert clock.working_between(ns("2026-10-26T07:00Z"), ns("2026-10-26T08:00Z"))[0] == 0
    assert clock.working_between(ns("2026-10-26T08:00Z"), ns("2026-10-26T09:00Z"))[0] == HOUR


def test_24x7_counts_every_second() -> None:
    clock = working_clock("24x7", {}, 0, 0)
    assert clock.working_between(ns("2026-09-26T00:00Z"), ns("2026-09-27T12:00Z"))[0] == 36 * HOUR
    assert clock.instant_exceeding(ns("2026-09-26T00:00Z"), np.array([HOUR]))[0] == ns("2026-09-26T01:00Z")[0]


def test_working_time_is_computed_for_many_instants_at_once() -> None:
    clock = clock_for(SHANGHAI)
    starts = np.array([ns("2026-09-28T01:00Z")[0]] * 3)
    ends = np.array([ns(t)[0] for t in ("2026-09-28T02:00Z", "2026-09-28T05:30Z", "2026-09-27T00:00Z")])
    assert clock.working_between(starts, ends).tolist() == [HOUR, int(3.5 * HOUR), 0]
