"""The dashboard: server-rendered pages (Overview, Sprints, Flow, Schedule, People and cost,
Sync health) with inline SVG charts, a login form, chart downloads and the metric definitions.

Pages come from autoescaped Jinja2 templates (server/templates), because item keys and names
come from the trackers. No scripts and no external assets: the CSS and docs/metrics.md are
served from here, so the dashboard works offline. Access is the bearer token (scripts) or a
session cookie set by the login form (browsers), so the token never sits in a URL; a legacy
`?token=` link is answered with a redirect to the same page without it.
"""

from __future__ import annotations

import html
import re
import threading
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from trackpulse.i18n import LANGUAGES, fmt_number, t
from trackpulse.server.auth import _bearer, _configured_token
from trackpulse.server.dashboard_charts import TABS, ChartSpec, chart_specs, png_bytes, svg_markup
from trackpulse.server.dashboard_data import WINDOWS, DashboardCache, DashboardView, parse_window
from trackpulse.server.session import COOKIE, SESSION_SECONDS, Sessions
from trackpulse.server.state import ServerState

router = APIRouter()

_TEMPLATES = Environment(loader=PackageLoader("trackpulse.server", "templates"),
                         autoescape=select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True)
_SETUP_LOCK = threading.Lock()
TABLE_ROWS = 50
TAB_PATHS = {"overview": "/", **{tab: f"/{tab}" for tab in TABS if tab != "overview"}}


def _parts(request: Request) -> tuple[Sessions, DashboardCache]:
    """The app's session issuer and dashboard cache, created on first use (app.py stays untouched)."""
    app_state = request.app.state
    with _SETUP_LOCK:
        if not hasattr(app_state, "tp_dashboard"):
            state: ServerState = app_state.tp
            app_state.tp_sessions = Sessions()
            app_state.tp_dashboard = DashboardCache(state.cfg, state.store)
    return app_state.tp_sessions, app_state.tp_dashboard


def _lang(request: Request) -> str:
    lang = request.query_params.get("lang")
    chosen = lang if lang in LANGUAGES else request.cookies.get("tp_lang")
    return chosen if chosen in LANGUAGES else str(request.app.state.tp.cfg.server.language)


def _remember_lang(request: Request, response: Response) -> Response:
    lang = request.query_params.get("lang")
    if lang in LANGUAGES:
        response.set_cookie("tp_lang", lang, max_age=365 * 86400, httponly=True, samesite="strict")
    return response


def _signed_in(request: Request) -> bool:
    token = _configured_token(request)  # 503 without server.token
    sessions, _ = _parts(request)
    given = _bearer(request)
    if given is not None:
        import hmac

        return hmac.compare_digest(token.encode("utf-8"), given.encode("utf-8"))
    return sessions.valid(token, request.cookies.get(COOKIE))


