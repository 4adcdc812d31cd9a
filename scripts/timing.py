"""Timing helpers every benchmark script shares (one definition: ``timings_ms``, ``summarise``)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def timings_ms(func: Callable[[], object], warmup: int, runs: int) -> list[float]:
    """Call ``func`` ``warmup`` times untimed, then ``runs`` times; return each run in ms."""
    for _ in range(warmup):
        func()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        samples.append((time.perf_counter() - start) * 1000.0)
    return samples


def summarise(samples: list[float]) -> dict[str, float]:
    """Median, p95, min and mean of millisecond samples."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {
        "median_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(p95, 3),
        "min_ms": round(ordered[0], 3),
        "mean_ms": round(statistics.fmean(ordered), 3),
    }
