"""The ordered scheduler (VIDEO): decode thread -> process -> encode thread, bounded queues.

Decoding, inference/compositing and encoding overlap: PyAV releases the GIL inside codec and
swscale work, ONNX Runtime and OpenCV release it in their kernels.  Every frame is processed
in order and nothing is dropped; the bounded queues keep memory flat however long the input.
Passthrough packets (audio, subtitles) travel in the same queues as the frames, so they reach
the sink in file order without a separate buffer.

``process`` runs in the calling thread by default, so Ctrl-C (delivered to the main thread)
lands in it; frames already processed are still written, then the result says the run was
interrupted (the caller keeps the sink's part done).

Example::

    with open_source("in.mp4") as source:
        sink = open_sink("out.mp4", passthrough=source.passthrough_streams)
        run = run_video(source, pipeline, sink)
        sink.close() if run.completed else sink.abort(keep_partial=run.interrupted)
    print(run.frames, run.fps, run.error)
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Protocol, cast

from livematte.frame import Frame
from livematte.io.base import Item, Sink, Source
from livematte.runner.memory import keep_freed_memory
from livematte.runner.results import VideoRun
from livematte.runner.threads import opencv_threads, pipeline_threads, yield_to_processing

if TYPE_CHECKING:
    from av.packet import Packet

ProcessFn = Callable[[Frame], Frame]
#: Called after each written frame with (frames written, seconds elapsed).
ProgressFn = Callable[[int, float], None]


class Processor(Protocol):
    """Anything with ``process(frame) -> frame`` (a Pipeline, a stage, a counting wrapper)."""

    def process(self, frame: Frame) -> Frame: ...


_END = object()


class _Failure:
    """An exception raised in a worker thread, carried to the calling thread."""

    def __init__(self, error: BaseException):
        self.error = error


def as_process_fn(process: ProcessFn | Processor) -> ProcessFn:
    """``process`` itself, or its ``.process`` method."""
    return process.process if hasattr(process, "process") else process


def _put(q: queue.Queue[object], item: object, stop: threading.Event) -> bool:
    """Put unless told to stop; False when stopped (the consumer is gone)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue[object], waits: dict[str, float], name: str) -> object:
    tic = time.perf_counter()
    item = q.get()
    waits[name] = waits.get(name, 0.0) + (time.perf_counter() - tic) * 1000.0
    return item


def run_video(
    source: Source | Iterable[Frame],
    process: ProcessFn | Processor,
    sink: Sink,
    *,
    queue_size: int = 4,
    process_in_thread: bool = False,
    on_progress: ProgressFn | None = None,
) -> VideoRun:
    """Run every frame of ``source`` through ``process`` into ``sink``, in order.

    Args:
        source: a :class:`~livematte.io.base.Source` (its ``items()`` are used, so
            passthrough packets flow too) or any iterable of frames.
        process: ``Frame -> Frame`` callable, or an object with ``.process`` (a Pipeline).
        sink: a :class:`~livematte.io.base.Sink`; it is not closed here: the caller closes
            it, or aborts it when the result says the run did not complete.
        queue_size: frames buffered between stages (memory bound: about 2 x this many frames).
        process_in_thread: run ``process`` in a worker thread instead of the calling thread.
        on_progress: called from the encode thread after each frame is written.

    Returns:
        VideoRun with frame count, wall time and per-stage timings, and how the run ended:
        ``interrupted`` (Ctrl-C: the frames already processed were written first) or
        ``error`` (what a stage raised: SourceError, SinkError, the pipeline's errors), once
        every thread stopped.  Nothing is raised for those.

    OpenCV's thread pool follows the pipeline's ``runtime.threads`` for the run, and the
    decode and encode threads yield to the processing thread (``livematte.runner.threads``);
    freed frame buffers stay with the process (``livematte.runner.memory``).
    """
    keep_freed_memory()
    with opencv_threads(pipeline_threads(process)):
        return _run(source, process, sink, queue_size, process_in_thread, on_progress)


def _run(
    source: Source | Iterable[Frame],
    process: ProcessFn | Processor,
    sink: Sink,
    queue_size: int,
    process_in_thread: bool,
    on_progress: ProgressFn | None,
) -> VideoRun:
    fn = as_process_fn(process)
    stop = threading.Event()
    items: Iterator[Item] = source.items(stop) if hasattr(source, "items") else iter(source)
    stats = VideoRun()
    decoded: queue.Queue[object] = queue.Queue(maxsize=queue_size)
    processed: queue.Queue[object] = queue.Queue(maxsize=queue_size)
    waits: dict[str, float] = {}
    started = time.perf_counter()

    def decode() -> None:
        yield_to_processing()  # before the first decode: FFmpeg's decoder threads inherit it
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
        yield_to_processing()  # the sink opens its encoder (and x264's threads) here
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
                else:  # neither a frame nor the end: a packet carried over
                    stats.packets += 1
                    sink.send_packet(cast("Packet", item))
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
    error = encode_error[0] if encode_error else failure
    if isinstance(error, KeyboardInterrupt):
        stats.interrupted = True
    elif isinstance(error, Exception):
        stats.error = error
    elif error is not None:
        raise error  # SystemExit and the like end the process, not just the run
    return stats
