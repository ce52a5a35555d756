"""Trello's REST API as trackpulse speaks it: authentication, pacing under Trello's limits,
recovery from 429, the paged action walk and the board snapshot. HTTP only, no mapping.

Bulk reads go through `httpx` (via `TrackerHttp`); py-trello is used where it fits, for the
member/board checks and webhook registration, through `PyTrelloTransport`, a `requests`-shaped
shim that points its hard-coded https://api.trello.com at the configured `api_url` and sends
through the same `TrackerHttp` (so pacing, 429 recovery and our errors apply to it too).
docs/architecture.md ("Why httpx and not py-trello") says why bulk paths do not use py-trello.

Rate limits (API_NOTES.md §9): 100 requests per 10 s per token, 300 per key, 429 with a JSON
body and no Retry-After. We pace with `TrackerHttp`'s token bucket (`requests_per_second`,
9 by default), pause when `x-rate-limit-api-token-remaining` says the window is spent, and
after a 429 wait until the window that refused us has passed (computed from our own send
times: the oldest request inside the window plus the interval), plus jitter.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import httpx

from trackpulse.config import TrelloSourceConfig
from trackpulse.errors import RequestFailed, SourceError
from trackpulse.http import TrackerHttp

PAGE_LIMIT = 1000  # Trello's maximum `limit` for actions
# Every action type the mapping reads. `updateCard` covers list moves, archive/unarchive and
# renames; label and custom-field actions bump the card, so an incremental run sees those cards.
ACTION_FILTER = ",".join((  # noqa: FLY002 (one name per entry reads better than one long literal)
    "createCard", "copyCard", "convertToCardFromCheckItem", "emailCard", "updateCard", "moveCardToBoard",
    "moveCardFromBoard", "deleteCard", "commentCard", "deleteComment", "updateCustomFieldItem",
    "addLabelToCard", "removeLabelFromCard", "addMemberToCard", "removeMemberFromCard",
))
BOARD_FIELDS = "name,closed,url,shortLink,dateLastActivity"
USER_AGENT = "trackpulse (+https://github.com/trackpulse)"


class TrelloRateGuard:
    """Watches Trello's rate-limit headers and our own send times.

    `window_reset` is `TrackerHttp`'s hook for a 429 without Retry-After; `pause_if_spent`
    runs before each request and waits when the last answer said the window is used up.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, default_interval: float = 10.0) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.sent: deque[float] = deque(maxlen=2000)
        self.interval = default_interval
        self.token_remaining: int | None = None
        self.key_remaining: int | None = None
        self.limited = 0  # 429s seen

    def on_request(self, request: httpx.Request) -> None:
        with self._lock:
            self.sent.append(self._clock())

    def on_response(self, response: httpx.Response) -> None:
        h = response.headers
        with self._lock:
            ms = h.get("x-rate-limit-api-token-interval-ms") or h.get("x-rate-limit-api-key-interval-ms")
            if ms and ms.isdigit() and int(ms) > 0:
                self.interval = int(ms) / 1000
            tok, key = h.get("x-rate-limit-api-token-remaining"), h.get("x-rate-limit-api-key-remaining")
            self.token_remaining = int(tok) if tok and tok.isdigit() else None
            self.key_remaining = int(key) if key and key.isdigit() else None
            if response.status_code == 429:
                self.limited += 1

    def _until_window_frees(self) -> float:
        """Seconds until the oldest request of the current window is older than the interval.

        Whether Trello's windows are fixed or sliding, the window that refused us has closed
        by then (assuming this process is the token's main user; a 429 again just repeats)."""
        now = self._clock()
        with self._lock:
            recent = [t for t in self.sent if t > now - self.interval]
        oldest = recent[0] if recent else now
        return max(0.05 * self.interval, oldest + self.interval - now)

    def window_reset(self, response: httpx.Response) -> float:
        return self._until_window_frees() + random.uniform(0, 0.1 * self.interval)

    def pause_if_spent(self, sleep: Callable[[float], None]) -> None:
        with self._lock:
            spent = (self.token_remaining is not None and self.token_remaining <= 0) or (
                self.key_remaining is not None and self.key_remaining <= 0)
        if spent:
            sleep(self._until_window_frees() + random.uniform(0, 0.05 * self.interval))
            with self._lock:
                self.token_remaining = self.key_remaining = None


