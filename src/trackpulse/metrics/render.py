"""The human views of a metrics report: rich tables (per project, per sprint, per SLA
clock) and CSV files, one per report section and per extra figure.

Reads only the JSON-shaped dicts that `report` builds, so what a person sees and what
`--json` prints cannot disagree.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

REPORT_SECTIONS = ("projects", "sprints", "iterations", "worklogs_by_author", "sla", "people_by_project", "kpis",
                   "versions", "epics")
EXTRA_SECTIONS = ("velocity", "burndown", "weekly_throughput", "cfd", "timesheet", "cost")


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _stat(block: Mapping[str, Any]) -> str:
    if not block["count"]:
        return "—"
    return f"{block['p50']:.1f} / {block['p85']:.1f} / {block['p95']:.1f} (n={block['count']})"


_TRELLO_ID = re.compile(r"[0-9a-f]{24}")


def project_labels(report: Mapping[str, Any]) -> dict[tuple[str, str], str]:
    """(source, project) -> what people call it: a Trello board by its name (its id is 24 hex
    digits nobody reads), a Jira project by its key. JSON and CSV keep the ids."""
    out = {}
    for p in report.get("projects", []):
        name = p.get("project_name") or p["project"]
        out[(p["source"], p["project"])] = name if _TRELLO_ID.fullmatch(p["project"]) else p["project"]
    return out


def _project(labels: Mapping[tuple[str, str], str], row: Mapping[str, Any]) -> str:
    return labels.get((row["source"], row["project"]), row["project"])


def item_label(row: Mapping[str, Any]) -> str:
    """A row's item as people know it: the Jira key; a Trello card's shortLink (from its URL)."""
    item, url = str(row["item"]), str(row.get("item_url") or "")
    if _TRELLO_ID.fullmatch(item) and "/c/" in url:
        return url.rsplit("/", 1)[-1]
    return item


def project_table(report: Mapping[str, Any]) -> Table:
    table = Table(title=f"Projects as of {report['as_of']}")
    for name, justify in (("source", "left"), ("project", "left"), ("created", "right"), ("done", "right"),
                          ("points", "right"), ("per week", "right"), ("cycle d p50/p85/p95", "right"),
                          ("lead d p50/p85/p95", "right"), ("WIP", "right"), ("WIP age p85", "right"),
                          ("defects open/total", "right"), ("per KLOC", "right"), ("hours", "right"),
                          ("SLA met", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    labels = project_labels(report)
    for p in report["projects"]:
        sla = p["sla_compliance"]
        table.add_row(
            p["source"], _project(labels, p), str(p["issues_total"]), str(p["issues_done"]), _fmt(p["points_done"]),
            _fmt(p["throughput_per_week"]), _stat(p["cycle_time_days"]), _stat(p["lead_time_days"]),
            str(p["wip"]), _fmt(p["wip_age_days_p85"]), f"{p['defects_open']}/{p['defects_total']}",
            _fmt(p["defect_density_per_kloc"], 2), _fmt(p["worklog_hours"]),
            "—" if sla is None else f"{100 * sla:.0f}%",
        )
    return table


def sprint_table(report: Mapping[str, Any], extras: Mapping[str, Any] | None = None) -> Table:
    table = Table(title="Sprints")
    for name in ("source", "board", "sprint", "state", "start", "complete", "committed", "completed", "added",
                 "removed"):
        table.add_column(name, justify="right" if name in {"committed", "completed", "added", "removed"} else "left")
    for s in report["sprints"]:
        table.add_row(s["source"], s["board"], s["name"], s["state"], (s["start"] or "")[:10],
                      (s["complete"] or "")[:10], _fmt(s["committed_points"]), _fmt(s["completed_points"]),
                      _fmt(s["added_points"]), _fmt(s["removed_points"]))
    if extras and extras.get("velocity"):
        # Board ids repeat across sources (two Jiras both have a board 1): name the source too.
        caption = ", ".join(f"{v['source']} board {v['board']}: {_fmt(v['velocity_avg_3'])}"
                            for v in extras["velocity"])
        table.caption = f"velocity_avg_3 — {caption}"
    return table


def iteration_table(report: Mapping[str, Any]) -> Table:
    table = Table(title="Iterations")
    for name in ("source", "project", "start", "end", "completed"):
        table.add_column(name, justify="right" if name == "completed" else "left")
    labels = project_labels(report)
    for it in report["iterations"]:
        table.add_row(it["source"], _project(labels, it), it["start"][:10], it["end"][:10], _fmt(it["completed_points"]))
    return table


def sla_table(report: Mapping[str, Any], statuses: Sequence[str] = ("breached", "at_risk", "ongoing")) -> Table:
    """SLA clocks worth a look (by default every clock not met), worst first."""
    table = Table(title="SLA clocks")
    for name in ("item", "policy", "clock", "elapsed h", "target h", "status", "breached at"):
        table.add_column(name, justify="right" if name.endswith(" h") else "left")
    rank = {s: i for i, s in enumerate(("breached", "at_risk", "ongoing", "met"))}
    rows = sorted((c for c in report["sla"] if c["status"] in statuses),
                  key=lambda c: (rank[c["status"]], c["source"], c["item"], c["clock"]))
    style = {"breached": "red", "at_risk": "yellow"}
    for c in rows:
        table.add_row(item_label(c), c["policy"], c["clock"], _fmt(c["elapsed_hours"], 2), _fmt(c["target_hours"], 2),
                      f"[{style[c['status']]}]{c['status']}[/]" if c["status"] in style else c["status"],
                      c["breached_at"] or "")
    return table


def kpi_table(report: Mapping[str, Any]) -> Table:
    """§10: each KPI per project, met / missed / no data against its target."""
    table = Table(title="KPIs")
    for name in ("kpi", "source", "project", "figure", "value", "target", "baseline", "status"):
        table.add_column(name, justify="right" if name in {"value", "target", "baseline"} else "left")
    style = {"met": "green", "missed": "red", "no_data": "dim"}
    labels = project_labels(report)
    for k in report["kpis"]:
        table.add_row(k["name"], k["source"], _project(labels, k), k["figure"], _fmt(k["value"], 2),
                      f"{k['op']} {_fmt(k['target'], 2)}", _fmt(k["baseline_value"], 2),
                      f"[{style[k['status']]}]{k['status'].replace('_', ' ')}[/]")
    return table


def forecast_table(report: Mapping[str, Any]) -> Table:
    """§11: when the open work is done (50/85/95 % likely) and how much the horizon holds."""
    table = Table(title="Forecast (exact, from the daily throughput of the last window)")
    for name in ("source", "project", "open", "done by 50 %", "85 %", "95 %", "in horizon ≥ (50/85/95 %)"):
        table.add_column(name, justify="left" if name in {"source", "project"} else "right")
    labels = project_labels(report)
    for p in report["projects"]:
        f = p["forecast"]
        dates = [(f[f"date_p{q}"] or "—")[:10] for q in (50, 85, 95)]
        horizon = " / ".join(_fmt(f[f"done_in_horizon_p{q}"]) for q in (50, 85, 95))
        table.add_row(p["source"], _project(labels, p), str(f["remaining"]), *dates, f"{horizon} in {f['horizon_days']} d")
    return table


def people_table(report: Mapping[str, Any]) -> Table:
    """§9: key-person risk per project."""
    table = Table(title="People")
    for name in ("source", "project", "assignees", "bus factor", "top person", "top share", "unassigned done"):
        table.add_column(name, justify="left" if name in {"source", "project", "top person"} else "right")
    labels = project_labels(report)
    for p in report["projects"]:
        b = p["people"]
        share = b["top_person_share"]
        table.add_row(p["source"], _project(labels, p), str(b["assignees"]), _fmt(b["bus_factor"]), b["top_person"] or "—",
                      "—" if share is None else f"{100 * share:.0f}%", str(b["unassigned_done"]))
    return table


def version_table(report: Mapping[str, Any]) -> Table:
    """§13: versions with their progress and the 85 % forecast of unreleased ones."""
    table = Table(title="Versions")
    for name in ("source", "project", "version", "start", "release", "released", "items done/total",
                 "points done/total", "forecast 85 %"):
        table.add_column(name, justify="right" if "/" in name else "left")
    labels = project_labels(report)
    for v in report["versions"]:
        table.add_row(v["source"], _project(labels, v), v["version"], v["start"] or "—", v["release_date"] or "—",
                      "yes" if v["released"] else "no", f"{v['items_done']}/{v['items_total']}",
                      f"{_fmt(v['points_done'])}/{_fmt(v['points_total'])}", (v["forecast_date_p85"] or "—")[:10])
    return table


def render_report(report: Mapping[str, Any], extras: Mapping[str, Any] | None = None,
                  console: Console | None = None) -> None:
    """Print the report's tables; sections with no rows are skipped."""
    console = console or Console()
    console.print(project_table(report))
    if report["sprints"]:
        console.print(sprint_table(report, extras))
    if report["iterations"]:
        console.print(iteration_table(report))
    if report["sla"]:
        console.print(sla_table(report))
    if report.get("projects"):
        console.print(people_table(report))
        console.print(forecast_table(report))
    if report.get("kpis"):
        console.print(kpi_table(report))
    if report.get("versions"):
        console.print(version_table(report))


