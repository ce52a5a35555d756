"""What a digest says, in its language: headline figures with their change against the previous
period, the tables (projects, KPIs, SLA clocks, forecasts, key-person risk) and the charts, as
plain data that the e-mail templates and the chat Markdown both read.

Every figure is taken from the METRICS.md report of the window (`DigestData.report`); sums
over projects are sums of those figures. Strings come from the `digests` catalogue.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from matplotlib.figure import Figure

from trackpulse import charts
from trackpulse.charts.gantt import gantt_rows
from trackpulse.charts.time_axis import parse_instant
from trackpulse.digests.build import DigestData
from trackpulse.i18n import fmt_date, fmt_number, t

MAX_ROWS = 25  # per table: inlined CSS multiplies an HTML table's size (Gmail clips at ~102 KB)
MAX_BOARDS = 6  # velocity charts
MAX_SPRINTS = 4  # burndown charts


@dataclass(frozen=True)
class Headline:
    key: str
    label: str
    value: str
    change: str  # "+3 (+12%)" / "—" against the previous period
    trend: str  # "up" | "down" | "flat" | "none"


@dataclass(frozen=True)
class Table:
    key: str
    title: str
    columns: list[str]
    rows: list[list[str]]
    total_rows: int  # before the MAX_ROWS cut
    note: str = ""


@dataclass
class ChartSpec:
    key: str  # unique, becomes the image's file name and cid
    title: str
    build: Callable[[], Figure]


@dataclass
class DigestContent:
    lang: str
    name: str
    subject: str
    title: str
    period: str
    headlines: list[Headline]
    tables: list[Table]
    charts: list[ChartSpec] = field(default_factory=list)
    breached_in_period: int = 0


def _sum(rows: Sequence[Mapping[str, Any]], key: str) -> float:
    return float(sum(r[key] or 0 for r in rows))


def _change(now: float | None, before: float | None, lang: str, *, digits: int, ratio: bool = False
            ) -> tuple[str, str]:
    if now is None or before is None:
        return "—", "none"
    delta = now - before
    trend = "flat" if abs(delta) < 1e-9 else ("up" if delta > 0 else "down")
    sign = "+" if delta > 0 else ("−" if delta < 0 else "±")
    if ratio:
        return t("digests.change_points", lang, sign=sign, value=fmt_number(abs(delta) * 100, lang, digits=0)), trend
    text = f"{sign}{fmt_number(abs(delta), lang, digits=digits)}"
    if before:
        text += f" ({sign}{fmt_number(abs(delta) / abs(before) * 100, lang, digits=0)}%)"
    return text, trend


def _pct(value: float | None, lang: str) -> str:
    return "—" if value is None else f"{fmt_number(value * 100, lang, digits=0)}%"


def _when(iso: str | None, lang: str, with_time: bool = False) -> str:
    return fmt_date(parse_instant(iso), lang, with_time=with_time) if iso else "—"


def _sla_ratio(report: Mapping[str, Any]) -> float | None:
    # Projects' compliance weighted equally would mislead; a digest-wide figure is the
    # headline only when a single project carries SLA clocks.
    values = [p["sla_compliance"] for p in report["projects"] if p["sla_compliance"] is not None]
    return values[0] if len(values) == 1 else None


def headlines(data: DigestData) -> list[Headline]:
    lang = data.lang
    now, before = data.report["projects"], data.previous_report["projects"]
    out: list[Headline] = []
    for key, digits in (("issues_done", 0), ("points_done", 1), ("issues_total", 0), ("defects_open", 0),
                        ("wip", 0), ("worklog_hours", 1)):
        a, b = _sum(now, key), _sum(before, key)
        change, trend = _change(a, b, lang, digits=digits)
        out.append(Headline(key, t(f"digests.figure.{key}", lang), fmt_number(a, lang, digits=digits), change, trend))
    ratio_now, ratio_before = _sla_ratio(data.report), _sla_ratio(data.previous_report)
    if ratio_now is not None:
        change, trend = _change(ratio_now, ratio_before, lang, digits=0, ratio=True)
        out.append(Headline("sla_compliance", t("digests.figure.sla_compliance", lang), _pct(ratio_now, lang),
                            change, trend))
    return out


def project_labels(data: DigestData) -> dict[tuple[str, str], str]:
    """What each project is called in the tables: a Jira project by its key, a Trello board by its
    name; with the source's name beside it when two sources have a project of that name."""
    projects = {(p["source"], p["project"]) for p in (*data.report["projects"], *data.previous_report["projects"])}
    names = {k: data.board_names.get(k, k[1]) for k in projects}
    sources_of: dict[str, set[str]] = {}
    for (source, _), name in names.items():
        sources_of.setdefault(name, set()).add(source)
    return {k: f"{name} · {k[0]}" if len(sources_of[name]) > 1 else name for k, name in names.items()}


