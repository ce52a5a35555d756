"""Flow metrics (METRICS.md §1-§3): derived instants, throughput, cycle and lead time, WIP,
plus the weekly throughput series and the cumulative flow diagram (extra figures).

Everything is computed from an `ItemHistory` (the as-of replay) with grouped array
operations; percentiles use linear interpolation between closest ranks, as numpy does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from trackpulse.metrics.frames import NAT, NS_PER_DAY
from trackpulse.metrics.history import CATEGORY_NAMES, IN_PROGRESS, ItemHistory, Window

QUANTILES = (0.5, 0.85, 0.95)
STAT_KEYS = ("count", "mean", "p50", "p85", "p95")
NS_PER_WEEK = 7 * NS_PER_DAY


def derived_instants(hist: ItemHistory) -> pd.DataFrame:
    """One row per item: source, project, key, created, started, resolved (NaT when null), category."""
    frame = hist.items[["source", "project", "item_id", "key"]].copy()
    for name, values in (("created", hist.created), ("started", hist.started), ("resolved", hist.resolved)):
        frame[name] = pd.to_datetime(values, unit="ns", utc=True)  # NAT is pandas' NaT value
    frame["category"] = np.asarray(CATEGORY_NAMES, dtype=object)[hist.category_now]
    return frame


def _lerp_percentiles(sorted_values: np.ndarray, starts: np.ndarray, counts: np.ndarray, q: float) -> np.ndarray:
    """numpy's 'linear' percentile of each group of a group-sorted array (NaN for empty groups)."""
    out = np.full(len(counts), np.nan)
    has = counts > 0
    if not has.any():
        return out
    rank = q * (counts[has] - 1)
    lo = np.floor(rank).astype(np.int64)
    hi = np.minimum(lo + 1, counts[has] - 1)
    frac = rank - lo
    a = sorted_values[starts[has] + lo]
    b = sorted_values[starts[has] + hi]
    diff = b - a
    # The same two-sided form numpy uses, so results agree to the last bit.
    out[has] = np.where(frac >= 0.5, b - diff * (1 - frac), a + diff * frac)
    return out