def _flatten(row: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}_"))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def section_csv(report: Mapping[str, Any], extras: Mapping[str, Any] | None, name: str) -> str:
    """One section as CSV text, flattened like `write_csv` (the API's `?format=csv`)."""
    rows = report.get(name, []) if name in REPORT_SECTIONS else (extras or {}).get(name, [])
    flat = [_flatten(r) for r in rows]
    header = list(flat[0]) if flat else _EMPTY_HEADERS.get(name, [])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, extrasaction="ignore")
    writer.writeheader()
    for r in flat:
        writer.writerow({k: "" if v is None else v for k, v in r.items()})
    return buf.getvalue()


def write_csv(report: Mapping[str, Any], extras: Mapping[str, Any] | None, directory: str | Path) -> list[Path]:
    """One CSV per section (`projects.csv`, `sprints.csv`, … and each extra figure), header
    always written; nested statistic blocks flatten to `cycle_time_days_p85` style columns,
    nulls to empty cells. Returns the files written."""
    out_dir = Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    sections: list[tuple[str, list[Mapping[str, Any]]]] = [(name, report.get(name, [])) for name in REPORT_SECTIONS]
    if extras is not None:
        sections += [(name, extras[name]) for name in EXTRA_SECTIONS if name in extras]
    written = []
    for name, rows in sections:
        flat = [_flatten(r) for r in rows]
        header = list(flat[0]) if flat else _EMPTY_HEADERS.get(name, [])
        path = out_dir / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore")
            writer.writeheader()
            for r in flat:
                writer.writerow({k: "" if v is None else v for k, v in r.items()})
        written.append(path)
    return written


