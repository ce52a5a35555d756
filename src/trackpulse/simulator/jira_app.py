"""The Jira simulator's HTTP surface: an ASGI app serving a `JiraWorld` as Cloud or Data Center.

Owns routing, authentication, paging rules, limits and error bodies of the Jira REST API v2/v3,
the Jira Software agile API and admin webhook registration, as described in
research/API_NOTES.md §1–§6. Response shapes come from `jira_render`; data from `jira_world`.

Every request passes one guard, in this order: request counting (`app.state.stats`), optional
latency, authentication (401), rate limit (429), fault injection (`app.state.faults`), then the
handler. A request refused by the guard never reaches a handler, so it has no side effect.

Usage::

    world = JiraWorld.generate(seed=1)
    app = create_jira_app(world, profile="cloud")
    with serve_in_thread(app) as base_url:
        httpx.get(f"{base_url}/rest/api/3/myself", auth=("sim@example.com", "sim-token"))
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import Any, Literal

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from trackpulse.simulator.jira_render import (
    AGILE_FIELDS,
    FieldSelection,
    JiraRenderer,
    adf_to_text,
    epoch_ms,
    jira_time,
)
from trackpulse.simulator.jira_world import (
    ISSUE_TYPES,
    PRIORITIES,
    PROFILES,
    STATUSES,
    JiraProfile,
    JiraWorld,
    SimIssue,
)
from trackpulse.simulator.jql import JqlError, JqlQuery, parse_jql
from trackpulse.simulator.ratelimit import BucketSpec, FaultInjector, RateLimiter
from trackpulse.simulator.webhooks import JiraWebhookHub

SEARCH_REMOVED_MESSAGE = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)
UNBOUNDED_MESSAGE = (
    "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
)
ISSUE_NOT_FOUND = "Issue does not exist or you do not have permission to see it."

SEARCH_JQL_ID_ONLY_MAX = 5000
SEARCH_JQL_MAX = 100
SEARCH_JQL_INLINE_CHANGELOG = 20
SEARCH_JQL_INLINE_COMMENTS = 20
BULKFETCH_MAX_ISSUES = 100
BULKFETCH_CHANGELOG = 40
GET_ISSUE_CHANGELOG = 100
CHANGELOG_BULK_MAX_ISSUES = 1000
CHANGELOG_BULK_MAX_FIELDS = 10
CHANGELOG_BULK_MAX_RESULTS = 10000
DC_SEARCH_MAX = 1000
DC_RESULT_WINDOW = 10000
WORKLOG_FEED_PAGE = 1000
WORKLOG_FEED_LAG = timedelta(minutes=1)


class ApiError(Exception):
    """Answer with Jira's error body `{"errorMessages": [...], "errors": {...}}`."""

    def __init__(
        self,
        status: int,
        *messages: str,
        errors: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, messages)
        self.status = status
        self.messages = list(messages)
        self.errors = errors or {}
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        return JSONResponse(
            {"errorMessages": self.messages, "errors": self.errors}, self.status, self.headers
        )


@dataclass
class SimStats:
    """Requests seen by the simulator, per (method, route template), and their statuses."""

    by_route: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    total: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, method: str, template: str) -> None:
        with self._lock:
            self.by_route[(method, template)] += 1
            self.total += 1

    def record_status(self, status: int) -> None:
        with self._lock:
            self.by_status[status] += 1

    def count(self, method: str | None = None, template: str | None = None) -> int:
        """Requests matching `method` and/or `template` (None matches any)."""
        with self._lock:
            return sum(
                n
                for (m, t), n in self.by_route.items()
                if (method is None or m == method) and (template is None or t == template)
            )

    def reset(self) -> None:
        with self._lock:
            self.by_route.clear()
            self.by_status.clear()
            self.total = 0

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {f"{m} {t}": n for (m, t), n in sorted(self.by_route.items())}


@dataclass
class JiraSimState:
    """Everything a test can reach through `app.state.sim` (also `app.state.stats` etc.)."""

    world: JiraWorld
    profile: JiraProfile
    email: str
    token: str
    latency_ms: float
    limiter: RateLimiter
    faults: FaultInjector
    stats: SimStats
    webhooks: JiraWebhookHub
    rate_limit_reason: str = "jira-burst-based"
    world_base_url: str = "http://127.0.0.1"
    # Data Center's `jira.search.views.default.max`: the most issues a search page holds (the
    # server clamps maxResults to it and echoes what it used). Admins lower or raise it.
    dc_search_max: int = DC_SEARCH_MAX
    search_cache: OrderedDict[tuple[str, int], list[int]] = field(default_factory=OrderedDict)
    renderers: dict[tuple[str, int], JiraRenderer] = field(default_factory=dict)
    # Seconds a comment POST waits AFTER the comment is stored, before answering: the caller sees
    # a timeout (or is killed) although the server side succeeded — the unknown-outcome case.
    comment_stall_seconds: float = 0.0

    def renderer(self, base_url: str, version: int) -> JiraRenderer:
        key = (base_url, version)
        r = self.renderers.get(key)
        if r is None:
            r = self.renderers[key] = JiraRenderer(self.world, self.profile, base_url, version)
            self.world_base_url = base_url
            self.webhooks.base_url = base_url
        return r


