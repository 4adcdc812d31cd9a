"""Where frames come from: video files (PyAV), images, image folders/globs/sequences, and
``open_source``, which opens whatever a path names (``synthetic`` clips: ``io.synthetic``;
cameras and streams: ``io.capture``).

Every source is a :class:`~livematte.io.base.Source`: a context manager whose ``items()``
yields BGR :class:`~livematte.frame.Frame` objects; video files interleave the packets of the
streams a sink should carry over (audio, subtitles, data) with the decoded frames, in file
order, so a single bounded queue keeps them in sync.  Iterating a source gives its frames.

Example::

    with open_source("in.mp4", start=2.0, end=5.0) as source:
        for frame in source:
            print(frame.index, frame.time, frame.image.shape)
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from livematte import outputs
from livematte.errors import SourceError
from livematte.frame import Frame, Mode
from livematte.io.base import Item, SourceBase
from livematte.io.synthetic import SyntheticSource

if TYPE_CHECKING:
    from av.codec.context import CodecContext
    from av.video.frame import VideoFrame

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".jp2", ".pgm", ".ppm", ".exr"}
)
#: AVCOL_SPC_UNSPECIFIED: the stream does not say which YUV matrix it uses.
_COLORSPACE_UNSPECIFIED = 2
_GLOB_CHARS = re.compile(r"[*?\[]")


def _clock_seconds(text: str) -> float | None:
    """``"00:00:02.000000000"`` (a Matroska DURATION tag) -> 2.0; None when not a clock."""
    match = re.fullmatch(r"(\d+):(\d{2}):(\d{2}(?:\.\d+)?)", text.strip())
    if not match:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def natural_key(path: str | Path) -> list[int | str]:
    """Sort key that orders ``frame2.png`` before ``frame10.png``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(path))]


