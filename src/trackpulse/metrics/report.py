"""The metrics report: runs every family over one as-of replay and assembles the
`trackpulse.metrics/1` object of METRICS.md §7 (`build_report`) and the extra figures
(`build_extras`: velocity_avg_3 per board, burndown, weekly throughput, cumulative flow,
timesheet, cost) that stay outside §7's keys.

This module owns the JSON shapes: key order, ISO 8601 `Z` instants, floats for hours,
days and points, nulls for ratios, means and percentiles over nothing, sort orders.
"""

from __future__ import annotations

import ctypes
import gc
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from trackpulse.metrics import defects, effort, flow, forecast, kpis, people, schedule, scope, sla, velocity
from trackpulse.metrics.frames import (
    NS_PER_HOUR,
    Instant,
    MetricsInput,
    instant_ns,
    iso_utc,
    iso_utc_array,
    str_array,
)
from trackpulse.metrics.history import DONE, ItemHistory, Window, replay

SCHEMA_ID = "trackpulse.metrics/1"
EXTRAS_SCHEMA_ID = "trackpulse.metrics-extras/1"
PROJECT_KEYS = (
    "source", "project", "issues_total", "issues_done", "defects_total", "defects_open", "points_done",
    "defect_density_per_kloc", "defects_per_100_points", "throughput_per_week", "cycle_time_days",
    "lead_time_days", "worklog_hours", "wip", "wip_age_days_p85", "sla_compliance",
    # §8-§12
    "items_added_to_sprints", "items_removed_from_sprints", "people", "forecast", "line_coverage", "lines_valid",
)


@dataclass
class MetricsRun:
    """One as-of replay and window, shared by the report and the extras."""

    inp: MetricsInput
    hist: ItemHistory
    window: Window
    sources: list[str] | None

    @classmethod
    def start(cls, inp: MetricsInput, *, as_of: Instant, since: Instant | None = None,
              until: Instant | None = None, sources: Sequence[str] | None = None) -> MetricsRun:
        as_of_ns = instant_ns(as_of)
        since_ns = None if since is None else instant_ns(since)
        until_ns = as_of_ns if until is None else instant_ns(until)
        chosen = None if sources is None else list(sources)
        return cls(inp, replay(inp, as_of_ns, chosen), Window(as_of_ns, since_ns, until_ns), chosen)

    def header(self, schema: str) -> dict[str, Any]:
        return {
            "schema": schema,
            "as_of": iso_utc(self.window.as_of),
            "window": {"since": iso_utc(self.window.since), "until": iso_utc(self.window.until)},
        }


def _num(value: Any) -> float | None:
    value = float(value)
    return None if np.isnan(value) else value


def _floats(values: np.ndarray | pd.Series) -> list[float | None]:
    arr = np.asarray(values, dtype=np.float64)
    return [None if missing else v for v, missing in zip(arr.tolist(), np.isnan(arr).tolist(), strict=True)]


@contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """The report allocates millions of small objects (its rows) and no reference cycles: the
    cyclic collector would walk the growing heap again and again for nothing (a third of the
    time of the SLA list at 1M items). Reference counting still frees everything."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_GIL_TURN_S = 0.001
_turns_lock = threading.Lock()
_turns_depth = 0
_turns_saved = 0.0


@contextmanager
def _short_gil_turns() -> Iterator[None]:
    """A 1 ms GIL switch interval (Python's default: 5 ms) while the report's two threads run.

    Each side alternates short numpy calls that release the GIL with Python work that holds
    it; a thread whose numpy call has returned waits for the other's turn to end, so with 5 ms
    turns much of the overlap is lost to waiting (1M items: report 10.1-10.4 s wall with 5 ms,
    9.4-9.8 s with 1 ms, back to back). Process-wide, so nested and concurrent reports restore
    the interval only when the last one ends."""
    global _turns_depth, _turns_saved
    with _turns_lock:
        if _turns_depth == 0:
            _turns_saved = sys.getswitchinterval()
            sys.setswitchinterval(min(_turns_saved, _GIL_TURN_S))
        _turns_depth += 1
    try:
        yield
    finally:
        with _turns_lock:
            _turns_depth -= 1
            if _turns_depth == 0:
                sys.setswitchinterval(_turns_saved)


def build_report(inp: MetricsInput, *, as_of: Instant, since: Instant | None = None,
                 until: Instant | None = None, sources: Sequence[str] | None = None) -> dict[str, Any]:
    """The §7 report: projects, sprints, iterations, worklogs_by_author and sla, as of `as_of`."""
    with _without_cycle_collection():
        return report_of(MetricsRun.start(inp, as_of=as_of, since=since, until=until, sources=sources),
                         last_use=True)


def build_extras(inp: MetricsInput, *, as_of: Instant, since: Instant | None = None,
                 until: Instant | None = None, sources: Sequence[str] | None = None) -> dict[str, Any]:
    """The extra figures, same evaluation time and window as `build_report`."""
    with _without_cycle_collection():
        return extras_of(MetricsRun.start(inp, as_of=as_of, since=since, until=until, sources=sources))


def build_report_and_extras(inp: MetricsInput, *, as_of: Instant, since: Instant | None = None,
                            until: Instant | None = None, sources: Sequence[str] | None = None
                            ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both, from a single replay (what the CLI's human view and CSV export want)."""
    with _without_cycle_collection():
        run = MetricsRun.start(inp, as_of=as_of, since=since, until=until, sources=sources)
        return report_of(run), extras_of(run)


def report_of(run: MetricsRun, *, last_use: bool = False) -> dict[str, Any]:
    """The §7 report of `run`. `last_use`: nobody asks `run` anything afterwards, so its replay's
    state tables are dropped before the SLA list is built (that list is the memory peak).

    The SLA clocks, then the SLA list's item names and order, are computed in a second thread
    while this one works through the other families: about half of either side is numpy work
    that releases the GIL (sorts, searches, cumulative sums over ten million state rows), so the
    two overlap on a second core. Both only read the replay and the input (the pause-status memo
    of `hist.statuses` is the SLA side's alone); the results do not depend on the interleaving.
    """
    hist, window, inp = run.hist, run.window, run.inp
    with _short_gil_turns(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="trackpulse-sla") as worker:
        clocks_done = worker.submit(sla.sla_clocks, hist, inp)
        sla_order_done = worker.submit(_sla_names_and_order, hist, inp, clocks_done, window)
        sprints = velocity.reported_sprints(inp, window.as_of, run.sources)
        membership = velocity.sprint_membership(hist, inp) if len(sprints) and hist.n else None
        sprint_rows = velocity.sprint_velocity(hist, inp, sprints, membership)
        logs = effort.window_worklogs(hist, inp, window)
        credit, unassigned = people.credits(hist, inp, window)

        report = run.header(SCHEMA_ID)
        lists: dict[str, Any] = {}
        # What needs no clocks first, while the clocks are still being computed.
        lists["sprints"] = _sprints(sprint_rows)
        lists["iterations"] = _iterations(velocity.trello_iterations(hist, inp, run.sources))
        lists["worklogs_by_author"] = [
            {"source": s, "project": p, "author": a, "hours": float(h)}
            for s, p, a, h in effort.worklogs_by_author(logs).itertuples(index=False)
        ]
        # §9-§13 lists
        lists["people_by_project"] = _records(people.people_rows(hist, credit, logs),
                                              floats=["items_done", "points_done", "worklog_hours"])
        lists["versions"] = schedule.version_rows(hist, inp, inp.figures.forecast_window_days,
                                                  inp.figures.forecast_horizon_days)
        lists["epics"] = [{**e, "item_url": _epic_url(inp, e)} for e in schedule.epic_rows(hist, inp)]
        lists["projects"] = _project_rows(run, sprints, membership, logs, clocks_done, credit, unassigned)
        lists["kpis"] = kpis.kpi_rows(inp.figures.kpis, lists["projects"], _kpi_baselines(run))
        clocks = clocks_done.result()
        names, order = sla_order_done.result()
    # The SLA list (two rows per item) is the largest object of the report: built last, once the
    # other families' intermediate arrays are gone, so that the peak memory is its size, not a sum.
    del sprints, membership, sprint_rows, logs, credit, unassigned
    if last_use:
        hist.release_states()
    lists["sla"] = _sla(hist, clocks, window, names, order)
    for key in ("projects", "sprints", "iterations", "worklogs_by_author", "sla", "people_by_project", "kpis",
                "versions", "epics"):
        report[key] = lists[key]
    return report


def _project_rows(run: MetricsRun, sprints: pd.DataFrame | None = None, membership: velocity.Membership | None = None,
                  logs: pd.DataFrame | None = None, clocks: pd.DataFrame | Future[pd.DataFrame] | None = None,
                  credit: pd.DataFrame | None = None, unassigned: np.ndarray | None = None) -> list[dict[str, Any]]:
    """The §3 and §8-§12 project rows (what is not given is computed here). `clocks` may be
    still in the making (a Future): it is waited for last, for the SLA compliance."""
    hist, window, inp = run.hist, run.window, run.inp
    if sprints is None:
        sprints = velocity.reported_sprints(inp, window.as_of, run.sources)
        membership = velocity.sprint_membership(hist, inp) if len(sprints) and hist.n else None
    if logs is None:
        logs = effort.window_worklogs(hist, inp, window)
    if clocks is None:
        clocks = sla.sla_clocks(hist, inp)
    if credit is None or unassigned is None:
        credit, unassigned = people.credits(hist, inp, window)
    per_flow = flow.project_flow(hist, window, window.since)
    per_defects = defects.project_defects(hist, inp, window, per_flow["points_done"].to_numpy())
    hours = effort.project_worklog_hours(hist, logs)
    added, removed = scope.sprint_membership_moves(hist, sprints, membership)
    blocks = people.project_people(credit, unassigned, len(hist.projects))
    forecasts = _project_forecasts(run)
    if isinstance(clocks, Future):
        clocks = clocks.result()
    compliance = sla.sla_compliance(hist, clocks, window)
    rows = _projects(hist, inp, per_flow, per_defects, hours, compliance)
    for code, row in enumerate(rows):
        cov = inp.figures.coverage.get((row["source"], row["project"]))
        b = blocks[code]
        row.update({
            "items_added_to_sprints": int(added[code]), "items_removed_from_sprints": int(removed[code]),
            "people": {"assignees": b.assignees, "bus_factor": b.bus_factor, "top_person": b.top_person,
                       "top_person_share": b.top_person_share, "unassigned_done": b.unassigned_done},
            "forecast": forecasts[code],
            "line_coverage": None if cov is None else cov.line_coverage,
            "lines_valid": None if cov is None else cov.lines_valid,
        })
    return rows


def _epic_url(inp: MetricsInput, epic: dict[str, Any]) -> str:
    settings = inp.sources.get(epic["source"])
    return f"{(settings.url if settings is not None else '').rstrip('/')}/browse/{epic['epic']}"


def _project_forecasts(run: MetricsRun) -> list[dict[str, Any]]:
    hist, inp = run.hist, run.inp
    w, h = inp.figures.forecast_window_days, inp.figures.forecast_horizon_days
    order = np.argsort(hist.project_code, kind="stable")
    counts = np.bincount(hist.project_code, minlength=len(hist.projects))
    bounds = np.r_[0, np.cumsum(counts)]
    open_items = np.bincount(hist.project_code[hist.category_now != DONE], minlength=len(hist.projects))
    out = []
    for code in range(len(hist.projects)):
        members = order[bounds[code]:bounds[code + 1]]
        f = forecast.forecast(hist.resolved[members], int(open_items[code]), hist.as_of, w, h)
        out.append(f.as_json(hist.as_of))
    return out


def _kpi_baselines(run: MetricsRun) -> dict[str, list[dict[str, Any]]]:
    """Per KPI with a baseline: the project rows as they stood over that window (as of its end)."""
    out: dict[str, list[dict[str, Any]]] = {}
    cache: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for kpi in run.inp.figures.kpis:
        if kpi.target_change is None or kpi.baseline is None:
            continue
        since, until = (instant_ns(t) for t in kpi.baseline)
        if (since, until) not in cache:
            base = MetricsRun.start(run.inp, as_of=pd.Timestamp(min(until, run.window.as_of), unit="ns", tz="UTC"),
                                    since=pd.Timestamp(since, unit="ns", tz="UTC"),
                                    until=pd.Timestamp(until, unit="ns", tz="UTC"), sources=run.sources)
            cache[(since, until)] = _project_rows(base)
        out[kpi.name] = cache[(since, until)]
    return out


def _projects(hist: ItemHistory, inp: MetricsInput, per_flow: pd.DataFrame, per_defects: pd.DataFrame,
              hours: np.ndarray, compliance: np.ndarray) -> list[dict[str, Any]]:
    rows = []
    for code, (source, project) in enumerate(hist.projects[["source", "project"]].itertuples(index=False)):
        f, d = per_flow.iloc[code], per_defects.iloc[code]
        settings = inp.sources.get(source)
        rows.append({
            "source": source, "project": project,
            "project_name": (settings.project_names if settings is not None else {}).get(project, project),
            "issues_total": int(f["issues_total"]), "issues_done": int(f["issues_done"]),
            "defects_total": int(d["defects_total"]), "defects_open": int(d["defects_open"]),
            "points_done": float(f["points_done"]),
            "defect_density_per_kloc": _num(d["defect_density_per_kloc"]),
            "defects_per_100_points": _num(d["defects_per_100_points"]),
            "throughput_per_week": _num(f["throughput_per_week"]),
            "cycle_time_days": flow.stats_block({k: f[f"cycle_{k}"] for k in flow.STAT_KEYS}),
            "lead_time_days": flow.stats_block({k: f[f"lead_{k}"] for k in flow.STAT_KEYS}),
            "worklog_hours": float(hours[code]), "wip": int(f["wip"]),
            "wip_age_days_p85": _num(f["wip_age_days_p85"]), "sla_compliance": _num(compliance[code]),
        })
    return rows


def _sprints(rows: pd.DataFrame) -> list[dict[str, Any]]:
    if len(rows) == 0:
        return []
    starts, ends, completes = (iso_utc_array(rows[c].to_numpy(dtype=np.int64)) for c in ("start", "end", "complete"))
    points = {c: _floats(rows[c]) for c in ("committed_points", "completed_points", "added_points", "removed_points")}
    ratios = _floats(scope.scope_change_ratio(rows))
    out = []
    for i, r in enumerate(rows[["source", "board", "sprint_id", "name", "state"]].itertuples(index=False)):
        out.append({
            "source": r.source, "board": r.board, "sprint_id": r.sprint_id, "name": r.name, "state": r.state,
            "start": starts[i], "end": ends[i], "complete": completes[i],
            **{c: points[c][i] for c in points},
            "scope_change_ratio": ratios[i],
        })
    return out


def _iterations(rows: pd.DataFrame) -> list[dict[str, Any]]:
    if len(rows) == 0:
        return []
    rows = rows.sort_values(["source", "project", "start"], kind="stable")
    starts = iso_utc_array(rows["start"].to_numpy(dtype=np.int64))
    ends = iso_utc_array(rows["end"].to_numpy(dtype=np.int64))
    return [
        {"source": s, "project": p, "start": starts[i], "end": ends[i], "completed_points": float(c)}
        for i, (s, p, c) in enumerate(rows[["source", "project", "completed_points"]].itertuples(index=False))
    ]


def item_names(hist: ItemHistory, inp: MetricsInput) -> tuple[np.ndarray, np.ndarray]:
    """Per item of `hist`: the report's `item` (the Jira key; the Trello card id, never its
    shortLink, METRICS.md §1) and its `item_url` (`<url>/browse/<key>`; trello.com/c/<shortLink>)."""
    source = hist.items["source"].to_numpy(dtype=object)
    key = str_array(hist.items["key"])
    item = key.copy()
    url = np.empty(len(key), dtype=object)
    for name in pd.unique(source):
        at = source == name
        settings = inp.sources.get(name)
        # str + object array concatenates in one C loop: ten times numpy.char.add's cost less.
        if settings is not None and settings.kind == "trello":
            item[at] = hist.items["item_id"].to_numpy(dtype=object)[at]
            url[at] = "https://trello.com/c/" + key[at]
        else:
            base = (settings.url if settings is not None else "").rstrip("/")
            url[at] = f"{base}/browse/" + key[at]
    return item, url


SLA_COLUMNS = ["source", "project", "item", "item_url", "policy", "clock", "target_hours", "elapsed_hours",
               "status", "breached_at"]


def sla_rows(hist: ItemHistory, clocks: pd.DataFrame, window: Window,
             names: tuple[np.ndarray, np.ndarray] | None = None) -> pd.DataFrame:
    """The report's clocks: items created in the window, sorted by source, project, item, clock.
    `names` is `item_names(...)`; without it the item is the key and the URL is empty."""
    if len(clocks) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in SLA_COLUMNS})
    if names is None:
        names = (hist.items["key"].to_numpy(dtype=object), np.full(hist.n, "", dtype=object))
    order = _sla_order(hist, clocks, window, names[0])
    return pd.DataFrame(_sla_columns(hist, clocks, names, *order))