Handler = Callable[[Request, "Ctx"], Awaitable[Response]]


@dataclass
class Ctx:
    sim: JiraSimState
    r: JiraRenderer
    version: int

    @property
    def world(self) -> JiraWorld:
        return self.sim.world


def create_jira_app(
    world: JiraWorld,
    *,
    profile: Literal["cloud", "dc"] = "cloud",
    email: str = "sim@example.com",
    token: str = "sim-token",
    latency_ms: float = 0,
    rate_limit: RateLimiter | BucketSpec | None = None,
    faults: FaultInjector | None = None,
) -> Starlette:
    """Build the simulator app.

    `rate_limit` is a `RateLimiter`, one `BucketSpec` applied per (method, route), or None (unlimited).
    """
    prof = PROFILES[profile]
    limiter = rate_limit if isinstance(rate_limit, RateLimiter) else RateLimiter(rate_limit)
    sim = JiraSimState(
        world,
        prof,
        email,
        token,
        latency_ms,
        limiter,
        faults or FaultInjector(seed=0),
        SimStats(),
        JiraWebhookHub(world, prof),
    )
    routes: list[Route] = []
    versions = (2, 3) if prof.is_cloud else (2,)

    def add(
        path: str, handler: Handler, methods: list[str], *, version: int = 2, anonymous: bool = False
    ) -> None:
        template = re.sub(r":\w+}", "}", path)  # stats read "/board/{boardId}", not the converter
        routes.append(Route(path, _guard(sim, template, handler, version, anonymous), methods=methods))

    for v in versions:
        api = f"/rest/api/{v}"
        # Cloud-only resources come first so that /issue/bulkfetch is not taken for an issue key.
        if prof.is_cloud:
            add(f"{api}/search/jql", search_jql, ["GET", "POST"], version=v)
            add(f"{api}/search/approximate-count", approximate_count, ["POST"], version=v)
            add(f"{api}/issue/bulkfetch", bulkfetch_issues, ["POST"], version=v)
            add(f"{api}/changelog/bulkfetch", bulkfetch_changelogs, ["POST"], version=v)
            add(f"{api}/issue/{{issueIdOrKey}}/changelog", issue_changelog, ["GET"], version=v)
            add(f"{api}/worklog/updated", worklogs_updated, ["GET"], version=v)
            add(f"{api}/worklog/deleted", worklogs_deleted, ["GET"], version=v)
            add(f"{api}/worklog/list", worklogs_list, ["POST"], version=v)
        else:
            for path in (
                "search/jql",
                "search/approximate-count",
                "issue/bulkfetch",
                "changelog/bulkfetch",
                "issue/{issueIdOrKey}/changelog",
                "worklog/updated",
                "worklog/deleted",
                "worklog/list",
            ):
                routes.append(Route(f"{api}/{path}", _absent, methods=["GET", "POST", "PUT", "DELETE"]))
        add(f"{api}/serverInfo", server_info, ["GET"], version=v, anonymous=True)
        add(f"{api}/myself", myself, ["GET"], version=v)
        add(f"{api}/field", fields_list, ["GET"], version=v)
        add(f"{api}/status", statuses_list, ["GET"], version=v)
        add(f"{api}/issuetype", issue_types_list, ["GET"], version=v)
        add(f"{api}/priority", priorities_list, ["GET"], version=v)
        add(f"{api}/project", projects_list, ["GET"], version=v)
        add(f"{api}/project/{{projectIdOrKey}}", project_get, ["GET"], version=v)
        add(f"{api}/project/{{projectIdOrKey}}/versions", project_versions, ["GET"], version=v)
        add(f"{api}/search", search_removed if prof.is_cloud else search_dc, ["GET", "POST"], version=v)
        add(f"{api}/issue/{{issueIdOrKey}}", get_issue, ["GET"], version=v)
        add(f"{api}/issue/{{issueIdOrKey}}", edit_issue, ["PUT"], version=v)
        add(f"{api}/issue/{{issueIdOrKey}}/worklog", issue_worklogs, ["GET"], version=v)
        add(f"{api}/issue/{{issueIdOrKey}}/comment", issue_comments, ["GET"], version=v)
        add(f"{api}/issue/{{issueIdOrKey}}/comment", add_comment, ["POST"], version=v)
    add("/rest/agile/1.0/board", boards_list, ["GET"])
    add("/rest/agile/1.0/board/{boardId:int}", board_get, ["GET"])
    add("/rest/agile/1.0/board/{boardId:int}/configuration", board_configuration, ["GET"])
    add("/rest/agile/1.0/board/{boardId:int}/sprint", board_sprints, ["GET"])
    add("/rest/agile/1.0/board/{boardId:int}/issue", board_issues, ["GET"])
    add("/rest/agile/1.0/sprint/{sprintId:int}", sprint_get, ["GET"])
    add("/rest/agile/1.0/sprint/{sprintId:int}/issue", sprint_issues, ["GET"])
    add("/rest/webhooks/1.0/webhook", webhooks_list, ["GET"])
    add("/rest/webhooks/1.0/webhook", webhook_register, ["POST"])
    add("/rest/webhooks/1.0/webhook/{webhookId:int}", webhook_get, ["GET"])
    add("/rest/webhooks/1.0/webhook/{webhookId:int}", webhook_delete, ["DELETE"])

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        sim.stats.record(request.method, "<unmatched>")
        sim.stats.record_status(status)
        if status == 405:
            return JSONResponse({"errorMessages": ["Method Not Allowed"], "errors": {}}, 405)
        return JSONResponse({"message": f"null for uri: {request.url}", "status-code": 404}, 404)

    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
    app.state.sim = sim
    app.state.world = world
    app.state.stats = sim.stats
    app.state.faults = sim.faults
    app.state.rate_limiter = sim.limiter
    app.state.webhooks = sim.webhooks
    return app


