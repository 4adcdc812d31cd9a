"""The LIVE runner: capture thread -> newest frame -> process -> sinks, latency bounded.

Capture runs in its own thread and keeps only the newest frame (``LatestSlot``); the main
thread takes it, processes it and hands it to every sink.  When processing is slower than the
camera, the frames it had no time for are overwritten in the slot (counted as ``dropped``), so
a frame never waits behind another and latency cannot grow.  Sinks that do slow work (virtual
camera, network encoder) have their own sender threads with the same one-slot mailbox.

The window must live on the main thread (Qt/Cocoa), which is why the runner loop is the main
thread and pumps the window while it waits; with a window, each frame is processed in a worker
thread while the main thread keeps pumping, since OpenCV's Qt backend keeps only the last key
typed since it was pumped (of two presses 100 ms apart during a 300 ms frame, the first was
lost).  While no frame arrives (camera unplugged,
stalled, paused) the outputs stay alive: the window shows the last picture with a status line
and the threaded sinks re-send their last picture.

Example::

    runner = LiveRunner(open_live_source(source="clip.mp4"), pipeline.process,
                        lambda size, fps: [NullSink()], duration=10)
    stats = runner.run()
    print(stats.summary()["fps"])
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from livematte.errors import SourceError
from livematte.frame import Frame
from livematte.io.capture import LiveSource
from livematte.io.live_sinks import LiveSink
from livematte.io.sinks import stderr_notice

ProcessFn = Callable[[Frame], Frame]
SinkFactory = Callable[[tuple[int, int], float], Sequence[LiveSink]]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values``; NaN when empty."""
    return float(np.percentile(np.asarray(values, np.float64), q)) if len(values) else float("nan")


def latency_percentiles(ms: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 of ``ms``, rounded to 0.01 (NaN when empty)."""
    return {f"p{q}": round(percentile(ms, q), 2) for q in (50, 95, 99)}


@dataclass
class LiveStats:
    """What a live run did.

    Attributes:
        latencies: (seconds since start, capture-to-sink ms) per delivered frame, where "sink"
            is the end of the last synchronous ``send`` (threaded sinks record their own).
        stage_ms: per-stage timings (``frame.timings``) of every processed frame.
        dropped: frames captured but never processed (overwritten while processing).
        cpu_seconds: process CPU time (all threads) over the run.
    """

    seconds: float = 0.0
    captured: int = 0
    processed: int = 0
    dropped: int = 0
    paused: int = 0
    errors: int = 0
    reconnects: int = 0
    cpu_seconds: float = 0.0
    interrupted: bool = False
    stop_reason: str = ""
    latencies: list[tuple[float, float]] = field(default_factory=list)
    stage_ms: dict[str, list[float]] = field(default_factory=dict)
    sinks: dict[str, dict[str, Any]] = field(default_factory=dict)
    threads_left: list[str] = field(default_factory=list)

    def summary(self, window: float = 10.0) -> dict[str, Any]:
        """Figures for reports: fps, latency p50/p95/p99, growth, drops, CPU, stage means.

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
            "sinks": self.sinks,
            "stop_reason": self.stop_reason,
        }


def sink_summary(sink: LiveSink) -> dict[str, Any]:
    """Delivered/repeated counts and latency percentiles of one sink."""
    ms = [v for _, v in sink.latencies]
    return {
        "delivered": sink.delivered,
        "repeated": sink.repeated,
        "latency_ms": latency_percentiles(ms),
    }


