"""Live sources: newest-frame mailbox, stand-in file pacing/looping, reconnects, camera errors.

The sources are read through the latest-frame scheduler's ``Capture`` (a thread keeping only
the newest frame), as ``livematte cam`` reads them."""

from __future__ import annotations

import time

import numpy as np
import pytest
from media import write_h264

from livematte.errors import SourceError
from livematte.frame import Mode
from livematte.io import capture
from livematte.io.capture import (
    CameraSource,
    LiveSource,
    StreamSource,
    open_live_source,
    parse_camera,
)
from livematte.runner import Capture


def write_clip(path, frames: int = 10, size=(160, 120), fps: int = 30) -> str:
    """A tiny H.264 clip whose frame i is filled with grey level 20 * i (to recognise it)."""
    images = (np.full((size[1], size[0], 3), (20 * i) % 250, np.uint8) for i in range(frames))
    return write_h264(path, images, fps, crf="10")


@pytest.fixture
def clip(tmp_path) -> str:
    return write_clip(tmp_path / "clip.mp4")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("0", 0), ("12", 12), (3, 3), ("/dev/video2", "/dev/video2"), ("FaceTime HD", "FaceTime HD")],
)
def test_parse_camera(spec, expected):
    assert parse_camera(spec) == expected


def test_stand_in_is_paced_looped_and_timestamped(clip):
    stream = StreamSource(clip, fps=50)
    with Capture(stream) as source:
        time.sleep(0.45)
        item = source.read(1.0)
        captured = source.captured
    assert item is not None
    frame = item.frame
    assert frame.mode is Mode.LIVE and frame.size == (160, 120)
    assert frame.time is not None and frame.time > 0.3  # capture time since start, in seconds
    assert abs(item.captured_at - time.monotonic()) < 5.0  # monotonic clock, for latency
    # 10-frame clip at 50 fps for ~0.45 s: paced (not decoded flat out) and looped.
    assert 15 <= captured <= 30
    assert stream.loops >= 1
    assert source.dropped >= captured - 2  # nobody read meanwhile: only the newest was kept
    assert not source.running


def test_stand_in_resizes_to_the_requested_size(clip):
    with Capture(open_live_source(source=clip, size=(80, 60), fps=100)) as source:
        item = source.read(2.0)
    assert item is not None and item.frame.image.shape == (60, 80, 3)


def test_stand_in_without_loop_ends(clip):
    stream = StreamSource(clip, fps=200, loop=False)
    source = Capture(stream).start()
    deadline = time.monotonic() + 3.0
    while source.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not source.running and stream.ended
    assert source.captured == 10 and stream.captured == 10
    assert source.stop()


def test_a_live_source_is_iterated_like_a_file(clip):
    """The one Source protocol: open, items(), close, with no thread of its own."""
    with StreamSource(clip, fps=500, loop=False) as stream:
        frames = list(stream.items())
    assert [f.index for f in frames] == list(range(10))
    assert all(f.mode is Mode.LIVE for f in frames) and stream.status == "live"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"source": "/nonexistent/clip.mp4"}, "stand-in source not found"),
        ({"camera": "/dev/video99"}, "camera /dev/video99 does not exist"),
        ({"camera": 7}, "cannot open camera 7"),
        ({"camera": 0, "source": "x.mp4"}, "not both"),
    ],
)
def test_bad_source_is_one_clear_line(kwargs, message, monkeypatch):
    monkeypatch.setattr(capture.sys, "platform", "linux")
    with pytest.raises(SourceError) as info:
        open_live_source(**kwargs).open()
    text = str(info.value)
    assert message in text and "\n" not in text
    if "camera" in kwargs and "source" not in kwargs:
        assert "cameras found" in text  # says what exists (here: nothing)


def test_not_media_is_a_source_error(tmp_path):
    bogus = tmp_path / "notes.txt"
    bogus.write_text("hello")
    with pytest.raises(SourceError, match="cannot read"):
        StreamSource(str(bogus)).open()


def test_camera_list_names_devices(monkeypatch, tmp_path):
    monkeypatch.setattr(capture.sys, "platform", "linux")
    monkeypatch.setattr(capture.glob, "glob", lambda _: ["/dev/video10", "/dev/video2"])
    text = capture.describe_cameras()
    assert text.startswith("cameras found: /dev/video2")  # numeric order
    assert "/dev/video10" in text


class FlakyCamera(LiveSource):
    """A camera that delivers, then goes away for a while (unplugged), then comes back."""

    name = "flaky"

    def __init__(self, fail_after: int, down_for: float, **kwargs) -> None:
        super().__init__(fps=100, **kwargs)
        self.fail_after, self.down_for = fail_after, down_for
        self.grabs = 0
        self.opens = 0
        self.down_since: float | None = None

    def _open(self) -> None:
        self.opens += 1
        if self.down_since is not None and time.monotonic() - self.down_since < self.down_for:
            raise OSError("No such device")

    def _grab(self) -> np.ndarray | None:
        time.sleep(0.01)
        self.grabs += 1
        if self.grabs == self.fail_after:
            self.down_since = time.monotonic()
        if self.down_since is not None and time.monotonic() - self.down_since < self.down_for:
            return None
        return np.full((24, 32, 3), self.grabs % 256, np.uint8)

    def _close(self) -> None:
        pass


def test_unplugged_camera_is_retried_with_backoff_and_resumes():
    statuses: list[str] = []
    source = FlakyCamera(
        fail_after=5, down_for=0.4, stall_timeout=0.1, max_backoff=0.2, on_status=statuses.append
    )
    with Capture(source) as capture:
        deadline = time.monotonic() + 3.0
        while source.reconnects == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        after = capture.read(1.0)
    assert "reconnecting" in statuses and statuses[-1] == "live"
    assert source.reconnects == 1
    assert source.opens >= 3  # failed attempts while it was away, then success
    assert after is not None and after.frame.index >= 4


def test_stop_joins_the_capture_thread(clip):
    source = Capture(StreamSource(clip, fps=30)).start()
    thread = source._thread
    assert source.stop(timeout=2.0)
    assert thread is not None and not thread.is_alive()


def test_camera_source_requests_mjpg_size_and_fps(monkeypatch):
    """The OpenCV path, with VideoCapture replaced by a recorder (there is no camera here)."""
    calls: dict[int, float] = {}

    class FakeCapture:
        def __init__(self, *args):
            self.args = args

        def isOpened(self):  # noqa: N802 (OpenCV's name)
            return True

        def set(self, prop, value):
            calls[prop] = value
            return True

        def get(self, prop):
            return 30.0

        def read(self):
            return True, np.zeros((720, 1280, 3), np.uint8)

        def release(self):
            pass

    monkeypatch.setattr(capture.cv2, "VideoCapture", FakeCapture)
    source = CameraSource(0, size=(1280, 720), fps=30)
    with Capture(source) as reader:
        item = reader.read(1.0)
    cv2 = capture.cv2
    assert calls[cv2.CAP_PROP_FOURCC] == cv2.VideoWriter.fourcc(*"MJPG")
    assert calls[cv2.CAP_PROP_FRAME_WIDTH] == 1280 and calls[cv2.CAP_PROP_FPS] == 30
    assert calls[cv2.CAP_PROP_BUFFERSIZE] == 1
    assert item is not None and item.frame.size == (1280, 720)
    assert source.actual_size == (1280, 720)
