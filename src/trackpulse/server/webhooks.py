"""Webhook intake: the HTTP endpoints trackers post to (INTERFACE.md, "Webhook endpoints").

Each request is checked in the same order: known source of that tracker (else 404),
signature over the raw body (else 401), a body shaped like that tracker's webhook (else
400). Only then is it stored in the durable queue and answered: 202 for a new delivery,
200 for one seen before. Nothing is written before the signature is verified, and no
body or secret is ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from trackpulse import jsonio
from trackpulse.config import JiraSourceConfig, TrelloSourceConfig
from trackpulse.errors import StoreError
from trackpulse.server.state import ServerState
from trackpulse.server.webhook_queue import BODY_HASH_PREFIX

log = logging.getLogger("trackpulse.webhooks")

router = APIRouter()


def jira_signature(secret: str, raw_body: bytes) -> str:
    """The `X-Hub-Signature` value Jira sends for `raw_body` (tests and the demo sign with it)."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), raw_body, hashlib.sha256).hexdigest()


def verify_jira_signature(secret: str, raw_body: bytes, header: str | None) -> bool:
    if not header:
        return False
    algo, _, digest = header.strip().partition("=")
    if algo.lower() != "sha256" or not digest:
        return False
    expected = hmac.new(secret.encode("utf-8"), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, digest.strip().lower())


def _reject(state: ServerState, source: str, tracker: str, status: int, outcome: str, detail: str) -> JSONResponse:
    state.telemetry.delivery(source, tracker, outcome)
    log.info("webhook %s/%s rejected with %d: %s", tracker, source, status, detail)
    return JSONResponse({"detail": detail}, status_code=status)


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.tp
    return state


def _jira_source(state: ServerState, name: str) -> JiraSourceConfig | None:
    return next((s for s in state.cfg.sources if s.name == name and isinstance(s, JiraSourceConfig)), None)


def _trello_source(state: ServerState, name: str) -> TrelloSourceConfig | None:
    return next((s for s in state.cfg.sources if s.name == name and isinstance(s, TrelloSourceConfig)), None)


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        body = jsonio.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


async def _store(
    state: ServerState, tracker: str, source: str, delivery_id: str, event: str, body: dict[str, Any],
    headers: dict[str, str],
) -> Response:
    try:
        created = await state.webhooks.accept_async(source, delivery_id, event, body, headers)
    except (SQLAlchemyError, StoreError) as exc:
        # 503 makes the tracker retry later; the delivery was not stored.
        log.error("webhook %s/%s could not be stored: %s", tracker, source, type(exc).__name__)
        state.telemetry.delivery(source, tracker, "store_error")
        return JSONResponse({"detail": "store unavailable, retry later"}, status_code=503)
    state.telemetry.delivery(source, tracker, "accepted" if created else "duplicate")
    return JSONResponse({"status": "accepted" if created else "duplicate", "delivery": delivery_id},
                        status_code=202 if created else 200)


@router.post("/webhooks/jira/{source}")
async def jira_webhook(source: str, request: Request) -> Response:
    state = _state(request)
    src = _jira_source(state, source)
    if src is None:
        return _reject(state, source, "jira", 404, "unknown_source", f"no Jira source named {source!r}")
    raw = await request.body()
    secret = src.webhook_secret.get_secret_value() if src.webhook_secret else None
    if not secret:
        return _reject(state, source, "jira", 401, "bad_signature",
                       f"source {source} has no webhook_secret configured; deliveries cannot be verified")
    if not verify_jira_signature(secret, raw, request.headers.get("x-hub-signature")):
        return _reject(state, source, "jira", 401, "bad_signature", "missing or wrong X-Hub-Signature")
    body = _json_object(raw)
    if body is None or not isinstance(body.get("webhookEvent"), str):
        return _reject(state, source, "jira", 400, "bad_body",
                       "not a Jira webhook: expected a JSON object with webhookEvent")
    delivery_id = request.headers.get("x-atlassian-webhook-identifier") or (
        BODY_HASH_PREFIX + hashlib.sha256(raw).hexdigest()
    )
    headers = {k: v for k, v in request.headers.items() if k.startswith("x-atlassian-")}
    return await _store(state, "jira", source, delivery_id, body["webhookEvent"], body, headers)


def trello_callback_url(state: ServerState, src: TrelloSourceConfig, request: Request) -> str:
    """The URL Trello signed: as registered (callback_url), else derived from public_url, else as received."""
    return state.cfg.webhook_url(src) or str(request.url)


@router.head("/webhooks/trello/{source}")
async def trello_webhook_check(source: str, request: Request) -> Response:
    # Trello sends HEAD when a webhook is created and refuses to create it on anything but 200.
    if _trello_source(_state(request), source) is None:
        return Response(status_code=404)
    return Response(status_code=200)


@router.post("/webhooks/trello/{source}")
async def trello_webhook(source: str, request: Request) -> Response:
    state = _state(request)
    src = _trello_source(state, source)
    if src is None:
        return _reject(state, source, "trello", 404, "unknown_source", f"no Trello source named {source!r}")
    raw = await request.body()
    secret = src.app_secret.get_secret_value() if src.app_secret else None
    header = request.headers.get("x-trello-webhook")
    if not secret:
        return _reject(state, source, "trello", 401, "bad_signature",
                       f"source {source} has no app_secret configured; deliveries cannot be verified")
    from trackpulse.connectors.trello import verify_trello_signature

    if not header or not verify_trello_signature(secret, raw, trello_callback_url(state, src, request), header):
        return _reject(state, source, "trello", 401, "bad_signature", "missing or wrong X-Trello-Webhook")
    body = _json_object(raw)
    action = body.get("action") if body else None
    if (not isinstance(action, dict) or not isinstance(action.get("id"), str) or not action["id"]
            or not isinstance(action.get("type"), str)):
        return _reject(state, source, "trello", 400, "bad_body",
                       "not a Trello webhook: expected JSON with action.id and action.type")
    assert body is not None
    return await _store(state, "trello", source, action["id"], action["type"], body, {})

