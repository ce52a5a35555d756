"""The JSON API: status, the metrics report and the webhook queue (bearer token required)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from trackpulse.errors import TrackpulseError
from trackpulse.metrics.render import EXTRA_SECTIONS, REPORT_SECTIONS, section_csv
from trackpulse.reports import (
    BadInstant,
    build_status,
    compute_report,
    compute_report_and_extras,
    parse_instant,
)
from trackpulse.server.auth import require_token
from trackpulse.server.state import ServerState
from trackpulse.server.webhook_queue import delivery_counts, failed_deliveries

router = APIRouter(prefix="/api", dependencies=[Depends(require_token)])


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.tp
    return state


@router.get("/status")
def api_status(request: Request) -> dict[str, Any]:
    """Same document as `trackpulse status --json`."""
    state = _state(request)
    return build_status(state.cfg, state.store)


@router.get("/metrics")
def api_metrics(
    request: Request,
    as_of: str | None = Query(None, description="ISO 8601; default now"),
    since: str | None = Query(None),
    until: str | None = Query(None),
    source: str | None = Query(None),
    format: str = Query("json", description="json, or csv: one section (`section`) as CSV"),
    section: str = Query("projects", description="with format=csv: a report or extra section"),
) -> Any:
    """Same document as `trackpulse metrics --json` with the same options; `format=csv` gives
    one section as CSV, flattened as `trackpulse metrics --csv` writes it."""
    state = _state(request)
    try:
        as_of_ts = parse_instant(as_of, "as_of")
        since_ts = parse_instant(since, "since")
        until_ts = parse_instant(until, "until")
    except BadInstant as exc:
        raise HTTPException(status_code=400, detail=exc.one_line()) from None
    if source and source not in {s.name for s in state.cfg.sources}:
        raise HTTPException(status_code=404, detail=f"no source named {source!r}")
    if format not in ("json", "csv"):
        raise HTTPException(status_code=400, detail=f"format: {format!r} is not json or csv")
    if format == "csv" and section not in (*REPORT_SECTIONS, *EXTRA_SECTIONS):
        raise HTTPException(status_code=400, detail=f"section: {section!r} is not one of "
                                                    + ", ".join((*REPORT_SECTIONS, *EXTRA_SECTIONS)))
    chosen = [source] if source else None
    try:
        if format == "csv":
            report, extras = compute_report_and_extras(state.cfg, state.store, as_of=as_of_ts, since=since_ts,
                                                       until=until_ts, sources=chosen)
            return Response(section_csv(report, extras, section), media_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{section}.csv"'})
        return compute_report(state.cfg, state.store, as_of=as_of_ts, since=since_ts, until=until_ts,
                              sources=chosen)
    except TrackpulseError as exc:
        raise HTTPException(status_code=500, detail=exc.one_line()) from None


@router.get("/webhooks/pending")
def api_webhooks_pending(request: Request) -> dict[str, int]:
    """Deliveries accepted but not yet applied (in memory and in the store): `retrying` of them
    failed transiently and wait for their next try; `failed` ones are given up on (see /failed)."""
    state = _state(request)
    counts = delivery_counts(state.store)
    return {"outstanding": state.webhooks.outstanding(), "unprocessed_in_store": counts["pending"],
            "retrying": counts["retrying"], "failed": counts["failed"]}


@router.get("/webhooks/evaluated")
def api_webhooks_evaluated(request: Request, since: float = Query(0.0, ge=0.0)) -> dict[str, Any]:
    """How far the alert rules have followed webhook intake: `evaluated` deliveries so far, and
    `marks`, [unix time, evaluated so far] at the end of each evaluation since `since` (unix
    seconds; the last 100,000 are kept), from which the lag of each delivery can be read."""
    return _state(request).telemetry.evaluation_progress(since)


@router.get("/webhooks/failed")
def api_webhooks_failed(request: Request, limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    """Deliveries that can never apply as they are (or gave up after their retries), with the reason;
    `trackpulse webhooks retry --failed` re-queues them after a fix."""
    state = _state(request)
    return {"failed": failed_deliveries(state.store, limit=limit)}
