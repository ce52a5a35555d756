"""Versions and epics (METRICS.md §13): the schedule-control lists behind a release Gantt.

A version is identified by its tracker id, so its items are counted whatever project
they are in (Jira's cross-project releases), and two projects' same-named versions stay
apart. Each version's forecast (§11) is computed over its own items.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trackpulse.metrics import forecast
from trackpulse.metrics.frames import NAT, MetricsInput, iso_utc, str_array
from trackpulse.metrics.history import DONE, ItemHistory


def _plan_positions(hist: ItemHistory, inp: MetricsInput) -> tuple[np.ndarray, pd.DataFrame]:
    plans = inp.item_plans
    pos = hist.index.positions(plans["source"], plans["item_id"])
    keep = pos >= 0
    return pos[keep], plans[keep].reset_index(drop=True)


def _sort_key(start: str | None, name: str) -> tuple[bool, str, str]:
    return (start is None, start or "", name)


def version_rows(hist: ItemHistory, inp: MetricsInput, window_days: int, horizon_days: int) -> list[dict[str, object]]:
    """The `versions` list, sorted by source, project, start (nulls last), name."""
    versions = inp.versions
    if len(versions) == 0:
        return []
    pos, plans = _plan_positions(hist, inp)
    lengths = np.fromiter((len(v) for v in plans["fix_versions"]), dtype=np.int64, count=len(plans))
    v_pos = np.repeat(pos, lengths)
    v_src = np.repeat(str_array(plans["source"]), lengths)
    v_id = np.fromiter((v for t in plans["fix_versions"] for v in t), dtype=object, count=int(lengths.sum()))
    members: dict[tuple[str, str], np.ndarray] = {}
    if len(v_pos):
        frame = pd.DataFrame({"source": v_src, "version": v_id, "pos": v_pos})
        members = {(str(s), str(v)): g["pos"].to_numpy(dtype=np.int64)
                   for (s, v), g in frame.groupby(["source", "version"], sort=False)}
    done = hist.category_now == DONE
    points = np.nan_to_num(hist.points_now, nan=0.0)
    rows = []
    for v in versions.itertuples(index=False):
        p = members.get((v.source, v.version_id), np.zeros(0, dtype=np.int64))
        released = bool(v.released)
        date_p85 = None
        if not released:
            f = forecast.forecast(hist.resolved[p], int((~done[p]).sum()), hist.as_of, window_days, horizon_days)
            date_p85 = f.as_json(hist.as_of)["date_p85"]
        rows.append({
            "source": v.source, "project": v.project, "version": v.name, "start": v.start,
            "release_date": v.release_date, "released": released, "items_total": len(p),
            "items_done": int(done[p].sum()), "points_total": float(points[p].sum()),
            "points_done": float(points[p][done[p]].sum()), "forecast_date_p85": date_p85,
        })
    return sorted(rows, key=lambda r: (r["source"], r["project"], *_sort_key(r["start"], r["version"])))


def epic_rows(hist: ItemHistory, inp: MetricsInput) -> list[dict[str, object]]:
    """The `epics` list, sorted by source, project, started (nulls last), epic key."""
    epics = inp.epics
    if len(epics) == 0:
        return []
    pos, plans = _plan_positions(hist, inp)
    linked = plans["epic"].notna().to_numpy()
    frame = pd.DataFrame({"source": str_array(plans["source"])[linked],
                          "epic": str_array(plans["epic"])[linked], "pos": pos[linked]})
    members = {(str(s), str(e)): g["pos"].to_numpy(dtype=np.int64)
               for (s, e), g in frame.groupby(["source", "epic"], sort=False)} if len(frame) else {}
    done = hist.category_now == DONE
    points = np.nan_to_num(hist.points_now, nan=0.0)
    rows = []
    for e in epics.itertuples(index=False):
        p = members.get((e.source, e.epic), np.zeros(0, dtype=np.int64))
        started = hist.started[p]
        started = started[started != NAT]
        all_done = len(p) > 0 and bool(done[p].all())
        rows.append({
            "source": e.source, "project": e.project, "epic": e.epic, "summary": e.summary,
            "items_total": len(p), "items_done": int(done[p].sum()),
            "points_total": float(points[p].sum()), "points_done": float(points[p][done[p]].sum()),
            "started": iso_utc(int(started.min())) if len(started) else None,
            "finished": iso_utc(int(hist.resolved[p].max())) if all_done else None,
        })
    return sorted(rows, key=lambda r: (r["source"], r["project"], *_sort_key(r["started"], r["epic"])))