class LiveRunner:
    """Run a live source through ``process`` into sinks until stopped.

    Args:
        source: a ``LiveSource`` (not started; the runner starts and stops it).
        process: ``Frame -> Frame`` (a ``Pipeline.process`` or ``LiveControls.process``).
        sinks: sinks (not opened), or a factory ``(size, fps) -> sinks`` called once the first
            frame says what size the camera delivers.
        duration: stop after this many seconds (None = until quit / Ctrl-C / ``stop()``).
        controls: receives hotkey actions (``next_background``, ``toggle_stickers``).
        stall_after: seconds without a frame before the outputs say the camera is lost.
        max_errors: consecutive processing errors tolerated (each skips one frame).
        log: one-line notices (default: stderr).
    """

    def __init__(
        self,
        source: LiveSource,
        process: ProcessFn,
        sinks: Sequence[LiveSink] | SinkFactory,
        *,
        duration: float | None = None,
        controls: Any = None,
        stall_after: float = 0.5,
        max_errors: int = 30,
        first_frame_timeout: float = 10.0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.source = source
        self.process = process
        self._sinks_arg = sinks
        self.sinks: list[LiveSink] = []
        self.duration = duration
        self.controls = controls
        self.stall_after = stall_after
        self.max_errors = max_errors
        self.first_frame_timeout = first_frame_timeout
        self.log = log or stderr_notice
        self.paused = False
        self.stats = LiveStats()
        self._stop = threading.Event()

    def stop(self, reason: str = "stopped") -> None:
        """Ask the loop to end (thread-safe; signal handlers may call it)."""
        if not self.stats.stop_reason:
            self.stats.stop_reason = reason
        self._stop.set()

    # -- run -----------------------------------------------------------------------------------
    def run(self) -> LiveStats:
        """Start everything, loop until stopped, shut down cleanly; return the stats.

        Ctrl-C ends the run like ``stop()`` (``stats.interrupted``); it is not re-raised.

        Raises:
            SourceError: the source cannot start or delivers no first frame.
            SinkError: a sink cannot open or fails while running.
        """
        cpu0, before = time.process_time(), set(threading.enumerate())
        try:
            with contextlib.ExitStack() as stack:
                self.source.start()
                stack.callback(self._stop_source)
                first = self.source.read(self.first_frame_timeout)
                if first is None:
                    raise SourceError(
                        f"{self.source.name} delivered no frame in {self.first_frame_timeout:g} s"
                        + (f" ({self.source.last_error})" if self.source.last_error else "")
                    )
                size, fps = first.frame.size, float(self.source.fps or 30.0)
                # Warm-up: the first run allocates model buffers; doing it before the sinks
                # open keeps that out of the figures and reports a broken pipeline at once.
                self.process(first.frame)
                sinks = self._sinks_arg
                self.sinks = list(sinks(size, fps) if callable(sinks) else sinks)
                for sink in self.sinks:
                    stack.enter_context(sink)
                self._loop()
        except KeyboardInterrupt:
            self.stats.interrupted = True
            self.stats.stop_reason = self.stats.stop_reason or "interrupted"
        finally:
            self.stats.cpu_seconds = time.process_time() - cpu0
            self.stats.captured = self.source.captured
            self.stats.reconnects = self.source.reconnects
            self.stats.sinks = {s.name: sink_summary(s) for s in self.sinks}
            self.stats.threads_left = [
                t.name for t in threading.enumerate() if t not in before and t.is_alive()
            ]
        return self.stats

    def _stop_source(self) -> None:
        if not self.source.stop():
            self.log(f"{self.source.name}: capture thread did not stop in time (left as daemon)")

    def _loop(self) -> None:
        stats = self.stats
        start = time.monotonic()
        # The window needs its events pumped often; without one, wake up rarely.
        poll = min((s.poll_interval for s in self.sinks), default=LiveSink.poll_interval)
        item, errors_in_row = None, 0
        interactive = [s for s in self.sinks if s.takes_input]
        worker = (
            ThreadPoolExecutor(1, thread_name_prefix="livematte-process") if interactive else None
        )
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if self.duration is not None and now - start >= self.duration:
                    self.stop("duration")
                    break
                for sink in self.sinks:
                    for action in sink.poll():
                        self._act(action)
                if self._stop.is_set():
                    break
                if item is None:
                    item = self.source.read(poll)
                if item is None:
                    if not self.source.running:
                        self.stop("source ended")
                        break
                    self._idle(self._status())
                    continue
                captured, item = item, None
                if self.paused:
                    stats.paused += 1
                    self._idle("paused (space to resume)")
                    continue
                t_proc = time.monotonic()
                try:
                    frame = self._process(captured.frame, worker, interactive, poll)
                except Exception as exc:  # a bad frame costs one frame, not the session
                    stats.errors += 1
                    errors_in_row += 1
                    if errors_in_row >= self.max_errors:
                        raise
                    if errors_in_row == 1:
                        self.log(f"frame skipped: {type(exc).__name__}: {exc}")
                    continue
                errors_in_row = 0
                frame.timings["wait"] = (t_proc - captured.captured_at) * 1000.0
                for sink in self.sinks:
                    sink.send(frame, captured.captured_at)
                done = time.monotonic()
                stats.processed += 1
                stats.latencies.append((done - start, (done - captured.captured_at) * 1000.0))
                for key, value in frame.timings.items():
                    stats.stage_ms.setdefault(key, []).append(value)
        finally:
            if worker is not None:
                worker.shutdown(wait=True, cancel_futures=True)
            stats.seconds = time.monotonic() - start
            stats.dropped = self.source.dropped

    def _process(
        self, frame: Frame, worker: ThreadPoolExecutor | None, interactive: list[LiveSink],
        poll: float,
    ) -> Frame:  # fmt: skip
        """``process(frame)``; with a window, in a worker thread while this (the GUI) thread
        pumps the window's events, so keys typed meanwhile are each taken in.  Their actions
        wait in the sink until the frame is done, so the pipeline never changes mid-frame."""
        if worker is None:
            return self.process(frame)
        future = worker.submit(self.process, frame)
        while True:
            try:
                return future.result(timeout=poll)
            except TimeoutError:
                for sink in interactive:
                    sink.pump()

    def _status(self) -> str:
        age = self.source.frame_age
        if age < self.stall_after:
            return ""
        if self.source.status == "reconnecting":
            return f"camera lost - reconnecting ({age:.0f} s)"
        return f"no frames from camera for {age:.1f} s"

    def _idle(self, status: str) -> None:
        for sink in self.sinks:
            sink.idle(status)

    def _act(self, action: str) -> None:
        if action == "quit":
            self.stop("quit")
        elif action == "pause":
            self.paused = not self.paused
        elif self.controls is not None and hasattr(self.controls, action):
            message = getattr(self.controls, action)()
            if message:
                self.log(message)


class LiveControls:
    """What the hotkeys change, as config: the background and stickers on/off.

    Each switch is a new config handed to ``build_pipeline`` (its one rule says which stages
    run: "stickers off" drops the keypoint stage too unless something else needs it, such as
    ``matting.person_roi``), built from a pool of every stage made so far, so models load once
    and switching back costs nothing.  Every background is built up front: a bad ``--bg``
    fails at start, not at its hotkey.

    Args:
        pipeline: from ``build_pipeline(config)``.
        backgrounds: background specs to cycle; the config's own comes first.
    """

    def __init__(self, pipeline: Any, backgrounds: Sequence[str] = ()) -> None:
        from livematte.api import Pipeline
        from livematte.pipeline.stickers import stickers_enabled

        self.pipeline = pipeline
        self._base = pipeline.config
        current = self._base.effects.background
        self.backgrounds = [current] + [b for b in backgrounds if b != current]
        self._bg = 0
        self.stickers_on = stickers_enabled(self._base)
        self._has_stickers = self.stickers_on
        # Every stage built so far, with its config slices (what build_pipeline reuses).
        self._pool = Pipeline(list(pipeline.stages), self._base, list(pipeline.slices))
        for i in range(1, len(self.backgrounds)):
            self._bg = i
            self._switch()
        self._bg = 0
        self._switch()

    @property
    def config(self) -> Any:
        """The config the hotkeys have made of the original one."""
        from livematte.config import replace

        pack = self._base.stickers.pack if self.stickers_on else ""
        return replace(
            self._base,
            {"effects.background": self.backgrounds[self._bg], "stickers.pack": pack},
        )

    def _switch(self) -> None:
        from livematte.api import build_pipeline

        new = build_pipeline(self.config, reuse=self._pool)
        pooled = {id(stage) for stage in self._pool.stages}
        for stage, key in zip(new.stages, new.slices, strict=True):
            if id(stage) not in pooled:
                self._pool.stages.append(stage)
                self._pool.slices.append(key)
        self.pipeline = new

    def process(self, frame: Frame) -> Frame:
        """Run the current pipeline on ``frame``."""
        return self.pipeline.process(frame)

    def next_background(self) -> str:
        """Switch to the next background; returns a notice."""
        if len(self.backgrounds) < 2:
            return "only one background: give --bg several times to cycle"
        self._bg = (self._bg + 1) % len(self.backgrounds)
        self._switch()
        return f"background: {self.backgrounds[self._bg]}"

    def toggle_stickers(self) -> str:
        """Turn stickers (and keypoints that run only for them) off or back on."""
        if not self._has_stickers:
            return "no sticker pack: start with --stickers PACK"
        self.stickers_on = not self.stickers_on
        running = {id(stage) for stage in self.pipeline.stages}
        self._switch()
        for stage in self.pipeline.stages:
            if id(stage) not in running:
                stage.reset()  # back from the pool: its tracks are stale after the pause
        return f"stickers {'on' if self.stickers_on else 'off'}"

    def close(self) -> None:
        """Close every stage built (the pipeline's and those waiting in the pool)."""
        self._pool.close()
