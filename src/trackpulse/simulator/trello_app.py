"""The Trello REST API over a `TrelloWorld`, served the way api.trello.com serves it.

`create_trello_app(world, key=..., token=..., app_secret=...)` returns an ASGI app whose
`app.state.sim` (`TrelloSimulator`) holds what tests look at and steer: request stats with
monotonic timestamps, rate-limit windows, fault rules, registered webhooks and the outbox of
signed deliveries.

Faithful where the connector depends on it (API_NOTES.md §8–§11, fixtures/trello, the
OpenAPI file):
- auth by `key` + `token` query parameters or `Authorization: OAuth oauth_consumer_key=…,
  oauth_token=…`; refusals are 401 with Trello's plain-text bodies ("invalid key",
  "invalid token"); a malformed id is 400 "invalid id", an unknown one 404;
- rate limits in fixed 10-second windows, 100 per token and 300 per key, 429 with
  `{"error": "API_TOKEN_LIMIT_EXCEEDED", "message": "Rate limit exceeded"}` (or the key
  variant), `x-rate-limit-api-{token,key}-{interval-ms,max,remaining}` headers on every answer
  and no Retry-After;
- actions newest first, `limit` 0..1000 (default 50), `before`/`since` ids or dates,
  `filter` with `updateCard:field` variants; `cards/{filter}` with closed cards for `all`;
  `customFieldItems=true`; the nested `GET /boards/{id}?lists=…&labels=…&customFields=…`;
- webhooks: creation does the HEAD check against the callback URL (anything but 200 refuses
  it), deliveries are POSTs of `{"action", "model", "webhook"}` signed with
  base64(HMAC-SHA1(app secret, body + callback URL)) in `X-Trello-Webhook`.

Deliveries are queued as actions happen and sent when a test calls `deliver_webhooks()`
(or takes them with `take_deliveries()` to reorder or repeat them): Trello delivers
asynchronously too, and tests need to control when.

The 10-second windows are our own fixed-window counter rather than `ratelimit.RateLimiter`:
Trello counts requests per window, which a token bucket (refill + burst) does not model.
`ratelimit.FaultInjector` is reused for scripted failures (5xx, forced 429 storms).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from trackpulse.simulator.ratelimit import FaultInjector, FaultRule
from trackpulse.simulator.trello_world import CARD_ACTION_TYPES, TrelloWorld

_HEX24 = re.compile(r"^[0-9a-fA-F]{24}$")
_OAUTH = re.compile(r'(\w+)="([^"]*)"')
TOKEN_LIMIT_BODY = {"error": "API_TOKEN_LIMIT_EXCEEDED", "message": "Rate limit exceeded"}
KEY_LIMIT_BODY = {"error": "API_KEY_LIMIT_EXCEEDED", "message": "Rate limit exceeded"}


class FixedWindow:
    """At most `limit` requests per window of `interval` seconds, the window opening at the
    first request after the previous one closed."""

    def __init__(self, limit: int, interval: float, clock: Callable[[], float]) -> None:
        self.limit, self.interval, self._clock = limit, interval, clock
        self.start = -1e18
        self.count = 0

    def take(self) -> tuple[bool, int]:
        now = self._clock()
        if now >= self.start + self.interval:
            self.start, self.count = now, 0
        if self.count >= self.limit:
            return False, 0
        self.count += 1
        return True, self.limit - self.count

    def remaining(self) -> int:
        if self._clock() >= self.start + self.interval:
            return self.limit
        return max(0, self.limit - self.count)


@dataclass
class RequestRecord:
    at: float  # time.monotonic() when the request arrived
    method: str
    path: str
    params: dict[str, str]
    status: int
    token: str | None


@dataclass
class Delivery:
    """One signed webhook POST, ready to send (or reorder, or send twice)."""

    url: str
    body: bytes
    headers: dict[str, str]
    action_id: str


@dataclass
class TrelloSimulator:
    world: TrelloWorld
    key: str
    tokens: set[str]
    app_secret: str
    latency_ms: float = 0.0
    token_limit: int = 100
    key_limit: int = 300
    window_seconds: float = 10.0
    legacy_binary_signatures: bool = False
    clock: Callable[[], float] = time.monotonic
    requests: list[RequestRecord] = field(default_factory=list)
    faults: FaultInjector = field(default_factory=FaultInjector)
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    webhook_tokens: dict[str, str] = field(default_factory=dict)
    outbox: deque[dict[str, Any]] = field(default_factory=deque)
    delivered: list[tuple[Delivery, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self._windows: dict[tuple[str, str], FixedWindow] = {}
        self.world.listeners.append(self.outbox.append)

    # --- rate limits --------------------------------------------------------------------------
    def configure_limits(self, *, token_limit: int | None = None, key_limit: int | None = None,
                         window_seconds: float | None = None) -> None:
        with self.lock:
            self.token_limit = token_limit if token_limit is not None else self.token_limit
            self.key_limit = key_limit if key_limit is not None else self.key_limit
            self.window_seconds = window_seconds if window_seconds is not None else self.window_seconds
            self._windows.clear()

    def _window(self, kind: str, who: str) -> FixedWindow:
        w = self._windows.get((kind, who))
        if w is None:
            limit = self.token_limit if kind == "token" else self.key_limit
            w = self._windows[(kind, who)] = FixedWindow(limit, self.window_seconds, self.clock)
        return w

    def rate_headers(self, token: str) -> dict[str, str]:
        ms = str(int(self.window_seconds * 1000))
        return {
            "x-rate-limit-api-token-interval-ms": ms, "x-rate-limit-api-token-max": str(self.token_limit),
            "x-rate-limit-api-token-remaining": str(self._window("token", token).remaining()),
            "x-rate-limit-api-key-interval-ms": ms, "x-rate-limit-api-key-max": str(self.key_limit),
            "x-rate-limit-api-key-remaining": str(self._window("key", self.key).remaining()),
        }

    def storm(self, n: int, *, kind: str = "token", path_glob: str = "/1/*") -> FaultRule:
        """The next `n` matching requests answer 429 as if the limit were exhausted."""
        body: dict[str, object] = dict(TOKEN_LIMIT_BODY if kind == "token" else KEY_LIMIT_BODY)
        return self.faults.add(FaultRule(path_glob, 429, n, 1.0, None, body=body))

    # --- stats ---------------------------------------------------------------------------------
    def reset_stats(self) -> None:
        with self.lock:
            self.requests.clear()

    def count(self, path_contains: str = "", *, status: int | None = None) -> int:
        return sum(1 for r in self.requests if path_contains in r.path and (status is None or r.status == status))

    def max_in_window(self, seconds: float = 10.0, *, token: str | None = None) -> int:
        """The most requests seen in any sliding window of `seconds` (per token if given)."""
        times = sorted(r.at for r in self.requests if token is None or r.token == token)
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while times[lo] <= t - seconds:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    # --- webhooks ------------------------------------------------------------------------------
    def _model_json(self, id_model: str) -> dict[str, Any]:
        if id_model in self.world.boards:
            return self.world.board_json(self.world.boards[id_model])
        card = self.world.cards.get(id_model)
        return self.world.card_json(card) if card else {"id": id_model}

    def _watching(self, hook: dict[str, Any], action: dict[str, Any]) -> bool:
        d = action["data"]
        ids = {d.get("board", {}).get("id"), d.get("card", {}).get("id"), d.get("list", {}).get("id")}
        return hook["active"] and hook["idModel"] in ids

    def sign(self, body: bytes, callback_url: str) -> str:
        if self.legacy_binary_signatures:
            # Old Node crypto "binary" strings: each UTF-16 code unit truncated to 8 bits.
            text = body.decode("utf-8") + callback_url
            units = text.encode("utf-16-le")
            message = bytes(units[i] for i in range(0, len(units), 2))
        else:
            message = body + callback_url.encode("utf-8")
        return base64.b64encode(hmac.new(self.app_secret.encode(), message, hashlib.sha1).digest()).decode()

    def take_deliveries(self) -> list[Delivery]:
        """Signed deliveries for every action since the last call, oldest first."""
        out: list[Delivery] = []
        while self.outbox:
            action = self.outbox.popleft()
            if action["type"] not in CARD_ACTION_TYPES:
                continue
            for hook in list(self.webhooks.values()):
                if not self._watching(hook, action):
                    continue
                payload = {"action": action, "model": self._model_json(hook["idModel"]),
                           "webhook": {k: hook[k] for k in ("id", "description", "idModel", "callbackURL", "active")}}
                body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
                out.append(Delivery(hook["callbackURL"], body, {
                    "Content-Type": "application/json", "X-Trello-Webhook": self.sign(body, hook["callbackURL"]),
                    "User-Agent": "Trello-Simulator"}, action["id"]))
        return out

    def send(self, delivery: Delivery, client: httpx.Client | None = None) -> int:
        own = client is None
        client = client or httpx.Client(timeout=10)
        try:
            status = client.post(delivery.url, content=delivery.body, headers=delivery.headers).status_code
        except httpx.HTTPError:
            status = 0
        finally:
            if own:
                client.close()
        self.delivered.append((delivery, status))
        hook = next((h for h in self.webhooks.values() if h["callbackURL"] == delivery.url), None)
        if hook is not None:
            hook["consecutiveFailures"] = 0 if 200 <= status < 300 else hook["consecutiveFailures"] + 1
        return status

    def deliver_webhooks(self) -> list[int]:
        """Send every queued delivery now, in order; returns the callback's statuses."""
        deliveries = self.take_deliveries()
        with httpx.Client(timeout=10) as client:
            return [self.send(d, client) for d in deliveries]


