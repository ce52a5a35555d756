"""The HTTP layer every connector uses: pacing, retries, Retry-After, error mapping.

A `TrackerHttp` wraps an `httpx.Client` handed in from outside (STYLE.md: transports),
so production, the simulator and tests run the same code. It owns:
- proactive pacing (a token bucket below the tracker's published limit);
- a per-source bound on requests in flight;
- retries: 429/503 wait exactly `Retry-After` (seconds or an HTTP date) or, without it,
  until the tracker's rate window resets; other 5xx, timeouts and dropped connections
  back off exponentially with full jitter; a non-idempotent request is retried only
  after a 429 (refused, so not applied), never after an ambiguous failure;
- failing fast where waiting cannot help: a refused connection, a host name that does not
  resolve and a failed TLS handshake are retried once, after about a second (a server
  restarting, a resolver hiccup), then reported; a mistyped URL answers in seconds;
- mapping failures to our exceptions with the source name, the URL and the kind of failure.
"""

from __future__ import annotations

import email.utils
import random
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from trackpulse import jsonio
from trackpulse.errors import AuthError, RequestFailed, UnreachableError

RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}
# Connection failures that more patience does not cure: one retry, after this long.
FAST_FAIL_RETRIES = 1
FAST_FAIL_WAIT = 1.0  # seconds


def connect_failure_kind(exc: BaseException) -> str | None:
    """"connection refused", "name does not resolve" or "TLS failure: ..." when `exc` (an
    httpx transport error) is one of the failures not worth patient retries; else None.

    httpx wraps httpcore's error, which wraps the socket's: walk the chain to the OS error."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, socket.gaierror):
            return "name does not resolve"
        if isinstance(seen, ssl.SSLError):
            reason = getattr(seen, "reason", None) or type(seen).__name__
            return f"TLS failure: {str(reason).lower().replace('_', ' ')}"
        seen = seen.__cause__ or seen.__context__
    return None


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class TokenBucket:
    """Thread-safe pacing: at most `rate` requests per second on average, `burst` at once."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self.lock = threading.Lock()

    def acquire(self, sleep: Callable[[float], None]) -> None:
        if self.rate <= 0:
            return
        while True:
            with self.lock:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                wait = (1 - self.tokens) / self.rate
            sleep(wait)


@dataclass
class HttpStats:
    requests: int = 0
    retries: int = 0
    waited_seconds: float = 0.0
    by_status: Counter[int] = field(default_factory=Counter)
    by_path: Counter[str] = field(default_factory=Counter)
    retry_after_waits: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, path: str, status: int) -> None:
        with self.lock:
            self.requests += 1
            self.by_status[status] += 1
            self.by_path[path] += 1


class TrackerHttp:
    def __init__(
        self,
        source: str,
        client: httpx.Client,
        *,
        max_retries: int = 8,
        concurrency: int = 4,
        requests_per_second: float = 0.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        rate_window_reset: Callable[[httpx.Response], float | None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.source = source
        self.client = client
        self.max_retries = max_retries
        self.slots = threading.BoundedSemaphore(concurrency)
        self.bucket = TokenBucket(requests_per_second)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.rate_window_reset = rate_window_reset
        self._sleep = sleep
        self.stats = HttpStats()

    def _wait(self, seconds: float) -> None:
        with self.stats.lock:
            self.stats.waited_seconds += seconds
        self._sleep(seconds)

    def _backoff(self, attempt: int) -> float:
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * (2 ** attempt)))

    def _url(self, path: str) -> str:
        return str(self.client.base_url.join(path)) if not path.startswith("http") else path

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
        ok_statuses: tuple[int, ...] = (),
    ) -> httpx.Response:
        """Send a request with pacing and retries; return a 2xx (or `ok_statuses`) response."""
        if idempotent is None:
            idempotent = method.upper() in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")
        url = self._url(path)
        attempt = 0
        while True:
            self.bucket.acquire(self._sleep)
            try:
                with self.slots:
                    resp = self.client.request(method, path, params=params, json=json)
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                connect_failed = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
                hopeless = connect_failure_kind(exc) if connect_failed else None
                allowed = min(self.max_retries, FAST_FAIL_RETRIES) if hopeless else self.max_retries
                # A request that never connected was never applied: safe to retry even a POST.
                if (idempotent or connect_failed) and attempt < allowed:
                    self.stats.retries += 1
                    self._wait(FAST_FAIL_WAIT + random.uniform(0, 0.2) if hopeless else self._backoff(attempt))
                    attempt += 1
                    continue
                tail = f" after {attempt} {'retry' if attempt == 1 else 'retries'}" if attempt else ""
                if hopeless:
                    raise UnreachableError(self.source, f"cannot connect ({hopeless}){tail}", url=url) from exc
                kind = type(exc).__name__
                if connect_failed:
                    raise UnreachableError(self.source, f"cannot connect ({kind}: {exc}){tail}", url=url) from exc
                raise RequestFailed(self.source, f"{method} failed ({kind}: {exc}){tail}", url=url) from exc
            self.stats.count(httpx.URL(url).path, resp.status_code)
            status = resp.status_code
            if 200 <= status < 300 or status in ok_statuses:
                return resp
            if status in (401, 403):
                raise AuthError(self.source, f"{method} refused with HTTP {status}: "
                                f"check the credentials and their permissions ({_brief(resp)})", url=url)
            retryable = status in RETRY_STATUSES and (idempotent or status == 429)
            if retryable and attempt < self.max_retries:
                wait = parse_retry_after(resp.headers.get("Retry-After"))
                if wait is not None:
                    # Never earlier than asked: an early retry earns a longer Retry-After.
                    wait += random.uniform(0, 0.05)
                    self.stats.retry_after_waits.append(wait)
                elif status == 429 and self.rate_window_reset is not None:
                    wait = self.rate_window_reset(resp)
                if wait is None:
                    wait = self._backoff(attempt)
                self.stats.retries += 1
                self._wait(wait)
                attempt += 1
                continue
            tail = f" after {attempt} retries" if attempt else ""
            raise RequestFailed(self.source, f"{method} answered HTTP {status}{tail}: {_brief(resp)}",
                                url=url, status=status)

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return _json(self.source, self.request("GET", path, params=params))

    def post_json(self, path: str, body: Any, *, idempotent: bool = True, params: dict[str, Any] | None = None) -> Any:
        """POST that reads (search, bulkfetch): idempotent unless told otherwise."""
        return _json(self.source, self.request("POST", path, json=body, idempotent=idempotent, params=params))


def _json(source: str, resp: httpx.Response) -> Any:
    try:
        return jsonio.loads(resp.content)
    except ValueError as exc:
        raise RequestFailed(source, f"answered HTTP {resp.status_code} with a body that is not JSON",
                            url=str(resp.request.url)) from exc


def _brief(resp: httpx.Response) -> str:
    """A short, single-line reason from an error body (Jira's errorMessages, Trello's message)."""
    try:
        body = resp.json()
    except ValueError:
        text = " ".join(resp.text.split())
        return text[:200] or resp.reason_phrase
    if isinstance(body, dict):
        msgs = body.get("errorMessages") or []
        errs = body.get("errors") or {}
        parts = [str(m) for m in msgs]
        if isinstance(errs, dict):
            parts += [f"{k}: {v}" for k, v in errs.items()]
        if not parts and body.get("message"):
            parts = [str(body["message"])]
        if parts:
            return "; ".join(parts)[:300]
    return " ".join(str(body).split())[:200]
