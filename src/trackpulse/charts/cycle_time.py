"""Cycle-time scatter: one dot per item resolved in the period (x = resolved, y = days from
started to resolved), with horizontal p50 and p85 lines (jira-agile-metrics' scatterplot)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from trackpulse.charts.output import OKABE_ITO, chart_style, empty_note, new_figure
from trackpulse.charts.time_axis import date_axis, parse_instant
from trackpulse.i18n import fmt_number, t


def cycle_time_chart(points: Sequence[Mapping[str, Any]], lang: str, *, title: str = "") -> Figure:
    """`points`: rows {"resolved": ISO instant, "cycle_time_days": float}."""
    with chart_style(lang):
        fig = new_figure()
        if not points:
            return empty_note(fig, t("charts.no_data", lang))
        ax = fig.add_subplot()
        x = [parse_instant(p["resolved"]) for p in points]
        y = np.asarray([p["cycle_time_days"] for p in points], dtype=np.float64)
        ax.scatter(x, y, s=14, color=OKABE_ITO["blue"], alpha=0.7, label=t("charts.item", lang))
        # numpy's linear percentile: the METRICS.md definition.
        for q, colour, style in ((50, OKABE_ITO["green"], "-"), (85, OKABE_ITO["vermillion"], "--")):
            value = float(np.percentile(y, q))
            ax.axhline(value, color=colour, linestyle=style,
                       label=t("charts.percentile_line", lang, q=q, value=fmt_number(value, lang)))
        ax.set_ylabel(t("charts.days", lang))
        ax.set_ylim(bottom=0)
        date_axis(ax, lang)
        ax.set_title(title or t("charts.cycle_time_title", lang))
        ax.legend(loc="upper left", frameon=False)
        return fig
