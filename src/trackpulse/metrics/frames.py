"""The metrics engine's input contract: the frames `MetricsInput` carries and its settings.

The store's loader builds a `MetricsInput` (METRICS.md §1 records as pandas frames);
tests build one from plain Python lists with `MetricsInput.from_records`. Every family
module reads only this. The module also owns the conversion of instant columns to
int64 nanoseconds since the epoch, the unit all the arithmetic below runs in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, TypeAlias

import numpy as np
import pandas as pd

from trackpulse.errors import TrackpulseError

# int64 nanoseconds stand in for NaT in the numpy arrays the families compute on.
NAT = np.iinfo(np.int64).min
NS_PER_SECOND = 1_000_000_000
NS_PER_HOUR = 3600 * NS_PER_SECOND
NS_PER_DAY = 86400 * NS_PER_SECOND

Instant: TypeAlias = str | datetime | pd.Timestamp

# Frames of at most this many rows (a scoped alert evaluation's few items) take plain-Python
# paths where pandas' fixed costs (an index, a groupby: a millisecond each) dominate.
SMALL = 2000


class MetricsInputError(TrackpulseError):
    """The frames or settings handed to the metrics engine break the input contract."""

    exit_code = 2


# Column kinds: "str" ids and names; "optstr" may be None; "instant" tz-aware UTC;
# "optinstant" may be NaT; "tuple" a tuple of sprint ids.
ColumnKind = Literal["str", "optstr", "bool", "float", "int", "instant", "optinstant", "tuple"]

COLUMNS: dict[str, tuple[tuple[str, ColumnKind], ...]] = {
    "items": (
        ("source", "str"), ("project", "str"), ("item_id", "str"), ("key", "str"), ("type", "str"),
        ("priority", "optstr"), ("is_defect", "bool"), ("status_id", "str"), ("status_category", "str"),
        ("points", "float"), ("created", "instant"), ("reporter", "optstr"), ("sprint_ids", "tuple"),
    ),
    "transitions": (
        ("source", "str"), ("item_id", "str"), ("at", "instant"), ("seq", "int"),
        ("from_status_id", "optstr"), ("to_status_id", "str"), ("from_category", "optstr"),
        ("to_category", "str"),
    ),
    "statuses": (("source", "str"), ("status_id", "str"), ("name", "str"), ("category", "str")),
    "sprint_changes": (
        ("source", "str"), ("item_id", "str"), ("at", "instant"), ("seq", "int"),
        ("from_sprint_ids", "tuple"), ("to_sprint_ids", "tuple"),
    ),
    "estimate_changes": (
        ("source", "str"), ("item_id", "str"), ("at", "instant"), ("seq", "int"),
        ("from_points", "float"), ("to_points", "float"),
    ),
    "worklogs": (
        ("source", "str"), ("item_id", "str"), ("worklog_id", "str"), ("author", "str"),
        ("started", "instant"), ("seconds", "int"),
    ),
    "comments": (
        ("source", "str"), ("item_id", "str"), ("comment_id", "str"), ("author", "optstr"),
        ("created", "instant"),
    ),
    "sprints": (
        ("source", "str"), ("board_id", "str"), ("sprint_id", "str"), ("name", "str"), ("state", "str"),
        ("start", "optinstant"), ("end", "optinstant"), ("complete", "optinstant"),
    ),
    "boards": (("source", "str"), ("board_id", "str"), ("name", "str")),
    # --- METRICS.md §9 and §13 (people, versions, epics) -----------------------------
    # Current assignee set (display names), fix version ids and epic key of each item.
    "item_plans": (
        ("source", "str"), ("item_id", "str"), ("assignees", "tuple"), ("fix_versions", "tuple"),
        ("epic", "optstr"),
    ),
    "assignee_changes": (
        ("source", "str"), ("item_id", "str"), ("at", "instant"), ("seq", "int"),
        ("from_assignees", "tuple"), ("to_assignees", "tuple"),
    ),
    # Dates stay the tracker's "YYYY-MM-DD" strings: a release date is a day, not an instant.
    "versions": (
        ("source", "str"), ("project", "str"), ("version_id", "str"), ("name", "str"),
        ("start", "optstr"), ("release_date", "optstr"), ("released", "bool"),
    ),
    "epics": (("source", "str"), ("project", "str"), ("epic", "str"), ("summary", "str")),
}


@dataclass(frozen=True)
class SourceSettings:
    """What the metrics need to know of one configured source."""

    name: str
    kind: Literal["jira", "trello"] = "jira"
    kloc: Mapping[str, float] = field(default_factory=dict)  # project -> thousands of lines of code
    iteration_days: int = 14  # Trello iterations (§5)
    iteration_start: date | None = None  # None: the date of the source's first created card
    url: str = ""  # Jira: the site's base URL, for `<url>/browse/<key>` links
    project_names: Mapping[str, str] = field(default_factory=dict)  # project key / board id -> name


@dataclass(frozen=True)
class BusinessCalendar:
    """A named working-time calendar (INTERFACE.md `[sla.calendars.NAME]`)."""

    name: str
    timezone: str = "UTC"
    days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri")
    hours: tuple[str, ...] = ("09:00-17:00",)  # local "HH:MM-HH:MM"; "24:00" ends at midnight
    holidays: tuple[date, ...] = ()


@dataclass(frozen=True)
class SlaPolicy:
    """One `[[sla.policies]]` entry; filters are matched on the item's current values."""

    name: str
    priorities: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()
    response_hours: float | None = None
    resolution_hours: float | None = None
    calendar: str = "24x7"
    pause_statuses: tuple[str, ...] = ()  # status names, compared case-insensitively
    at_risk_ratio: float = 0.8


