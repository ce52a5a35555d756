"""Cumulative flow over the digest's period: items per status category at each day's end,
stacked (done at the bottom), summed over the digest's projects (the extras' `cfd` rows)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure

from trackpulse.charts.output import OKABE_ITO, chart_style, empty_note, new_figure
from trackpulse.charts.time_axis import date_axis, parse_instant
from trackpulse.i18n import t


def cumulative_flow_chart(cfd: Sequence[Mapping[str, Any]], lang: str, *, since: str | None = None,
                          title: str = "") -> Figure:
    """`cfd`: rows (source, project, day, todo, in_progress, done); days before `since` are left out."""
    by_day: dict[str, list[int]] = {}
    for r in cfd:
        day = str(r["day"])[:10]
        if since and day < since[:10]:
            continue
        acc = by_day.setdefault(day, [0, 0, 0])
        acc[0] += int(r["done"])
        acc[1] += int(r["in_progress"])
        acc[2] += int(r["todo"])
    with chart_style(lang):
        fig = new_figure()
        if not by_day:
            return empty_note(fig, t("charts.no_data", lang))
        ax = fig.add_subplot()
        days = sorted(by_day)
        x = [parse_instant(d + "T00:00:00Z") for d in days]
        ax.stackplot(x, [by_day[d][0] for d in days], [by_day[d][1] for d in days], [by_day[d][2] for d in days],
                     labels=[t("charts.done", lang), t("charts.in_progress", lang), t("charts.todo", lang)],
                     colors=[OKABE_ITO["green"], OKABE_ITO["orange"], OKABE_ITO["sky"]], alpha=0.9)
        ax.set_ylabel(t("charts.items", lang))
        date_axis(ax, lang)
        ax.set_title(title or t("charts.cfd_title", lang))
        ax.legend(loc="upper left", frameon=False, reverse=True)
        return fig
