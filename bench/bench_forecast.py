"""The exact forecast (METRICS.md §11) at report scale: 100 projects and 1,000 versions,
remaining work R up to 5,000 items. Prints the time the forecasts add to a report.

    python bench/bench_forecast.py [--seed 7]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from trackpulse.metrics.forecast import forecast
from trackpulse.metrics.frames import NS_PER_DAY


def resolutions(rng: np.random.Generator, as_of: int, per_day: float, days: int = 56) -> np.ndarray:
    """Resolution instants over the last `days` days: Poisson counts per day, uniform inside it."""
    counts = rng.poisson(per_day, size=days)
    day = np.repeat(np.arange(days), counts)
    return as_of - day * NS_PER_DAY - rng.integers(1, NS_PER_DAY, size=len(day))


def time_forecasts(seed: int = 7, *, verbose: bool = True) -> float:
    """Seconds the §11 forecasts of 100 projects and 1,000 versions take (what they add to a
    report: everything else of the forecast is a bincount of resolutions already computed)."""
    rng = np.random.default_rng(seed)
    as_of = 1_790_000_000 * 10**9
    # Projects: throughput 1-60 items/day, R up to 5,000; versions: smaller slices of the same.
    projects = [(resolutions(rng, as_of, float(rng.uniform(1, 60))), int(rng.integers(0, 5001))) for _ in range(100)]
    versions = [(resolutions(rng, as_of, float(rng.uniform(0.2, 8))), int(rng.integers(0, 400))) for _ in range(1000)]
    for name, cases in (("100 projects", projects), ("1,000 versions", versions)):
        t0 = time.perf_counter()
        nulls = 0
        for resolved, remaining in cases:
            f = forecast(resolved, remaining, as_of, 56, 14)
            nulls += f.days[2] is None
        dt = time.perf_counter() - t0
        worst = max(r for _, r in cases)
        if verbose:
            print(f"{name:>15}: {dt:6.3f} s  ({1000 * dt / len(cases):.2f} ms each; max R {worst}; "
                  f"{nulls} beyond 3,650 days)")
    t0 = time.perf_counter()
    for resolved, remaining in projects + versions:
        forecast(resolved, remaining, as_of, 56, 14)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    total = time_forecasts(args.seed)
    print(f"forecasts added to the report: {total:.3f} s (budget 1 s): {'OK' if total <= 1 else 'OVER'}")


if __name__ == "__main__":
    main()