class TrelloApi:
    """One Trello source's HTTP side: GETs with paging, the snapshot, the action walk."""

    def __init__(self, cfg: TrelloSourceConfig, client: httpx.Client | None = None, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.cfg = cfg
        self.source = cfg.name
        if client is None:
            client = httpx.Client(timeout=cfg.timeout_seconds, headers={"User-Agent": USER_AGENT})
        # The OAuth header keeps the key and token out of URLs (and so out of proxy logs and errors).
        client.headers["Authorization"] = (
            f'OAuth oauth_consumer_key="{cfg.key.get_secret_value()}", oauth_token="{cfg.token.get_secret_value()}"')
        self.guard = TrelloRateGuard()
        hooks = client.event_hooks
        client.event_hooks = {"request": [*hooks.get("request", []), self.guard.on_request],
                              "response": [*hooks.get("response", []), self.guard.on_response]}
        self.client = client
        self._sleep = sleep
        self.http = TrackerHttp(cfg.name, client, max_retries=cfg.max_retries, concurrency=cfg.concurrency,
                                requests_per_second=cfg.requests_per_second,
                                rate_window_reset=self.guard.window_reset, sleep=sleep)
        self.base = cfg.api_url.rstrip("/") + "/1"

    def url(self, path: str) -> str:
        return self.base + path

    def send(self, method: str, url: str, params: dict[str, Any] | None = None, body: Any = None) -> httpx.Response:
        self.guard.pause_if_spent(self._sleep)
        return self.http.request(method, url, params=params, json=body)

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        self.guard.pause_if_spent(self._sleep)
        return self.http.get_json(self.url(path), params)

    def _board_get(self, board_id: str, path: str, params: dict[str, Any]) -> Any:
        """A board read whose 400/404 becomes an error naming the board."""
        try:
            return self.get(path, params)
        except RequestFailed as exc:
            if exc.status in (400, 404):
                raise RequestFailed(self.source, f"board {board_id} does not exist or this token cannot see it "
                                    f"(HTTP {exc.status}); check `boards` in the config", url=self.url(path),
                                    status=exc.status) from exc
            raise

    def board_snapshot(self, board_id: str) -> dict[str, Any]:
        """Board, lists (closed too), labels, custom-field definitions and members in one request."""
        return self._board_get(board_id, f"/boards/{board_id}", {
            "fields": BOARD_FIELDS, "lists": "all", "labels": "all", "customFields": "true",
            "members": "all", "member_fields": "fullName,username",
        })

    def cards(self, board_id: str) -> list[dict[str, Any]]:
        """Every card of the board, archived ones included, with custom-field values."""
        return list(self._board_get(board_id, f"/boards/{board_id}/cards/all", {"customFieldItems": "true"}))

    def card(self, card_id: str) -> dict[str, Any]:
        return dict(self.get(f"/cards/{card_id}", {"customFieldItems": "true"}))

    def actions_page(self, board_id: str, *, before: str | None, since: str | None,
                     limit: int = PAGE_LIMIT) -> list[dict[str, Any]]:
        """One page of the board's actions, newest first, strictly between `since` and `before`."""
        params: dict[str, Any] = {"filter": ACTION_FILTER, "limit": limit}
        if before:
            params["before"] = before
        if since:
            params["since"] = since
        return list(self._board_get(board_id, f"/boards/{board_id}/actions", params))

    def close(self) -> None:
        self.client.close()


class PyTrelloTransport:
    """The `http_service` py-trello calls: `requests`-shaped, backed by `TrelloApi.send`.

    py-trello builds URLs on https://api.trello.com/1 (and https://trello.com/1 for webhook
    creation) and puts `key`/`token` in query strings and form bodies; we rewrite the base,
    drop those (the client's OAuth header authenticates) and keep the token out of errors
    (webhook paths carry it: `/tokens/{token}/webhooks`).
    """

    _BASES = ("https://api.trello.com/1", "https://trello.com/1")

    def __init__(self, api: TrelloApi) -> None:
        self.api = api
        self._token = api.cfg.token.get_secret_value()

    def _rewrite(self, url: str) -> str:
        for base in self._BASES:
            if url.startswith(base):
                return self.api.base + url[len(base):]
        return url

    def request(self, method: str, url: str, params: dict[str, Any] | None = None, headers: Any = None,
                data: Any = None, auth: Any = None, files: Any = None, proxies: Any = None,
                **_: Any) -> httpx.Response:
        query = {k: v for k, v in (params or {}).items() if k not in ("key", "token") and v is not None}
        body = None
        if isinstance(data, (str, bytes)) and data:
            body = json.loads(data)
        elif isinstance(data, dict):
            # Trello reads form fields and query parameters alike.
            query.update({k: v for k, v in data.items() if k not in ("key", "token") and v is not None})
        try:
            return self.api.send(method.upper(), self._rewrite(url), query, body)
        except SourceError as exc:
            # Real tokens are 64+ characters; masking a toy one ("t") would mangle every word.
            if len(self._token) >= 8:
                exc.args = tuple(str(a).replace(self._token, "***") for a in exc.args)
                exc.url = exc.url.replace(self._token, "***") if exc.url else exc.url
            raise

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("POST", url, **kw)