async def _absent(request: Request) -> Response:
    """A Cloud-only resource asked of a Data Center server: 404 like any unknown path."""
    raise HTTPException(404)


# ----------------------------------------------------------------------------- the guard
def _authenticated(sim: JiraSimState, header: str | None) -> bool | None:
    """True if valid, False if credentials were sent but are wrong, None if none were sent."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            user, _, secret = base64.b64decode(value.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        if sim.profile.is_cloud:
            return user == sim.email and secret == sim.token
        return user in (sim.email, sim.world.service_user.name) and secret == sim.token
    if scheme.lower() == "bearer" and not sim.profile.is_cloud:
        return value.strip() == sim.token
    return False


def _guard(
    sim: JiraSimState, template: str, handler: Handler, version: int, anonymous: bool
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        sim.stats.record(request.method, template)
        response = await _guarded(request)
        sim.stats.record_status(response.status_code)
        return response

    async def _guarded(request: Request) -> Response:
        if sim.latency_ms:
            await asyncio.sleep(sim.latency_ms / 1000)
        auth = _authenticated(sim, request.headers.get("authorization"))
        if not auth and not (anonymous and auth is None):
            headers = {"WWW-Authenticate": 'Basic realm="protected-by-api-token"'}
            if auth is False:
                headers["X-Seraph-LoginReason"] = "AUTHENTICATED_FAILED"
            message = (
                "Client must be authenticated to access this resource."
                if sim.profile.is_cloud
                else "You are not authenticated. Authentication required to perform this operation."
            )
            return ApiError(401, message, headers=headers).response()
        decision = sim.limiter.check(f"{request.method} {template}")
        if not decision.allowed:
            reset = (sim.world.now + timedelta(seconds=decision.retry_after)).astimezone(UTC)
            return JSONResponse(
                {"errorMessages": ["Rate limit exceeded."], "errors": {}},
                429,
                {
                    "Retry-After": str(decision.retry_after),
                    "X-RateLimit-Limit": str(decision.limit),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": f"{reset:%Y-%m-%dT%H:%M}Z",
                    "RateLimit-Reason": sim.rate_limit_reason,
                    "X-RateLimit-NearLimit": "true",
                },
            )
        fault = sim.faults.check(request.method, request.url.path)
        if fault is not None:
            fheaders = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            body = fault.body or {"errorMessages": [f"Simulated failure ({fault.status})"], "errors": {}}
            return JSONResponse(body, fault.status, fheaders)
        base = str(request.base_url).rstrip("/")
        ctx = Ctx(sim, sim.renderer(base, version), version)
        try:
            response = await handler(request, ctx)
        except ApiError as err:
            return err.response()
        except JqlError as err:
            return ApiError(400, str(err)).response()
        if decision.near_limit and decision.limit:
            response.headers["X-RateLimit-NearLimit"] = "true"
            response.headers["X-RateLimit-Limit"] = str(decision.limit)
            response.headers["X-RateLimit-Remaining"] = str(decision.remaining)
        return response

    return endpoint


# ----------------------------------------------------------------------------- helpers
async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, f"Unexpected character in request body: {exc}") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "Can not deserialize instance of request bean out of START_ARRAY token")
    return body


def _int_param(value: Any, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ApiError(400, f"The value '{value}' for parameter '{name}' is not a valid number.") from exc


def _csv(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [v.strip() for part in value for v in str(part).split(",") if v.strip()]


def _query_list(request: Request, name: str) -> list[str] | None:
    values = request.query_params.getlist(name)
    return values or None


def _issue_or_404(ctx: Ctx, id_or_key: str) -> SimIssue:
    issue = ctx.world.find_issue(id_or_key)
    if issue is None:
        raise ApiError(404, ISSUE_NOT_FOUND)
    return issue


def _search(ctx: Ctx, query: JqlQuery) -> list[int]:
    """Issue ids matching `query`, in its order; cached per world version."""
    sim = ctx.sim
    key = (query.text, sim.world.version)
    hit = sim.search_cache.get(key)
    if hit is not None:
        return hit
    nids = [i.nid for i in query.run(sim.world)]
    sim.search_cache[key] = nids
    while len(sim.search_cache) > 32:
        sim.search_cache.popitem(last=False)
    return nids


def _encode_token(offset: int, signature: str) -> str:
    raw = json.dumps({"o": offset, "s": signature}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str | None, signature: str) -> int:
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        offset = int(data["o"])
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ApiError(400, "The provided next page token is invalid or expired.") from exc
    if data.get("s") != signature:
        raise ApiError(400, "The provided next page token is invalid or expired.")
    return offset


def _signature(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class _OrjsonResponse(JSONResponse):
    """The same compact UTF-8 JSON as starlette's, encoded by orjson: the standard library's
    encoder was a quarter of the simulator's time on 1000-issue search pages, time every client
    of a benchmark waited for alike (bench/bench_peers.py)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def _json(body: Any, status: int = 200) -> JSONResponse:
    return _OrjsonResponse(body, status)


