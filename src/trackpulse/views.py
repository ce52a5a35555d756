"""Rich tables and JSON printing shared by the CLI and the demo (one module, so neither imports the other)."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.table import Table


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def fmt_float(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def sync_summary_table(results: list[Any], title: str = "sync summary") -> Table:
    table = Table(title=title)
    for col in ("source", "mode", "items", "histories", "worklogs", "comments", "deleted", "requests",
                "requests/item", "seconds"):
        table.add_column(col, justify="left" if col in ("source", "mode") else "right")
    for r in results:
        table.add_row(r.source, "full" if r.full else "incremental", str(r.items), str(r.histories),
                      str(r.worklogs), str(r.comments), str(r.deleted), str(r.requests),
                      fmt_float(r.requests_per_item), fmt_float(r.seconds, 1))
    return table


def short_ts(iso: str | None) -> str | None:
    """2026-03-02T09:00:00.123456Z -> 2026-03-02 09:00:00Z: tables are read, JSON keeps precision."""
    return iso[:19].replace("T", " ") + "Z" if iso else None


_COUNT_COLUMNS = {"items", "deleted", "histories", "worklogs", "comments", "sprints", "webhooks pending",
                  "webhooks failed"}


def jobs_table(jobs: list[dict[str, Any]]) -> Table:
    """`trackpulse status`: the schedule, per job (claims in the store, next firing from the config)."""
    table = Table(title="schedule")
    for col in ("job", "last run", "status", "next run", "held by", "runs", "takeovers", "last error"):
        table.add_column(col, overflow="fold", justify="right" if col in ("runs", "takeovers") else "left")
    for j in jobs:
        table.add_row(j["job"], short_ts(j["last_run"]) or "never", j["last_status"] or "-",
                      short_ts(j["next_run"]) or "-", j["holder"] or "-", str(j["runs"]), str(j["takeovers"]),
                      j["last_error"] or "-")
    return table


def status_table(report: dict[str, Any]) -> Table:
    table = Table(title=f"trackpulse status ({report['store']})")
    for col in ("source", "kind", "last success", "last run", "cursor", "items", "deleted", "histories",
                "worklogs", "comments", "sprints", "webhooks pending", "webhooks failed", "last error"):
        table.add_column(col, overflow="fold", justify="right" if col in _COUNT_COLUMNS else "left")
    for s in report["sources"]:
        c = s["counts"]
        # The newest tracker instant any cursor stands at (its connector reads them): where the next
        # incremental run resumes.
        cursors = short_ts(s.get("cursor_at")) or "-"
        table.add_row(
            s["name"] + ("" if s["configured"] else " (not configured)"), s["kind"] or "-",
            short_ts(s["last_success"]) or "never",
            short_ts(s["last_run_finished"] or s["last_run_started"]) or "never", cursors,
            str(c["items"]), str(c["deleted"]), str(c["histories"]), str(c["worklogs"]), str(c["comments"]),
            str(c["sprints"]), str(c["webhooks_pending"]), str(c["webhooks_failed"]), s["last_error"] or "-",
        )
    return table
