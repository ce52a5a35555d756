"""Burn-up of one sprint: completed points against the scope line, from the same `burndown`
samples as the burndown, so scope added mid-sprint shows as the scope line rising."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure

from trackpulse.charts.output import OKABE_ITO, chart_style, empty_note, new_figure
from trackpulse.charts.time_axis import date_axis, parse_instant
from trackpulse.i18n import t


def burnup_chart(samples: Sequence[Mapping[str, Any]], lang: str, *, title: str = "") -> Figure:
    rows = sorted(samples, key=lambda r: r["at"])
    with chart_style(lang):
        fig = new_figure()
        if not rows:
            return empty_note(fig, t("charts.no_active_sprint", lang))
        ax = fig.add_subplot()
        at = [parse_instant(r["at"]) for r in rows]
        ax.step(at, [r["scope_points"] or 0.0 for r in rows], where="post", color=OKABE_ITO["sky"],
                label=t("charts.scope", lang))
        ax.step(at, [r["completed_points"] or 0.0 for r in rows], where="post", color=OKABE_ITO["green"],
                linewidth=2, label=t("charts.completed", lang))
        ax.set_ylabel(t("charts.points", lang))
        ax.set_ylim(bottom=0)
        date_axis(ax, lang)
        ax.set_title(title or t("charts.burnup_title", lang))
        ax.legend(loc="upper left", frameon=False)
        return fig