def _sla_order(hist: ItemHistory, clocks: pd.DataFrame, window: Window, item: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """(item position, clock row) of the report's SLA rows, in report order.

    Sorting 2M rows on string columns costs seconds (pandas' sorted factorize of a million
    distinct strings alone takes several). The same stable order comes from one integer key:
    the project code (already the rank of (source, project)), the item's rank among the items,
    and the clock's ("resolution" < "response", the only two names).
    """
    pos = clocks["pos"].to_numpy(dtype=np.int64)
    keep = np.flatnonzero(window.contains(hist.created[pos]))
    pos = pos[keep]
    later_clock = clocks["clock"].to_numpy(dtype=object)[keep] == "response"
    item_rank = _string_rank(item)
    row_key = (hist.project_code[pos] * max(hist.n, 1) + item_rank[pos]) * 2 + later_clock
    order = np.argsort(row_key, kind="stable")
    return pos[order], keep[order]


def _sla_columns(hist: ItemHistory, clocks: pd.DataFrame, names: tuple[np.ndarray, np.ndarray], pos: np.ndarray,
                 rows: np.ndarray) -> dict[str, np.ndarray]:
    """The SLA list's columns for items `pos` and clock rows `rows` (instants as int64 ns)."""
    item, url = names
    return {
        "source": hist.items["source"].to_numpy(dtype=object)[pos],
        "project": hist.items["project"].to_numpy(dtype=object)[pos],
        "item": item[pos],
        "item_url": url[pos],
        "policy": clocks["policy"].to_numpy(dtype=object)[rows],
        "clock": clocks["clock"].to_numpy(dtype=object)[rows],
        "target_hours": clocks["target_ns"].to_numpy(dtype=np.float64)[rows] / NS_PER_HOUR,
        "elapsed_hours": clocks["elapsed_ns"].to_numpy(dtype=np.float64)[rows] / NS_PER_HOUR,
        "status": clocks["status"].to_numpy(dtype=object)[rows],
        "breached_at": clocks["breached_at"].to_numpy(dtype=np.int64)[rows],
    }


def _release_free_heap() -> None:
    """Give the C heap's free pages back to the system (glibc's malloc_trim; elsewhere nothing).

    The families free hundreds of MB of mid-sized numpy arrays, which glibc keeps for reuse;
    the SLA list's millions of small dicts come from Python's own arenas and cannot reuse them,
    so without this the peak is their size on top of that garbage (3.1 GB instead of 2.8 GB at
    1M items).
    """
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the process's own C library
    except (OSError, AttributeError, TypeError):
        return
    trim(0)


def _string_rank(values: np.ndarray) -> np.ndarray:
    """Per value, its rank among the distinct values in Python's string order (equal strings, equal rank).

    numpy's fixed-width unicode sort compares code points in C as Python does, ten times faster
    than pandas' sorted factorize of objects; very long strings would make that array huge, so
    those fall back to it.
    """
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    if max(map(len, values)) > 64:
        return pd.factorize(values, sort=True)[0].astype(np.int64)
    fixed = values.astype(str)
    order = np.argsort(fixed, kind="stable")
    ordered = fixed[order]
    ranks = np.empty(len(values), dtype=np.int64)
    ranks[order] = np.cumsum(np.r_[False, ordered[1:] != ordered[:-1]])
    return ranks


def _sla_names_and_order(hist: ItemHistory, inp: MetricsInput, clocks_done: Future[pd.DataFrame], window: Window
                         ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray] | None]:
    """`item_names` and, when there are clocks, `_sla_order`: what the SLA list needs besides
    the clocks, computed ahead (see `report_of`)."""
    clocks = clocks_done.result()
    names = item_names(hist, inp)
    return names, (_sla_order(hist, clocks, window, names[0]) if len(clocks) else None)


