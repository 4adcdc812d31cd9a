"""VIDEO-mode runner: decode thread -> process -> encode thread, with bounded queues.

Decoding, inference/compositing and encoding overlap: PyAV releases the GIL inside codec and
swscale work, ONNX Runtime and OpenCV release it in their kernels.  Every frame is processed
in order and nothing is dropped; the bounded queues keep memory flat however long the input.
Passthrough packets (audio, subtitles) travel in the same queues as the frames, so they reach
the sink in file order without a separate buffer.

``process`` runs in the calling thread by default, so Ctrl-C (delivered to the main thread)
lands in it; frames already processed are still written before the sink finalizes.

Example::

    with open_source("in.mp4") as source, open_sink("out.mp4", passthrough=...) as sink:
        stats = run_video(source, pipeline.process, sink)
    print(stats.frames, stats.fps)
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from livematte.frame import Frame

ProcessFn = Callable[[Frame], Frame]
#: Called after each written frame with (frames written, seconds elapsed).
ProgressFn = Callable[[int, float], None]

_END = object()


@dataclass
class RunStats:
    """What a run did.  ``timings_ms`` holds per-stage totals (decode, process, encode) and
    ``wait_ms`` the time each thread spent blocked on its queues (where the bottleneck is)."""

    frames: int = 0
    packets: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    timings_ms: dict[str, float] = field(default_factory=dict)
    wait_ms: dict[str, float] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        """Frames written per wall-clock second."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def add(self, name: str, ms: float) -> None:
        self.timings_ms[name] = self.timings_ms.get(name, 0.0) + ms


class _Failure:
    """An exception raised in a worker thread, carried to the calling thread."""

    def __init__(self, error: BaseException):
        self.error = error


def _as_callable(process: ProcessFn | Any) -> ProcessFn:
    return process.process if hasattr(process, "process") else process


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> bool:
    """Put unless told to stop; False when stopped (the consumer is gone)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue, waits: dict[str, float], name: str) -> Any:
    tic = time.perf_counter()
    item = q.get()
    waits[name] = waits.get(name, 0.0) + (time.perf_counter() - tic) * 1000.0
    return item


def run_video(
    source: Iterable[Any] | Any,
    process: ProcessFn | Any,
    sink: Any,
    *,
    queue_size: int = 4,
    process_in_thread: bool = False,
    on_progress: ProgressFn | None = None,
) -> RunStats:
    """Run every frame of ``source`` through ``process`` into ``sink``, in order.

    Args:
        source: a :class:`~livematte.io.sources.Source` (its ``items()`` are used, so
            passthrough packets flow too) or any iterable of frames.
        process: ``Frame -> Frame`` callable, or an object with ``.process`` (a Pipeline).
        sink: anything with ``send(frame)`` (and optionally ``send_packet(packet)``); it is
            not closed here, the caller's ``with`` block finalizes it.
        queue_size: frames buffered between stages (memory bound: about 2 x this many frames).
        process_in_thread: run ``process`` in a worker thread instead of the calling thread.
        on_progress: called from the encode thread after each frame is written.

    Returns:
        RunStats with frame count, wall time and per-stage timings.

    Raises:
        Whatever a stage raised (SourceError, SinkError, the pipeline's errors), re-raised in
        the calling thread after the other threads stopped; KeyboardInterrupt after the frames
        already processed were written (``stats`` is attached to it as ``.stats``).
    """
    fn = _as_callable(process)
    items = source.items() if hasattr(source, "items") else iter(source)
    send_packet = getattr(sink, "send_packet", None)
    stats = RunStats()
    stop = threading.Event()
    decoded: queue.Queue = queue.Queue(maxsize=queue_size)
    processed: queue.Queue = queue.Queue(maxsize=queue_size)
    waits: dict[str, float] = {}
    started = time.perf_counter()

    def decode() -> None:
        try:
            for item in items:
                if isinstance(item, Frame):
                    stats.add("decode", item.timings.get("decode", 0.0))
                if not _put(decoded, item, stop):
                    return
            _put(decoded, _END, stop)
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the caller
            _put(decoded, _Failure(exc), stop)

    def encode() -> None:
        try:
            while True:
                item = _get(processed, waits, "encode")
                if item is _END or isinstance(item, _Failure):
                    return
                if isinstance(item, Frame):
                    tic = time.perf_counter()
                    sink.send(item)
                    ms = (time.perf_counter() - tic) * 1000.0
                    item.timings["encode"] = ms
                    stats.add("encode", ms)
                    stats.frames += 1
                    if on_progress is not None:
                        on_progress(stats.frames, time.perf_counter() - started)
                else:
                    stats.packets += 1
                    if send_packet is not None:
                        send_packet(item)
        except BaseException as exc:  # noqa: BLE001
            encode_error.append(exc)
            stop.set()
            # Unblock the producer side: drain so nothing waits on a full queue forever.
            while True:
                try:
                    processed.get_nowait()
                except queue.Empty:
                    break

    def middle() -> None:
        """Pull decoded items, process frames, push downstream; returns when done/stopped."""
        while not stop.is_set():
            item = _get(decoded, waits, "process")
            if item is _END:
                _put(processed, _END, stop)
                return
            if isinstance(item, _Failure):
                raise item.error
            if isinstance(item, Frame):
                tic = time.perf_counter()
                item = fn(item)
                ms = (time.perf_counter() - tic) * 1000.0
                item.timings["process"] = ms
                stats.add("process", ms)
            if not _put(processed, item, stop):
                return

    encode_error: list[BaseException] = []
    decoder = threading.Thread(target=decode, name="livematte-decode", daemon=True)
    encoder = threading.Thread(target=encode, name="livematte-encode", daemon=True)
    decoder.start()
    encoder.start()
    failure: BaseException | None = None
    try:
        if process_in_thread:
            middle_error: list[BaseException] = []

            def run_middle() -> None:
                try:
                    middle()
                except BaseException as exc:  # noqa: BLE001
                    middle_error.append(exc)

            worker = threading.Thread(target=run_middle, name="livematte-process", daemon=True)
            worker.start()
            while worker.is_alive():
                worker.join(timeout=0.1)  # short joins keep the main thread responsive to Ctrl-C
            if middle_error:
                raise middle_error[0]
        else:
            middle()
    except BaseException as exc:  # noqa: BLE001 - re-raised below after an orderly stop
        failure = exc
    finally:
        # Let the encoder write what was already processed (a playable partial on Ctrl-C),
        # then stop the decoder, which may be blocked on a full queue.
        if failure is not None and encoder.is_alive():
            _put(processed, _END, threading.Event() if not encode_error else stop)
        encoder.join()
        stop.set()
        decoder.join(timeout=5.0)
        stats.seconds = time.perf_counter() - started
        stats.wait_ms = waits
    if encode_error:
        raise encode_error[0]
    if failure is not None:
        if isinstance(failure, KeyboardInterrupt):
            stats.interrupted = True
            failure.stats = stats  # type: ignore[attr-defined]
        raise failure
    return stats
