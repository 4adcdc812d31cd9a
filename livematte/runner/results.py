"""What a run returns: how far it got and how it ended, as typed dataclasses.

A run never ends by raising with its figures attached: Ctrl-C and errors end it, and the
result says so (``interrupted``, ``error``), with the figures of what was done before.  The
caller decides what the user sees (a partial file kept, a one-line error, an exit status).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values``; NaN when empty."""
    return float(np.percentile(np.asarray(values, np.float64), q)) if len(values) else float("nan")


def latency_percentiles(ms: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 of ``ms``, rounded to 0.01 (NaN when empty)."""
    return {f"p{q}": round(percentile(ms, q), 2) for q in (50, 95, 99)}


@dataclass
class RunResult:
    """How a run ended.

    Attributes:
        frames: frames delivered to the sink(s).
        seconds: wall-clock time of the run.
        interrupted: Ctrl-C (or a cancel raised as KeyboardInterrupt) stopped it; what was
            processed before it was still delivered.
        error: the error that stopped it (a source, pipeline or sink error); None when it
            ran to its end (or was interrupted).
    """

    frames: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    error: Exception | None = None

    @property
    def completed(self) -> bool:
        """True when the run went to its end: neither interrupted nor failed."""
        return not self.interrupted and self.error is None

    @property
    def fps(self) -> float:
        """Frames delivered per wall-clock second."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass
class VideoRun(RunResult):
    """An ordered (VIDEO) run.  ``timings_ms`` holds per-stage totals (decode, process,
    encode) and ``wait_ms`` the time each thread spent blocked on its queues (where the
    bottleneck is); ``packets``: passthrough packets carried (audio, subtitles)."""

    packets: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)
    wait_ms: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, ms: float) -> None:
        self.timings_ms[name] = self.timings_ms.get(name, 0.0) + ms


@dataclass
class SinkFigures:
    """One sink of a live run: pictures delivered, keep-alive repeats, latency percentiles."""

    delivered: int
    repeated: int
    latency_ms: dict[str, float]


@dataclass
class LiveRun(RunResult):
    """A latest-frame (LIVE) run.

    Attributes:
        latencies: (seconds since start, capture-to-sink ms) per delivered frame, where "sink"
            is the end of the last synchronous ``send`` (threaded sinks record their own).
        stage_ms: per-stage timings (``frame.timings``) of every processed frame.
        captured: frames the source delivered; ``dropped``: captured but never processed
            (overwritten while processing); ``paused``: taken while paused.
        errors: frames whose processing failed (each skipped); ``reconnects``: of the device.
        cpu_seconds: process CPU time (all threads) over the run.
        stop_reason: duration, quit, source ended, interrupted, terminated, ...
        threads_left: threads the run started that were still alive at its end.
    """

    captured: int = 0
    dropped: int = 0
    paused: int = 0
    errors: int = 0
    reconnects: int = 0
    cpu_seconds: float = 0.0
    stop_reason: str = ""
    latencies: list[tuple[float, float]] = field(default_factory=list)
    stage_ms: dict[str, list[float]] = field(default_factory=dict)
    sinks: dict[str, SinkFigures] = field(default_factory=dict)
    threads_left: list[str] = field(default_factory=list)

    @property
    def processed(self) -> int:
        """Frames processed and delivered (the same count as ``frames``)."""
        return self.frames

    def summary(self, window: float = 10.0) -> dict[str, object]:
        """Figures for reports (JSON): fps, latency p50/p95/p99, growth, drops, CPU, stages.

        ``latency_growth_ms`` is the p50 of the last ``window`` s minus that of the first
        ``window`` s (after the first second, which holds warm-up).
        """
        ms = [v for _, v in self.latencies]
        span = self.latencies[-1][0] if self.latencies else 0.0
        first = [v for t, v in self.latencies if 1.0 <= t < 1.0 + window]
        last = [v for t, v in self.latencies if t >= span - window]
        growth = percentile(last, 50) - percentile(first, 50) if span > 2 * window else 0.0
        return {
            "seconds": round(self.seconds, 2),
            "captured": self.captured,
            "processed": self.processed,
            "dropped": self.dropped,
            "errors": self.errors,
            "reconnects": self.reconnects,
            "fps": round(self.processed / self.seconds, 2) if self.seconds else 0.0,
            "latency_ms": latency_percentiles(ms),
            "latency_growth_ms": round(growth, 2),
            "cpu_percent": round(100.0 * self.cpu_seconds / self.seconds, 1)
            if self.seconds
            else 0.0,
            "stage_ms": {k: round(float(np.mean(v)), 2) for k, v in self.stage_ms.items()},
            "sinks": {name: vars(figures) for name, figures in self.sinks.items()},
            "stop_reason": self.stop_reason,
        }