# ----------------------------------------------------------------------------- platform: basics
async def server_info(request: Request, ctx: Ctx) -> Response:
    p = ctx.sim.profile
    with ctx.world.lock:
        now = ctx.world.now
    body = {
        "baseUrl": ctx.r.base,
        "displayUrl": ctx.r.base,
        "version": p.version,
        "versionNumbers": list(p.version_numbers),
        "deploymentType": p.deployment_type,
        "buildNumber": 100290 if p.is_cloud else 912004,
        "buildDate": "2026-01-20T00:00:00.000+0000",
        "serverTime": jira_time(now, "Etc/UTC"),
        "scmInfo": "7d7e3a1b4c0f2e9a8b6d5c4e3f2a1b0c9d8e7f6a",
        "serverTitle": "Jira",
        "defaultLocale": {"locale": "en_US"},
        "serverTimeZone": "Etc/UTC",
    }
    return _json(body)


async def myself(request: Request, ctx: Ctx) -> Response:
    body = ctx.r.user(ctx.world.service_user.id) or {}
    body.update(
        {
            "locale": "en_US",
            "groups": {"size": 1, "items": []},
            "applicationRoles": {"size": 1, "items": []},
            "expand": "groups,applicationRoles",
        }
    )
    return _json(body)


async def fields_list(request: Request, ctx: Ctx) -> Response:
    return _json(ctx.r.fields_catalogue())


async def statuses_list(request: Request, ctx: Ctx) -> Response:
    out = []
    for sid in STATUSES:
        s = ctx.r.status(sid)
        s["untranslatedName"] = s["name"]
        out.append(s)
    return _json(out)


async def issue_types_list(request: Request, ctx: Ctx) -> Response:
    return _json([ctx.r.issue_type(t) for t in ISSUE_TYPES])


async def priorities_list(request: Request, ctx: Ctx) -> Response:
    return _json([ctx.r.priority(p) for p in PRIORITIES])


async def projects_list(request: Request, ctx: Ctx) -> Response:
    with ctx.world.lock:
        return _json([ctx.r.project(k) for k in ctx.world.projects])


def _project_or_404(ctx: Ctx, ident: str) -> str:
    for key, p in ctx.world.projects.items():
        if ident in (key, p.id):
            return key
    raise ApiError(404, f"No project could be found with key '{ident}'.")


async def project_get(request: Request, ctx: Ctx) -> Response:
    with ctx.world.lock:
        return _json(ctx.r.project(_project_or_404(ctx, request.path_params["projectIdOrKey"])))


async def project_versions(request: Request, ctx: Ctx) -> Response:
    """`GET /project/{key}/versions`: every version, archived and released ones too, unpaged."""
    with ctx.world.lock:
        key = _project_or_404(ctx, request.path_params["projectIdOrKey"])
        return _json([ctx.r.version(v) for v in ctx.world.project_versions(key)])


# ----------------------------------------------------------------------------- search
async def _search_params(request: Request) -> dict[str, Any]:
    if request.method == "POST":
        return await _json_body(request)
    q = request.query_params
    params: dict[str, Any] = {k: q.get(k) for k in q}
    params["fields"] = _query_list(request, "fields")
    params["reconcileIssues"] = _query_list(request, "reconcileIssues")
    return params


async def search_removed(request: Request, ctx: Ctx) -> Response:
    raise ApiError(410, SEARCH_REMOVED_MESSAGE)


async def search_jql(request: Request, ctx: Ctx) -> Response:
    """Cloud enhanced search: nextPageToken paging, no total, bounded JQL only."""
    params = await _search_params(request)
    query = parse_jql(params.get("jql"))
    if not query.is_bounded:
        raise ApiError(400, UNBOUNDED_MESSAGE)
    reconcile = params.get("reconcileIssues") or []
    if len(_csv(reconcile) if not isinstance(reconcile, list) else reconcile) > 50:
        raise ApiError(400, "The number of issues to reconcile must not exceed 50.")
    expand = _csv(params.get("expand"))
    with ctx.world.lock:
        selection = FieldSelection(params.get("fields"), "id", ctx.r.issue_fields)
        cap = SEARCH_JQL_ID_ONLY_MAX if selection.id_only and not expand else SEARCH_JQL_MAX
        requested = _int_param(params.get("maxResults"), "maxResults", 50)
        if requested < 0:
            raise ApiError(400, "The maxResults parameter must not be negative.")
        max_results = min(max(requested, 1), cap)
        signature = _signature("search/jql", query.text)
        offset = _decode_token(params.get("nextPageToken"), signature)
        nids = _search(ctx, query)
        page = nids[offset : offset + max_results]
        issues = [
            ctx.r.issue(
                ctx.world.issues[n],
                selection,
                expand=expand,
                changelog_cap=SEARCH_JQL_INLINE_CHANGELOG,
                comment_cap=SEARCH_JQL_INLINE_COMMENTS,
            )
            for n in page
        ]
    body: dict[str, Any] = {"issues": issues}
    end = offset + len(page)
    if end < len(nids):
        body["nextPageToken"] = _encode_token(end, signature)
    body["isLast"] = end >= len(nids)
    if "names" in expand:
        body["names"] = {f: ctx.r.field_name(f) for f in selection.fields if f in ctx.r.issue_fields}
    return _json(body)