def create_trello_app(world: TrelloWorld, *, key: str, token: str, app_secret: str, latency_ms: float = 0.0,
                      extra_tokens: tuple[str, ...] = (), token_limit: int = 100, key_limit: int = 300,
                      window_seconds: float = 10.0, legacy_binary_signatures: bool = False) -> Starlette:
    sim = TrelloSimulator(world, key, {token, *extra_tokens}, app_secret, latency_ms=latency_ms,
                          token_limit=token_limit, key_limit=key_limit, window_seconds=window_seconds,
                          legacy_binary_signatures=legacy_binary_signatures)
    api = _Api(sim)
    routes = [
        Route("/1/members/{member}", api.member, methods=["GET"]),
        Route("/1/members/{member}/boards", api.member_boards, methods=["GET"]),
        Route("/1/boards/{board}", api.board, methods=["GET"]),
        Route("/1/boards/{board}/lists", api.lists, methods=["GET"]),
        Route("/1/boards/{board}/lists/{filter}", api.lists, methods=["GET"]),
        Route("/1/boards/{board}/labels", api.labels, methods=["GET"]),
        Route("/1/boards/{board}/labels", api.create_label, methods=["POST"]),
        Route("/1/boards/{board}/members", api.board_members, methods=["GET"]),
        Route("/1/boards/{board}/customFields", api.custom_fields, methods=["GET"]),
        Route("/1/boards/{board}/cards", api.cards, methods=["GET"]),
        Route("/1/boards/{board}/cards/{filter}", api.cards, methods=["GET"]),
        Route("/1/boards/{board}/actions", api.actions, methods=["GET"]),
        Route("/1/cards/{card}", api.card, methods=["GET"]),
        Route("/1/cards/{card}/actions/comments", api.post_comment, methods=["POST"]),
        Route("/1/cards/{card}/idLabels", api.add_card_label, methods=["POST"]),
        Route("/1/cards/{card}/actions", api.card_actions, methods=["GET"]),
        Route("/1/webhooks", api.create_webhook, methods=["POST"]),
        Route("/1/webhooks/", api.create_webhook, methods=["POST"]),
        Route("/1/webhooks/{hook}", api.webhook, methods=["GET", "DELETE"]),
        Route("/1/tokens/{token}/webhooks", api.token_webhooks, methods=["GET", "POST"]),
        Route("/1/tokens/{token}/webhooks/", api.token_webhooks, methods=["GET", "POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.sim = sim
    return app


class _Refused(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _text(status: int, text: str) -> PlainTextResponse:
    return PlainTextResponse(text, status_code=status)


def _flag(params: dict[str, str], name: str, default: str = "false") -> bool:
    return params.get(name, default).lower() in ("true", "1", "all")


class _Api:
    """Route handlers. Each runs `_serve` (latency, auth, limits, faults, stats) then its body."""

    def __init__(self, sim: TrelloSimulator) -> None:
        self.sim = sim
        self.world = sim.world

    async def _serve(self, request: Request, body: Callable[[dict[str, str], str], Response | Any]) -> Response:
        sim = self.sim
        params = dict(request.query_params)
        if request.method == "POST" and request.headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded"):
            params.update(dict(parse_qsl((await request.body()).decode())))
        elif request.method == "POST" and request.headers.get("content-type", "").startswith("application/json"):
            raw = await request.body()
            if raw:
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    parsed = None
                if isinstance(parsed, dict):
                    params.update({k: str(v) for k, v in parsed.items()})
        if sim.latency_ms:
            await asyncio.sleep(sim.latency_ms / 1000)
        key, token = params.get("key"), params.get("token")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("oauth "):
            found = dict(_OAUTH.findall(auth))
            key, token = found.get("oauth_consumer_key", key), found.get("oauth_token", token)
        record = RequestRecord(sim.clock(), request.method, request.url.path,
                               {k: v for k, v in params.items() if k not in ("key", "token")}, 0, token)
        response = self._respond(request, params, key, token, body)
        record.status = response.status_code
        with sim.lock:
            sim.requests.append(record)
        return response

    def _respond(self, request: Request, params: dict[str, str], key: str | None, token: str | None,
                 body: Callable[[dict[str, str], str], Any]) -> Response:
        sim = self.sim
        if key != sim.key:
            return _text(401, "invalid key")
        if token not in sim.tokens:
            return _text(401, "invalid token")
        with sim.lock:
            ok_key, _ = sim._window("key", key).take()
            ok_token, _ = sim._window("token", token).take() if ok_key else (False, 0)
            headers = sim.rate_headers(token)
        if not ok_key or not ok_token:
            return JSONResponse(KEY_LIMIT_BODY if not ok_key else TOKEN_LIMIT_BODY, 429, headers=headers)
        fault = sim.faults.check(request.method, request.url.path)
        if fault is not None:
            extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            if fault.status == 429:
                headers = {**headers, "x-rate-limit-api-token-remaining": "0"}
            if fault.body is not None:
                return JSONResponse(fault.body, fault.status, headers={**headers, **extra})
            text = "Internal Server Error" if fault.status >= 500 else "error"
            return PlainTextResponse(text, fault.status, headers={**headers, **extra})
        try:
            with self.world.lock:
                result = body(params, token)
        except _Refused as refused:
            return refused.response
        if isinstance(result, Response):
            result.headers.update(headers)
            return result
        return JSONResponse(result, headers=headers)

    # --- lookups -----------------------------------------------------------------------------------
    def _board(self, board_ref: str) -> Any:
        if _HEX24.match(board_ref):
            board = self.world.boards.get(board_ref.lower())
        elif len(board_ref) == 8:
            board = next((b for b in self.world.boards.values() if b.short_link == board_ref), None)
        else:
            raise _Refused(_text(400, "invalid id"))
        if board is None:
            raise _Refused(_text(404, "The requested resource was not found."))
        return board

    def _card(self, card_ref: str) -> Any:
        if not _HEX24.match(card_ref) and len(card_ref) != 8:
            raise _Refused(_text(400, "invalid id"))
        card = self.world.cards.get(card_ref) or next(
            (c for c in self.world.cards.values() if c.short_link == card_ref), None)
        if card is None or card.deleted:
            raise _Refused(_text(404, "The requested resource was not found."))
        return card

    # --- members and boards ---------------------------------------------------------------------------
    async def member(self, request: Request) -> Response:
        def body(params: dict[str, str], token: str) -> Any:
            ref = request.path_params["member"]
            m = self.world.me if ref == "me" else (self.world.members.get(ref) or next(
                (x for x in self.world.members.values() if x.username == ref), None))
            if m is None:
                raise _Refused(_text(404, "The requested resource was not found."))
            return {**m.public(), "email": f"{m.username}@example.com", "status": "disconnected", "bio": "",
                    "url": f"https://trello.com/{m.username}", "memberType": "normal",
                    "idBoards": list(self.world.boards)}
        return await self._serve(request, body)

    async def member_boards(self, request: Request) -> Response:
        return await self._serve(request, lambda p, t: [self.world.board_json(b) for b in self.world.boards.values()])

    async def board(self, request: Request) -> Response:
        def body(params: dict[str, str], token: str) -> Any:
            board = self._board(request.path_params["board"])
            out = self.world.board_json(board)
            if params.get("lists", "none") != "none":
                out["lists"] = self._lists(board, params["lists"])
            if params.get("labels", "none") != "none":
                out["labels"] = self._labels(board)
            if _flag(params, "customFields"):
                out["customFields"] = board.custom_fields
            if params.get("members", "none") != "none":
                out["members"] = self._members(board)
            if params.get("cards", "none") != "none":
                out["cards"] = [self.world.card_json(c, custom_field_items=_flag(params, "card_customFieldItems"))
                                for c in self.world.board_cards(board.id, params["cards"])]
            return out
        return await self._serve(request, body)

    def _lists(self, board: Any, flt: str) -> list[dict[str, Any]]:
        lists = sorted(board.lists.values(), key=lambda x: x["pos"])
        if flt == "open":
            lists = [x for x in lists if not x["closed"]]
        elif flt == "closed":
            lists = [x for x in lists if x["closed"]]
        return lists

    def _labels(self, board: Any) -> list[dict[str, Any]]:
        return [{k: v for k, v in lb.items() if k != "uses"} for lb in board.labels.values()]

    def _members(self, board: Any) -> list[dict[str, Any]]:
        return [{"id": m.id, "fullName": m.full_name, "username": m.username}
                for m in (self.world.members[x] for x in board.member_ids)]

    async def lists(self, request: Request) -> Response:
        def body(params: dict[str, str], token: str) -> Any:
            board = self._board(request.path_params["board"])
            return self._lists(board, request.path_params.get("filter") or params.get("filter", "open"))
        return await self._serve(request, body)

    async def labels(self, request: Request) -> Response:
        return await self._serve(request, lambda p, t: self._labels(self._board(request.path_params["board"])))

    async def board_members(self, request: Request) -> Response:
        return await self._serve(request, lambda p, t: self._members(self._board(request.path_params["board"])))

    async def custom_fields(self, request: Request) -> Response:
        return await self._serve(request, lambda p, t: self._board(request.path_params["board"]).custom_fields)

    async def cards(self, request: Request) -> Response:
        def body(params: dict[str, str], token: str) -> Any:
            board = self._board(request.path_params["board"])
            flt = request.path_params.get("filter") or params.get("filter", "visible")
            if flt not in ("all", "closed", "complete", "incomplete", "none", "open", "visible"):
                raise _Refused(_text(400, "invalid value for filter"))
            cards = sorted(self.world.board_cards(board.id, flt), key=lambda c: c.id)
            if "limit" in params or "before" in params or "since" in params:
                # Airbyte-style paging: newest id first, `before`/`since` exclusive.
                cards.reverse()
                if params.get("before"):
                    cards = [c for c in cards if c.id < params["before"]]
                if params.get("since"):
                    cards = [c for c in cards if c.id > params["since"]]
                cards = cards[:int(params.get("limit", "1000"))]
            cfi = _flag(params, "customFieldItems")
            return [self.world.card_json(c, custom_field_items=cfi) for c in cards]
        return await self._serve(request, body)

    async def actions(self, request: Request) -> Response:
        def body(params: dict[str, str], token: str) -> Any:
            board = self._board(request.path_params["board"])
            try:
                limit = int(params.get("limit", "50"))
            except ValueError:
                raise _Refused(_text(400, "invalid value for limit")) from None
            if not 0 <= limit <= 1000:
                raise _Refused(_text(400, "invalid value for limit"))
            flt = params.get("filter")
            types = None if flt in (None, "", "all") else flt.split(",")
            try:
                return self.world.board_actions(board.id, before=params.get("before") or None,
                                                since=params.get("since") or None, limit=limit, types=types)
            except ValueError:
                raise _Refused(_text(400, "invalid value for before or since")) from None
        return await self._serve(request, body)

    async def card(self, request: Request) -> Response:
        def body(params: dict[str, str], token: str) -> Any:
            return self.world.card_json(self._card(request.path_params["card"]),
                                        custom_field_items=_flag(params, "customFieldItems"))
        return await self._serve(request, body)

    async def post_comment(self, request: Request) -> Response:
        def body(params: dict[str, str], token: str) -> Any:
            card = self._card(request.path_params["card"])
            text = params.get("text")
            if not text:
                raise _Refused(_text(400, "invalid value for text"))
            me = self.world.me
            return self.world.comment(card.id, text, member_id=me.id if me else None)
        return await self._serve(request, body)

    async def create_label(self, request: Request) -> Response:
        def body(params: dict[str, str], token: str) -> Any:
            board = self._board(request.path_params["board"])
            name = params.get("name")
            if not name:
                raise _Refused(_text(400, "invalid value for name"))
            return self.world.create_label(board.id, name, params.get("color"))
        return await self._serve(request, body)

    async def card_actions(self, request: Request) -> Response:
        """A card's actions, newest first, of the `filter` types (default: commentCard, as Trello)."""
        def body(params: dict[str, str], token: str) -> Any:
            card = self._card(request.path_params["card"])
            types = set((params.get("filter") or "commentCard").split(","))
            limit = int(params.get("limit") or 50)
            board = self.world.boards[card.board_id]
            found = [a for a in reversed(board.actions)
                     if a["type"] in types and (a.get("data") or {}).get("card", {}).get("id") == card.id
                     and a["id"] not in self.world.deleted_comments]
            return found[:limit]
        return await self._serve(request, body)

    async def add_card_label(self, request: Request) -> Response:
        """Trello answers the card's label ids, or 400 when the label is already on it."""
        def body(params: dict[str, str], token: str) -> Any:
            card = self._card(request.path_params["card"])
            board = self.world.boards[card.board_id]
            label = board.labels.get(params.get("value", ""))
            if label is None:
                raise _Refused(_text(400, "invalid value for value"))
            if label["id"] in card.label_ids:
                raise _Refused(_text(400, "that label is already on the card"))
            self.world.add_label(card.id, label["name"])
            return list(card.label_ids)
        return await self._serve(request, body)

    # --- webhooks ---------------------------------------------------------------------------------------
    async def _head_check(self, url: str) -> bool:
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                return (await client.head(url)).status_code == 200
        except httpx.HTTPError:
            return False

    async def create_webhook(self, request: Request, token_in_path: str | None = None) -> Response:
        params = dict(request.query_params)
        ctype = request.headers.get("content-type", "")
        raw = await request.body()
        if ctype.startswith("application/x-www-form-urlencoded"):
            params.update(dict(parse_qsl(raw.decode())))
        elif ctype.startswith("application/json") and raw:
            params.update({k: str(v) for k, v in json.loads(raw).items()})
        url, id_model = params.get("callbackURL"), params.get("idModel")
        # The HEAD check happens before Trello answers; run it outside the world lock.
        head_ok = bool(url) and await self._head_check(url or "")

        def body(p: dict[str, str], token: str) -> Any:
            if not url or not id_model:
                raise _Refused(_text(400, "invalid value for callbackURL" if not url else "invalid value for idModel"))
            if id_model not in self.world.boards and id_model not in self.world.cards:
                raise _Refused(_text(400, "invalid value for idModel"))
            for hook in self.sim.webhooks.values():
                if hook["idModel"] == id_model and hook["callbackURL"] == url and self.sim.webhook_tokens[hook["id"]] == token:
                    raise _Refused(_text(400, "A webhook with that callback, model, and token already exists"))
            if not head_ok:
                raise _Refused(_text(400, f"URL ({url}) did not return 200 status code, got a different one"))
            hid = self.world.new_id(self.world.now)
            hook = {"id": hid, "description": p.get("description", ""), "idModel": id_model, "callbackURL": url,
                    "active": p.get("active", "true").lower() != "false", "consecutiveFailures": 0,
                    "firstConsecutiveFailDate": None}
            self.sim.webhooks[hid] = hook
            self.sim.webhook_tokens[hid] = token
            return hook
        return await self._serve(request, body)

    async def token_webhooks(self, request: Request) -> Response:
        if request.method == "POST":
            return await self.create_webhook(request)

        def body(params: dict[str, str], token: str) -> Any:
            if request.path_params["token"] != token:
                raise _Refused(_text(401, "invalid token"))
            return [h for hid, h in self.sim.webhooks.items() if self.sim.webhook_tokens[hid] == token]
        return await self._serve(request, body)

    async def webhook(self, request: Request) -> Response:
        def body(params: dict[str, str], token: str) -> Any:
            hid = request.path_params["hook"]
            hook = self.sim.webhooks.get(hid)
            if hook is None:
                raise _Refused(_text(404, "The requested resource was not found."))
            if request.method == "DELETE":
                del self.sim.webhooks[hid]
                return {"_value": None}
            return hook
        return await self._serve(request, body)