def is_image_path(path: str | Path) -> bool:
    """True when the file name has an image extension OpenCV reads."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


class VideoFileSource(SourceBase):
    """Decode a video file with PyAV into BGR frames.

    Timestamps are kept exactly (``frame.pts`` in ``frame.time_base``, the stream's own time
    base; VFR stays VFR).  With ``start`` the timestamps of every stream are shifted by
    ``start`` seconds so the output starts at zero and stays in sync.  Rotation metadata
    (display matrix or the legacy ``rotate`` tag) is applied to the pixels.  Corrupt packets and
    frames are counted in ``skipped`` and left out.

    Args:
        path: any file the bundled FFmpeg can demux.
        start, end: trim range in seconds (None = from the beginning / to the end).
        passthrough: yield audio, subtitle and data packets from ``items()`` for a sink to copy.
        alpha: read the alpha plane too (ProRes 4444, VP9 alpha, PNG/QTRLE...) into
            ``frame.alpha``; VP9 is then decoded with libvpx-vp9, since FFmpeg's own vp9
            decoder ignores the alpha side channel.

    Raises:
        SourceError: missing, unreadable, not media, no video stream, bad trim range.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        start: float | None = None,
        end: float | None = None,
        passthrough: bool = True,
        alpha: bool = False,
    ):
        import av

        self.path = Path(path)
        self.name = str(path)
        if not self.path.exists():
            raise SourceError(f"input not found: {path}")
        if self.path.is_dir():
            raise SourceError(f"input is a folder, not a video: {path}")
        if start is not None and start < 0:
            raise SourceError(f"--start must be >= 0, got {start}")
        if start is not None and end is not None and end <= start:
            raise SourceError(f"--end ({end}) must be after --start ({start})")
        try:
            self.container = av.open(str(self.path), metadata_errors="ignore")
        except av.error.FFmpegError as exc:
            raise SourceError(f"not a video FFmpeg can read: {path} ({exc.strerror})") from None
        except OSError as exc:
            raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None
        if not self.container.streams.video:
            self.container.close()
            raise SourceError(f"no video stream in {path}")
        self.stream = self.container.streams.video[0]
        # Frame threading overlaps decode of several frames; PyAV releases the GIL meanwhile.
        self.stream.thread_type = "AUTO"
        self.time_base: Fraction = self.stream.time_base or Fraction(1, 90000)
        self.rate: Fraction = self.stream.average_rate or self.stream.guessed_rate or Fraction(25)
        self.start, self.end = start, end
        self.alpha = alpha
        self._decoder: CodecContext | None = None
        if alpha and self.stream.codec_context.name == "vp9":
            try:
                self._decoder = av.CodecContext.create("libvpx-vp9", "r")
            except Exception:  # noqa: BLE001 - no libvpx: alpha reads as opaque
                self._decoder = None
        self.skipped = 0
        self.fixed_timestamps = 0
        self.passthrough_streams = (
            [s for s in self.container.streams if s.type in ("audio", "subtitle", "data")]
            if passthrough
            else []
        )
        start_time = self.stream.start_time
        self._first = float(start_time * self.time_base) if start_time is not None else 0.0
        self._end, self._end_is_video = self._declared_end()
        #: The video's declared length in seconds (None when the file does not say).
        self.duration = None if self._end is None else self._end - self._first
        self.frame_count = self._estimate_frames()
        self.ended_early = None
        tag = self.stream.metadata.get("rotate")
        # The legacy tag is clockwise; VideoFrame.rotation is counter-clockwise.
        self._tag_rotation = -int(tag) if tag and tag.lstrip("-").isdigit() else 0

    def _declared_end(self) -> tuple[float | None, bool]:
        """Where the file says the video ends, in seconds on its timeline, and whether that is
        the video stream's own word (else the container's, which also covers audio that runs
        past the last frame)."""
        if self.stream.duration is not None:
            return self._first + float(self.stream.duration * self.time_base), True
        # Matroska stores no stream duration, but FFmpeg and mkvmerge tag each track with the
        # end of its last packet.
        tag = _clock_seconds(self.stream.metadata.get("DURATION", ""))
        if tag is not None:
            return tag, True
        if self.container.duration is not None:
            return (self.container.start_time or 0) / 1e6 + self.container.duration / 1e6, False
        return None, False

    def _estimate_frames(self) -> int | None:
        total = self.stream.frames or None
        if self._end is not None and (total is None or self.start or self.end):
            span = min(self.end or self._end, self._end) - max(self.start or 0.0, self._first)
            total = max(0, round(span * float(self.rate)))
            self.frame_count_estimated = True
        return total

    def _check_end(self, frames: int, video_end: float, other_end: float) -> None:
        """Set ``ended_early`` when decoding stopped well before the declared end: by more
        than two frames (a last frame's duration, rounding), and, when only the container's
        duration is known, with the other streams stopping early too (else the video is just
        shorter than its audio)."""
        if self._end is None:
            return
        expected = self._end if self.end is None else min(self.end, self._end)
        reached = video_end if self._end_is_video else max(video_end, other_end)
        if reached >= expected - 2.0 / float(self.rate):
            return
        count = "?" if self.frame_count is None else str(self.frame_count)
        count = "~" + count if self.frame_count_estimated else count
        origin = max(self.start or 0.0, self._first)
        self.ended_early = (
            f"{frames} of {count} frames ({video_end - origin:.2f} of {expected - origin:.2f} s)"
        )

    def _seek(self) -> None:
        if not self.start:
            return
        target = int(self.start / self.time_base)
        # An unseekable input is decoded from the beginning; frames before start are skipped.
        with contextlib.suppress(Exception):
            self.container.seek(target, stream=self.stream, backward=True, any_frame=False)

    def _to_bgr(self, vframe: VideoFrame) -> tuple[np.ndarray, np.ndarray | None]:
        # One swscale thread, as in the video sink: PyAV's automatic count starts and stops a
        # pool per frame (720p to BGR: 0.57-0.66 against 0.70-1.31 ms CPU, same pixels).
        kwargs: dict[str, object] = {"threads": 1}
        # Players assume BT.709 for untagged HD and BT.601 for SD; swscale assumes 601 always.
        if vframe.colorspace == _COLORSPACE_UNSPECIFIED and vframe.height >= 720:
            kwargs["src_colorspace"] = "ITU709"
        alpha = None
        if self.alpha and any(c.is_alpha for c in vframe.format.components):
            bgra = vframe.to_ndarray(format="bgra", **kwargs)
            image, alpha = np.ascontiguousarray(bgra[..., :3]), bgra[..., 3]
        else:
            image = vframe.to_ndarray(format="bgr24", **kwargs)
        rotation = (getattr(vframe, "rotation", 0) or self._tag_rotation) % 360
        image, alpha = self._rotate(image, rotation), self._rotate(alpha, rotation)
        return image, None if alpha is None else alpha.astype(np.float32) / 255.0

    @staticmethod
    def _rotate(image: np.ndarray | None, rotation: int) -> np.ndarray | None:
        if image is None:
            return None
        if rotation == 90:
            image = cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
        elif rotation == 180:
            image = cv2.rotate(image, cv2.ROTATE_180)
        elif rotation == 270:
            image = cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
        return image

    def items(self, stop: threading.Event | None = None) -> Iterator[Item]:
        """Decoded frames (``Frame``) and passthrough packets (``av.Packet``), in file order,
        until the end (or ``stop`` is set)."""
        import av

        self._seek()
        start_s = self.start or 0.0
        streams = [self.stream, *self.passthrough_streams]
        shift = {s.index: round(start_s / s.time_base) for s in streams}
        step = max(1, round(1 / (self.rate * self.time_base))) if self.rate else 1
        # Seconds per tick and per frame as floats: a frame's times were Fraction products
        # (~20 us of Python a frame, with the GIL the processing thread waits for).
        seconds = float(self.time_base)
        period = 1.0 / float(self.rate) if self.rate else 0.0
        last_pts: int | None = None
        index = 0
        video_done = False
        video_end = other_end = 0.0  # seconds reached, in the file's timeline
        tic = time.perf_counter()
        for packet in self.container.demux(self.stream, *self.passthrough_streams):
            if stop is not None and stop.is_set():
                return
            if packet.stream.index != self.stream.index:
                if packet.dts is None or packet.pts is None:
                    continue  # flush packet of a copied stream
                t = float(packet.pts * packet.time_base)
                other_end = max(other_end, t + float((packet.duration or 0) * packet.time_base))
                if self.start and t + float((packet.duration or 0) * packet.time_base) <= start_s:
                    continue
                if self.end is not None and t >= self.end:
                    if video_done and t >= self.end + 1.0:
                        break  # interleaving slack is over: nothing more of the range follows
                    continue
                offset = shift[packet.stream.index]
                if packet.stream.type == "subtitle" and packet.pts < offset:
                    # A cue already showing at start: show its rest from zero.  A negative
                    # time would make the muxer shift every stream, the video included.
                    if packet.duration:
                        packet.duration -= offset - packet.pts
                    packet.pts = packet.dts = offset
                elif packet.pts < offset:
                    # An audio (or data) packet straddling the start: its samples cannot be cut
                    # without re-encoding, and a negative time would make Matroska delay the
                    # video too, so it is dropped: the audio starts under one packet late.
                    continue
                packet.pts -= offset
                packet.dts -= offset
                yield packet
                continue
            if video_done:
                continue
            try:
                if self._decoder is None:
                    decoded = packet.decode()
                else:
                    decoded = self._decoder.decode(packet if packet.size else None)
            except av.error.FFmpegError:
                self.skipped += 1  # corrupt packet: leave it out, keep decoding
                continue
            for vframe in decoded:
                if vframe.is_corrupt:
                    self.skipped += 1
                    continue
                pts = vframe.pts
                if pts is None:
                    pts = 0 if last_pts is None else last_pts + step
                t = pts * seconds
                if self.start and t < start_s - 1e-6:
                    continue  # pre-roll from the key frame the seek landed on
                if self.end is not None and t >= self.end - 1e-6:
                    video_done = True
                    break
                if last_pts is not None and pts <= last_pts:
                    # Encoders refuse non-increasing timestamps; nudge and count instead.
                    pts = last_pts + 1
                    self.fixed_timestamps += 1
                last_pts = pts
                video_end = t + ((vframe.duration or 0) * seconds or period)
                image, alpha = self._to_bgr(vframe)
                frame = Frame(
                    image=image,
                    index=index,
                    pts=pts - shift[self.stream.index],
                    time_base=self.time_base,
                    mode=Mode.VIDEO,
                    alpha=alpha,
                )
                frame.timings["decode"] = (time.perf_counter() - tic) * 1000.0
                index += 1
                yield frame
                tic = time.perf_counter()
            if video_done and not self.passthrough_streams:
                break
        self._check_end(index, video_end, other_end)

    def close(self) -> None:
        self.container.close()


