"""Business-time arithmetic for SLA clocks (METRICS.md §6 calendars).

A calendar is turned into its working intervals in UTC over the span the data needs
(local working hours on working days, holidays removed, converted with `zoneinfo` so
daylight-saving shifts land where they should). From those intervals a *working
clock* is a monotone function W(t) = working nanoseconds elapsed since the span's
origin; then

* working time between a and b is W(b) - W(a), and
* the instant at which N working nanoseconds after `start` are first exceeded is the
  smallest t with W(t) > W(start) + N,

both answered for whole arrays of instants with `searchsorted`, O(log intervals) each.
`24x7` is the identity clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from trackpulse.metrics.frames import NAT, BusinessCalendar, MetricsInputError

ALWAYS = "24x7"
_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_RANGE = re.compile(r"^(\d\d):(\d\d)-(\d\d):(\d\d)$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NS_PER_MINUTE = 60_000_000_000


def _ns(dt: datetime) -> int:
    return (dt - _EPOCH) // timedelta(microseconds=1) * 1000


def _parse_days(calendar: BusinessCalendar) -> set[int]:
    days = set()
    for d in calendar.days:
        key = str(d).strip().lower()[:3]
        if key not in _WEEKDAYS:
            raise MetricsInputError(f"calendar {calendar.name!r}: unknown working day {d!r}")
        days.add(_WEEKDAYS[key])
    return days


def _parse_hours(calendar: BusinessCalendar) -> list[tuple[int, int]]:
    """Minutes after local midnight; an end at or before its start runs past midnight."""
    ranges = []
    for text in calendar.hours:
        m = _RANGE.match(str(text).strip())
        if not m:
            raise MetricsInputError(f"calendar {calendar.name!r}: hour range {text!r} must look like 09:00-12:00")
        h1, m1, h2, m2 = (int(x) for x in m.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if start >= 24 * 60 or end > 24 * 60 or m1 >= 60 or m2 >= 60:
            raise MetricsInputError(f"calendar {calendar.name!r}: hour range {text!r} is not a time of day")
        if end <= start:
            end += 24 * 60
        ranges.append((start, end))
    return ranges


@dataclass(frozen=True)
class WorkingClock:
    """W(t) for one calendar over a span; `always` marks the 24x7 identity clock."""

    starts: np.ndarray  # int64 ns, sorted, disjoint working intervals [starts, ends)
    ends: np.ndarray
    cum_before: np.ndarray  # working ns before each interval
    always: bool = False

    @classmethod
    def around_the_clock(cls) -> WorkingClock:
        empty = np.zeros(0, dtype=np.int64)
        return cls(empty, empty, empty, always=True)

    @classmethod
    def for_calendar(cls, calendar: BusinessCalendar | None, lo: int, hi: int) -> WorkingClock:
        """The clock of `calendar` (None: 24x7) valid for instants in [lo, hi] (int64 ns)."""
        if calendar is None:
            return cls.around_the_clock()
        try:
            tz = ZoneInfo(calendar.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise MetricsInputError(
                f"calendar {calendar.name!r}: unknown IANA time zone {calendar.timezone!r}"
            ) from exc
        days = _parse_days(calendar)
        ranges = _parse_hours(calendar)
        holidays = {d if isinstance(d, date) else date.fromisoformat(str(d)) for d in calendar.holidays}
        # Local dates covering the span, a day of margin each side for offsets and overnight ranges.
        first = datetime.fromtimestamp(lo // 1_000_000_000, tz).date() - timedelta(days=2)
        last = datetime.fromtimestamp(hi // 1_000_000_000, tz).date() + timedelta(days=2)
        spans: list[tuple[int, int]] = []
        day = first
        while day <= last:
            if day.weekday() in days and day not in holidays:
                midnight = datetime(day.year, day.month, day.day)
                for start_min, end_min in ranges:
                    # Local wall-clock times, each resolved on its own day so DST shifts apply.
                    a = (midnight + timedelta(minutes=start_min)).replace(tzinfo=tz)
                    b = (midnight + timedelta(minutes=end_min)).replace(tzinfo=tz)
                    a_ns, b_ns = _ns(a), _ns(b)
                    if b_ns > a_ns:
                        spans.append((a_ns, b_ns))
            day += timedelta(days=1)
        return cls.from_intervals(spans)

    @classmethod
    def from_intervals(cls, spans: list[tuple[int, int]]) -> WorkingClock:
        spans.sort()
        merged: list[list[int]] = []
        for a, b in spans:
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        arr = np.array(merged, dtype=np.int64).reshape(-1, 2)
        starts, ends = arr[:, 0].copy(), arr[:, 1].copy()
        lengths = ends - starts
        cum_before = np.cumsum(lengths) - lengths
        return cls(starts, ends, cum_before)

    def clock(self, t: np.ndarray) -> np.ndarray:
        """W(t): working ns since the span's origin (the identity for 24x7)."""
        t = np.asarray(t, dtype=np.int64)
        if self.always:
            return t
        if len(self.starts) == 0:
            return np.zeros(len(t), dtype=np.int64)
        i = np.searchsorted(self.starts, t, side="right") - 1
        j = np.maximum(i, 0)
        inside = np.clip(t - self.starts[j], 0, self.ends[j] - self.starts[j])
        return np.where(i >= 0, self.cum_before[j] + inside, 0)

    def working_between(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Working ns in [a, b) for each pair; 0 where b <= a."""
        return np.maximum(self.clock(b) - self.clock(a), 0)

    def instant_exceeding(self, start: np.ndarray, working: np.ndarray) -> np.ndarray:
        """First instant after which more than `working` ns have elapsed since `start`.

        That is the infimum of {t : W(t) - W(start) > working}: when the budget runs out
        exactly at the end of a working interval, it is first exceeded when the next
        interval opens. NAT beyond the span the clock was built for.
        """
        start = np.asarray(start, dtype=np.int64)
        working = np.asarray(working, dtype=np.int64)
        if self.always:
            return start + working
        level = self.clock(start) + working
        cum_end = self.cum_before + (self.ends - self.starts)
        i = np.searchsorted(cum_end, level, side="right")
        ok = i < len(self.starts)
        j = np.minimum(i, max(len(self.starts) - 1, 0))
        if len(self.starts) == 0:
            return np.full(len(start), NAT, dtype=np.int64)
        return np.where(ok, self.starts[j] + (level - self.cum_before[j]), NAT)


def working_clock(calendar_name: str, calendars: dict[str, BusinessCalendar], lo: int, hi: int) -> WorkingClock:
    """The clock of a policy's calendar name, `24x7` included."""
    if calendar_name == ALWAYS:
        return WorkingClock.around_the_clock()
    calendar = calendars.get(calendar_name)
    if calendar is None:
        raise MetricsInputError(f"SLA calendar {calendar_name!r} is neither 24x7 nor a configured calendar")
    return WorkingClock.for_calendar(calendar, lo, hi)