@dataclass(frozen=True)
class SlaSettings:
    calendars: Mapping[str, BusinessCalendar] = field(default_factory=dict)
    policies: tuple[SlaPolicy, ...] = ()  # configuration order: the first match wins


@dataclass(frozen=True)
class CostSettings:
    currency: str = "USD"
    default_rate: float = 0.0  # per hour, for people without a rate
    rates: Mapping[str, float] = field(default_factory=dict)  # worklog author (display name) -> per hour
    budgets: Mapping[tuple[str, str], float] = field(default_factory=dict)  # (source, project) -> amount


@dataclass(frozen=True)
class LineCoverage:
    """One imported coverage report (METRICS.md §12)."""

    line_coverage: float | None  # 0 … 1; None for a report with no lines
    lines_valid: int | None  # None when the report gives only a rate (Cobertura line-rate)

    @classmethod
    def of_lines(cls, covered: int, valid: int) -> LineCoverage:
        return cls(None if valid == 0 else covered / valid, valid)


@dataclass(frozen=True)
class KpiSpec:
    """One `[[kpis]]` entry (METRICS.md §10); `baseline` is (since, until) instants."""

    name: str
    figure: str
    op: Literal[">=", "<="]
    target: float | None = None
    target_change: float | None = None
    baseline: tuple[Instant, Instant] | None = None
    sources: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()


@dataclass(frozen=True)
class FigureSettings:
    """Settings of the §8-§13 figures: forecast windows, KPIs, imported coverage."""

    forecast_window_days: int = 56
    forecast_horizon_days: int = 14
    kpis: tuple[KpiSpec, ...] = ()
    coverage: Mapping[tuple[str, str], LineCoverage] = field(default_factory=dict)  # (source, project)


