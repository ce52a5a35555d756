"""Gantt of versions or epics (METRICS.md §13): a bar from start to release date / finish;
an unfinished one extends (hatched) to its 85 % forecast date; today is a vertical line.
The dashboard reuses it as SVG."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from matplotlib.dates import date2num
from matplotlib.figure import Figure

from trackpulse.charts.output import OKABE_ITO, chart_style, empty_note, new_figure
from trackpulse.charts.time_axis import date_axis, parse_instant
from trackpulse.i18n import t

MAX_BARS = 20


def gantt_rows(versions: Sequence[Mapping[str, Any]] = (), epics: Sequence[Mapping[str, Any]] = ()
               ) -> list[dict[str, Any]]:
    """Bars: {"label", "start", "end", "forecast", "done"} from the §13 rows (rows without a
    start are left out: nothing to draw)."""
    bars: list[dict[str, Any]] = []
    for v in versions:
        if not v.get("start"):
            continue
        bars.append({"label": f"{v['project']} {v['version']}", "start": v["start"], "end": v.get("release_date"),
                     "forecast": None if v.get("released") else v.get("forecast_date_p85"),
                     "done": bool(v.get("released"))})
    for e in epics:
        if not e.get("started"):
            continue
        bars.append({"label": f"{e['epic']} {e.get('summary') or ''}".strip(), "start": e["started"],
                     "end": e.get("finished"), "forecast": None, "done": e.get("finished") is not None})
    return bars[:MAX_BARS]


def gantt_chart(bars: Sequence[Mapping[str, Any]], lang: str, *, today: datetime, title: str = "") -> Figure:
    with chart_style(lang):
        fig = new_figure(max(200, 80 + 24 * len(bars)))
        if not bars:
            return empty_note(fig, t("charts.no_versions", lang))
        ax = fig.add_subplot()
        for i, b in enumerate(bars):
            y = len(bars) - 1 - i
            start = parse_instant(b["start"])
            end = parse_instant(b["end"]) if b["end"] else None
            planned_end = end or today
            main = ax.barh(y, date2num(planned_end) - date2num(start), left=date2num(start), height=0.5,
                           color=OKABE_ITO["green"] if b["done"] else OKABE_ITO["blue"])
            main.patches[0].set_gid(f"gantt-bar-{i}")  # stable SVG ids for the dashboard and its tests
            if not b["done"] and b["forecast"]:
                fc = parse_instant(b["forecast"])
                if fc > planned_end:
                    ext = ax.barh(y, date2num(fc) - date2num(planned_end), left=date2num(planned_end), height=0.5,
                                  color="white", edgecolor=OKABE_ITO["orange"], hatch="///")
                    ext.patches[0].set_gid(f"gantt-forecast-{i}")
        ax.axvline(date2num(today), color=OKABE_ITO["vermillion"], linestyle="--", label=t("charts.today", lang))
        ax.set_yticks(range(len(bars)), [b["label"] for b in bars][::-1])
        ax.set_xlim(left=min(date2num(parse_instant(b["start"])) for b in bars) - 1,
                    right=max(date2num(today + timedelta(days=3)),
                              *(date2num(parse_instant(b["forecast"])) + 1 for b in bars if b["forecast"])))
        date_axis(ax, lang)
        ax.set_title(title or t("charts.gantt_title", lang))
        ax.legend(loc="lower right", frameon=False)
        return fig
