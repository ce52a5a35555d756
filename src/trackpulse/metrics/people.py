"""People and key-person risk (METRICS.md §9): credit of resolved items to the
assignees they had at resolution, bus factor, top person, and the per-person rows.

The assignee set of an item at an instant is the replay of its assignee history (Jira's
`assignee` changelog, Trello's member actions): before the first change the item had
that change's "from" set, with no change its current set.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

import numpy as np
import pandas as pd

from trackpulse.metrics.frames import NAT, MetricsInput, instants_ns
from trackpulse.metrics.history import ItemHistory, Window, group_first, segment_last_le

# Credits are sums of 1/|A|; two people tie when their sums differ by rounding only.
_TIE = 1e-9


@dataclass(frozen=True)
class ProjectPeople:
    assignees: int
    bus_factor: int | None
    top_person: str | None
    top_person_share: float | None
    unassigned_done: int


def assignees_at(hist: ItemHistory, inp: MetricsInput, pos: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Object array of assignee tuples of items `pos` at instants `t`."""
    n = hist.n
    plans = inp.item_plans
    current = np.empty(n, dtype=object)
    current[:] = [()] * n
    ppos = hist.index.positions(plans["source"], plans["item_id"])
    ok = np.flatnonzero(ppos >= 0)
    current[ppos[ok]] = plans["assignees"].to_numpy(dtype=object)[ok]

    ac = inp.assignee_changes
    a_pos = hist.index.positions(ac["source"], ac["item_id"])
    sel = np.flatnonzero(a_pos >= 0)
    a_pos = a_pos[sel]
    a_at = instants_ns(ac["at"])[sel]
    order = np.lexsort((ac["seq"].to_numpy(dtype=np.int64)[sel], a_at, a_pos))
    take = sel[order]
    a_pos, a_at = a_pos[order], a_at[order]
    a_to = ac["to_assignees"].to_numpy(dtype=object)[take]
    a_from = ac["from_assignees"].to_numpy(dtype=object)[take]
    before = current.copy()
    g, r = group_first(a_pos, np.arange(len(a_pos)))
    before[g] = a_from[r]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(a_pos, minlength=n), out=offsets[1:])
    row = segment_last_le(a_at, offsets, pos, t)
    out = before[pos]
    hit = row >= 0
    if hit.any():
        out[hit] = a_to[row[hit]]
    return out


def credits(hist: ItemHistory, inp: MetricsInput, window: Window) -> tuple[pd.DataFrame, np.ndarray]:
    """(credit rows: code, person, items, points; unassigned resolved items per project code)."""
    n_proj = len(hist.projects)
    pos = np.flatnonzero(window.contains(hist.resolved) & (hist.resolved != NAT))
    sets = assignees_at(hist, inp, pos, hist.resolved[pos])
    sizes = np.fromiter((len(a) for a in sets), dtype=np.int64, count=len(sets))
    unassigned = np.bincount(hist.project_code[pos[sizes == 0]], minlength=n_proj)
    item_rows = np.repeat(np.arange(len(pos)), sizes)
    people = np.fromiter(chain.from_iterable(sets), dtype=object, count=int(sizes.sum()))
    share = 1.0 / sizes[item_rows] if len(item_rows) else np.zeros(0)
    item_pos = pos[item_rows]
    points = np.nan_to_num(hist.points_at(item_pos, hist.resolved[item_pos]), nan=0.0) if len(item_pos) else share
    frame = pd.DataFrame({"code": hist.project_code[item_pos], "person": people, "items": share,
                          "points": points * share})
    agg = frame.groupby(["code", "person"], sort=True)[["items", "points"]].sum().reset_index()
    return agg, unassigned


def project_people(credit: pd.DataFrame, unassigned: np.ndarray, n_proj: int) -> list[ProjectPeople]:
    """§9's `people` block per project code."""
    out = []
    by_code = {int(c): g for c, g in credit.groupby("code", sort=True)} if len(credit) else {}
    for code in range(n_proj):
        group = by_code.get(code)
        if group is None or group["items"].sum() <= 0:
            out.append(ProjectPeople(0, None, None, None, int(unassigned[code])))
            continue
        c = group["items"].to_numpy(dtype=np.float64)
        names = group["person"].to_numpy(dtype=object)
        total = float(c.sum())
        ranked = np.sort(c)[::-1]
        bus = int(np.searchsorted(np.cumsum(ranked) >= total / 2 - _TIE, True) + 1)
        best = float(c.max())
        top = min(str(p) for p, v in zip(names, c, strict=True) if v >= best - _TIE)
        out.append(ProjectPeople(int((c > 0).sum()), bus, top, best / total, int(unassigned[code])))
    return out


def people_rows(hist: ItemHistory, credit: pd.DataFrame, logs: pd.DataFrame) -> pd.DataFrame:
    """`people_by_project`: source, project, person, items_done, points_done, worklog_hours."""
    columns = ["source", "project", "person", "items_done", "points_done", "worklog_hours"]
    c = credit[credit["items"] > 0]
    if len(c) == 0:
        return pd.DataFrame({k: pd.Series(dtype=object) for k in columns})
    hours = logs.groupby(["code", "author"])["hours"].sum() if len(logs) else pd.Series(dtype=np.float64)
    idx = pd.MultiIndex.from_arrays([c["code"].to_numpy(), c["person"].to_numpy(dtype=object)])
    worked = hours.reindex(idx).fillna(0.0).to_numpy(dtype=np.float64) if len(hours) else np.zeros(len(c))
    code = c["code"].to_numpy(dtype=np.int64)
    frame = pd.DataFrame({
        "source": hist.projects["source"].to_numpy(dtype=object)[code],
        "project": hist.projects["project"].to_numpy(dtype=object)[code],
        "person": c["person"].to_numpy(dtype=object),
        "items_done": c["items"].to_numpy(dtype=np.float64),
        "points_done": c["points"].to_numpy(dtype=np.float64),
        "worklog_hours": worked,
    })
    return frame.sort_values(["source", "project", "person"], kind="stable").reset_index(drop=True)
