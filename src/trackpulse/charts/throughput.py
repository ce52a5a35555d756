"""Throughput per week: items resolved per ISO week, summed over projects (the extras'
`weekly_throughput` rows), as bars."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.dates import date2num
from matplotlib.figure import Figure

from trackpulse.charts.output import OKABE_ITO, chart_style, empty_note, new_figure
from trackpulse.charts.time_axis import date_axis, parse_instant
from trackpulse.i18n import t


def throughput_chart(weekly: Sequence[Mapping[str, Any]], lang: str, *, title: str = "") -> Figure:
    totals: dict[str, int] = {}
    for r in weekly:
        totals[r["week_start"]] = totals.get(r["week_start"], 0) + int(r["items_done"])
    with chart_style(lang):
        fig = new_figure()
        if not totals:
            return empty_note(fig, t("charts.no_data", lang))
        ax = fig.add_subplot()
        weeks = sorted(totals)
        bars = ax.bar([date2num(parse_instant(w)) for w in weeks], [totals[w] for w in weeks], width=5,
                      color=OKABE_ITO["blue"])
        for i, patch in enumerate(bars.patches):
            patch.set_gid(f"throughput-{i}")
        ax.set_ylabel(t("charts.items", lang))
        date_axis(ax, lang)
        ax.set_title(title or t("charts.throughput_title", lang))
        return fig
