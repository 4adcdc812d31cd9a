"""The latest-frame scheduler (LIVE): capture thread -> newest frame -> process -> sinks.

Capture runs in its own thread (:class:`Capture`, over any :class:`~livematte.io.base.Source`)
and keeps only the newest frame (``LatestSlot``); the main thread takes it, processes it and
hands it to every sink.  When processing is slower than the camera, the frames it had no time
for are overwritten in the slot (counted as ``dropped``), so a frame never waits behind
another and latency cannot grow.  Sinks that do slow work (virtual camera, network encoder)
have their own sender threads with the same one-slot mailbox.

The window must live on the main thread (Qt/Cocoa), which is why the runner loop is the main
thread and pumps the window while it waits; with a window, each frame is processed in a worker
thread while the main thread keeps pumping, since OpenCV's Qt backend keeps only the last key
typed since it was pumped (of two presses 100 ms apart during a 300 ms frame, the first was
lost).  While no frame arrives (camera unplugged, stalled, paused) the outputs stay alive: the
window shows the last picture with a status line and the threaded sinks re-send their last
picture.

Example::

    runner = LiveRunner(open_live_source(source="clip.mp4"), pipeline.process,
                        lambda size, fps: [NullSink()], duration=10)
    run = runner.run()
    print(run.summary()["fps"], run.error)
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from livematte.errors import SourceError, stderr_notice
from livematte.frame import Frame
from livematte.io.base import LatestSlot, Sink, SinkBase, Source
from livematte.runner.memory import keep_freed_memory
from livematte.runner.ordered import ProcessFn
from livematte.runner.results import LiveRun, SinkFigures, latency_percentiles
from livematte.runner.threads import opencv_threads, pipeline_threads

SinkFactory = Callable[[tuple[int, int], float], Sequence[Sink]]


@dataclass
class Captured:
    """A captured frame and the monotonic time (s) at which it was captured."""

    frame: Frame
    captured_at: float
    seq: int


class Capture:
    """A source read on its own thread into a one-slot mailbox: the newest frame only.

    Attributes:
        captured: frames read; ``dropped``: frames overwritten before anyone took them.
    """

    def __init__(self, source: Source) -> None:
        self.source = source
        self.captured = 0
        self._slot: LatestSlot[Captured] = LatestSlot()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_capture = 0.0
        self.error: Exception | None = None

    @property
    def dropped(self) -> int:
        """Frames captured but overwritten before the consumer took them."""
        return self._slot.overwritten

    @property
    def running(self) -> bool:
        """True while the capture thread runs (False after ``stop`` or the input's end)."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def frame_age(self) -> float:
        """Seconds since the last frame was captured (inf before the first one)."""
        return time.monotonic() - self._last_capture if self.captured else float("inf")

    def start(self) -> Capture:
        """Open the source (its errors are raised here, at once) and start the thread.

        Raises:
            SourceError: the device or file cannot be opened.
        """
        self.source.open()
        name = f"capture:{self.source.name}"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for item in self.source.items(self._stop):
                if self._stop.is_set():
                    break
                if isinstance(item, Frame):
                    now = time.monotonic()
                    self._last_capture = now
                    self.captured += 1
                    self._slot.put(Captured(item, now, self.captured))
        except Exception as exc:  # a file that breaks mid-way: the runner says why it ended
            self.error = exc
        finally:
            self._slot.close()

    def read(self, timeout: float | None = None) -> Captured | None:
        """The newest frame not yet read, waiting up to ``timeout`` s (None when none came)."""
        return self._slot.take(timeout)

    def stop(self, timeout: float = 3.0) -> bool:
        """Stop the thread and close the source; True when the thread ended within timeout.

        A thread still blocked in a driver call owns the device: it is then left to end with
        the process (a daemon), and the source is not closed under it."""
        self._stop.set()
        self._slot.close()
        joined = True
        if self._thread is not None:
            self._thread.join(timeout)
            joined = not self._thread.is_alive()
        if joined:
            self.source.close()
        return joined

    def __enter__(self) -> Capture:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def sink_figures(sink: Sink) -> SinkFigures:
    """Delivered/repeated counts and latency percentiles of one sink."""
    ms = [v for _, v in sink.latencies]
    return SinkFigures(sink.frames, sink.repeated, latency_percentiles(ms))


class LiveRunner:
    """Run a live source through ``process`` into sinks until stopped.

    Args:
        source: a :class:`~livematte.io.base.Source` (a camera, a stand-in stream; not
            opened: the runner opens it, reads it on a capture thread and closes it).
        process: ``Frame -> Frame`` (a ``Pipeline.process`` or ``LiveControls.process``).
        sinks: sinks (not opened), or a factory ``(size, fps) -> sinks`` called once the first
            frame says what size the camera delivers.
        duration: stop after this many seconds (None = until quit / Ctrl-C / ``stop()``).
        controls: receives hotkey actions other than quit and pause: its method named after
            the action (``next_background``, ``toggle_stickers``) is called, and the notice
            it returns is logged.
        stall_after: seconds without a frame before the outputs say the camera is lost.
        max_errors: consecutive processing errors tolerated (each skips one frame).
        log: one-line notices (default: stderr).
    """

    def __init__(
        self,
        source: Source,
        process: ProcessFn,
        sinks: Sequence[Sink] | SinkFactory,
        *,
        duration: float | None = None,
        controls: object | None = None,
        stall_after: float = 0.5,
        max_errors: int = 30,
        first_frame_timeout: float = 10.0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.source = source
        self.capture = Capture(source)
        self.process = process
        self._sinks_arg = sinks
        self.sinks: list[Sink] = []
        self.duration = duration
        self.controls = controls
        self.stall_after = stall_after
        self.max_errors = max_errors
        self.first_frame_timeout = first_frame_timeout
        self.log = log or stderr_notice
        self.paused = False
        self.result = LiveRun()
        self._stop = threading.Event()

    def stop(self, reason: str = "stopped") -> None:
        """Ask the loop to end (thread-safe; signal handlers may call it)."""
        if not self.result.stop_reason:
            self.result.stop_reason = reason
        self._stop.set()

    # -- run -----------------------------------------------------------------------------------
    def run(self) -> LiveRun:
        """Start everything, loop until stopped, shut down cleanly; return what happened.

        Ctrl-C ends the run like ``stop()`` (``interrupted``).  An error ends it too, and is
        the result's ``error``: a source that cannot open or delivers no first frame
        (``SourceError``), a sink that cannot open or fails (``SinkError``), or ``max_errors``
        processing errors in a row.  Nothing is raised for those.

        Freed frame buffers stay with the process for the next frame, as in VIDEO runs
        (``livematte.runner.memory``).
        """
        keep_freed_memory()
        result = self.result
        cpu0, before = time.process_time(), set(threading.enumerate())
        try:
            with contextlib.ExitStack() as stack:
                # OpenCV's pool follows runtime.threads (livematte.runner.threads).
                stack.enter_context(opencv_threads(pipeline_threads(self.process)))
                self.capture.start()
                stack.callback(self._stop_capture)
                first = self.capture.read(self.first_frame_timeout)
                if first is None:
                    why = self.source.last_error or self.capture.error
                    raise SourceError(
                        f"{self.source.name} delivered no frame in {self.first_frame_timeout:g} s"
                        + (f" ({why})" if why else "")
                    )
                size, fps = first.frame.size, float(self.source.rate or 30)
                # Warm-up: the first run allocates model buffers; doing it before the sinks
                # open keeps that out of the figures and reports a broken pipeline at once.
                self.process(first.frame)
                sinks = self._sinks_arg
                self.sinks = list(sinks(size, fps) if callable(sinks) else sinks)
                for sink in self.sinks:
                    stack.enter_context(sink)
                self._loop()
        except KeyboardInterrupt:
            result.interrupted = True
            result.stop_reason = result.stop_reason or "interrupted"
        except Exception as exc:  # the result says what failed; the caller tells the user
            result.error = exc
            result.stop_reason = result.stop_reason or "error"
        finally:
            result.cpu_seconds = time.process_time() - cpu0
            result.captured = self.capture.captured
            result.reconnects = self.source.reconnects
            result.sinks = {s.name: sink_figures(s) for s in self.sinks}
            result.threads_left = [
                t.name for t in threading.enumerate() if t not in before and t.is_alive()
            ]
        return result

    def _stop_capture(self) -> None:
        if not self.capture.stop():
            self.log(f"{self.source.name}: capture thread did not stop in time (left as daemon)")

    def _loop(self) -> None:
        stats = self.result
        start = time.monotonic()
        # The window needs its events pumped often; without one, wake up rarely.
        poll = min((s.poll_interval for s in self.sinks), default=SinkBase.poll_interval)
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
                    item = self.capture.read(poll)
                if item is None:
                    if not self.capture.running:
                        self.stop("source ended")
                        if self.capture.error is not None:
                            raise self.capture.error
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
                stats.frames += 1
                stats.latencies.append((done - start, (done - captured.captured_at) * 1000.0))
                for key, value in frame.timings.items():
                    stats.stage_ms.setdefault(key, []).append(value)
        finally:
            if worker is not None:
                worker.shutdown(wait=True, cancel_futures=True)
            stats.seconds = time.monotonic() - start
            stats.dropped = self.capture.dropped

    def _process(
        self, frame: Frame, worker: ThreadPoolExecutor | None, interactive: list[Sink],
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
        age = self.capture.frame_age
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
