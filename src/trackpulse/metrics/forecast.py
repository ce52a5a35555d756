"""The exact throughput forecast (METRICS.md §11): "when will the open work be done" and
"how much will be done in the next H days", computed from the daily throughput
distribution by repeated convolution, the limit a Monte Carlo run converges to.

The distribution of S_n (sum of n daily draws) is kept truncated at R: all mass at R or
more sits in one absorbing cell, so each day costs one convolution of a length-R vector
with the daily distribution, and P(T <= n) = P(S_n >= R) is read off that cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trackpulse.metrics.frames import NAT, NS_PER_DAY, iso_utc

QUANTILES = (0.50, 0.85, 0.95)
MAX_DAYS = 3650
# P(T <= n) and P(S_H >= m) are sums of many products: compare with q up to rounding.
_EPS = 1e-12
# Above this many cells the convolution goes through the FFT.
_FFT_FROM = 64


@dataclass(frozen=True)
class Forecast:
    remaining: int
    window_days: int
    horizon_days: int
    days: tuple[int | None, int | None, int | None]
    done_in_horizon: tuple[int | None, int | None, int | None]

    def as_json(self, as_of: int) -> dict[str, object]:
        def date(d: int | None) -> str | None:
            return None if d is None else iso_utc(as_of + d * NS_PER_DAY)

        return {
            "remaining": self.remaining, "window_days": self.window_days, "horizon_days": self.horizon_days,
            "days_p50": self.days[0], "days_p85": self.days[1], "days_p95": self.days[2],
            "date_p50": date(self.days[0]), "date_p85": date(self.days[1]), "date_p95": date(self.days[2]),
            "done_in_horizon_p50": self.done_in_horizon[0], "done_in_horizon_p85": self.done_in_horizon[1],
            "done_in_horizon_p95": self.done_in_horizon[2],
        }


def daily_samples(resolved: np.ndarray, as_of: int, window_days: int) -> np.ndarray:
    """Resolutions per day d = 1..W, day d being [as_of - d days, as_of - (d-1) days)."""
    r = resolved[resolved != NAT]
    age = as_of - r
    # r in [as_of - d days, as_of - (d-1) days) <=> age in ((d-1) days, d days]: d = ceil(age).
    # A resolution at as_of itself (age 0) is in no sampled day.
    inside = (age > 0) & (age <= window_days * NS_PER_DAY)
    day = (age[inside] + NS_PER_DAY - 1) // NS_PER_DAY
    return np.bincount(day.astype(np.int64) - 1, minlength=window_days)[:window_days]


def daily_distribution(samples: np.ndarray) -> np.ndarray:
    """p(k) = share of the sampled days with k resolutions, k = 0..max."""
    samples = np.asarray(samples, dtype=np.int64)
    return np.bincount(samples).astype(np.float64) / len(samples)


def _convolve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if min(len(a), len(b)) < _FFT_FROM:
        return np.convolve(a, b)
    size = len(a) + len(b) - 1
    n = 1 << (size - 1).bit_length()
    out = np.fft.irfft(np.fft.rfft(a, n) * np.fft.rfft(b, n), n)[:size]
    return np.maximum(out, 0.0)  # FFT rounding leaves tiny negatives


def _below(dist: np.ndarray, head: np.ndarray, remaining: int) -> np.ndarray:
    """The part below R of the sum of two independent parts below R (exact: draws are >= 0)."""
    return _convolve(dist, head)[:remaining]


def _power_below(head: np.ndarray, n: int, remaining: int) -> np.ndarray:
    """P(S_n = v) for v < R, by squaring: log2(n) truncated convolutions."""
    result = np.zeros(1)
    result[0] = 1.0
    base = head
    while n:
        if n & 1:
            result = _below(result, base, remaining)
        n >>= 1
        if n:
            base = _below(base, base, remaining)
    return result


def _surely_below_half(p: np.ndarray, remaining: int) -> int:
    """A day count n0 with P(S_n >= R) < 0.5 for every n <= n0 (Cantelli's inequality:
    P(S_n - n mu >= t) <= n var / (n var + t^2), below 1/2 when t > sqrt(n var)); the
    days up to n0 hold no percentile, so the walk may start there."""
    k = np.arange(len(p))
    mu = float((k * p).sum())
    sigma = float(np.sqrt(max(float((k * k * p).sum()) - mu * mu, 0.0)))
    x = (-sigma + np.sqrt(sigma * sigma + 4 * mu * remaining)) / (2 * mu)
    n0 = int(x * x)
    while n0 > 0 and not remaining - n0 * mu > sigma * np.sqrt(n0):
        n0 -= 1
    return max(min(n0 - 1, MAX_DAYS - 1), 0)  # one day of margin against rounding


def days_to_finish(p: np.ndarray, remaining: int) -> tuple[int | None, int | None, int | None]:
    """The smallest n with P(T <= n) >= 0.50 / 0.85 / 0.95 (T: first n with S_n >= R)."""
    if remaining <= 0:
        return (0, 0, 0)
    if len(p) <= 1 or p[1:].sum() <= 0:
        return (None, None, None)  # every sample is 0: the work never finishes
    # Draws of R or more jump straight past R: only k < R is convolved; the mass that
    # leaves the cells below R (total mass is 1) has reached R.
    head = p[:remaining]
    n0 = _surely_below_half(p, remaining)
    below = _power_below(head, n0, remaining)
    answers: list[int | None] = [None, None, None]
    q_i = 0
    for n in range(n0 + 1, MAX_DAYS + 1):
        below = _below(below, head, remaining)
        reached = 1.0 - below.sum()
        while q_i < 3 and reached >= QUANTILES[q_i] - _EPS:
            answers[q_i] = n
            q_i += 1
        if q_i == 3:
            break
    return (answers[0], answers[1], answers[2])


def done_in_horizon(p: np.ndarray, horizon_days: int) -> tuple[int | None, int | None, int | None]:
    """The largest m with P(S_H >= m) >= 0.50 / 0.85 / 0.95."""
    dist = np.ones(1)
    for _ in range(horizon_days):
        dist = _convolve(dist, p)
    at_least = np.cumsum(dist[::-1])[::-1]  # at_least[m] = P(S_H >= m)
    out: list[int | None] = []
    for q in QUANTILES:
        ok = np.flatnonzero(at_least >= q - _EPS)
        out.append(int(ok[-1]) if len(ok) else 0)
    return (out[0], out[1], out[2])


def forecast(resolved: np.ndarray, remaining: int, as_of: int, window_days: int, horizon_days: int) -> Forecast:
    """The §11 forecast of one project (or version) from its items' `resolved` instants."""
    p = daily_distribution(daily_samples(resolved, as_of, window_days))
    return Forecast(remaining=remaining, window_days=window_days, horizon_days=horizon_days,
                    days=days_to_finish(p, remaining), done_in_horizon=done_in_horizon(p, horizon_days))