_STATS = ("count", "mean", "p50", "p85", "p95")
_PEOPLE = ("assignees", "bus_factor", "top_person", "top_person_share", "unassigned_done")
_FORECAST = ("remaining", "window_days", "horizon_days", "days_p50", "days_p85", "days_p95", "date_p50", "date_p85",
             "date_p95", "done_in_horizon_p50", "done_in_horizon_p85", "done_in_horizon_p95")
_EMPTY_HEADERS: dict[str, list[str]] = {
    "projects": ["source", "project", "project_name", "issues_total", "issues_done", "defects_total", "defects_open", "points_done",
                 "defect_density_per_kloc", "defects_per_100_points", "throughput_per_week",
                 *[f"cycle_time_days_{s}" for s in _STATS], *[f"lead_time_days_{s}" for s in _STATS],
                 "worklog_hours", "wip", "wip_age_days_p85", "sla_compliance", "items_added_to_sprints",
                 "items_removed_from_sprints", *[f"people_{k}" for k in _PEOPLE], *[f"forecast_{k}" for k in _FORECAST],
                 "line_coverage", "lines_valid"],
    "sprints": ["source", "board", "sprint_id", "name", "state", "start", "end", "complete", "committed_points",
                "completed_points", "added_points", "removed_points", "scope_change_ratio"],
    "people_by_project": ["source", "project", "person", "items_done", "points_done", "worklog_hours"],
    "kpis": ["name", "source", "project", "figure", "value", "target", "op", "baseline_value", "status"],
    "versions": ["source", "project", "version", "start", "release_date", "released", "items_total", "items_done",
                 "points_total", "points_done", "forecast_date_p85"],
    "epics": ["source", "project", "epic", "summary", "items_total", "items_done", "points_total", "points_done",
              "started", "finished", "item_url"],
    "iterations": ["source", "project", "start", "end", "completed_points"],
    "worklogs_by_author": ["source", "project", "author", "hours"],
    "sla": ["source", "project", "item", "item_url", "policy", "clock", "target_hours", "elapsed_hours", "status", "breached_at"],
    "velocity": ["source", "board", "velocity_avg_3", "sprints_averaged"],
    "burndown": ["source", "board", "sprint_id", "at", "scope_points", "completed_points", "remaining_points",
                 "added_points", "removed_points"],
    "weekly_throughput": ["source", "project", "week_start", "items_done", "points_done"],
    "cfd": ["source", "project", "day", "todo", "in_progress", "done"],
    "timesheet": ["author", "week", "source", "project", "hours"],
    "cost": ["source", "project", "currency", "hours", "cost", "budget", "remaining", "budget_used"],
}
