"""A synthetic clip: a person-like blob moving over a textured background, with its ground
truth, so tests, demos and benchmarks need no media files (``open_source("synthetic")``), and
:func:`write_clip`, which encodes one to a file with PyAV (any codec, VFR, rotation, audio).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from livematte.frame import Frame, Mode
from livematte.io.base import Item, SourceBase


class SyntheticSource(SourceBase):
    """A person-like blob (head + torso) moving over a textured background.

    Deterministic for a given ``seed``; ``ground_truth(index)`` returns the blob's alpha, so
    tests, demos and benchmarks need no media files.
    """

    def __init__(
        self,
        width: int = 320,
        height: int = 240,
        frames: int = 50,
        fps: float = 25.0,
        seed: int = 0,
    ):
        self.width, self.height, self.frame_count = width, height, frames
        self.rate = Fraction(fps).limit_denominator(1001)
        self.time_base = 1 / self.rate
        self.name = f"synthetic:{width}x{height}"
        rng = np.random.default_rng(seed)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        checker = (((xs // 16) + (ys // 16)) % 2)[..., None] * 40.0
        gradient = np.stack([xs / width * 120, ys / height * 120, 80 + 0 * xs], axis=-1)
        noise = rng.normal(0, 12, (height, width, 3))
        self._background = np.clip(gradient + checker + noise + 40, 0, 255).astype(np.float32)
        self._colour = np.array([150, 110, 60], np.float32)  # shirt-blue, BGR
        self._skin = np.array([120, 160, 210], np.float32)

    def ground_truth(self, index: int) -> np.ndarray:
        """HxW float32 alpha of the blob in frame ``index``."""
        w, h = self.width, self.height
        cx = w * (0.5 + 0.3 * np.sin(2 * np.pi * index / max(self.frame_count or 50, 2)))
        mask = np.zeros((h, w), np.uint8)
        head_r = max(2, int(h * 0.09))
        cv2.circle(mask, (int(cx), int(h * 0.35)), head_r, 255, -1, cv2.LINE_AA)
        cv2.ellipse(
            mask,
            (int(cx), int(h * 0.8)),
            (int(w * 0.12), int(h * 0.33)),
            0,
            0,
            360,
            255,
            -1,
            cv2.LINE_AA,
        )
        return cv2.GaussianBlur(mask, (5, 5), 0).astype(np.float32) / 255.0

    def items(self, stop: threading.Event | None = None) -> Iterator[Item]:
        for index in range(self.frame_count or 0):
            if stop is not None and stop.is_set():
                return
            tic = time.perf_counter()
            alpha = self.ground_truth(index)[..., None]
            person = np.where(
                np.arange(self.height)[:, None, None] < self.height * 0.46, self._skin, self._colour
            )
            image = (person * alpha + self._background * (1 - alpha)).astype(np.uint8)
            frame = Frame(image, index=index, pts=index, time_base=self.time_base, mode=Mode.VIDEO)
            frame.timings["decode"] = (time.perf_counter() - tic) * 1000.0
            yield frame


def write_clip(
    path: str | Path,
    *,
    frames: int = 25,
    size: tuple[int, int] = (160, 120),
    fps: int = 25,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    time_base: Fraction | None = None,
    durations: Sequence[int] | None = None,
    rotation: int = 0,
    audio: str | None = "aac",
    seed: int = 0,
) -> list[int]:
    """Write a :class:`SyntheticSource` clip with PyAV, for tests, demos and benchmarks.

    Args:
        durations: VFR: frame durations in ``time_base`` units, cycled (default: constant).
        rotation: display-matrix rotation (counter-clockwise degrees) stored in the file.
        audio: audio codec of a 440 Hz stereo tone as long as the video, or None.

    Returns:
        The video pts written, in ``time_base`` (default ``1/fps``).
    """
    import av

    time_base = time_base or Fraction(1, fps)
    width, height = size
    step = round(1 / (fps * time_base))
    with av.open(str(path), "w") as container:
        quiet = {"x265-params": "log-level=error"} if codec == "libx265" else {}
        video = container.add_stream(codec, rate=fps, options=quiet)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        video.time_base = video.codec_context.time_base = time_base
        if rotation:
            video.set_display_rotation(rotation)
        sound = None
        if audio:
            sound = container.add_stream(audio, rate=48000)
            sound.layout = "stereo"
        written, pts, samples = [], 0, 0
        for frame in SyntheticSource(width, height, frames, fps, seed):
            picture = av.VideoFrame.from_ndarray(frame.image, format="bgr24")
            picture = picture.reformat(format=pix_fmt)
            picture.pts, picture.time_base = pts, time_base
            for packet in video.encode(picture):
                container.mux(packet)
            written.append(pts)
            pts += durations[len(written) % len(durations)] if durations else step
            # Audio up to the video's current end, so the file is interleaved like real ones.
            while sound is not None and samples < float(pts * time_base) * 48000:
                t = (samples + np.arange(1024)) / 48000.0
                tone = (0.2 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
                chunk = av.AudioFrame.from_ndarray(np.stack([tone, tone]), "fltp", "stereo")
                chunk.sample_rate, chunk.pts, chunk.time_base = 48000, samples, Fraction(1, 48000)
                for packet in sound.encode(chunk):
                    container.mux(packet)
                samples += 1024
        for stream in (video, sound):
            if stream is not None:
                for packet in stream.encode(None):
                    container.mux(packet)
    return written
