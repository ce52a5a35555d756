"""SLA clocks (METRICS.md §6; Jira Service Management's time to first response and time
to resolution), replayed from our own status and comment history.

* The first policy, in configuration order, whose filters match the item's CURRENT
  priority, type and project applies; a clock exists only for the targets it sets.
* Response clock: from `created` to the first move into a non-todo category or the
  first comment by someone other than the reporter, whichever is first.
* Resolution clock: runs over the item's states that are neither done nor a pause
  status of the policy; stopped (final) when the item is done as of `as_of`.
* Elapsed time counts only the calendar's working time (see `calendar`).

All clocks of one policy are computed together over arrays: the resolution clock sums
per-state working time over the state table of `history`, and `breached_at` is found
by locating the state in which the running total first exceeds the target.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from trackpulse.metrics.calendar import WorkingClock, working_clock
from trackpulse.metrics.frames import NAT, NS_PER_HOUR, MetricsInput, SlaPolicy, instants_ns, str_array
from trackpulse.metrics.history import DONE, TODO, ItemHistory, Window, group_first

ClockName = Literal["response", "resolution"]
STATUSES = ("breached", "met", "at_risk", "ongoing")
CLOCK_COLUMNS = ["pos", "policy", "clock", "target_ns", "elapsed_ns", "stopped", "stop_at", "status",
                 "breached_at"]
_FOREVER = np.iinfo(np.int64).max


def match_policies(hist: ItemHistory, policies: tuple[SlaPolicy, ...] | list[SlaPolicy]) -> np.ndarray:
    """Index of the first matching policy per item, -1 for none (filters on current values)."""
    chosen = np.full(hist.n, -1, dtype=np.int64)
    if hist.n == 0:
        return chosen
    fields = {
        "priorities": hist.items["priority"], "types": hist.items["type"], "projects": hist.items["project"],
    }
    for i, policy in enumerate(policies):
        mask = chosen < 0
        for attr, column in fields.items():
            wanted = list(getattr(policy, attr))
            if wanted:
                mask &= column.isin(wanted).to_numpy()
        chosen[mask] = i
    return chosen


_STATUS_NAMES = np.array(["ongoing", "at_risk", "met", "breached"], dtype=object)


def _status_of(
    elapsed: np.ndarray, target: int, stopped: np.ndarray, at_risk_ratio: float
) -> np.ndarray:
    # Codes into one array of the four names: millions of rows share four string objects.
    code = (elapsed >= at_risk_ratio * target).astype(np.int8)  # 0 ongoing, 1 at_risk
    code[stopped] = 2
    code[elapsed > target] = 3
    return _STATUS_NAMES[code]


def _first_response(hist: ItemHistory, inp: MetricsInput) -> np.ndarray:
    """Per item: the first non-todo move or first comment by a non-reporter, up to as_of; else NAT."""
    first = np.full(hist.n, _FOREVER, dtype=np.int64)
    g, r = group_first(hist.st_pos, np.flatnonzero(~hist.st_initial & (hist.st_cat != TODO)))
    first[g] = hist.st_at[r]
    cm = inp.comments
    pos = hist.index.positions(cm["source"], cm["item_id"])
    sel = np.flatnonzero(pos >= 0)
    if len(sel):
        pos = pos[sel]
        at = instants_ns(cm["created"])[sel]
        author = str_array(cm["author"])[sel]
        reporter = str_array(hist.items["reporter"])[pos]
        # With no known reporter every comment is someone else's.
        counts = (at <= hist.as_of) & ((reporter == None) | (author != reporter))
        np.minimum.at(first, pos[counts], np.maximum(at[counts], hist.created[pos[counts]]))
    return np.where(first == _FOREVER, NAT, first)


def _paused_rows(hist: ItemHistory, inp: MetricsInput, policy: SlaPolicy, rows: np.ndarray) -> np.ndarray:
    """Which state rows are in one of the policy's pause statuses (names, case-insensitive)."""
    if not policy.pause_statuses or len(rows) == 0:
        return np.zeros(len(rows), dtype=bool)
    names = {s.casefold() for s in policy.pause_statuses}
    st = inp.statuses
    hits = st[st["name"].astype(object).map(lambda x: str(x).casefold() in names).astype(bool)]
    # A pause status is named; a status id equal to a configured name also counts.
    wanted = {str(source): set(hits.loc[hits["source"] == source, "status_id"].astype(object))
              | set(policy.pause_statuses) for source in pd.unique(str_array(hist.items["source"]))}
    return hist.statuses_in(wanted)[rows]


