"""The dashboard's charts: which charts each tab shows, built by `trackpulse.charts` (the same
code as the digests' PNGs) and inlined as SVG.

Each chart has a slug (`velocity-0`, `gantt`, …) used in its element id and in its download URL
(`/charts/<slug>.svg|png`), and a link to its definition in docs/metrics.md. The bars whose values
users read (velocity, Gantt, throughput) carry stable ids set with matplotlib's `set_gid`; here
those elements get `data-*` attributes with the report's values, so a browser test (or a user's
script) reads the same numbers the report has.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape
from matplotlib.figure import Figure

from trackpulse import charts
from trackpulse.charts.gantt import gantt_rows
from trackpulse.charts.velocity import LAST_SPRINTS
from trackpulse.i18n import t
from trackpulse.server.dashboard_data import DashboardView

TABS = ("overview", "sprints", "flow", "schedule", "people", "sync")
MAX_BOARDS = 6
MAX_SPRINTS = 4
# matplotlib keeps rcParams global while a figure is built and saved: one chart at a time.
_RENDER_LOCK = threading.Lock()


@dataclass
class ChartSpec:
    slug: str
    tab: str
    title: str
    doc: str  # anchor in docs/metrics.md
    build: Callable[[], Figure]
    marks: Callable[[], dict[str, dict[str, Any]]]  # gid → data-* attributes


def _closed_sprints(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # The order and cut of charts.velocity_chart, so mark i is bar i.
    return sorted((s for s in rows if s["state"] == "closed"), key=lambda s: s["start"] or "")[-LAST_SPRINTS:]


def chart_specs(view: DashboardView, lang: str) -> list[ChartSpec]:
    report, extras = view.report, view.extras
    specs: list[ChartSpec] = []
    boards: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for s in report["sprints"]:
        boards.setdefault((s["source"], s["board"]), []).append(s)
    for i, ((source, board), rows) in enumerate(sorted(boards.items())[:MAX_BOARDS]):
        title = t("server.chart.velocity", lang, board=board, source=source)

        def marks(rows: list[dict[str, Any]] = rows) -> dict[str, dict[str, Any]]:
            out = {}
            for j, s in enumerate(_closed_sprints(rows)):
                for kind in ("committed", "completed"):
                    out[f"velocity-{kind}-{j}"] = {"series": kind, "sprint": s["name"], "sprint-id": s["sprint_id"],
                                                    "value": s[f"{kind}_points"] or 0.0}
            return out
        specs.append(ChartSpec(f"velocity-{i}", "sprints", title, "s4",
                               lambda rows=rows, title=title: charts.velocity_chart(rows, lang, title=title), marks))
    active = [s for s in report["sprints"] if s["state"] == "active"][:MAX_SPRINTS]
    for i, s in enumerate(active):
        samples = [b for b in extras["burndown"]
                   if (b["source"], b["board"], b["sprint_id"]) == (s["source"], s["board"], s["sprint_id"])]
        title = t("server.chart.burndown", lang, sprint=s["name"])
        specs.append(ChartSpec(f"burndown-{i}", "sprints", title, "extras", lambda samples=samples, s=s, title=title:
                               charts.burndown_chart(samples, lang, sprint_end=s["end"], title=title), dict))
        title = t("server.chart.burnup", lang, sprint=s["name"])
        specs.append(ChartSpec(f"burnup-{i}", "sprints", title, "extras", lambda samples=samples, title=title:
                               charts.burnup_chart(samples, lang, title=title), dict))
    since = report["window"]["since"]
    specs.append(ChartSpec("cfd", "flow", t("charts.cfd_title", lang), "extras",
                           lambda: charts.cumulative_flow_chart(extras["cfd"], lang, since=since), dict))
    specs.append(ChartSpec("cycle-time", "flow", t("charts.cycle_time_title", lang), "s3",
                           lambda: charts.cycle_time_chart(view.cycle_points, lang), dict))
    weekly = extras["weekly_throughput"]

    def throughput_marks() -> dict[str, dict[str, Any]]:
        totals: dict[str, int] = {}
        for r in weekly:
            totals[r["week_start"]] = totals.get(r["week_start"], 0) + int(r["items_done"])
        return {f"throughput-{i}": {"week": w, "value": totals[w]} for i, w in enumerate(sorted(totals))}
    specs.append(ChartSpec("throughput", "flow", t("charts.throughput_title", lang), "extras",
                           lambda: charts.throughput_chart(weekly, lang), throughput_marks))
    specs.append(ChartSpec("wip-age", "flow", t("charts.wip_age_title", lang), "s3",
                           lambda: charts.wip_age_chart(view.wip, lang), dict))
    bars = gantt_rows(report.get("versions", []), report.get("epics", []))
    specs.append(ChartSpec("gantt", "schedule", t("charts.gantt_title", lang), "s13",
                           lambda: charts.gantt_chart(bars, lang, today=view.as_of), lambda: gantt_marks(bars, view)))
    specs.append(ChartSpec("hours", "people", t("charts.hours_title", lang), "s3",
                           lambda: charts.hours_by_person_chart(report["worklogs_by_author"], lang), dict))
    specs.append(ChartSpec("cost", "people", t("charts.cost_title", lang), "extras",
                           lambda: charts.cost_chart(extras["cost"], lang, currency=view.currency), dict))
    return specs


def gantt_marks(bars: list[dict[str, Any]], view: DashboardView) -> dict[str, dict[str, Any]]:
    today = view.as_of.isoformat().replace("+00:00", "Z")
    out = {}
    for i, b in enumerate(bars):
        out[f"gantt-bar-{i}"] = {"label": b["label"], "start": b["start"], "end": b["end"] or today,
                                 "done": "true" if b["done"] else "false"}
        if b["forecast"]:
            out[f"gantt-forecast-{i}"] = {"label": b["label"], "forecast": b["forecast"]}
    return out


_PROLOG = re.compile(r"\A.*?(?=<svg)", re.DOTALL)


def svg_markup(spec: ChartSpec, lang: str) -> Markup:
    """The chart as an inline `<svg>` element: prolog dropped, bar ids made unique per chart and
    annotated with the report's values (escaped: names come from the trackers)."""
    with _RENDER_LOCK:
        text = charts.to_svg(spec.build(), lang)
    text = _PROLOG.sub("", text, count=1)
    text = text.replace("<svg ", f'<svg id="chart-{spec.slug}" role="img" aria-label="{escape(spec.title)}" ', 1)
    for gid, attrs in spec.marks().items():
        data = " ".join(f'data-{k}="{escape(str(v))}"' for k, v in attrs.items())
        text = text.replace(f'<g id="{gid}">', f'<g id="{spec.slug}--{gid}" class="tp-mark" {data}>', 1)
    # matplotlib escapes the text it writes; the attributes added above are escaped.
    return Markup(text)


def png_bytes(spec: ChartSpec, lang: str) -> bytes:
    with _RENDER_LOCK:
        return charts.to_png(spec.build(), lang)
