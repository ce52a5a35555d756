"""Velocity of one board: committed against completed points over its last closed sprints
(Jira's Velocity Chart), from the report's `sprints` rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from trackpulse.charts.output import OKABE_ITO, chart_style, empty_note, new_figure
from trackpulse.i18n import t

LAST_SPRINTS = 6


def velocity_chart(sprints: Sequence[Mapping[str, Any]], lang: str, *, title: str = "") -> Figure:
    """`sprints`: one board's sprint rows (METRICS.md §7); closed ones are drawn, oldest first."""
    closed = sorted((s for s in sprints if s["state"] == "closed"), key=lambda s: s["start"] or "")[-LAST_SPRINTS:]
    with chart_style(lang):
        fig = new_figure()
        if not closed:
            return empty_note(fig, t("charts.no_sprints", lang))
        ax = fig.add_subplot()
        x = np.arange(len(closed))
        committed = [s["committed_points"] or 0.0 for s in closed]
        completed = [s["completed_points"] or 0.0 for s in closed]
        bars = (ax.bar(x - 0.2, committed, 0.4, label=t("charts.committed", lang), color=OKABE_ITO["sky"]),
                ax.bar(x + 0.2, completed, 0.4, label=t("charts.completed", lang), color=OKABE_ITO["blue"]))
        # Stable SVG ids, so the dashboard can annotate each bar and tests can read it back.
        for kind, container in zip(("committed", "completed"), bars, strict=True):
            for i, patch in enumerate(container.patches):
                patch.set_gid(f"velocity-{kind}-{i}")
        ax.set_xticks(x, [s["name"] for s in closed], rotation=20, ha="right")
        ax.set_ylabel(t("charts.points", lang))
        ax.set_title(title or t("charts.velocity_title", lang))
        ax.legend(loc="upper left", frameon=False)
        return fig