def _set_session(request: Request, response: Response) -> None:
    sessions, _ = _parts(request)
    response.set_cookie(COOKIE, sessions.issue(_configured_token(request)), max_age=SESSION_SECONDS, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https", path="/")


def _render(name: str, lang: str, **context: Any) -> str:
    return _TEMPLATES.get_template(name).render(lang=lang, t=lambda key, **kw: t(key, lang, **kw),
                                                num=lambda v, d=1: fmt_number(v, lang, digits=d), **context)


# ----------------------------------------------------------------------------- login


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    _configured_token(request)
    lang = _lang(request)
    return _remember_lang(request, HTMLResponse(_render("login.html", lang, failed=False)))


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    token = _configured_token(request)
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    given = (form.get("token") or [""])[0].strip()
    import hmac

    if not given or not hmac.compare_digest(token.encode("utf-8"), given.encode("utf-8")):
        # One message for every failure: nothing tells a guesser how close they were.
        return HTMLResponse(_render("login.html", _lang(request), failed=True), status_code=401)
    response = RedirectResponse("/", status_code=303)
    _set_session(request, response)
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    sessions, _ = _parts(request)
    sessions.revoke(request.cookies.get(COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


# ----------------------------------------------------------------------------- pages


def _selection(request: Request) -> tuple[tuple[Any, str, str], list[str]]:
    q = request.query_params
    return parse_window(q.get("window"), q.get("since"), q.get("until")), [p for p in q.getlist("p") if p]


def _query(window: tuple[Any, str, str], projects: list[str], **more: str) -> str:
    pairs: list[tuple[str, str]] = [("window", window[0])]
    if window[0] == "custom":
        pairs += [("since", window[1]), ("until", window[2])]
    pairs += [("p", p) for p in projects]
    pairs += list(more.items())
    return urlencode(pairs)


def _guard(request: Request) -> Response | None:
    """None when signed in; otherwise the redirect to login (or, for a legacy `?token=` link
    with the right token, a session and a redirect to the same page without the token)."""
    if "token" in request.query_params:
        import hmac

        token = _configured_token(request)
        given = request.query_params["token"]
        clean = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
        if hmac.compare_digest(token.encode("utf-8"), given.encode("utf-8")):
            response = RedirectResponse(request.url.path + (f"?{clean}" if clean else ""), status_code=303)
            _set_session(request, response)
            return response
        return RedirectResponse("/login", status_code=303)
    if _signed_in(request):
        return None
    if _bearer(request) is not None:  # a script with a wrong token: a plain refusal, not a login page
        raise HTTPException(status_code=401, detail="missing or wrong bearer token",
                            headers={"WWW-Authenticate": "Bearer"})
    return RedirectResponse("/login", status_code=303)


def _page(request: Request, tab: str) -> Response:
    if (denied := _guard(request)) is not None:
        return denied
    _, cache = _parts(request)
    lang = _lang(request)
    window, projects = _selection(request)
    view = cache.view(window, projects)
    specs = [s for s in chart_specs(view, lang) if s.tab == tab]
    svgs = [(s, _cached_svg(view, s, lang)) for s in specs]
    query = _query(window, view.projects)
    body = _render(
        "dashboard.html", lang, tab=tab, tabs=TABS, tab_paths=TAB_PATHS, query=query, view=view,
        report=view.report, window=window, windows=WINDOWS, charts=svgs, status=_sync_rows(cache.status(), lang) if tab == "sync" else [],
        rows=TABLE_ROWS, lang_link=f"{request.url.path}?{_query(window, view.projects, lang='en' if lang == 'zh' else 'zh')}",
        csv_link="/api/metrics?format=csv&section=projects",
        breach_rows=_memo(view, "breaches", lambda: _breaches(view.clocks)) if tab == "overview" else [],
        kpi_rows=[{"kpi": k.get("name"), **k} for k in view.report.get("kpis", [])],
        people_rows=[{"source": p["source"], "project": p["project"], **(p.get("people") or {})}
                     for p in view.report.get("projects", [])],
        forecast_rows=[{"source": p["source"], "project": p["project"], **p["forecast"]}
                       for p in view.report.get("projects", []) if p.get("forecast")],
    )
    return _remember_lang(request, HTMLResponse(body))


def _memo(view: DashboardView, key: str, build: Any) -> Any:
    with view.charts_lock:
        if key not in view.charts:
            view.charts[key] = build()
        return view.charts[key]


def _breaches(clocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Open breaches, newest first, then clocks at risk: what a team lead acts on today."""
    breached = sorted((c for c in clocks if c["status"] == "breached"), key=lambda c: c["breached_at"] or "",
                      reverse=True)
    return breached + [c for c in clocks if c["status"] == "at_risk"]


def _cached_svg(view: DashboardView, spec: ChartSpec, lang: str) -> Any:
    key = (spec.slug, lang, "svg")
    with view.charts_lock:
        hit = view.charts.get(key)
    if hit is None:
        hit = svg_markup(spec, lang)
        with view.charts_lock:
            view.charts[key] = hit
    return hit


def _age(iso: str | None, now: datetime, lang: str) -> str:
    if not iso:
        return t("server.never", lang)
    seconds = (now - datetime.fromisoformat(iso)).total_seconds()
    hours = seconds / 3600
    return f"{fmt_number(hours / 24, lang)} d" if hours >= 48 else f"{fmt_number(hours, lang)} h"


def _second(iso: str | None) -> str | None:
    """An instant to the second (the status document keeps microseconds)."""
    return datetime.fromisoformat(iso).strftime("%Y-%m-%dT%H:%M:%SZ") if iso else None


def _sync_rows(status: dict[str, Any], lang: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [{"source": s["name"], "kind": s["kind"], "last_sync": _second(s["last_run_finished"]) or t("server.never", lang),
             "age": _age(s["last_run_finished"], now, lang), "last_error": s["last_error"],
             "items": s["counts"]["items"], "webhooks_pending": s["counts"]["webhooks_pending"],
             "webhooks_failed": s["counts"]["webhooks_failed"]}
            for s in status["sources"]]


@router.get("/", response_class=HTMLResponse)
def overview(request: Request) -> Response:
    return _page(request, "overview")


def _tab_route(tab: str) -> None:
    def handler(request: Request) -> Response:
        return _page(request, tab)
    router.add_api_route(f"/{tab}", handler, methods=["GET"], response_class=HTMLResponse, name=f"tab_{tab}")


for _tab in TABS[1:]:
    _tab_route(_tab)


@router.get("/charts/{slug}.{fmt}")
def chart_download(request: Request, slug: str, fmt: str) -> Response:
    """One chart as SVG or PNG, for the same window, projects and language as the page."""
    if fmt not in ("svg", "png"):
        raise HTTPException(status_code=404, detail=f"charts come as .svg or .png, not .{fmt}")
    if (denied := _guard(request)) is not None:
        return denied
    _, cache = _parts(request)
    lang = _lang(request)
    window, projects = _selection(request)
    view = cache.view(window, projects)
    spec = next((s for s in chart_specs(view, lang) if s.slug == slug), None)
    if spec is None:
        raise HTTPException(status_code=404, detail=f"no chart {slug!r} on the dashboard")
    name = f'attachment; filename="trackpulse-{slug}.{fmt}"'
    if fmt == "png":
        return Response(png_bytes(spec, lang), media_type="image/png", headers={"Content-Disposition": name})
    return Response(str(_cached_svg(view, spec, lang)), media_type="image/svg+xml",
                    headers={"Content-Disposition": name})


@router.get("/static/dashboard.css")
def stylesheet() -> Response:
    css = resources.files("trackpulse.server").joinpath("static/dashboard.css").read_text(encoding="utf-8")
    return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})


# Browsers ask for /favicon.ico on their own; answering it keeps a 404 out of every page's console.
FAVICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" '
           'fill="#0072B2"/><path d="M3 11 6 7l3 2 4-5" stroke="#fff" stroke-width="2" fill="none"/></svg>')


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    return Response(FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})


def _metrics_doc() -> str | None:
    # docs/metrics.md of the source tree (an editable or source install); None in a bare wheel.
    path = Path(__file__).resolve().parents[3] / "docs" / "metrics.md"
    return path.read_text(encoding="utf-8") if path.is_file() else None


_HEADING = re.compile(r"^(#{1,3}) (.*)$")


@router.get("/docs/metrics", response_class=HTMLResponse)
def metrics_doc() -> Response:
    """docs/metrics.md, served here so the dashboard's definition links work offline. Headings
    get anchors (`#s4` = section 4, `#extras` = the extra figures); the text stays as written."""
    text = _metrics_doc()
    if text is None:
        return HTMLResponse("<p>docs/metrics.md is part of the trackpulse source repository.</p>", status_code=404)
    out: list[str] = []
    seen: set[str] = set()
    block: list[str] = []

    def flush() -> None:
        if block:
            out.append("<pre>" + html.escape("\n".join(block)) + "</pre>")
            block.clear()
    for line in text.splitlines():
        m = _HEADING.match(line)
        if not m:
            block.append(line)
            continue
        flush()
        title = m.group(2)
        number = re.match(r"(\d+)\.", title)
        anchor = f"s{number.group(1)}" if number else ("extras" if title.startswith("Extra figures") else "")
        attr = f' id="{anchor}"' if anchor and anchor not in seen else ""
        seen.add(anchor)
        level = len(m.group(1))
        out.append(f"<h{level}{attr}>{html.escape(title)}</h{level}>")
    flush()
    page = ('<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" '
            'content="width=device-width, initial-scale=1"><title>trackpulse metrics</title>'
            '<link rel="stylesheet" href="/static/dashboard.css"></head><body class="doc">'
            + "".join(out) + "</body></html>")
    return HTMLResponse(page)
