"""The dashboard: one plain HTML page of status and metrics for a browser.

Deliberately static HTML (no scripts, no external assets) so it works offline and behind
any proxy. Everything shown comes from the same reports as the API; every value is
escaped because item keys and names come from the trackers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from trackpulse.errors import TrackpulseError
from trackpulse.reports import build_status, compute_report
from trackpulse.server.auth import require_token_or_query
from trackpulse.server.state import ServerState

router = APIRouter()

_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
h1{margin-bottom:0}.sub{color:#666;margin-top:.2rem}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}.err{color:#b00}
"""


def _cell(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.2f}"
    if isinstance(v, dict) and "p50" in v:  # a statistic block
        return "–" if v.get("count", 0) == 0 else f"p50 {v['p50']:.1f} / p85 {v['p85']:.1f} (n={v['count']})"
    return escape(str(v))


def _table(title: str, columns: Sequence[str], rows: Iterable[dict[str, Any]], left: int = 1) -> str:
    rows = list(rows)
    head = "".join(f'<th class="{"l" if i < left else ""}">{escape(c)}</th>' for i, c in enumerate(columns))
    if not rows:
        return f"<h2>{escape(title)}</h2><p>none</p>"
    body = "".join(
        "<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{_cell(r.get(c))}</td>'
                         for i, c in enumerate(columns)) + "</tr>"
        for r in rows
    )
    return f"<h2>{escape(title)}</h2><table><tr>{head}</tr>{body}</table>"


def render_dashboard(status: dict[str, Any], report: dict[str, Any] | None, report_error: str | None) -> str:
    sources = [{
        "source": s["name"], "kind": s["kind"], "last success": s["last_success"] or "never",
        "items": s["counts"]["items"], "deleted": s["counts"]["deleted"],
        "webhooks pending": s["counts"]["webhooks_pending"], "last error": s["last_error"],
    } for s in status["sources"]]
    parts = [
        f"<h1>trackpulse</h1><p class='sub'>store {escape(status['store'])}"
        + (f" · as of {escape(report['as_of'])}" if report else "") + "</p>",
        _table("Sources", ["source", "kind", "last success", "items", "deleted", "webhooks pending", "last error"],
               sources, left=3),
    ]
    if report_error:
        parts.append(f"<p class='err'>metrics unavailable: {escape(report_error)}</p>")
    if report:
        parts.append(_table("Projects", [
            "source", "project", "issues_total", "issues_done", "defects_total", "defects_open", "points_done",
            "throughput_per_week", "cycle_time_days", "lead_time_days", "wip", "worklog_hours", "sla_compliance",
        ], report.get("projects", []), left=2))
        parts.append(_table("Sprints", [
            "source", "board", "name", "state", "start", "complete", "committed_points", "completed_points",
            "added_points", "removed_points",
        ], report.get("sprints", []), left=6))
        parts.append(_table("Iterations", ["source", "project", "start", "end", "completed_points"],
                            report.get("iterations", []), left=4))
        breaches = [c for c in report.get("sla", []) if c.get("status") in ("breached", "at_risk")]
        parts.append(_table("SLA breaches and clocks at risk", [
            "source", "project", "item", "policy", "clock", "status", "target_hours", "elapsed_hours", "breached_at",
        ], breaches, left=6))
    return ("<!doctype html><html><head><meta charset='utf-8'><title>trackpulse</title>"
            f"<style>{_CSS}</style></head><body>{''.join(parts)}</body></html>")


@router.get("/", response_class=HTMLResponse, dependencies=[Depends(require_token_or_query)])
def dashboard(request: Request) -> HTMLResponse:
    state: ServerState = request.app.state.tp
    status = build_status(state.cfg, state.store)
    report: dict[str, Any] | None = None
    report_error: str | None = None
    try:
        report = compute_report(state.cfg, state.store)
    except TrackpulseError as exc:
        report_error = exc.one_line()
    return HTMLResponse(render_dashboard(status, report, report_error))
