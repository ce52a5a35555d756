"""Effort figures: worklog hours per project and per author (METRICS.md §3, §7), and the
extra timesheet (hours per person per ISO week) and cost against budget.

Worklogs are selected by `started` in the window and at or before `as_of`; worklogs
of items that left the metrics (deleted, archived) have no item and are dropped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trackpulse.metrics.frames import CostSettings, MetricsInput, instants_ns, str_array
from trackpulse.metrics.history import ItemHistory, Window

SECONDS_PER_HOUR = 3600.0


def window_worklogs(hist: ItemHistory, inp: MetricsInput, window: Window) -> pd.DataFrame:
    """The worklogs that count: source, project, code (project code), author, started (ns), hours."""
    wl = inp.worklogs
    pos = hist.index.positions(wl["source"], wl["item_id"])
    started = instants_ns(wl["started"])
    keep = np.flatnonzero((pos >= 0) & window.contains(started) & (started <= hist.as_of))
    pos = pos[keep]
    code = hist.project_code[pos]
    return pd.DataFrame({
        "code": code,
        "source": hist.projects["source"].to_numpy(dtype=object)[code],
        "project": hist.projects["project"].to_numpy(dtype=object)[code],
        "author": str_array(wl["author"])[keep],
        "started": started[keep],
        "hours": wl["seconds"].to_numpy(dtype=np.float64)[keep] / SECONDS_PER_HOUR,
    })


def project_worklog_hours(hist: ItemHistory, logs: pd.DataFrame) -> np.ndarray:
    """Per project code: sum of worklog hours (0.0 when none)."""
    return np.bincount(logs["code"].to_numpy(dtype=np.int64), weights=logs["hours"].to_numpy(),
                       minlength=len(hist.projects)).astype(np.float64)


def worklogs_by_author(logs: pd.DataFrame) -> pd.DataFrame:
    """source, project, author, hours; sorted by those keys."""
    columns = ["source", "project", "author", "hours"]
    if len(logs) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    # Grouping millions of worklogs on three string columns costs more than everything else
    # here; one integer key gives the same groups in the same order (the project code is the
    # rank of (source, project), the author code the author's rank) and the same sums (the same
    # rows, in the same order, through the same pandas sum).
    code = logs["code"].to_numpy(dtype=np.int64)
    author_code, authors = pd.factorize(logs["author"].fillna("").to_numpy(dtype=object), sort=True)
    width = max(len(authors), 1)
    sums = pd.Series(logs["hours"].to_numpy(dtype=np.float64)).groupby(code * width + author_code, sort=True).sum()
    group_code, group_author = np.divmod(sums.index.to_numpy(dtype=np.int64), width)
    first = pd.Series(np.arange(len(code))).groupby(code).first()
    row_of_code = np.zeros(int(code.max()) + 1, dtype=np.int64)
    row_of_code[first.index.to_numpy(dtype=np.int64)] = first.to_numpy(dtype=np.int64)
    rows = row_of_code[group_code]
    return pd.DataFrame({
        "source": logs["source"].to_numpy(dtype=object)[rows],
        "project": logs["project"].to_numpy(dtype=object)[rows],
        "author": np.asarray(authors, dtype=object)[group_author],
        "hours": sums.to_numpy(dtype=np.float64),
    })


def timesheet(logs: pd.DataFrame) -> pd.DataFrame:
    """Hours per person per ISO week (`2026-W47`) and project, sorted by author, week, source, project."""
    columns = ["author", "week", "source", "project", "hours"]
    if len(logs) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    iso = pd.to_datetime(logs["started"].to_numpy(), unit="ns", utc=True).isocalendar()
    week = iso["year"].astype(str).to_numpy() + "-W" + iso["week"].astype(int).map("{:02d}".format).to_numpy()
    frame = logs.assign(week=week, author=logs["author"].fillna(""))
    agg = frame.groupby(["author", "week", "source", "project"], sort=True)["hours"].sum().reset_index()
    return agg[columns]


def cost_vs_budget(hist: ItemHistory, logs: pd.DataFrame, cost: CostSettings) -> pd.DataFrame:
    """Per project: hours, cost = hours x the author's rate (else the default rate), budget,
    remaining and the share of the budget used (null without a budget)."""
    columns = ["source", "project", "currency", "hours", "cost", "budget", "remaining", "budget_used"]
    rates = logs["author"].map(lambda a: cost.rates.get(a, cost.default_rate) if a is not None else cost.default_rate)
    spent = logs.assign(cost=logs["hours"] * rates.astype(np.float64))
    agg = spent.groupby("code")[["hours", "cost"]].sum()
    out = hist.projects.copy()
    out["currency"] = cost.currency
    out["hours"] = agg["hours"].reindex(range(len(out)), fill_value=0.0).to_numpy(dtype=np.float64)
    out["cost"] = agg["cost"].reindex(range(len(out)), fill_value=0.0).to_numpy(dtype=np.float64)
    # Budgets of projects without items still show, with nothing spent.
    extra = [k for k in cost.budgets if k not in set(map(tuple, out[["source", "project"]].to_numpy()))]
    if extra:
        out = pd.concat([out, pd.DataFrame({"source": [k[0] for k in extra], "project": [k[1] for k in extra],
                                            "currency": cost.currency, "hours": 0.0, "cost": 0.0})],
                        ignore_index=True)
    budget = np.array([cost.budgets.get((s, p), np.nan) for s, p in out[["source", "project"]].to_numpy()],
                      dtype=np.float64).reshape(-1)
    out["budget"] = budget
    out["remaining"] = budget - out["cost"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        out["budget_used"] = np.where(budget > 0, out["cost"].to_numpy() / budget, np.nan)
    return out.sort_values(["source", "project"]).reset_index(drop=True)[columns]