def grouped_stats(groups: np.ndarray, values: np.ndarray, n_groups: int) -> pd.DataFrame:
    """count, mean, p50, p85, p95 of `values` per group code 0..n_groups-1 (NaN where empty)."""
    if n_groups <= np.iinfo(np.int16).max:
        # The same permutation as lexsort((values, groups)), a third faster: a stable sort by
        # value, then numpy's radix sort (stable, for 16-bit keys) by group.
        by_value = np.argsort(values, kind="stable")
        order = by_value[np.argsort(groups[by_value].astype(np.int16), kind="stable")]
    else:
        order = np.lexsort((values, groups))
    g, v = groups[order], values[order]
    counts = np.bincount(g, minlength=n_groups)
    starts = np.cumsum(counts) - counts
    sums = np.bincount(g, weights=v, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    data = {"count": counts, "mean": mean}
    for key, q in zip(("p50", "p85", "p95"), QUANTILES):
        data[key] = _lerp_percentiles(v, starts, counts, q)
    return pd.DataFrame(data)


def stats_block(row: pd.Series | dict[str, float]) -> dict[str, int | float | None]:
    """A §-intro statistic block; NaN (no data) becomes null."""
    block: dict[str, int | float | None] = {"count": int(row["count"])}
    for key in STAT_KEYS[1:]:
        value = float(row[key])
        block[key] = None if np.isnan(value) else value
    return block


def project_flow(hist: ItemHistory, window: Window, since: int | None) -> pd.DataFrame:
    """Per project code: issues_total, issues_done, points_done, throughput_per_week,
    cycle_*/lead_* statistics (days), wip and wip_age_days_p85."""
    n_proj = len(hist.projects)
    code = hist.project_code
    created_in = window.contains(hist.created)
    resolved_in = window.contains(hist.resolved)
    done_pos = np.flatnonzero(resolved_in)
    done_code = code[done_pos]

    out = pd.DataFrame(index=pd.RangeIndex(n_proj))
    out["issues_total"] = np.bincount(code[created_in], minlength=n_proj)
    out["issues_done"] = np.bincount(done_code, minlength=n_proj)
    points = np.nan_to_num(hist.points_at(done_pos, hist.resolved[done_pos]), nan=0.0)
    out["points_done"] = np.bincount(done_code, weights=points, minlength=n_proj).astype(np.float64)

    # Window start: `since`, else the project's first creation.
    first_created = np.full(n_proj, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_created, code, hist.created)
    start = np.full(n_proj, since, dtype=np.int64) if since is not None else first_created
    weeks = (window.until - start) / NS_PER_WEEK
    with np.errstate(invalid="ignore", divide="ignore"):
        out["throughput_per_week"] = np.where(
            (weeks > 0) & (start != np.iinfo(np.int64).max), out["issues_done"] / weeks, np.nan
        )

    started = hist.started[done_pos]
    cyc = started != NAT
    cycle_days = (hist.resolved[done_pos][cyc] - started[cyc]) / NS_PER_DAY
    lead_days = (hist.resolved[done_pos] - hist.created[done_pos]) / NS_PER_DAY
    for prefix, groups, values in (("cycle", done_code[cyc], cycle_days), ("lead", done_code, lead_days)):
        stats = grouped_stats(groups, values.astype(np.float64), n_proj)
        for key in STAT_KEYS:
            out[f"{prefix}_{key}"] = stats[key].to_numpy()

    wip_pos = np.flatnonzero(hist.category_now == IN_PROGRESS)
    out["wip"] = np.bincount(code[wip_pos], minlength=n_proj)
    age_days = (hist.as_of - hist.started[wip_pos]) / NS_PER_DAY
    out["wip_age_days_p85"] = grouped_stats(code[wip_pos], age_days.astype(np.float64), n_proj)["p85"].to_numpy()
    return out


def weekly_throughput(hist: ItemHistory, window: Window) -> pd.DataFrame:
    """Items and points resolved per project per ISO week (Monday 00:00 UTC), weeks with none included
    between each project's first and last week with a resolution."""
    columns = ["source", "project", "week_start", "items_done", "points_done"]
    pos = np.flatnonzero(window.contains(hist.resolved))
    if len(pos) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    resolved = hist.resolved[pos]
    # 1970-01-01 was a Thursday: shift by 3 days so that weeks start on Mondays.
    week = (resolved + 3 * NS_PER_DAY) // NS_PER_WEEK * NS_PER_WEEK - 3 * NS_PER_DAY
    frame = pd.DataFrame({
        "code": hist.project_code[pos], "week": week,
        "points": np.nan_to_num(hist.points_at(pos, resolved), nan=0.0),
    })
    agg = frame.groupby(["code", "week"]).agg(items_done=("points", "size"), points_done=("points", "sum"))
    rows = []
    for code, part in agg.groupby(level="code"):
        weeks = part.index.get_level_values("week")
        full = np.arange(weeks.min(), weeks.max() + 1, NS_PER_WEEK)
        part = part.droplevel("code").reindex(full, fill_value=0)
        src, proj = hist.projects.iloc[int(code)]
        rows.append(pd.DataFrame({
            "source": src, "project": proj, "week_start": pd.to_datetime(full, utc=True),
            "items_done": part["items_done"].to_numpy(dtype=np.int64),
            "points_done": part["points_done"].to_numpy(dtype=np.float64),
        }))
    return pd.concat(rows, ignore_index=True)


def cumulative_flow(hist: ItemHistory, since: int | None = None,
                    categories: Sequence[str] = CATEGORY_NAMES) -> pd.DataFrame:
    """Items per status category per project at the end of each UTC day up to `as_of`'s day.

    Built from category *changes*: +1 to the new category and -1 to the old one at each
    state change, cumulated over days, so cost is O(state rows), not O(items x days).
    The snapshot of day D is taken at min(D + 1 day, as_of).
    """
    columns = ["source", "project", "day", *categories]
    if hist.n == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    prev = np.empty_like(hist.st_cat)
    prev[1:] = hist.st_cat[:-1]
    initial = hist.st_initial
    changed = initial | (hist.st_cat != prev)
    rows = np.flatnonzero(changed)
    day = hist.st_at[rows] // NS_PER_DAY
    code = hist.project_code[hist.st_pos[rows]]
    plus = pd.DataFrame({"code": code, "day": day, "cat": hist.st_cat[rows], "delta": 1})
    left = rows[~initial[rows]]
    minus = pd.DataFrame({
        "code": hist.project_code[hist.st_pos[left]], "day": hist.st_at[left] // NS_PER_DAY,
        "cat": prev[left], "delta": -1,
    })
    events = pd.concat([plus, minus], ignore_index=True)
    daily = events.pivot_table(index=["code", "day"], columns="cat", values="delta", aggfunc="sum", fill_value=0)
    daily = daily.reindex(columns=range(len(CATEGORY_NAMES)), fill_value=0)
    last_day = hist.as_of // NS_PER_DAY
    first_day = None if since is None else since // NS_PER_DAY
    out = []
    for code_value, part in daily.groupby(level="code"):
        part = part.droplevel("code")
        days = np.arange(part.index.min(), last_day + 1)
        counts = part.reindex(days, fill_value=0).cumsum()
        if first_day is not None:
            counts = counts[counts.index >= first_day]
        src, proj = hist.projects.iloc[int(code_value)]
        frame = pd.DataFrame({"source": src, "project": proj,
                              "day": [str(np.datetime64(int(d), "D")) for d in counts.index]})
        for i, name in enumerate(CATEGORY_NAMES):
            if name in categories:
                frame[name] = counts[i].to_numpy(dtype=np.int64)
        out.append(frame)
    if not out:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pd.concat(out, ignore_index=True)[columns]