async def approximate_count(request: Request, ctx: Ctx) -> Response:
    body = await _json_body(request)
    query = parse_jql(body.get("jql"))
    if not query.is_bounded:
        raise ApiError(400, UNBOUNDED_MESSAGE)
    with ctx.world.lock:
        return _json({"count": len(_search(ctx, query))})


async def search_dc(request: Request, ctx: Ctx) -> Response:
    """Server/DC search: startAt paging with total; maxResults clamped to the site's
    `jira.search.views.default.max` (1000 unless changed); 10k result window."""
    params = await _search_params(request)
    query = parse_jql(params.get("jql"))
    start_at = max(0, _int_param(params.get("startAt"), "startAt", 0))
    max_results = min(max(0, _int_param(params.get("maxResults"), "maxResults", 50)), ctx.sim.dc_search_max)
    if start_at + max_results > DC_RESULT_WINDOW:
        raise ApiError(
            500,
            f"Search limit exceeded. The requested results ({start_at + max_results}) exceeded the "
            f"search platform limit of {DC_RESULT_WINDOW:,}. Narrow your query or page by date "
            f"ranges instead.",
        )
    expand = _csv(params.get("expand"))
    with ctx.world.lock:
        selection = FieldSelection(params.get("fields"), "*navigable", ctx.r.issue_fields)
        nids = _search(ctx, query)
        page = nids[start_at : start_at + max_results]
        issues = [
            ctx.r.issue(ctx.world.issues[n], selection, expand=expand, changelog_cap=None, comment_cap=None)
            for n in page
        ]
    return _json(
        {
            "expand": "schema,names",
            "startAt": start_at,
            "maxResults": max_results,
            "total": len(nids),
            "issues": issues,
        }
    )


# ----------------------------------------------------------------------------- issues
async def get_issue(request: Request, ctx: Ctx) -> Response:
    expand = _csv(request.query_params.get("expand"))
    with ctx.world.lock:
        issue = _issue_or_404(ctx, request.path_params["issueIdOrKey"])
        selection = FieldSelection(_query_list(request, "fields"), "*all", ctx.r.issue_fields)
        cap = GET_ISSUE_CHANGELOG if ctx.sim.profile.is_cloud else None
        body = ctx.r.issue(
            issue, selection, expand=expand, changelog_cap=cap, comment_cap=None, envelope=True
        )
    return _json(body)


async def bulkfetch_issues(request: Request, ctx: Ctx) -> Response:
    body = await _json_body(request)
    wanted = body.get("issueIdsOrKeys") or []
    if not isinstance(wanted, list) or not 1 <= len(wanted) <= BULKFETCH_MAX_ISSUES:
        raise ApiError(400, f"The number of issue IDs or keys must be between 1 and {BULKFETCH_MAX_ISSUES}.")
    expand = body.get("expand") or []
    expand = _csv(expand)
    with ctx.world.lock:
        selection = FieldSelection(body.get("fields"), "*navigable", ctx.r.issue_fields)
        found: dict[int, SimIssue] = {}
        for ident in wanted:
            issue = ctx.world.find_issue(str(ident))
            if issue is not None:  # missing or deleted issues are silently left out
                found[issue.nid] = issue
        issues = [
            ctx.r.issue(
                found[n],
                selection,
                expand=expand,
                changelog_cap=BULKFETCH_CHANGELOG,
                comment_cap=SEARCH_JQL_INLINE_COMMENTS,
            )
            for n in sorted(found)
        ]
    return _json({"issues": issues, "issueErrors": []})


async def edit_issue(request: Request, ctx: Ctx) -> Response:
    body = await _json_body(request)
    add: list[str] = []
    remove: list[str] = []
    replace: list[str] | None = None
    for name, ops in (body.get("update") or {}).items():
        if name != "labels":
            raise ApiError(
                400,
                errors={
                    name: f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
                },
            )
        for op in ops:
            if "add" in op:
                add.append(str(op["add"]))
            elif "remove" in op:
                remove.append(str(op["remove"]))
            elif "set" in op:
                replace = [str(x) for x in op["set"]]
    for name, value in (body.get("fields") or {}).items():
        if name != "labels":
            raise ApiError(
                400,
                errors={
                    name: f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
                },
            )
        replace = [str(x) for x in value]
    for label in add + (replace or []):
        if " " in label:
            raise ApiError(400, errors={"labels": f"The label '{label}' contains spaces which is invalid."})
    world = ctx.world
    with world.lock:
        issue = _issue_or_404(ctx, request.path_params["issueIdOrKey"])
        if replace is not None:
            world.change_labels(
                issue.nid, add=replace, remove=set(issue.labels) - set(replace), author=world.service_user.id
            )
        if add or remove:
            world.change_labels(issue.nid, add=add, remove=remove, author=world.service_user.id)
    return Response(status_code=204)


