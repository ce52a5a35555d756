"""Hours logged per person in the period (the report's `worklogs_by_author`, summed over
projects), largest first, as horizontal bars."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure

from trackpulse.charts.output import OKABE_ITO, chart_style, empty_note, new_figure
from trackpulse.i18n import t

TOP = 12


def hours_by_person(worklogs_by_author: Sequence[Mapping[str, Any]]) -> list[tuple[str, float]]:
    totals: dict[str, float] = {}
    for r in worklogs_by_author:
        totals[r["author"]] = totals.get(r["author"], 0.0) + float(r["hours"])
    return sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))


def hours_by_person_chart(worklogs_by_author: Sequence[Mapping[str, Any]], lang: str, *, title: str = "") -> Figure:
    rows = hours_by_person(worklogs_by_author)
    shown = rows[:TOP]
    if len(rows) > TOP:
        shown.append((t("charts.others", lang, n=len(rows) - TOP), sum(h for _, h in rows[TOP:])))
    with chart_style(lang):
        fig = new_figure(max(200, 60 + 22 * len(shown)))
        if not shown:
            return empty_note(fig, t("charts.no_worklogs", lang))
        ax = fig.add_subplot()
        names = [n for n, _ in shown][::-1]
        hours = [h for _, h in shown][::-1]
        ax.barh(names, hours, color=OKABE_ITO["blue"])
        ax.set_xlabel(t("charts.hours", lang))
        ax.set_title(title or t("charts.hours_title", lang))
        return fig
