"""Tracker-neutral request throttling and fault injection for the simulators.

This module owns two pieces of machinery shared by the Jira and Trello simulators:

* `RateLimiter`: token buckets keyed by any hashable (Jira: route template + method; Trello: key
  or token), each with a refill rate and a burst size. It only decides; the simulator that uses
  it renders its own tracker's 429 body and headers from the returned `RateDecision`.
* `FaultInjector`: runtime-switchable rules ("the next N requests matching this path answer 503
  with Retry-After: 1", "10 % of requests answer 500") with a seeded RNG so failures are
  reproducible. Tests flip rules while a client is mid-sync.

Buckets run on the host's monotonic clock on purpose: throttling is about real elapsed time
between requests, while the simulated tracker's data clock is the world's own `now`.
"""

from __future__ import annotations

import fnmatch
import math
import random
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class BucketSpec:
    """A bucket refilling `rate` tokens per second, holding at most `burst` tokens."""

    rate: float
    burst: int


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    #: Whole seconds a refused client must wait before a token is available (0 when allowed).
    retry_after: int
    #: True when fewer than 20 % of the bucket's tokens remain (Jira's X-RateLimit-NearLimit).
    near_limit: bool


class _Bucket:
    __slots__ = ("spec", "stamp", "tokens")

    def __init__(self, spec: BucketSpec, now: float) -> None:
        self.spec = spec
        self.tokens = float(spec.burst)
        self.stamp = now


class RateLimiter:
    """Token buckets per key. `default=None` means unlimited unless a key has its own spec.

    `overrides` maps glob patterns over the key's string form (e.g. ``"GET /rest/api/3/search/jql"``
    or ``"* /rest/api/3/issue/*"``) to a spec; the first matching pattern wins.
    """

    def __init__(
        self,
        default: BucketSpec | None = None,
        overrides: dict[str, BucketSpec] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.default = default
        self.overrides: dict[str, BucketSpec] = dict(overrides or {})
        self._clock = clock
        self._buckets: dict[Hashable, _Bucket] = {}
        self._lock = threading.Lock()
        self.refused = 0

    def configure(
        self, default: BucketSpec | None = None, overrides: dict[str, BucketSpec] | None = None
    ) -> None:
        """Change limits at runtime; existing buckets restart full."""
        with self._lock:
            self.default = default
            self.overrides = dict(overrides or {})
            self._buckets.clear()

    def _spec_for(self, key: Hashable) -> BucketSpec | None:
        text = (
            key if isinstance(key, str) else " ".join(map(str, key)) if isinstance(key, tuple) else str(key)
        )
        for pattern, spec in self.overrides.items():
            if fnmatch.fnmatchcase(text, pattern):
                return spec
        return self.default

    def check(self, key: Hashable) -> RateDecision:
        """Take one token for `key` if one is available."""
        spec = self._spec_for(key)
        if spec is None:
            return RateDecision(True, 0, 0, 0, False)
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None or bucket.spec != spec:
                bucket = self._buckets[key] = _Bucket(spec, now)
            bucket.tokens = min(float(spec.burst), bucket.tokens + (now - bucket.stamp) * spec.rate)
            bucket.stamp = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                remaining = int(bucket.tokens)
                return RateDecision(True, spec.burst, remaining, 0, remaining < 0.2 * spec.burst)
            self.refused += 1
            missing = 1.0 - bucket.tokens
            # Never advertise less than one second: clients that honour Retry-After exactly
            # must then find a token waiting.
            wait = max(1, math.ceil(missing / spec.rate)) if spec.rate > 0 else 3600
            return RateDecision(False, spec.burst, 0, wait, True)


@dataclass
class FaultRule:
    """Answer `status` instead of serving requests whose path matches `path_glob`.

    `remaining` limits how many requests the rule hits (None = unlimited); `probability` makes
    the rule hit only that share of matching requests (drawn from the injector's seeded RNG).
    `retry_after` adds a Retry-After header (seconds); None leaves it out.
    """

    path_glob: str
    status: int = 503
    remaining: int | None = 1
    probability: float = 1.0
    retry_after: int | None = None
    method: str | None = None
    body: dict[str, object] | None = None
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return fnmatch.fnmatchcase(path, self.path_glob)


@dataclass(frozen=True)
class FaultDecision:
    status: int
    retry_after: int | None
    body: dict[str, object] | None


@dataclass
class FaultInjector:
    seed: int = 0
    rules: list[FaultRule] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def fail_next(
        self,
        path_glob: str,
        n: int = 1,
        *,
        status: int = 503,
        retry_after: int | None = 1,
        method: str | None = None,
    ) -> FaultRule:
        """The next `n` requests matching `path_glob` get `status` (503 with Retry-After: 1 by default)."""
        return self.add(FaultRule(path_glob, status, n, 1.0, retry_after, method))

    def fail_randomly(
        self,
        path_glob: str,
        probability: float,
        *,
        status: int = 500,
        retry_after: int | None = None,
        method: str | None = None,
    ) -> FaultRule:
        return self.add(FaultRule(path_glob, status, None, probability, retry_after, method))

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def check(self, method: str, path: str) -> FaultDecision | None:
        with self._lock:
            for rule in self.rules:
                if rule.remaining is not None and rule.remaining <= 0:
                    continue
                if not rule.matches(method, path):
                    continue
                if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                rule.hits += 1
                return FaultDecision(rule.status, rule.retry_after, rule.body)
        return None