async def issue_changelog(request: Request, ctx: Ctx) -> Response:
    start_at = max(0, _int_param(request.query_params.get("startAt"), "startAt", 0))
    max_results = min(max(1, _int_param(request.query_params.get("maxResults"), "maxResults", 100)), 100)
    with ctx.world.lock:
        issue = _issue_or_404(ctx, request.path_params["issueIdOrKey"])
        total = len(issue.histories)
        values = [ctx.r.history(h) for h in issue.histories[start_at : start_at + max_results]]
    path = f"{ctx.r.api}/issue/{issue.nid}/changelog"
    is_last = start_at + len(values) >= total
    body: dict[str, Any] = {"self": f"{path}?maxResults={max_results}&startAt={start_at}"}
    if not is_last:
        body["nextPage"] = f"{path}?maxResults={max_results}&startAt={start_at + max_results}"
    body.update(
        {"maxResults": max_results, "startAt": start_at, "total": total, "isLast": is_last, "values": values}
    )
    return _json(body)


async def bulkfetch_changelogs(request: Request, ctx: Ctx) -> Response:
    """Histories of up to 1000 issues, oldest first by (created, issue id), paged by nextPageToken."""
    body = await _json_body(request)
    wanted = body.get("issueIdsOrKeys") or []
    if not isinstance(wanted, list) or not 1 <= len(wanted) <= CHANGELOG_BULK_MAX_ISSUES:
        raise ApiError(
            400, f"The number of issue IDs or keys must be between 1 and {CHANGELOG_BULK_MAX_ISSUES}."
        )
    field_ids = body.get("fieldIds") or []
    if len(field_ids) > CHANGELOG_BULK_MAX_FIELDS:
        raise ApiError(400, f"The number of field IDs must not exceed {CHANGELOG_BULK_MAX_FIELDS}.")
    max_results = _int_param(body.get("maxResults"), "maxResults", 1000)
    if not 1 <= max_results <= CHANGELOG_BULK_MAX_RESULTS:
        raise ApiError(400, f"maxResults must be between 1 and {CHANGELOG_BULK_MAX_RESULTS}.")
    signature = _signature("changelog/bulkfetch", wanted, field_ids)
    offset = _decode_token(body.get("nextPageToken"), signature)
    wanted_fields = set(field_ids) if field_ids else None
    with ctx.world.lock:
        issues = {}
        for ident in wanted:
            issue = ctx.world.find_issue(str(ident))
            if issue is not None:
                issues[issue.nid] = issue
        everything = sorted(
            ((h.created, h.issue_nid, h.id, h) for i in issues.values() for h in i.histories),
            key=lambda t: t[:3],
        )
        groups: dict[int, list[dict[str, Any]]] = {}
        # Filtering happens before paging, so a page holds maxResults matching histories.
        # `created` stays an ISO string (the spec example's epoch seconds is an outlier).
        rendered: list[tuple[int, dict[str, Any]]] = []
        for _, nid, _, h in everything:
            item = ctx.r.history(h, wanted_fields)
            if item is not None:
                rendered.append((nid, item))
        page = rendered[offset : offset + max_results]
        for nid, item in page:
            groups.setdefault(nid, []).append(item)
    out: dict[str, Any] = {
        "issueChangeLogs": [{"issueId": str(nid), "changeHistories": hs} for nid, hs in groups.items()]
    }
    end = offset + len(page)
    out["nextPageToken"] = _encode_token(end, signature) if end < len(rendered) else None
    return _json(out)


# ----------------------------------------------------------------------------- worklogs
async def issue_worklogs(request: Request, ctx: Ctx) -> Response:
    q = request.query_params
    start_at = max(0, _int_param(q.get("startAt"), "startAt", 0))
    max_results = min(max(1, _int_param(q.get("maxResults"), "maxResults", 5000)), 5000)
    after = _int_param(q.get("startedAfter"), "startedAfter", -1)
    before = _int_param(q.get("startedBefore"), "startedBefore", -1)
    with ctx.world.lock:
        issue = _issue_or_404(ctx, request.path_params["issueIdOrKey"])
        live = [
            w
            for w in issue.live_worklogs
            if (after < 0 or epoch_ms(w.started) >= after) and (before < 0 or epoch_ms(w.started) < before)
        ]
        page = [ctx.r.worklog(w) for w in live[start_at : start_at + max_results]]
    return _json({"startAt": start_at, "maxResults": max_results, "total": len(live), "worklogs": page})


def _changed_worklogs(request: Request, ctx: Ctx, deleted: bool) -> Response:
    since = max(0, _int_param(request.query_params.get("since"), "since", 0))
    world = ctx.world
    with world.lock:
        # Jira leaves out what changed during the minute before the request.
        horizon = epoch_ms(world.now - WORKLOG_FEED_LAG)
        rows: list[tuple[int, int]] = []
        for w in world.worklogs.values():
            if deleted:
                if w.deleted_at is None:
                    continue
                t = epoch_ms(w.deleted_at)
            else:
                if w.deleted_at is not None:
                    continue
                t = epoch_ms(w.updated)
            if since <= t < horizon:  # `since` inclusive [unverified]: clients must dedupe by id
                rows.append((t, w.id))
    rows.sort()
    page = rows[:WORKLOG_FEED_PAGE]
    last_page = len(rows) <= WORKLOG_FEED_PAGE
    until = page[-1][0] if page else since
    path = f"{ctx.r.api}/worklog/{'deleted' if deleted else 'updated'}"
    body: dict[str, Any] = {
        "values": [{"worklogId": wid, "updatedTime": t, "properties": []} for t, wid in page],
        "since": since,
        "until": until,
        "self": f"{path}?since={since}",
        "lastPage": last_page,
    }
    if not last_page:
        body["nextPage"] = f"{path}?since={until}"
    return _json(body)


