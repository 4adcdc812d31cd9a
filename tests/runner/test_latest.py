"""The latest-frame scheduler (LIVE) and ``livematte cam``: stale-frame dropping, bounded
latency, outputs kept alive through stalls, clean shutdown, errors as the result, any Source,
the real pipeline with its hotkey controls end to end, the window under Xvfb."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import pyvirtualcam
from media import write_h264

from livematte.errors import SourceError
from livematte.frame import Frame
from livematte.io.capture import LiveSource, StreamSource
from livematte.io.live_sinks import StreamSink, VirtualCameraSink
from livematte.io.sinks import NullSink
from livematte.runner import LiveRunner
from livematte.runner.results import percentile

ROOT = Path(__file__).resolve().parents[2]


def write_clip(path: Path, frames: int = 12, size=(160, 120), fps: int = 30) -> str:
    """A tiny H.264 clip: a grey square moving over a darker field."""

    def picture(i: int) -> np.ndarray:
        image = np.full((size[1], size[0], 3), 40, np.uint8)
        image[30:90, 10 + 5 * i : 60 + 5 * i] = 200
        return image

    return write_h264(path, (picture(i) for i in range(frames)), fps)


@pytest.fixture
def clip(tmp_path) -> str:
    return write_clip(tmp_path / "clip.mp4")


class RecordingBackend:
    """pyvirtualcam backend registered by the tests (no v4l2loopback here)."""

    last: RecordingBackend | None = None

    def __init__(self, *, width, height, fps, fourcc, device, **kw):
        self.size, self.fps, self.frames = (width, height), fps, 0
        RecordingBackend.last = self

    def send(self, frame):
        self.frames += 1

    def close(self):
        pass

    def device(self):
        return "test"

    def native_fourcc(self):
        return None


@pytest.fixture
def vcam_backend():
    pyvirtualcam.camera.register_backend("livematte-test", RecordingBackend)
    yield "livematte-test"
    pyvirtualcam.camera.BACKENDS.pop("livematte-test", None)


def composite(frame: Frame) -> Frame:
    """A small real processing step: invert the picture into ``output``."""
    frame.output = 255 - frame.image
    return frame


def our_threads() -> list[str]:
    return [
        t.name
        for t in threading.enumerate()
        if t.name.startswith(("capture:", "sink:")) and t.is_alive()
    ]


def test_slow_processing_drops_stale_frames_and_latency_stays_bounded(clip):
    def slow(frame: Frame) -> Frame:
        time.sleep(0.05)  # 20 fps of processing for a 60 fps camera
        return composite(frame)

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
    stats = LiveRunner(StreamSource(clip, fps=30), composite, [sink], duration=1.0).run()
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
        StallingCamera(0.3, 0.8), composite, [watcher, vcam], duration=1.6, stall_after=0.2
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
        return composite(frame)

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

    run = LiveRunner(Dead(0, 0), composite, [NullSink()], first_frame_timeout=0.3).run()
    assert isinstance(run.error, SourceError) and "delivered no frame" in str(run.error)
    assert run.stop_reason == "error" and not run.completed
    assert not our_threads()


def test_processing_errors_skip_frames_until_too_many(clip):
    def broken(frame: Frame) -> Frame:
        if frame.index > 2:
            raise ValueError("model exploded")
        return composite(frame)

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
    run = LiveRunner(Paced(64, 48, frames=30), composite, [sink], duration=20).run()
    assert run.stop_reason == "source ended" and run.completed
    assert 10 <= run.frames <= 29 and run.captured == 30  # the first frame warms up
    assert run.frames + run.dropped >= 29  # each frame was processed or overwritten
    assert sink.frames == run.frames and len(sink.pictures) == 2
    assert not our_threads()


# --- the real pipeline and the CLI -------------------------------------------------------------


def real_pipeline_or_skip():
    try:
        from livematte.api import build_pipeline
        from livematte.config import load_config

        return build_pipeline, load_config
    except ImportError as exc:  # other stages still landing
        pytest.skip(f"real pipeline not importable yet: {exc}")


def test_real_pipeline_live_to_vcam_and_stream(clip, vcam_backend, tmp_path):
    build_pipeline, load_config = real_pipeline_or_skip()
    from livematte.live import LiveControls

    config = load_config("live", {"effects.background": "#00ff00", "runtime.threads": 1})
    controls = LiveControls(build_pipeline(config), ["blur:4", "transparent"])
    try:
        vcam = []

        def sinks(size, fps):
            vcam.append(VirtualCameraSink(size, fps, backend=vcam_backend))
            return [vcam[0], StreamSink(str(tmp_path / "live.ts"), size, fps)]

        runner = LiveRunner(
            StreamSource(clip, fps=30), controls.process, sinks, duration=1.5, controls=controls
        )
        stats = runner.run()
        assert controls.next_background() == "background: blur:4"
        assert controls.toggle_stickers().startswith("no sticker pack")
    finally:
        controls.close()
    assert stats.processed >= 10 and not stats.threads_left
    assert {"segment", "effects", "wait"} <= set(stats.stage_ms)
    assert vcam[0].frames >= 10 and RecordingBackend.last.size == (160, 120)


def run_cam(*args: str, env: dict | None = None, timeout: float = 60):
    """Run ``livematte cam`` in a child process with the test vcam backend registered."""
    code = (
        "import sys, pyvirtualcam, livematte.cli.cam\n"
        f"sys.path[:0] = [{str(Path(__file__).parent)!r}, {str(Path(__file__).parents[1])!r}]\n"
        "from test_latest import RecordingBackend\n"
        "pyvirtualcam.camera.register_backend('livematte-test', RecordingBackend)\n"
        "from livematte.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, "cam", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env or os.environ.copy(),
    )


def test_controls_cycle_backgrounds_and_toggle_stickers():
    build_pipeline, load_config = real_pipeline_or_skip()
    from livematte.live import LiveControls
    from livematte.pipeline.effects import EffectsStage
    from livematte.pipeline.keypoints import KeypointStage
    from livematte.pipeline.matting import MattingStage
    from livematte.pipeline.stickers import StickerStage

    def stage(kind):
        return next(s for s in controls.pipeline.stages if isinstance(s, kind))

    config = load_config("stream", {"stickers.pack": "party", "effects.background": "white"})
    controls = LiveControls(build_pipeline(config), ["#ff0000", "white"])
    assert controls.backgrounds == ["white", "#ff0000"]
    first, matting = stage(EffectsStage), stage(MattingStage)
    assert controls.next_background() == "background: #ff0000"
    second = stage(EffectsStage)
    assert second is not first and second.spec.kind == "color"
    assert stage(MattingStage) is matting  # models stay loaded
    assert controls.toggle_stickers() == "stickers off"
    kinds = {type(s) for s in controls.pipeline.stages}
    assert StickerStage not in kinds and KeypointStage not in kinds  # CPU saved too
    frame = controls.process(Frame(image=np.full((72, 128, 3), 90, np.uint8)))
    assert frame.output is not None and tuple(frame.output[0, 0]) == (0, 0, 255)
    keypoints = next(s for s in controls._pool.stages if isinstance(s, KeypointStage))
    assert controls.toggle_stickers() == "stickers on"
    assert stage(KeypointStage) is keypoints and StickerStage in {
        type(s) for s in controls.pipeline.stages
    }
    controls.next_background()
    assert stage(EffectsStage) is first
    controls.close()


def test_stickers_off_keeps_the_keypoints_matting_needs():
    # With matting.person_roi the keypoint stage serves matting too: the sticker hotkey used
    # to remove it (LiveControls re-derived build_pipeline's rule, wrongly).
    build_pipeline, load_config = real_pipeline_or_skip()
    from livematte.live import LiveControls
    from livematte.pipeline.keypoints import KeypointStage
    from livematte.pipeline.stickers import StickerStage

    config = load_config("live", {"stickers.pack": "party", "matting.person_roi": True})
    controls = LiveControls(build_pipeline(config))
    assert controls.toggle_stickers() == "stickers off"
    kinds = {type(s) for s in controls.pipeline.stages}
    assert KeypointStage in kinds and StickerStage not in kinds
    controls.close()


def test_cam_command_end_to_end(clip, tmp_path):
    real_pipeline_or_skip()
    stats_path = tmp_path / "stats.json"
    done = run_cam(
        "--source",
        clip,
        "--no-window",
        "--vcam",
        "--vcam-backend",
        "livematte-test",
        "--stream",
        str(tmp_path / "out.ts"),
        "--bg",
        "#0000ff",
        "--bg",
        "blur",
        "--duration",
        "1.5",
        "--fps",
        "30",
        "--threads",
        "1",
        "--stats",
        str(stats_path),
    )
    assert done.returncode == 0, done.stderr
    assert "frames in" in done.stderr and "(duration)" in done.stderr
    summary = json.loads(stats_path.read_text())
    assert summary["processed"] >= 10
    assert any(name.startswith("virtual camera") for name in summary["sinks"])


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--no-window"], 2, "no output: use --window"),
        (["--camera", "/dev/video99", "--no-window", "--vcam"], 3, "does not exist"),
        (
            ["--source", "x.mp4", "--no-window", "--stream", "out.ts", "--size", "12"],
            2,
            "--size expects",
        ),
        (
            ["--source", "CLIP", "--no-window", "--vcam", "--vcam-backend", "nope"],
            4,
            "unknown virtual-camera backend",
        ),
    ],
)
def test_cam_errors_are_one_line(args, status, message, clip):
    args = [clip if a == "CLIP" else a for a in args]
    done = run_cam(*args)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == status, done.stderr
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("livematte: error:")


# --- window under Xvfb ---------------------------------------------------------------------


@pytest.mark.display
def test_window_under_xvfb_quits_on_q(clip, x_display):
    real_pipeline_or_skip()
    env = {**os.environ, "DISPLAY": x_display}
    xdotool = shutil.which("xdotool")
    args = [
        "--source",
        clip,
        "--window",
        "--overlay",
        "--bg",
        "#00ff00",
        "--threads",
        "1",
        "--duration",
        "8" if xdotool else "1.5",
    ]
    if xdotool is None:
        done = run_cam(*args, env=env)
        assert done.returncode == 0, done.stderr
        return
    code = (
        "import sys, livematte.cli.cam\nfrom livematte.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "cam", *args],
        env=env,
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:  # wait for the window, then press q in it
        found = subprocess.run(
            [xdotool, "search", "--name", "livematte"], env=env, capture_output=True, text=True
        ).stdout.split()
        if found:
            time.sleep(0.5)
            subprocess.run([xdotool, "key", "--window", found[0], "q"], env=env)
            break
        time.sleep(0.1)
    _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
    assert "(quit)" in stderr
