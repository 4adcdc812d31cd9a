"""The runners' thread policy: OpenCV threads from the pipeline, I/O threads yielding."""

from __future__ import annotations

import os
import sys
import threading
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from livematte.frame import Frame
from livematte.runner import run_video
from livematte.runner.threads import opencv_threads, pipeline_threads, yield_to_processing


def test_pipeline_threads_found_on_the_pipeline_its_method_or_a_holder() -> None:
    class Pipe:
        config = SimpleNamespace(runtime=SimpleNamespace(threads=3))

        def process(self, frame: Frame) -> Frame:
            return frame

    pipe = Pipe()
    assert pipeline_threads(pipe) == 3
    assert pipeline_threads(pipe.process) == 3
    assert pipeline_threads(SimpleNamespace(pipeline=pipe)) == 3
    assert pipeline_threads(lambda frame: frame) == 0


def test_opencv_threads_set_for_the_block_and_restored() -> None:
    before = cv2.getNumThreads()
    with opencv_threads(1):
        assert cv2.getNumThreads() == 1
    assert cv2.getNumThreads() == before
    with opencv_threads(0):  # 0: left as it is
        assert cv2.getNumThreads() == before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_yield_to_processing_lowers_only_the_calling_thread() -> None:
    seen: dict[str, int] = {}

    def worker() -> None:
        tid = threading.get_native_id()
        seen["before"] = os.getpriority(os.PRIO_PROCESS, tid)
        seen["done"] = int(yield_to_processing(2))
        seen["after"] = os.getpriority(os.PRIO_PROCESS, tid)

    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen["done"] == 1
    assert seen["after"] == min(19, seen["before"] + 2)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine


class _ListSink:
    def __init__(self) -> None:
        self.frames: list[Frame] = []

    def send(self, frame: Frame) -> None:
        self.frames.append(frame)

    def send_packet(self, packet: object) -> None:  # pragma: no cover - no packets here
        raise AssertionError("no packets expected")


def test_run_video_uses_the_pipelines_opencv_threads_and_restores_them() -> None:
    before = cv2.getNumThreads()
    seen: list[int] = []

    class Pipe:
        config = SimpleNamespace(runtime=SimpleNamespace(threads=1))

        def process(self, frame: Frame) -> Frame:
            seen.append(cv2.getNumThreads())
            return frame

    frames = [Frame(image=np.zeros((4, 4, 3), np.uint8), index=i) for i in range(3)]
    sink = _ListSink()
    run = run_video(frames, Pipe(), sink)  # type: ignore[arg-type]
    assert run.completed and len(sink.frames) == 3
    assert seen == [1, 1, 1]
    assert cv2.getNumThreads() == before


def test_live_runner_uses_the_pipelines_opencv_threads_and_restores_them(tmp_path) -> None:
    from media import write_moving_square

    from livematte.io.capture import StreamSource
    from livematte.io.sinks import NullSink
    from livematte.runner import LiveRunner

    before = cv2.getNumThreads()
    seen: list[int] = []

    class Controls:  # what LiveControls looks like to the runner: a pipeline it holds
        pipeline = SimpleNamespace(config=SimpleNamespace(runtime=SimpleNamespace(threads=1)))

        def process(self, frame: Frame) -> Frame:
            seen.append(cv2.getNumThreads())
            return frame

    source = StreamSource(write_moving_square(tmp_path / "clip.mp4"), fps=30)
    run = LiveRunner(source, Controls().process, [NullSink()], duration=0.5).run()
    assert run.error is None and seen and set(seen) == {1}
    assert cv2.getNumThreads() == before