def _cut(rows: list[list[str]], lang: str) -> tuple[list[list[str]], str]:
    if len(rows) <= MAX_ROWS:
        return rows, ""
    return rows[:MAX_ROWS], t("digests.more_rows", lang, n=len(rows) - MAX_ROWS)


def _table(key: str, lang: str, columns: list[str], rows: list[list[str]], title: str | None = None) -> Table:
    shown, note = _cut(rows, lang)
    return Table(key, title or t(f"digests.table.{key}", lang), [t(f"digests.col.{c}", lang) for c in columns],
                 shown, len(rows), note)


def kpi_table(data: DigestData) -> Table | None:
    kpis = data.report.get("kpis")
    if kpis is None:
        return None
    lang = data.lang
    before = {(k["name"], k["source"], k["project"]): k for k in data.previous_report.get("kpis", [])}
    rows = []
    for k in kpis:
        prev = before.get((k["name"], k["source"], k["project"]))
        change, _ = _change(k["value"], prev["value"] if prev else None, lang, digits=2)
        target = "—" if k["target"] is None else f"{k['op']} {fmt_number(k['target'], lang, digits=2)}"
        rows.append([k["name"], k["project"], fmt_number(k["value"], lang, digits=2), target,
                     t(f"common.{k['status']}", lang), change])
    return _table("kpis", lang, ["kpi", "project", "value", "target", "status", "change"], rows)


def project_table(data: DigestData) -> Table:
    lang = data.lang
    labels = project_labels(data)
    before = {(p["source"], p["project"]): p for p in data.previous_report["projects"]}
    rows = []
    for p in data.report["projects"]:
        prev = before.get((p["source"], p["project"]))
        change, _ = _change(p["issues_done"], prev["issues_done"] if prev else None, lang, digits=0)
        rows.append([labels[(p["source"], p["project"])], fmt_number(p["issues_done"], lang, digits=0), change,
                     fmt_number(p["points_done"], lang), fmt_number(p["cycle_time_days"]["p85"], lang),
                     fmt_number(p["wip"], lang, digits=0), f"{p['defects_open']}/{p['defects_total']}",
                     _pct(p["sla_compliance"], lang)])
    return _table("projects", lang, ["project", "done", "change", "points", "cycle_p85", "wip", "defects", "sla"],
                  rows)


def sla_tables(data: DigestData) -> tuple[Table, Table, int]:
    lang = data.lang
    since, until = data.report["window"]["since"], data.report["window"]["until"]
    breached = [c for c in data.clocks
                if c["status"] == "breached" and c["breached_at"] and since <= c["breached_at"] < until]
    at_risk = [c for c in data.clocks if c["status"] == "at_risk"]

    def row(c: Mapping[str, Any]) -> list[str]:
        return [c["item"], c["policy"], t(f"common.{c['clock']}", lang),
                t("common.hours", lang, value=fmt_number(c["elapsed_hours"], lang)),
                t("common.hours", lang, value=fmt_number(c["target_hours"], lang)),
                _when(c["breached_at"], lang, with_time=True)]

    cols = ["item", "policy", "clock", "elapsed", "target", "breached_at"]
    breached.sort(key=lambda c: (c["breached_at"], c["source"], c["item"], c["clock"]))
    at_risk.sort(key=lambda c: (-(c["elapsed_hours"] / c["target_hours"] if c["target_hours"] else 0), c["item"]))
    return (_table("sla_breached", lang, cols, [row(c) for c in breached]),
            _table("sla_at_risk", lang, cols[:-1], [row(c)[:-1] for c in at_risk]), len(breached))


def forecast_tables(data: DigestData) -> list[Table]:
    lang = data.lang
    labels = project_labels(data)
    out = []
    projects = [p for p in data.report["projects"] if p.get("forecast")]
    if projects:
        rows = [[labels[(p["source"], p["project"])], fmt_number(p["forecast"]["remaining"], lang, digits=0),
                 *(_when(p["forecast"][f"date_p{q}"], lang) for q in (50, 85, 95))] for p in projects]
        out.append(_table("forecast_projects", lang, ["project", "remaining", "p50", "p85", "p95"], rows))
    versions = [v for v in data.report.get("versions", []) if not v.get("released")]
    if "versions" in data.report:
        rows = []
        for v in versions:
            release, forecast = v.get("release_date"), v.get("forecast_date_p85")
            late = bool(release and forecast and forecast[:10] > release[:10])
            rows.append([f"{v['project']} {v['version']}", f"{v['items_done']}/{v['items_total']}",
                         _when(release, lang), _when(forecast, lang),
                         t("digests.late", lang) if late else t("digests.on_track", lang)
                         if release and forecast else "—"])
        out.append(_table("forecast_versions", lang, ["version", "done_of_total", "release", "forecast_p85", "outlook"],
                          rows))
    return out