@dataclass
class MetricsInput:
    """Everything the metrics engine reads: the store's rows as frames plus settings."""

    items: pd.DataFrame
    transitions: pd.DataFrame
    statuses: pd.DataFrame
    sprint_changes: pd.DataFrame
    estimate_changes: pd.DataFrame
    worklogs: pd.DataFrame
    comments: pd.DataFrame
    sprints: pd.DataFrame
    boards: pd.DataFrame
    sources: Mapping[str, SourceSettings] = field(default_factory=dict)
    sla: SlaSettings = field(default_factory=SlaSettings)
    cost: CostSettings = field(default_factory=CostSettings)
    item_plans: pd.DataFrame = field(default_factory=lambda: make_frame("item_plans", []))
    assignee_changes: pd.DataFrame = field(default_factory=lambda: make_frame("assignee_changes", []))
    versions: pd.DataFrame = field(default_factory=lambda: make_frame("versions", []))
    epics: pd.DataFrame = field(default_factory=lambda: make_frame("epics", []))
    figures: FigureSettings = field(default_factory=FigureSettings)

    def __post_init__(self) -> None:
        for name, spec in COLUMNS.items():
            frame = getattr(self, name)
            missing = [c for c, _ in spec if c not in frame.columns]
            if missing:
                raise MetricsInputError(f"metrics input frame {name!r} lacks columns {missing}")

    def source_settings(self, source: str) -> SourceSettings:
        return self.sources.get(source) or SourceSettings(name=source)

    @classmethod
    def empty(cls, **settings: Any) -> MetricsInput:
        return cls.from_records(**settings)

    @classmethod
    def from_records(
        cls,
        *,
        items: Sequence[Mapping[str, Any]] = (),
        transitions: Sequence[Mapping[str, Any]] = (),
        statuses: Sequence[Mapping[str, Any]] = (),
        sprint_changes: Sequence[Mapping[str, Any]] = (),
        estimate_changes: Sequence[Mapping[str, Any]] = (),
        worklogs: Sequence[Mapping[str, Any]] = (),
        comments: Sequence[Mapping[str, Any]] = (),
        sprints: Sequence[Mapping[str, Any]] = (),
        boards: Sequence[Mapping[str, Any]] = (),
        sources: Iterable[SourceSettings] = (),
        sla: SlaSettings | None = None,
        cost: CostSettings | None = None,
        item_plans: Sequence[Mapping[str, Any]] = (),
        assignee_changes: Sequence[Mapping[str, Any]] = (),
        versions: Sequence[Mapping[str, Any]] = (),
        epics: Sequence[Mapping[str, Any]] = (),
        figures: FigureSettings | None = None,
    ) -> MetricsInput:
        """Build an input from dicts, filling what a small test world leaves out.

        Categories missing from items and transitions are looked up in `statuses` by
        (source, status_id); `seq` defaults to the row's order; `key` to `item_id`.
        """
        category = {(s.get("source", "src"), s["status_id"]): s["category"] for s in statuses}

        def item_row(r: Mapping[str, Any]) -> dict[str, Any]:
            row = {"source": "src", "type": "Story", "priority": None, "is_defect": False,
                   "points": math.nan, "reporter": None, "sprint_ids": ()}
            row.update(r)
            row.setdefault("key", row["item_id"])
            row.setdefault("project", str(row["key"]).split("-")[0])
            row.setdefault("status_category", category.get((row["source"], row["status_id"]), "todo"))
            return row

        def transition_row(i: int, r: Mapping[str, Any]) -> dict[str, Any]:
            row = {"source": "src", "seq": i, "from_status_id": None}
            row.update(r)
            src = row["source"]
            if "from_category" not in row:
                fid = row["from_status_id"]
                row["from_category"] = None if fid is None else category.get((src, fid), "todo")
            row.setdefault("to_category", category.get((src, row["to_status_id"]), "todo"))
            return row

        def seq_rows(rows: Sequence[Mapping[str, Any]], **defaults: Any) -> list[dict[str, Any]]:
            return [{"source": "src", "seq": i, **defaults, **r} for i, r in enumerate(rows)]

        return cls(
            items=make_frame("items", [item_row(r) for r in items]),
            transitions=make_frame("transitions", [transition_row(i, r) for i, r in enumerate(transitions)]),
            statuses=make_frame("statuses", seq_rows(statuses)),
            sprint_changes=make_frame("sprint_changes", seq_rows(sprint_changes)),
            estimate_changes=make_frame("estimate_changes", seq_rows(estimate_changes)),
            worklogs=make_frame("worklogs", [{"source": "src", "worklog_id": str(i), **r}
                                             for i, r in enumerate(worklogs)]),
            comments=make_frame("comments", [{"source": "src", "comment_id": str(i), **r}
                                             for i, r in enumerate(comments)]),
            sprints=make_frame("sprints", [{"source": "src", "end": None, "complete": None, **r}
                                           for r in sprints]),
            boards=make_frame("boards", [{"source": "src", **r} for r in boards]),
            sources={s.name: s for s in sources},
            sla=sla or SlaSettings(),
            cost=cost or CostSettings(),
            item_plans=make_frame("item_plans", [{"source": "src", "assignees": (), "fix_versions": (),
                                                  "epic": None, **r} for r in item_plans]),
            assignee_changes=make_frame("assignee_changes", seq_rows(assignee_changes)),
            versions=make_frame("versions", [{"source": "src", "start": None, "release_date": None,
                                              "released": False, **r} for r in versions]),
            epics=make_frame("epics", [{"source": "src", "summary": "", **r} for r in epics]),
            figures=figures or FigureSettings(),
        )