class ImageSequenceSource(SourceBase):
    """Images (a list, a folder, a glob) as frames at a fixed rate, in natural order.

    A single image gives one IMAGE-mode frame; several give VIDEO-mode frames with
    ``pts = index`` in ``time_base = 1/fps``.  An unreadable image is counted in ``skipped``
    (its timestamp slot is kept, so the rest stays on time).

    Raises:
        SourceError: no images at all, or the first image cannot be read.
    """

    def __init__(self, paths: Sequence[str | Path], *, fps: float = 25.0, mode: Mode | None = None):
        if not paths:
            raise SourceError("no images to read")
        self.paths = [Path(p) for p in paths]
        self.name = str(self.paths[0].parent if len(self.paths) > 1 else self.paths[0])
        self.rate = Fraction(fps).limit_denominator(1001)
        self.time_base = 1 / self.rate
        self.mode = mode or (Mode.IMAGE if len(self.paths) == 1 else Mode.VIDEO)
        self.frame_count = len(self.paths)
        self.skipped = 0
        # Read now to fail fast with one clear line; kept as frame 0 rather than read twice.
        self._first: np.ndarray | None = outputs.read_image(self.paths[0])

    def items(self, stop: threading.Event | None = None) -> Iterator[Item]:
        index = 0
        for slot, path in enumerate(self.paths):
            if stop is not None and stop.is_set():
                return
            tic = time.perf_counter()
            if slot == 0 and self._first is not None:
                image, self._first = self._first, None
            else:
                try:
                    image = outputs.read_image(path)
                except SourceError:
                    self.skipped += 1
                    continue
            frame = Frame(image, index=index, pts=slot, time_base=self.time_base, mode=self.mode)
            frame.timings["decode"] = (time.perf_counter() - tic) * 1000.0
            index += 1
            yield frame


