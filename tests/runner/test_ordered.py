"""The VIDEO-mode runner: order, nothing dropped, bounded memory, errors and Ctrl-C."""

from __future__ import annotations

import random
import threading
import time
from fractions import Fraction

import numpy as np
import pytest

from livematte.frame import Frame
from livematte.io.sinks import MemorySink
from livematte.runner import run_video


class FakeSource:
    """Frames with packets (plain strings here) in between; counts how far decode ran ahead."""

    def __init__(self, n=40, packets_every=5, fail_at=None):
        self.n, self.packets_every, self.fail_at = n, packets_every, fail_at
        self.produced = 0

    def items(self, stop=None):
        for i in range(self.n):
            if self.fail_at == i:
                raise OSError("disk read error")
            if self.packets_every and i % self.packets_every == 0:
                yield f"packet-{i}"
            self.produced += 1
            image = np.full((8, 8, 3), i % 256, np.uint8)
            yield Frame(image, index=i, pts=i, time_base=Fraction(1, 25))


def mark(frame: Frame) -> Frame:
    """A real little processing step: alpha from the image, output = image * alpha."""
    frame.alpha = np.full(frame.image.shape[:2], (frame.index % 10) / 10, np.float32)
    frame.output = (frame.image * frame.alpha[..., None]).astype(np.uint8)
    return frame


@pytest.mark.parametrize("in_thread", [False, True])
def test_every_frame_in_order_with_packets_in_place(in_thread):
    rng = random.Random(1)

    def jittery(frame):
        time.sleep(rng.random() * 0.002)  # uneven stage times must not reorder anything
        return mark(frame)

    sink = MemorySink("composite")
    stats = run_video(FakeSource(40), jittery, sink, queue_size=2, process_in_thread=in_thread)
    assert stats.frames == 40 and stats.packets == 8 and sink.frames == 40
    assert [f.index for f in sink.received] == list(range(40))
    assert sink.packets == [f"packet-{i}" for i in range(0, 40, 5)]
    assert all(f.output is not None for f in sink.received)
    assert set(stats.timings_ms) == {"decode", "process", "encode"}
    assert stats.fps > 0 and stats.completed


def test_pipeline_objects_with_process_method_are_accepted():
    class Stage:
        def process(self, frame):
            return mark(frame)

    sink = MemorySink(None)
    run_video(FakeSource(5, 0), Stage(), sink)
    assert sink.frames == 5


def test_memory_is_bounded_by_the_queues():
    source = FakeSource(60, 0)
    ahead = []

    def slow(frame):
        ahead.append(source.produced - frame.index)
        time.sleep(0.002)
        return frame

    run_video(source, slow, MemorySink(None, keep_frames=False), queue_size=3)
    # queue (3) + the item the decoder holds while blocked + the one being processed
    assert max(ahead) <= 3 + 2


@pytest.mark.parametrize("in_thread", [False, True])
def test_process_error_is_the_result_and_threads_stop(in_thread):
    def boom(frame):
        if frame.index == 7:
            raise ValueError("model failed on frame 7")
        return frame

    before = threading.active_count()
    run = run_video(FakeSource(50, 0), boom, MemorySink(None), process_in_thread=in_thread)
    assert isinstance(run.error, ValueError) and "frame 7" in str(run.error)
    assert not run.completed and not run.interrupted and run.frames <= 7
    time.sleep(0.3)
    assert threading.active_count() <= before


def test_source_error_is_the_result():
    sink = MemorySink(None)
    run = run_video(FakeSource(30, 0, fail_at=12), mark, sink)
    assert isinstance(run.error, OSError) and "disk read error" in str(run.error)
    assert sink.frames <= 12


def test_sink_error_is_the_result_without_deadlock():
    class Broken(MemorySink):
        def send(self, frame, captured_at=None):
            if frame.index == 3:
                raise RuntimeError("disk full")
            super().send(frame)

    started = time.perf_counter()
    run = run_video(FakeSource(500, 0), mark, Broken(None), queue_size=2)
    assert isinstance(run.error, RuntimeError) and "disk full" in str(run.error)
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize("in_thread", [False, True])
def test_ctrl_c_writes_what_was_processed_and_says_so(in_thread):
    def interrupted(frame):
        if frame.index == 10:
            raise KeyboardInterrupt
        return mark(frame)

    sink = MemorySink(None)
    run = run_video(FakeSource(100, 0), interrupted, sink, process_in_thread=in_thread)
    assert [f.index for f in sink.received] == list(range(10))
    assert run.interrupted and run.error is None and run.frames == 10 and not run.completed


def test_progress_callback_sees_every_frame():
    seen = []
    run_video(FakeSource(9, 0), mark, MemorySink(None), on_progress=lambda n, t: seen.append(n))
    assert seen == list(range(1, 10))


def test_plain_iterables_work_too():
    frames = [Frame(np.zeros((4, 4, 3), np.uint8), index=i) for i in range(6)]
    sink = MemorySink(None)
    assert run_video(iter(frames), mark, sink).frames == 6
