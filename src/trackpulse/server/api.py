"""The JSON API: status, the metrics report and the webhook queue (bearer token required)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from trackpulse.errors import TrackpulseError
from trackpulse.reports import BadInstant, build_status, compute_report, parse_instant
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
) -> dict[str, Any]:
    """Same document as `trackpulse metrics --json` with the same options."""
    state = _state(request)
    try:
        as_of_ts = parse_instant(as_of, "as_of")
        since_ts = parse_instant(since, "since")
        until_ts = parse_instant(until, "until")
    except BadInstant as exc:
        raise HTTPException(status_code=400, detail=exc.one_line()) from None
    if source and source not in {s.name for s in state.cfg.sources}:
        raise HTTPException(status_code=404, detail=f"no source named {source!r}")
    try:
        return compute_report(state.cfg, state.store, as_of=as_of_ts, since=since_ts, until=until_ts,
                              sources=[source] if source else None)
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


@router.get("/webhooks/failed")
def api_webhooks_failed(request: Request, limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    """Deliveries that can never apply as they are (or gave up after their retries), with the reason;
    `trackpulse webhooks retry --failed` re-queues them after a fix."""
    state = _state(request)
    return {"failed": failed_deliveries(state.store, limit=limit)}