def _sla(hist: ItemHistory, clocks: pd.DataFrame, window: Window, names: tuple[np.ndarray, np.ndarray],
         order: tuple[np.ndarray, np.ndarray] | None = None) -> list[dict[str, Any]]:
    """The SLA list's rows; `order` is `_sla_order(...)` when already computed."""
    if len(clocks) == 0:
        return []
    pos, rows = order if order is not None else _sla_order(hist, clocks, window, names[0])
    _release_free_heap()
    # A handful of targets: one float object each, shared by every row (millions of rows).
    values, target_code = np.unique(clocks["target_ns"].to_numpy(dtype=np.float64) / NS_PER_HOUR,
                                    return_inverse=True)
    shared_targets = np.asarray(values.tolist(), dtype=object)[target_code]
    # Whole columns converted once, not once per slice. Source and project come through the
    # project code, from a few dozen objects (gathering per item from the items frame reads a
    # million scattered strings).
    item, url = names
    code = hist.project_code
    columns = {
        "source": hist.projects["source"].to_numpy(dtype=object),
        "project": hist.projects["project"].to_numpy(dtype=object),
        "policy": clocks["policy"].to_numpy(dtype=object),
        "clock": clocks["clock"].to_numpy(dtype=object),
        "elapsed_hours": clocks["elapsed_ns"].to_numpy(dtype=np.float64) / NS_PER_HOUR,
        "status": clocks["status"].to_numpy(dtype=object),
    }
    breached_ns = clocks["breached_at"].to_numpy(dtype=np.int64)
    out: list[dict[str, Any]] = []
    # In slices, so that the columns and Python lists between the clocks and the dicts stay small.
    step = 250_000
    for lo in range(0, len(pos), step):
        p, r = pos[lo:lo + step], rows[lo:lo + step]
        c = code[p]
        cols = [columns["source"][c].tolist(), columns["project"][c].tolist(), item[p].tolist(), url[p].tolist(),
                columns["policy"][r].tolist(), columns["clock"][r].tolist(), shared_targets[r].tolist(),
                columns["elapsed_hours"][r].tolist(), columns["status"][r].tolist(), iso_utc_array(breached_ns[r])]
        # A list comprehension, not a generator fed to extend: ~10% less per row (no resume per dict).
        out += [
            {"source": s, "project": pr, "item": k, "item_url": u, "policy": pol, "clock": clk, "target_hours": t,
             "elapsed_hours": e, "status": st, "breached_at": b}
            for s, pr, k, u, pol, clk, t, e, st, b in zip(*cols)
        ]
    return out


