"""What several test modules share: where ../shared/data lives, tiny clips made on the spot, a
free local port.

Importable from every test module (``pythonpath = ["tests"]`` in pyproject.toml).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
#: The evaluation data next to the checkout (see its SOURCES.md); absent on a bare clone.
SHARED_DATA = REPO.parent / "shared" / "data"

#: A standing person facing the camera (their left on image right), 400 px tall, hips at (0, 0):
#: BlazePose landmark name -> (x, y) offset in pixels (hands and feet left out).
STANDING_POSE: dict[str, tuple[float, float]] = {
    "nose": (0, -160), "left_eye": (8, -170), "right_eye": (-8, -170),
    "left_eye_inner": (4, -170), "right_eye_inner": (-4, -170),
    "left_eye_outer": (12, -170), "right_eye_outer": (-12, -170),
    "left_ear": (18, -166), "right_ear": (-18, -166),
    "mouth_left": (6, -150), "mouth_right": (-6, -150),
    "left_shoulder": (40, -120), "right_shoulder": (-40, -120),
    "left_elbow": (50, -70), "right_elbow": (-50, -70),
    "left_wrist": (55, -20), "right_wrist": (-55, -20),
    "left_hip": (25, 0), "right_hip": (-25, 0),
    "left_knee": (25, 80), "right_knee": (-25, 80),
    "left_ankle": (25, 160), "right_ankle": (-25, 160),
}  # fmt: skip


def needs_shared(*parts: str) -> pytest.MarkDecorator:
    """Skip unless ``SHARED_DATA / parts...`` exists, saying which path is missing."""
    path = SHARED_DATA.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"shared test data not found: {path}")


def write_h264(
    path: str | Path,
    images: Iterable[np.ndarray],
    fps: int = 30,
    *,
    audio_lead: float | None = None,
    **options: str,
) -> str:
    """Encode BGR ``images`` (all one size) as an H.264 file at ``fps``; returns the path.

    ``options`` go to libx264 after ``preset=ultrafast`` (e.g. ``crf="10"``).  With
    ``audio_lead`` (seconds) a 48 kHz stereo AAC tone as long as the video is added, written
    that far ahead of the video in file order (negative: behind), as cameras that write in
    chunks do; an .mp4/.mov then gets its index up front, so a truncated copy still opens.
    """
    import av

    images = list(images)
    total = len(images) / fps
    mov = Path(path).suffix.lower() in (".mp4", ".mov")
    # Packets go to the file in the order given (no re-interleaving by time), x264 without
    # its look-ahead, so the lead written is the lead in the file.
    layout = {} if audio_lead is None else {"max_interleave_delta": "1"}
    if audio_lead is not None and mov:
        layout["movflags"] = "faststart"
    samples = 0
    with av.open(str(path), "w", options=layout) as container:
        stream = sound = None
        if audio_lead is not None:
            options = {"tune": "zerolatency", **options}
            sound = container.add_stream("aac", rate=48000)
            sound.layout = "stereo"

        def audio_until(end: float) -> None:
            nonlocal samples
            while sound is not None and samples < min(end, total) * 48000:
                t = (samples + np.arange(1024)) / 48000.0
                tone = (0.2 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
                chunk = av.AudioFrame.from_ndarray(np.stack([tone, tone]), "fltp", "stereo")
                chunk.sample_rate, chunk.pts, chunk.time_base = 48000, samples, Fraction(1, 48000)
                container.mux(sound.encode(chunk))
                samples += 1024

        for i, image in enumerate(images):
            if stream is None:
                stream = container.add_stream("libx264", rate=fps)
                stream.height, stream.width = image.shape[:2]
                stream.pix_fmt = "yuv420p"
                stream.options = {"preset": "ultrafast", **options}
            picture = av.VideoFrame.from_ndarray(image, format="bgr24")
            picture.pts, picture.time_base = i, Fraction(1, fps)
            container.mux(stream.encode(picture))
            audio_until((i + 1) / fps + (audio_lead or 0.0))
        if stream is not None:
            container.mux(stream.encode())
        audio_until(total)
        if sound is not None:
            container.mux(sound.encode())
    return str(path)


@pytest.fixture(name="umask", params=[0o022, 0o077], ids=["umask022", "umask077"])
def umask_fixture(request: pytest.FixtureRequest):
    """``umask``: run the test under each umask (``from media import umask_fixture`` first)."""
    import os

    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def file_mode(path: str | Path) -> int:
    """The permission bits of ``path`` (0o644, ...)."""
    import stat

    return stat.S_IMODE(Path(path).stat().st_mode)


def truncated_copy(path: str | Path, share: float, target: str | Path) -> str:
    """The first ``share`` of ``path``'s bytes as ``target`` (a download or recording cut
    short); returns the target path."""
    data = Path(path).read_bytes()
    Path(target).write_bytes(data[: int(len(data) * share)])
    return str(target)


def write_moving_square(path: Path, frames: int = 12, size=(160, 120), fps: int = 30) -> str:
    """A tiny H.264 clip: a grey square moving over a darker field (a stand-in camera)."""

    def picture(i: int) -> np.ndarray:
        image = np.full((size[1], size[0], 3), 40, np.uint8)
        image[30:90, 10 + 5 * i : 60 + 5 * i] = 200
        return image

    return write_h264(path, (picture(i) for i in range(frames)), fps)


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


def invert(frame):
    """A small real processing step: invert the picture into ``output``."""
    frame.output = 255 - frame.image
    return frame


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for a server the test starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
