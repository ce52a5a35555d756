"""WIP ageing: each item in progress as a horizontal bar of its age in days, oldest first,
so the items that have waited longest are seen first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure

from trackpulse.charts.output import OKABE_ITO, chart_style, empty_note, new_figure
from trackpulse.i18n import t

TOP = 15


def wip_age_chart(wip: Sequence[Mapping[str, Any]], lang: str, *, title: str = "") -> Figure:
    """`wip`: rows {"item", "age_days"}; the oldest `TOP` are drawn."""
    rows = sorted(wip, key=lambda r: -r["age_days"])[:TOP]
    with chart_style(lang):
        fig = new_figure(max(200, 60 + 20 * len(rows)))
        if not rows:
            return empty_note(fig, t("charts.no_wip", lang))
        ax = fig.add_subplot()
        ax.barh([str(r["item"]) for r in rows][::-1], [r["age_days"] for r in rows][::-1], color=OKABE_ITO["orange"])
        ax.set_xlabel(t("charts.age_days", lang))
        ax.set_title(title or t("charts.wip_age_title", lang))
        return fig
