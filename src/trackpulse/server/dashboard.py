"""The dashboard: one plain HTML page of status and metrics for a browser, in English or Chinese.

Deliberately static HTML (no scripts, no external assets) so it works offline and behind
any proxy. Everything shown comes from the same reports as the API. The HTML comes from
autoescaped Jinja2 templates (server/templates) because item keys and names come from the trackers.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from trackpulse.errors import TrackpulseError
from trackpulse.i18n import LANGUAGES, t
from trackpulse.reports import build_status, compute_report
from trackpulse.server.auth import require_token_or_query
from trackpulse.server.state import ServerState

router = APIRouter()

_TEMPLATES = Environment(loader=PackageLoader("trackpulse.server", "templates"),
                         autoescape=select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True)


def render_dashboard(status: dict[str, Any], report: dict[str, Any] | None, report_error: str | None,
                     lang: str = "en") -> str:
    """The page, from the autoescaped `dashboard.html` template: tracker-supplied text is escaped
    by Jinja2, never by remembering to call `escape()`; labels come from the zh/en catalogue."""
    never = t("server.never", lang)
    sources = [{
        "source": s["name"], "kind": s["kind"], "last_success": s["last_success"] or never,
        "items": s["counts"]["items"], "deleted": s["counts"]["deleted"],
        "webhooks_pending": s["counts"]["webhooks_pending"], "last_error": s["last_error"],
    } for s in status["sources"]]
    breaches = [c for c in (report or {}).get("sla", []) if c.get("status") in ("breached", "at_risk")]
    return _TEMPLATES.get_template("dashboard.html").render(
        lang=lang, t=lambda key, **kw: t(key, lang, **kw), status=status, report=report,
        report_error=report_error, sources=sources, breaches=breaches)


@router.get("/", response_class=HTMLResponse, dependencies=[Depends(require_token_or_query)])
def dashboard(request: Request, lang: str | None = None) -> HTMLResponse:
    state: ServerState = request.app.state.tp
    status = build_status(state.cfg, state.store)
    report: dict[str, Any] | None = None
    report_error: str | None = None
    try:
        report = compute_report(state.cfg, state.store)
    except TrackpulseError as exc:
        report_error = exc.one_line()
    # ?lang= switches and is remembered in a cookie; otherwise the cookie, then the server default.
    chosen = lang if lang in LANGUAGES else request.cookies.get("tp_lang")
    chosen = chosen if chosen in LANGUAGES else state.cfg.server.language
    response = HTMLResponse(render_dashboard(status, report, report_error, chosen))
    if lang in LANGUAGES:
        response.set_cookie("tp_lang", lang, max_age=365 * 86400, httponly=True, samesite="strict")
    return response