async def worklogs_updated(request: Request, ctx: Ctx) -> Response:
    return _changed_worklogs(request, ctx, deleted=False)


async def worklogs_deleted(request: Request, ctx: Ctx) -> Response:
    return _changed_worklogs(request, ctx, deleted=True)


async def worklogs_list(request: Request, ctx: Ctx) -> Response:
    body = await _json_body(request)
    ids = body.get("ids") or []
    if not isinstance(ids, list) or not 1 <= len(ids) <= 1000:
        raise ApiError(400, "The request contains more than 1000 worklog IDs or is empty.")
    with ctx.world.lock:
        out = []
        for wid in ids:
            try:
                w = ctx.world.worklogs.get(int(wid))
            except (TypeError, ValueError):
                continue
            if w is not None and w.deleted_at is None and ctx.world.issues[w.issue_nid].deleted_at is None:
                out.append(ctx.r.worklog(w))
    return _json(out)


# ----------------------------------------------------------------------------- comments
async def issue_comments(request: Request, ctx: Ctx) -> Response:
    q = request.query_params
    start_at = max(0, _int_param(q.get("startAt"), "startAt", 0))
    default = 100 if ctx.sim.profile.is_cloud else 5000
    max_results = min(max(1, _int_param(q.get("maxResults"), "maxResults", default)), 5000)
    with ctx.world.lock:
        issue = _issue_or_404(ctx, request.path_params["issueIdOrKey"])
        live = issue.live_comments
        page = [ctx.r.comment(c) for c in live[start_at : start_at + max_results]]
    return _json({"startAt": start_at, "maxResults": max_results, "total": len(live), "comments": page})


async def add_comment(request: Request, ctx: Ctx) -> Response:
    body = await _json_body(request)
    raw = body.get("body")
    if ctx.version >= 3:
        if not isinstance(raw, dict) or raw.get("type") != "doc":
            raise ApiError(
                400, errors={"comment": "Comment body is not valid ADF (Atlassian Document Format)."}
            )
        text = adf_to_text(raw)
    else:
        if not isinstance(raw, str):
            raise ApiError(400, errors={"comment": "Comment body can not be empty!"})
        text = raw
    if not text.strip():
        raise ApiError(400, errors={"comment": "Comment body can not be empty!"})
    world = ctx.world
    with world.lock:
        issue = _issue_or_404(ctx, request.path_params["issueIdOrKey"])
        comment = world.add_comment(issue.nid, text, author=world.service_user.id)
        rendered = ctx.r.comment(comment)
    if ctx.sim.comment_stall_seconds:
        await asyncio.sleep(ctx.sim.comment_stall_seconds)
    return _json(rendered, 201)


# ----------------------------------------------------------------------------- agile
def _paged_values(
    request: Request, values: list[Any], default: int, *, with_total: bool = True
) -> dict[str, Any]:
    q = request.query_params
    start_at = max(0, _int_param(q.get("startAt"), "startAt", 0))
    max_results = min(max(1, _int_param(q.get("maxResults"), "maxResults", default)), default)
    page = values[start_at : start_at + max_results]
    out: dict[str, Any] = {"maxResults": max_results, "startAt": start_at}
    if with_total:
        out["total"] = len(values)
    out["isLast"] = start_at + len(page) >= len(values)
    out["values"] = page
    return out


def _board_or_404(ctx: Ctx, board_id: int) -> Any:
    board = ctx.world.boards.get(board_id)
    if board is None:
        raise ApiError(404, "Board does not exist or you do not have permission to see it.")
    return board


async def boards_list(request: Request, ctx: Ctx) -> Response:
    q = request.query_params
    types = set(_csv(q.get("type")))
    name = (q.get("name") or "").casefold()
    project = (q.get("projectKeyOrId") or "").casefold()
    with ctx.world.lock:
        boards = []
        for b in sorted(ctx.world.boards.values(), key=lambda b: b.id):
            p = ctx.world.projects[b.project_key]
            if types and b.type not in types:
                continue
            if name and name not in b.name.casefold():
                continue
            if project and project not in (p.key.casefold(), p.id):
                continue
            boards.append(ctx.r.board(b.id))
    return _json(_paged_values(request, boards, 50))


async def board_get(request: Request, ctx: Ctx) -> Response:
    with ctx.world.lock:
        board = _board_or_404(ctx, request.path_params["boardId"])
        return _json(ctx.r.board(board.id))


async def board_configuration(request: Request, ctx: Ctx) -> Response:
    with ctx.world.lock:
        board = _board_or_404(ctx, request.path_params["boardId"])
        return _json(ctx.r.board_configuration(board.id))


_STATE_ORDER = {"closed": 0, "active": 1, "future": 2}


