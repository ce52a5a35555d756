"""Defect figures per project (METRICS.md §3): defects_total, defects_open, density per
KLOC and per 100 points done.

A defect is an item with `is_defect` (the connectors apply `defect_types` /
`defect_labels`); counts select items by `created` in the window.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trackpulse.metrics.frames import MetricsInput
from trackpulse.metrics.history import DONE, ItemHistory, Window


def project_defects(hist: ItemHistory, inp: MetricsInput, window: Window, points_done: np.ndarray) -> pd.DataFrame:
    """Per project code: defects_total, defects_open, defect_density_per_kloc, defects_per_100_points.

    `points_done` is the flow family's figure for the same window (its denominator).
    """
    n_proj = len(hist.projects)
    code = hist.project_code
    defect = hist.items["is_defect"].to_numpy(dtype=bool) & window.contains(hist.created)
    out = pd.DataFrame(index=pd.RangeIndex(n_proj))
    total = np.bincount(code[defect], minlength=n_proj)
    out["defects_total"] = total
    out["defects_open"] = np.bincount(code[defect & (hist.category_now != DONE)], minlength=n_proj)
    kloc = np.array([
        float(inp.source_settings(src).kloc.get(proj, _measured_kloc(inp, src, proj)))
        for src, proj in hist.projects[["source", "project"]].itertuples(index=False)
    ], dtype=np.float64).reshape(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        # A zero or missing size has no density (a ratio over nothing is null).
        out["defect_density_per_kloc"] = np.where(kloc > 0, total / kloc, np.nan)
        out["defects_per_100_points"] = np.where(points_done != 0, 100.0 * total / points_done, np.nan)
    return out


def _measured_kloc(inp: MetricsInput, source: str, project: str) -> float:
    """KLOC from an imported coverage report's valid lines (§12), when no kloc is configured."""
    report = inp.figures.coverage.get((source, project))
    if report is None or report.lines_valid is None:
        return np.nan
    return report.lines_valid / 1000.0