def sla_clocks(hist: ItemHistory, inp: MetricsInput) -> pd.DataFrame:
    """Every SLA clock of every item a policy matches, as of `hist.as_of`.

    Columns: pos, policy, clock, target_ns, elapsed_ns, stopped, stop_at, status, breached_at
    (instants as int64 ns, NAT when null).
    """
    policies = tuple(inp.sla.policies)
    chosen = match_policies(hist, policies)
    frames: list[pd.DataFrame] = []
    if not (chosen >= 0).any():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in CLOCK_COLUMNS})
    as_of = hist.as_of
    response_at = _first_response(hist, inp) if any(p.response_hours is not None for p in policies) else None
    st_end = hist.st_end() if any(p.resolution_hours is not None for p in policies) else None
    for i, policy in enumerate(policies):
        pos = np.flatnonzero(chosen == i)
        if len(pos) == 0:
            continue
        clock = working_clock(policy.calendar, dict(inp.sla.calendars), int(hist.created[pos].min()), as_of)
        if policy.response_hours is not None and response_at is not None:
            frames.append(_response_clock(hist, policy, clock, pos, response_at))
        if policy.resolution_hours is not None and st_end is not None:
            frames.append(_resolution_clock(hist, inp, policy, clock, pos, st_end))
    return pd.concat(frames, ignore_index=True)[CLOCK_COLUMNS]


def _target_ns(hours: float) -> int:
    return round(float(hours) * NS_PER_HOUR)


def _response_clock(hist: ItemHistory, policy: SlaPolicy, clock: WorkingClock, pos: np.ndarray,
                    response_at: np.ndarray) -> pd.DataFrame:
    target = _target_ns(policy.response_hours or 0.0)
    start = hist.created[pos]
    stop = response_at[pos]
    stopped = stop != NAT
    elapsed = clock.working_between(start, np.where(stopped, stop, hist.as_of))
    breached = elapsed > target
    breached_at = np.full(len(pos), NAT, dtype=np.int64)
    if breached.any():
        breached_at[breached] = clock.instant_exceeding(start[breached], np.full(breached.sum(), target))
    return pd.DataFrame({
        "pos": pos, "policy": policy.name, "clock": "response", "target_ns": target, "elapsed_ns": elapsed,
        "stopped": stopped, "stop_at": stop, "status": _status_of(elapsed, target, stopped, policy.at_risk_ratio),
        "breached_at": breached_at,
    })


def _resolution_clock(hist: ItemHistory, inp: MetricsInput, policy: SlaPolicy, clock: WorkingClock,
                      pos: np.ndarray, st_end: np.ndarray) -> pd.DataFrame:
    target = _target_ns(policy.resolution_hours or 0.0)
    # The items' state rows, contiguous per item and in item order (`pos` is ascending).
    in_policy = np.zeros(hist.n, dtype=bool)
    in_policy[pos] = True
    rows = np.flatnonzero(in_policy[hist.st_pos])
    counts = hist.offsets[pos + 1] - hist.offsets[pos]
    local_offsets = np.cumsum(counts) - counts
    running = np.flatnonzero((hist.st_cat[rows] != DONE) & ~_paused_rows(hist, inp, policy, rows))
    worked = np.zeros(len(rows), dtype=np.int64)
    worked[running] = clock.working_between(hist.st_at[rows[running]], st_end[rows[running]])
    # A running sum per item without a pass per item: each item's first row takes away the
    # previous item's total, so the one cumulative sum restarts at every item (and stays within
    # an item's elapsed time: no overflow however many items there are). Every item has at
    # least its creation row, so every segment is non-empty.
    elapsed = np.add.reduceat(worked, local_offsets) if len(rows) else np.zeros(len(pos), dtype=np.int64)
    within = worked.copy()
    within[local_offsets[1:]] -= elapsed[:-1]
    np.cumsum(within, out=within)  # in place: one array of state rows fewer at the memory peak
    # The target is first exceeded at the item's first row whose running sum passes it.
    crossing = np.flatnonzero(within > target)
    g, r = group_first(hist.st_pos[rows], crossing)
    breached_at = np.full(len(pos), NAT, dtype=np.int64)
    if len(r):
        where = np.searchsorted(pos, g)
        before = within[r] - worked[r]
        breached_at[where] = clock.instant_exceeding(hist.st_at[rows[r]], target - before)
    stopped = hist.category_now[pos] == DONE
    return pd.DataFrame({
        "pos": pos, "policy": policy.name, "clock": "resolution", "target_ns": target, "elapsed_ns": elapsed,
        "stopped": stopped, "stop_at": np.where(stopped, hist.resolved[pos], NAT),
        "status": _status_of(elapsed, target, stopped, policy.at_risk_ratio), "breached_at": breached_at,
    })


def sla_compliance(hist: ItemHistory, clocks: pd.DataFrame, window: Window) -> np.ndarray:
    """Per project code: met / (met + breached) over clocks stopped in the window; NaN when none."""
    n_proj = len(hist.projects)
    if len(clocks) == 0:
        return np.full(n_proj, np.nan)
    stop_at = clocks["stop_at"].to_numpy(dtype=np.int64)
    status = clocks["status"].to_numpy(dtype=object)
    counted = clocks["stopped"].to_numpy(dtype=bool) & window.contains(stop_at)
    code = hist.project_code[clocks["pos"].to_numpy(dtype=np.int64)]
    met = np.bincount(code[counted & (status == "met")], minlength=n_proj)
    total = np.bincount(code[counted], minlength=n_proj)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, met / np.maximum(total, 1), np.nan)