async def board_sprints(request: Request, ctx: Ctx) -> Response:
    states = set(_csv(request.query_params.get("state"))) or set(_STATE_ORDER)
    unknown = states - set(_STATE_ORDER)
    if unknown:
        raise ApiError(400, f"The sprint state '{min(unknown)}' is not valid.")
    with ctx.world.lock:
        board = _board_or_404(ctx, request.path_params["boardId"])
        if board.type != "scrum":
            raise ApiError(400, "The board does not support sprints")
        sprints = sorted(
            (s for s in ctx.world.board_sprints(board.id) if s.state in states),
            key=lambda s: (_STATE_ORDER[s.state], s.id),
        )
        values = [ctx.r.agile_sprint(s) for s in sprints]
    return _json(_paged_values(request, values, 50, with_total=False))


async def sprint_get(request: Request, ctx: Ctx) -> Response:
    with ctx.world.lock:
        sprint = ctx.world.sprints.get(request.path_params["sprintId"])
        if sprint is None or sprint.state == "deleted":
            raise ApiError(404, "Sprint does not exist or you do not have permission to see it.")
        return _json(ctx.r.agile_sprint(sprint))


def _agile_issue_page(request: Request, ctx: Ctx, base_filter: Callable[[SimIssue], bool]) -> Response:
    q = request.query_params
    query = parse_jql(q.get("jql"))
    start_at = max(0, _int_param(q.get("startAt"), "startAt", 0))
    max_results = min(max(1, _int_param(q.get("maxResults"), "maxResults", 50)), ctx.sim.dc_search_max)
    expand = _csv(q.get("expand"))
    with ctx.world.lock:
        pred = query.compile(ctx.world)
        matched = [i for i in ctx.world.live_issues() if base_filter(i) and pred(i)]
        # The agile API orders by rank unless the JQL says otherwise; rank follows creation here.
        matched.sort(key=query.sort_key())
        known = ctx.r.issue_fields + AGILE_FIELDS
        selection = FieldSelection(_query_list(request, "fields"), "*all", known)
        issues = [
            ctx.r.issue(i, selection, expand=expand, changelog_cap=None, comment_cap=None, agile=True)
            for i in matched[start_at : start_at + max_results]
        ]
    return _json(
        {
            "expand": "schema,names",
            "startAt": start_at,
            "maxResults": max_results,
            "total": len(matched),
            "issues": issues,
        }
    )


async def board_issues(request: Request, ctx: Ctx) -> Response:
    with ctx.world.lock:
        board = _board_or_404(ctx, request.path_params["boardId"])
    return _agile_issue_page(request, ctx, lambda i: i.project_key == board.project_key)


async def sprint_issues(request: Request, ctx: Ctx) -> Response:
    sprint_id = request.path_params["sprintId"]
    if sprint_id not in ctx.world.sprints:
        raise ApiError(404, "Sprint does not exist or you do not have permission to see it.")
    return _agile_issue_page(request, ctx, lambda i: sprint_id in i.sprints)


# ----------------------------------------------------------------------------- admin webhooks
def _render_webhook(ctx: Ctx, reg: Any) -> dict[str, Any]:
    out = {
        "name": reg.name,
        "url": reg.url,
        "events": reg.events,
        "filters": {},
        "excludeBody": reg.exclude_body,
        "self": f"{ctx.r.base}/rest/webhooks/1.0/webhook/{reg.id}",
        "enabled": reg.enabled,
        "lastUpdatedUser": ctx.world.service_user.account_id,
        "lastUpdatedDisplayName": ctx.world.service_user.display_name,
        "lastUpdated": epoch_ms(reg.created),
    }
    if reg.jql_filter:
        out["filters"] = {"issue-related-events-section": reg.jql_filter}
    return out


async def webhook_register(request: Request, ctx: Ctx) -> Response:
    body = await _json_body(request)
    url, events = body.get("url"), body.get("events")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ApiError(400, errors={"url": "The URL must be a valid http(s) URL."})
    if not isinstance(events, list) or not events:
        raise ApiError(400, errors={"events": "At least one event is required."})
    jql_filter = (body.get("filters") or {}).get("issue-related-events-section") or None
    if jql_filter:
        parse_jql(jql_filter)
    reg = ctx.world.register_webhook(
        str(body.get("name") or url),
        url,
        [str(e) for e in events],
        jql_filter=jql_filter,
        exclude_body=bool(body.get("excludeBody", False)),
        secret=body.get("secret") or None,
    )
    return _json(_render_webhook(ctx, reg), 201)


async def webhooks_list(request: Request, ctx: Ctx) -> Response:
    with ctx.world.lock:
        return _json([_render_webhook(ctx, r) for r in ctx.world.webhooks.values()])


async def webhook_get(request: Request, ctx: Ctx) -> Response:
    reg = ctx.world.webhooks.get(request.path_params["webhookId"])
    if reg is None:
        raise ApiError(404, "Webhook not found.")
    return _json(_render_webhook(ctx, reg))


async def webhook_delete(request: Request, ctx: Ctx) -> Response:
    with ctx.world.lock:
        if ctx.world.webhooks.pop(request.path_params["webhookId"], None) is None:
            raise ApiError(404, "Webhook not found.")
    return Response(status_code=204)
