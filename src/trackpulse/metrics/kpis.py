"""The KPI scorecard (METRICS.md §10): each `[[kpis]]` entry judged against the project
rows of the report (and, for `target_change`, against the same rows computed over the
baseline window).

Pure: project rows in, scorecard rows out; computing the baseline report is the
report module's job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from trackpulse.metrics.frames import KpiSpec


def figure_value(row: Mapping[str, Any], figure: str) -> float | None:
    """A project row's figure by its dotted name (`cycle_time_days.p85`, `people.bus_factor`)."""
    value: Any = row
    for part in figure.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return None if value is None else float(value)


def _matches(kpi: KpiSpec, row: Mapping[str, Any]) -> bool:
    return (not kpi.sources or row["source"] in kpi.sources) and (not kpi.projects or row["project"] in kpi.projects)


def kpi_rows(kpis: Sequence[KpiSpec], projects: Sequence[Mapping[str, Any]],
             baselines: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """One row per (KPI, matching project), sorted by name, source, project.

    `baselines` maps a KPI name to the project rows of its baseline window.
    """
    out = []
    for kpi in kpis:
        base_rows = {(r["source"], r["project"]): r for r in baselines.get(kpi.name, ())}
        for row in projects:
            if not _matches(kpi, row):
                continue
            value = figure_value(row, kpi.figure)
            baseline_value: float | None = None
            target = None if kpi.target is None else float(kpi.target)
            if kpi.target_change is not None:
                base = base_rows.get((row["source"], row["project"]))
                baseline_value = None if base is None else figure_value(base, kpi.figure)
                target = None if baseline_value is None else baseline_value * (1 + kpi.target_change)
            if value is None or target is None:
                status = "no_data"
            elif value >= target if kpi.op == ">=" else value <= target:
                status = "met"
            else:
                status = "missed"
            out.append({"name": kpi.name, "source": row["source"], "project": row["project"],
                        "figure": kpi.figure, "value": value, "target": target, "op": kpi.op,
                        "baseline_value": baseline_value, "status": status})
    return sorted(out, key=lambda r: (r["name"], r["source"], r["project"]))
