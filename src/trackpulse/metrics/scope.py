"""Requirement volatility (METRICS.md §8): `scope_change_ratio` per sprint and the
membership starts and ends after sprint start per project.

Reads the sprint rows of `velocity.sprint_velocity` and its membership intervals; adds
nothing to the replay.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trackpulse.metrics.history import ItemHistory
from trackpulse.metrics.velocity import Membership


def scope_change_ratio(sprint_rows: pd.DataFrame) -> np.ndarray:
    """(added + removed) / committed per sprint row; NaN where committed is 0."""
    if len(sprint_rows) == 0:
        return np.zeros(0, dtype=np.float64)
    committed = sprint_rows["committed_points"].to_numpy(dtype=np.float64)
    changed = (sprint_rows["added_points"].to_numpy(dtype=np.float64)
               + sprint_rows["removed_points"].to_numpy(dtype=np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(committed != 0, changed / np.where(committed != 0, committed, 1.0), np.nan)


def sprint_membership_moves(hist: ItemHistory, sprints: pd.DataFrame,
                            membership: Membership | None) -> tuple[np.ndarray, np.ndarray]:
    """Per project code: (membership starts, membership ends) after a reported sprint's start
    and at or before its end C (§4's C: completion, or as_of for the active sprint)."""
    n_proj = len(hist.projects)
    added = np.zeros(n_proj, dtype=np.int64)
    removed = np.zeros(n_proj, dtype=np.int64)
    if membership is None or len(sprints) == 0 or len(membership.pos) == 0:
        return added, removed
    m = membership
    k = m.sprint_index(sprints)
    rel = np.flatnonzero(k >= 0)
    k = k[rel]
    s = sprints["start"].to_numpy(dtype=np.int64)[k]
    c = sprints["until"].to_numpy(dtype=np.int64)[k]
    join, leave = m.join[rel], m.leave_or_forever()[rel]
    code = hist.project_code[m.pos[rel]]
    added += np.bincount(code[(join > s) & (join <= c)], minlength=n_proj)
    removed += np.bincount(code[(leave > s) & (leave <= c)], minlength=n_proj)
    return added, removed
