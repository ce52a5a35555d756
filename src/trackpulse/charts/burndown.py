"""Burndown of one active sprint: remaining points per day against the ideal line, with the
scope line and a marker wherever items joined or left (the extras' `burndown` samples)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from matplotlib.figure import Figure

from trackpulse.charts.output import OKABE_ITO, chart_style, empty_note, new_figure
from trackpulse.charts.time_axis import date_axis, parse_instant
from trackpulse.i18n import t


def burndown_chart(samples: Sequence[Mapping[str, Any]], lang: str, *, sprint_end: str | None = None,
                   title: str = "") -> Figure:
    """`samples`: one sprint's burndown rows (S, every 24 h, as_of); `sprint_end` its planned end."""
    rows = sorted(samples, key=lambda r: r["at"])
    with chart_style(lang):
        fig = new_figure()
        if not rows:
            return empty_note(fig, t("charts.no_active_sprint", lang))
        ax = fig.add_subplot()
        at = [parse_instant(r["at"]) for r in rows]
        remaining = [r["remaining_points"] or 0.0 for r in rows]
        scope = [r["scope_points"] or 0.0 for r in rows]
        end: datetime = parse_instant(sprint_end) if sprint_end else at[-1]
        ax.plot([at[0], end], [remaining[0], 0.0], color=OKABE_ITO["grey"], linestyle="--",
                label=t("charts.ideal", lang))
        ax.step(at, scope, where="post", color=OKABE_ITO["sky"], label=t("charts.scope", lang))
        ax.step(at, remaining, where="post", color=OKABE_ITO["vermillion"], label=t("charts.remaining", lang),
                linewidth=2)
        # A scope change is a sample whose cumulative added/removed grew since the one before.
        changes = [i for i in range(1, len(rows))
                   if (rows[i]["added_points"] or 0) != (rows[i - 1]["added_points"] or 0)
                   or (rows[i]["removed_points"] or 0) != (rows[i - 1]["removed_points"] or 0)]
        if changes:
            ax.scatter([at[i] for i in changes], [scope[i] for i in changes], marker="D", zorder=3,
                       color=OKABE_ITO["orange"], label=t("charts.scope_change", lang))
        ax.set_ylabel(t("charts.points", lang))
        ax.set_ylim(bottom=0)
        date_axis(ax, lang)
        ax.set_title(title or t("charts.burndown_title", lang))
        ax.legend(loc="upper right", frameon=False)
        return fig