def make_frame(name: str, rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """A frame of the named kind from dict rows (extra keys ignored), typed per `COLUMNS`."""
    spec = COLUMNS[name]
    data: dict[str, Any] = {}
    for col, kind in spec:
        values = [r.get(col) for r in rows]
        data[col] = _typed(values, kind, f"{name}.{col}")
    return pd.DataFrame(data, index=pd.RangeIndex(len(rows)))


def _typed(values: list[Any], kind: ColumnKind, where: str) -> pd.Series:
    if kind in ("instant", "optinstant"):
        s = pd.Series(pd.to_datetime(pd.Series(values, dtype=object), utc=True), dtype="datetime64[ns, UTC]")
        if kind == "instant" and s.isna().any():
            raise MetricsInputError(f"{where} has a missing instant")
        return s
    if kind == "float":
        return pd.Series([math.nan if v is None else float(v) for v in values], dtype="float64")
    if kind == "int":
        return pd.Series([int(v) for v in values], dtype="int64")
    if kind == "bool":
        return pd.Series([bool(v) for v in values], dtype="bool")
    if kind == "tuple":
        return pd.Series([tuple(str(x) for x in (v or ())) for v in values], dtype=object)
    # Object dtype keeps None as None, which the families test with pd.isna.
    return pd.Series([None if v is None else str(v) for v in values], dtype=object)


def instants_ns(values: pd.Series | pd.Index) -> np.ndarray:
    """int64 nanoseconds since the epoch (NaT -> `NAT`) of a tz-aware or UTC instant column."""
    s = pd.Series(values)
    if len(s) == 0:
        return np.zeros(0, dtype=np.int64)
    if not isinstance(s.dtype, pd.DatetimeTZDtype):
        s = pd.to_datetime(s, utc=True)
    arr = s.dt.tz_convert("UTC").dt.as_unit("ns").array
    return np.asarray(arr.asi8, dtype=np.int64)


def instant_ns(value: Instant) -> int:
    """One instant as int64 nanoseconds; naive values are refused (UTC inside, STYLE.md)."""
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        raise MetricsInputError(f"instant {value!r} has no time zone; give UTC instants")
    return int(ts.tz_convert("UTC").as_unit("ns").value)


def to_timestamp(ns: int) -> pd.Timestamp:
    return pd.Timestamp(ns, unit="ns", tz="UTC")


def iso_utc(ns: int | None) -> str | None:
    """ISO 8601 UTC with `Z`: seconds, plus a fraction only when the instant has one."""
    if ns is None or ns == NAT:
        return None
    ts = to_timestamp(int(ns))
    frac = ts.microsecond + ts.nanosecond
    return ts.strftime("%Y-%m-%dT%H:%M:%S") + (f".{ts.microsecond:06d}" if frac else "") + "Z"


def str_array(values: pd.Series) -> np.ndarray:
    """An object array of str/None from a str- or object-typed column (NaN -> None)."""
    arr = values.to_numpy(dtype=object, na_value=None) if len(values) else np.empty(0, dtype=object)
    return arr


def iso_utc_array(ns: np.ndarray) -> list[str | None]:
    """`iso_utc` for a whole array: present instants as text, NAT as None.

    numpy's datetime_as_string costs about half a microsecond per instant (0.8 s for the
    SLA list's breached_at at a million items); the text is assembled here from tables
    instead (`_iso_text`), and numpy formats only the distinct days. Outside what those
    tables cover (years before 1 or after 9999, spans of over a century) numpy formats all.
    """
    ns = np.asarray(ns, dtype=np.int64)
    if len(ns) == 0:
        return []
    present = ns != NAT
    everywhere = bool(present.all())
    stamps = ns if everywhere else ns[present]
    if len(stamps) == 0:
        return [None] * len(ns)
    text = _iso_text(stamps)
    if text is None:
        return _iso_utc_numpy(ns, present)
    if everywhere:
        return text.tolist()
    out = np.full(len(ns), None, dtype=object)
    out[present] = text
    return out.tolist()


def _iso_utc_numpy(ns: np.ndarray, present: np.ndarray) -> list[str | None]:
    """`iso_utc_array` by numpy's datetime_as_string (which writes the `Z` itself)."""
    out = np.full(len(ns), None, dtype=object)
    whole = present & (ns % NS_PER_SECOND == 0)
    for mask, unit in ((whole, "s"), (present & ~whole, "us")):
        if mask.any():
            stamps = ns[mask].astype("datetime64[ns]").astype(f"datetime64[{unit}]")
            out[mask] = np.datetime_as_string(stamps, unit=unit, timezone="UTC").astype(object)
    return out.tolist()


_FIRST_DAY = int(np.datetime64("0001-01-01", "D").astype(np.int64))
_LAST_DAY = int(np.datetime64("9999-12-31", "D").astype(np.int64))
_ISO_PAIRS = 14  # "YYYY-MM-DDTHH:MM:SS.ffffffZ" and a padding NUL: 28 UCS-4 characters, 14 pairs
_ISO_BLOCK = 1 << 14


def _char_pairs(text: np.ndarray) -> np.ndarray:
    """Fixed-width strings as rows of uint64, each holding two UCS-4 characters."""
    return np.ascontiguousarray(text).view(np.uint64).reshape(len(text), -1)


def _pair_table(texts: list[str]) -> np.ndarray:
    """Strings of one length 2k as a (k, len(texts)) table of character pairs."""
    return np.ascontiguousarray(_char_pairs(np.array(texts)).T)


# Character pairs of the time of day, small enough to stay in the cache while gathered:
# "TH" "H:" by hour, "MM" by minute, ":S" and "S." or "SZ" by 2 * second + has_fraction.
_HOUR_PAIRS = _pair_table([f"T{h:02d}:" for h in range(24)])
_MINUTE_PAIRS = _pair_table([f"{m:02d}" for m in range(60)])[0]
_SECOND_PAIRS = _pair_table([f":{s:02d}{end}" for s in range(60) for end in "Z."])
_DIGIT_PAIRS = _pair_table([f"{i:02d}" for i in range(100)])[0]
_END_PAIRS = _pair_table(["\0\0", "Z\0"])[0]


def _iso_text(ns: np.ndarray) -> np.ndarray | None:
    """ISO `Z` text of instants (no NAT) as a U28 array, built as 14 columns of character
    pairs gathered from tables: the date's five from the distinct days (formatted by numpy),
    the time of day's five from tables by hour, minute and second, the microseconds' three
    from "00".."99", and "Z" after a fraction. Columns are written whole, then turned into rows block by block
    (a transposition within the cache; the whole array at once costs six times as much).
    None when the days fall outside what the tables cover."""
    seconds, sub = np.divmod(ns, NS_PER_SECOND)
    days, of_day = np.divmod(seconds, 86_400)
    first, last = int(days.min()), int(days.max())
    if last - first > 50_000 or first < _FIRST_DAY or last > _LAST_DAY:
        return None
    dates = np.datetime_as_string(np.arange(first, last + 1).astype("datetime64[D]")).astype("U10")
    date_pairs = np.ascontiguousarray(_char_pairs(dates).T)
    has_fraction = (sub != 0).astype(np.intp)
    day = days - first
    hour, of_hour = np.divmod(of_day, 3600)
    minute, second = np.divmod(of_hour, 60)
    second_row = second * 2 + has_fraction
    micros = sub // 1000
    columns = np.empty((_ISO_PAIRS, len(ns)), dtype=np.uint64)
    for k in range(5):
        np.take(date_pairs[k], day, out=columns[k])
    np.take(_HOUR_PAIRS[0], hour, out=columns[5])
    np.take(_HOUR_PAIRS[1], hour, out=columns[6])
    np.take(_MINUTE_PAIRS, minute, out=columns[7])
    np.take(_SECOND_PAIRS[0], second_row, out=columns[8])
    np.take(_SECOND_PAIRS[1], second_row, out=columns[9])
    np.take(_DIGIT_PAIRS, micros // 10_000, out=columns[10])
    np.take(_DIGIT_PAIRS, micros // 100 % 100, out=columns[11])
    np.take(_DIGIT_PAIRS, micros % 100, out=columns[12])
    np.take(_END_PAIRS, has_fraction, out=columns[13])
    columns[10:13] *= has_fraction.astype(np.uint64)  # a whole second ends at its "Z"
    rows = np.empty((len(ns), _ISO_PAIRS), dtype=np.uint64)
    for lo in range(0, len(ns), _ISO_BLOCK):
        rows[lo:lo + _ISO_BLOCK] = columns[:, lo:lo + _ISO_BLOCK].T
    return rows.view(f"U{2 * _ISO_PAIRS}").ravel()