def people_table(data: DigestData) -> Table | None:
    lang = data.lang
    labels = project_labels(data)
    rows = [p for p in data.report["projects"] if p.get("people")]
    if not rows:
        return None
    rows.sort(key=lambda p: (p["people"]["bus_factor"] if p["people"]["bus_factor"] is not None else 1 << 30,
                             -(p["people"]["top_person_share"] or 0), p["project"]))
    body = [[labels[(p["source"], p["project"])], fmt_number(p["people"]["bus_factor"], lang, digits=0),
             p["people"]["top_person"] or "—", _pct(p["people"]["top_person_share"], lang),
             fmt_number(p["people"]["assignees"], lang, digits=0),
             fmt_number(p["people"]["unassigned_done"], lang, digits=0)] for p in rows]
    return _table("people", lang, ["project", "bus_factor", "top_person", "top_share", "assignees", "unassigned"],
                  body)


def chart_specs(data: DigestData) -> list[ChartSpec]:
    lang, sections = data.lang, set(data.digest.sections)
    report, extras = data.report, data.extras
    specs: list[ChartSpec] = []
    if "sprints" in sections:
        boards: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for s in report["sprints"]:
            boards.setdefault((s["source"], s["board"]), []).append(s)
        for i, ((source, board), rows) in enumerate(sorted(boards.items())[:MAX_BOARDS]):
            title = t("digests.chart.velocity", lang, board=data.board_names.get((source, board), board),
                      source=source)
            specs.append(ChartSpec(f"velocity-{i}", title, partial(charts.velocity_chart, rows, lang, title=title)))
        active = [s for s in report["sprints"] if s["state"] == "active"][:MAX_SPRINTS]
        for i, s in enumerate(active):
            samples = [b for b in extras["burndown"] if (b["source"], b["board"], b["sprint_id"])
                       == (s["source"], s["board"], s["sprint_id"])]
            title = t("digests.chart.burndown", lang, sprint=s["name"])
            specs.append(ChartSpec(f"burndown-{i}", title,
                                   partial(charts.burndown_chart, samples, lang, sprint_end=s["end"], title=title)))
    if "projects" in sections:
        since = report["window"]["since"]
        specs.append(ChartSpec("cfd", t("charts.cfd_title", lang),
                               lambda: charts.cumulative_flow_chart(extras["cfd"], lang, since=since)))
        specs.append(ChartSpec("cycle-time", t("charts.cycle_time_title", lang),
                               lambda: charts.cycle_time_chart(data.cycle_points, lang)))
    if "effort" in sections:
        specs.append(ChartSpec("hours", t("charts.hours_title", lang),
                               lambda: charts.hours_by_person_chart(report["worklogs_by_author"], lang)))
        if any(r["budget"] is not None for r in extras["cost"]):
            specs.append(ChartSpec("cost", t("charts.cost_title", lang),
                                   lambda: charts.cost_chart(extras["cost"], lang, currency=data.currency)))
    if "forecast" in sections and ("versions" in report or "epics" in report):
        bars = gantt_rows(report.get("versions", []), report.get("epics", []))
        specs.append(ChartSpec("gantt", t("charts.gantt_title", lang),
                               lambda: charts.gantt_chart(bars, lang, today=data.as_of)))
    return specs


def build_content(data: DigestData) -> DigestContent:
    lang, sections = data.lang, set(data.digest.sections)
    last_day = data.as_of.astimezone(_tz(data.digest.timezone))
    first_day = data.since.astimezone(_tz(data.digest.timezone))
    period = t("digests.period", lang, since=fmt_date(first_day, lang, with_time=True),
               until=fmt_date(last_day, lang, with_time=True))
    tables: list[Table] = []
    if "kpis" in sections and (kpis := kpi_table(data)) is not None:
        tables.append(kpis)
    if "projects" in sections:
        tables.append(project_table(data))
    breached_count = 0
    if "sla" in sections:
        breached, at_risk, breached_count = sla_tables(data)
        tables += [breached, at_risk]
    if "forecast" in sections:
        tables += forecast_tables(data)
    if "people" in sections and (people := people_table(data)) is not None:
        tables.append(people)
    return DigestContent(
        lang=lang, name=data.digest.name,
        subject=t("digests.subject", lang, name=data.digest.name, date=fmt_date(last_day, lang)),
        title=t("digests.title", lang, name=data.digest.name), period=period,
        headlines=headlines(data) if "kpis" in sections or "projects" in sections else [],
        tables=tables, charts=chart_specs(data), breached_in_period=breached_count,
    )


def _tz(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def render_charts(content: DigestContent) -> list[tuple[ChartSpec, bytes]]:
    """Each chart as PNG bytes (built and saved one at a time, so memory stays flat)."""
    out = []
    for spec in content.charts:
        fig = spec.build()
        out.append((spec, charts.to_png(fig, content.lang)))
    return out


def as_of_text(ts: datetime, lang: str) -> str:
    return fmt_date(ts, lang, with_time=True)