def is_pattern(text: str) -> bool:
    """True when ``text`` is a glob pattern (``*``, ``?`` or ``[``)."""
    return bool(_GLOB_CHARS.search(text))


#: What ``livematte image`` reads from a folder: the images frames are read from, plus GIF,
#: whose first frame is a photo there (a video reads a GIF as an animation instead).
PHOTO_EXTENSIONS = IMAGE_EXTENSIONS | {".gif"}


def expand_inputs(
    patterns: str | Path | Sequence[str | Path], *, photos: bool = False
) -> list[str]:
    """The inputs a command's INPUT arguments name, in order (natural order within each).

    * A path that exists, or ``synthetic[...]``, is one input; a folder too (an image
      sequence), except with ``photos``: then each image in it is one (``PHOTO_EXTENSIONS``).
    * A glob pattern gives the files it matches: a glob of images is one input (an image
      sequence) unless ``photos`` (then each file is one, ``**`` included); a glob of videos
      gives each video.

    Raises:
        SourceError: a pattern matches nothing; with ``photos``, a path that does not exist.
    """
    items = [patterns] if isinstance(patterns, (str, Path)) else list(patterns)
    found: list[str] = []
    for item in items:
        text = str(item)
        if photos and os.path.isdir(text):
            inside = (p for p in Path(text).iterdir() if p.suffix.lower() in PHOTO_EXTENSIONS)
            found.extend(sorted((str(p) for p in inside), key=natural_key))
        elif os.path.exists(text) or not is_pattern(text) or text.startswith("synthetic"):
            if photos and not os.path.exists(text):
                raise SourceError(f"input not found: {text}")
            found.append(text)
        else:
            matches = glob.glob(text, recursive=photos)
            files = sorted((m for m in matches if os.path.isfile(m)), key=natural_key)
            if not files:
                raise SourceError(f"no files match {text}")
            if photos:
                found.extend(files)
            elif all(is_image_path(m) for m in files):
                found.append(text)  # an image sequence, opened as one source
            else:
                found.extend(m for m in files if not is_image_path(m))
    return found


def _list_images(paths: Sequence[str]) -> list[str]:
    return sorted((p for p in paths if is_image_path(p) and os.path.isfile(p)), key=natural_key)


def open_source(
    spec: str | Path,
    *,
    start: float | None = None,
    end: float | None = None,
    fps: float = 25.0,
    passthrough: bool = True,
    alpha: bool = False,
) -> SourceBase:
    """Open whatever ``spec`` names: a video file, an image, a folder or glob of images, or
    ``synthetic[:WxH[:FRAMES]]``.

    Args:
        spec: path, folder, glob pattern or ``synthetic`` spec.
        start, end: trim range in seconds (video files).
        fps: frame rate given to image sequences.
        passthrough: carry audio/subtitle/data packets (video files).
        alpha: read a video's alpha plane into ``frame.alpha`` (see VideoFileSource).

    Raises:
        SourceError: nothing readable there (one line naming the path).
    """
    text = str(spec)
    if text.startswith("synthetic"):
        match = re.fullmatch(r"synthetic(?::(\d+)x(\d+))?(?::(\d+))?", text)
        if not match:
            raise SourceError(f"bad synthetic spec {text!r}; use synthetic[:WxH[:FRAMES]]")
        defaults = (320, 240, 50)
        width, height, frames = (
            int(g) if g else d for g, d in zip(match.groups(), defaults, strict=True)
        )
        return SyntheticSource(width, height, frames, fps)
    path = Path(text)
    if path.is_dir():
        images = _list_images([str(p) for p in path.iterdir()])
        if not images:
            raise SourceError(f"no images in folder {path}")
        return ImageSequenceSource(images, fps=fps, mode=Mode.VIDEO)
    if not path.exists() and _GLOB_CHARS.search(text):
        matches = glob.glob(text)
        images = _list_images(matches)
        if not matches:
            raise SourceError(f"no files match {text}")
        if len(images) != len(matches):
            raise SourceError(f"{text} matches files that are not images; pass videos one by one")
        return ImageSequenceSource(images, fps=fps, mode=Mode.VIDEO)
    if is_image_path(path):
        if not path.exists():
            raise SourceError(f"input not found: {path}")
        return ImageSequenceSource([path], fps=fps)
    return VideoFileSource(path, start=start, end=end, passthrough=passthrough, alpha=alpha)
