"""The latest-frame scheduler (LIVE): stale-frame dropping, bounded latency, outputs kept
alive through stalls, clean shutdown, errors as the result, any Source runs live."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
from media import invert

from livematte.errors import SourceError
from livematte.frame import Frame
from livematte.io.capture import LiveSource, StreamSource
from livematte.io.live_sinks import StreamSink, VirtualCameraSink
from livematte.io.sinks import NullSink
from livematte.runner import LiveRunner
from livematte.runner.results import percentile


def our_threads() -> list[str]:
    return [
        t.name
        for t in threading.enumerate()
        if t.name.startswith(("capture:", "sink:")) and t.is_alive()
    ]


def test_slow_processing_drops_stale_frames_and_latency_stays_bounded(clip):
    def slow(frame: Frame) -> Frame:
        time.sleep(0.05)  # 20 fps of processing for a 60 fps camera
        return invert(frame)

    source = StreamSource(clip, fps=60)
    stats = LiveRunner(source, slow, [NullSink()], duration=2.0).run()
    assert stats.stop_reason == "duration" and not stats.threads_left
    assert 20 <= stats.processed <= 42
    assert stats.dropped >= stats.processed  # two of three frames were stale: dropped
    ms = [v for _, v in stats.latencies]
    # A frame waits at most one capture interval (17 ms) before processing (50 ms) starts.
    assert percentile(ms, 95) < 50 + 17 + 60  # generous for a loaded 2-core machine
    first, last = ms[: len(ms) // 3], ms[-len(ms) // 3 :]
    assert np.median(last) < np.median(first) + 25  # no growth: nothing queues up
    assert stats.stage_ms["wait"] and max(stats.stage_ms["wait"]) < 100


def test_fast_processing_delivers_every_frame(clip):
    sink = NullSink(keep=1)
    stats = LiveRunner(StreamSource(clip, fps=30), invert, [sink], duration=1.0).run()
    assert stats.processed >= 20 and stats.dropped <= 3
    assert sink.frames == stats.processed
    summary = stats.summary()
    assert summary["latency_ms"]["p50"] < 30 and summary["cpu_percent"] >= 0
    json.dumps(summary)  # serialisable for --stats and the benchmark


class StallingCamera(LiveSource):
    """Delivers frames, goes silent for a while (stalled/unplugged), then delivers again."""

    name = "stalling"

    def __init__(self, silent_from: float, silent_for: float) -> None:
        super().__init__(fps=50, stall_timeout=10.0)
        self.silent_from, self.silent_for = silent_from, silent_for

    def _open(self) -> None:
        self.t0 = time.monotonic()

    def _grab(self):
        time.sleep(0.02)
        t = time.monotonic() - self.t0
        if self.silent_from <= t < self.silent_from + self.silent_for:
            return None
        return np.full((24, 32, 3), 100, np.uint8)

    def _close(self) -> None:
        pass


class IdleRecorder(NullSink):
    def __init__(self) -> None:
        super().__init__()
        self.statuses: list[str] = []

    def idle(self, status: str = "") -> None:
        self.statuses.append(status)


def test_a_stalled_camera_keeps_the_outputs_alive_and_resumes(vcam_backend):
    watcher = IdleRecorder()
    vcam = VirtualCameraSink((32, 24), 50, backend=vcam_backend, stall_after=0.05)
    runner = LiveRunner(
        StallingCamera(0.3, 0.8), invert, [watcher, vcam], duration=1.6, stall_after=0.2
    )
    stats = runner.run()
    assert any(s.startswith("no frames from camera") for s in watcher.statuses)
    assert vcam.repeated >= 10  # the virtual camera never froze during the 0.8 s silence
    late = [t for t, _ in stats.latencies if t > 1.2]
    assert late, "processing resumed when the camera came back"
    assert not our_threads()


def test_ctrl_c_shuts_down_cleanly(clip, vcam_backend, tmp_path):
    calls = 0

    def interrupted(frame: Frame) -> Frame:
        nonlocal calls
        calls += 1
        if calls == 5:
            raise KeyboardInterrupt
        return invert(frame)

    sinks = lambda size, fps: [  # noqa: E731
        VirtualCameraSink(size, fps, backend=vcam_backend),
        StreamSink(str(tmp_path / "out.ts"), size, fps),
    ]
    stats = LiveRunner(StreamSource(clip, fps=60), interrupted, sinks).run()
    assert stats.interrupted and stats.stop_reason == "interrupted"
    assert not stats.threads_left and not our_threads()
    assert (tmp_path / "out.ts").stat().st_size > 0  # the encoder was flushed and closed


def test_a_source_that_delivers_nothing_is_a_source_error():
    class Dead(StallingCamera):
        def _grab(self):
            time.sleep(0.01)

    run = LiveRunner(Dead(0, 0), invert, [NullSink()], first_frame_timeout=0.3).run()
    assert isinstance(run.error, SourceError) and "delivered no frame" in str(run.error)
    assert run.stop_reason == "error" and not run.completed
    assert not our_threads()


def test_processing_errors_skip_frames_until_too_many(clip):
    def broken(frame: Frame) -> Frame:
        if frame.index > 2:
            raise ValueError("model exploded")
        return invert(frame)

    logs: list[str] = []
    runner = LiveRunner(
        StreamSource(clip, fps=100), broken, [NullSink()], max_errors=5, log=logs.append
    )
    run = runner.run()
    assert isinstance(run.error, ValueError) and "exploded" in str(run.error)
    assert run.errors == 5 and len(logs) == 1
    assert not our_threads()


def test_any_source_runs_under_the_latest_frame_scheduler():
    """The one Source protocol: a synthetic clip (a file-like source) runs live too, and the
    run ends by itself when the source does."""
    from livematte.io.synthetic import SyntheticSource

    class Paced(SyntheticSource):
        def items(self, stop=None):
            for frame in super().items(stop):
                time.sleep(0.01)  # a 100 fps device
                yield frame

    sink = NullSink(keep=2)
    run = LiveRunner(Paced(64, 48, frames=30), invert, [sink], duration=20).run()
    assert run.stop_reason == "source ended" and run.completed
    assert 10 <= run.frames <= 29 and run.captured == 30  # the first frame warms up
    assert run.frames + run.dropped >= 29  # each frame was processed or overwritten
    assert sink.frames == run.frames and len(sink.pictures) == 2
    assert not our_threads()