def _records(frame: pd.DataFrame, instants: Sequence[str] = (), floats: Sequence[str] = ()) -> list[dict[str, Any]]:
    """JSON-ready rows: instants to ISO `Z`, NaN floats to null, numpy scalars to Python."""
    if len(frame) == 0:
        return []
    columns: dict[str, list[Any]] = {}
    for name in frame.columns:
        values = frame[name]
        if name in instants:
            if isinstance(values.dtype, pd.DatetimeTZDtype):
                ns = values.dt.as_unit("ns").array.asi8
            else:
                ns = values.to_numpy(dtype=np.int64)
            columns[name] = iso_utc_array(ns)
        elif name in floats:
            columns[name] = _floats(values)
        else:
            columns[name] = values.tolist()
    names = list(frame.columns)
    return [dict(zip(names, row)) for row in zip(*(columns[n] for n in names))]


def extras_of(run: MetricsRun) -> dict[str, Any]:
    hist, window, inp = run.hist, run.window, run.inp
    sprints = velocity.reported_sprints(inp, window.as_of, run.sources)
    membership = velocity.sprint_membership(hist, inp) if len(sprints) else None
    sprint_rows = velocity.sprint_velocity(hist, inp, sprints, membership)
    logs = effort.window_worklogs(hist, inp, window)
    extras = run.header(EXTRAS_SCHEMA_ID)
    extras["velocity"] = _records(velocity.board_velocity(sprint_rows), floats=["velocity_avg_3"])
    extras["burndown"] = _records(
        velocity.sprint_burndown(hist, inp, sprints, membership), instants=["at"],
        floats=["scope_points", "completed_points", "remaining_points", "added_points", "removed_points"],
    )
    extras["weekly_throughput"] = _records(flow.weekly_throughput(hist, window), instants=["week_start"],
                                           floats=["points_done"])
    extras["cfd"] = _records(flow.cumulative_flow(hist, window.since))
    extras["timesheet"] = _records(effort.timesheet(logs), floats=["hours"])
    extras["cost"] = _records(effort.cost_vs_budget(hist, logs, inp.cost),
                              floats=["hours", "cost", "budget", "remaining", "budget_used"])
    return extras


__all__ = ["SCHEMA_ID", "MetricsRun", "build_extras", "build_report", "build_report_and_extras", "sla_rows",
           ]
