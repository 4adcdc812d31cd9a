"""The file sinks (PNG sequences, single images) and memory/null, and what every sink writes
of a frame (:func:`frame_pixels` for files, :func:`output_image` for screens and devices).
Video files are :mod:`livematte.io.video_sink`; live devices :mod:`livematte.io.live_sinks`
and :mod:`livematte.io.window`; the contract is :class:`livematte.io.base.Sink`, and the table
of every sink by name is :mod:`livematte.io.table`.

Sinks are context managers.  ``send(frame)`` checks dtype and shape; leaving the ``with`` block
finalizes: on success the file written under a temporary name in the target folder is moved
into place; on ``KeyboardInterrupt`` the encoder is flushed and the container closed, so the
part done is playable, and it is kept as ``NAME.partial.EXT`` (``sink.partial_path``); on any
other error the temporary file is removed.  Modes follow the umask, and temporaries a killed
run left behind are removed by the next run for that output (see :mod:`livematte.atomic`).

What a sink writes from a frame depends on the *format* (see :func:`frame_pixels`):

=============  ==========================================================================
composite      ``frame.output`` (BGR; BGRA is flattened over black, with a notice)
prores4444     BGRA: ``frame.output`` if it has alpha, else foreground + alpha (.mov/.mkv)
webm-alpha     same pixels as prores4444, VP9 ``yuva420p`` (.webm/.mkv)
png-seq        same pixels, RGBA PNG files in a folder
matte          the alpha matte as grey
foreground     the decontaminated foreground colours (``frame.foreground``)
greenscreen    foreground over chroma green, by alpha
=============  ==========================================================================

Example::

    # open_sink (livematte.io.table) picks the sink for a path and format
    with open_sink("out.mov", "prores4444", passthrough=source.passthrough_streams) as sink:
        for frame in frames:
            sink.send(frame)
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from livematte import outputs
from livematte.atomic import make_temporary, publish
from livematte.errors import SinkError
from livematte.frame import Frame
from livematte.io.base import SinkBase
from livematte.ops.compose import alpha_to_u8, flatten

if TYPE_CHECKING:
    from av.packet import Packet

FORMATS = ("composite", "prores4444", "webm-alpha", "png-seq", "matte", "foreground", "greenscreen")
ALPHA_FORMATS = frozenset({"prores4444", "webm-alpha", "png-seq"})
QUALITIES = ("low", "medium", "high", "max")
#: Output extension -> FFmpeg muxer name.
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}
#: Extensions each format may be written to (None = any video container).
_FORMAT_EXTENSIONS = {"prores4444": (".mov", ".mkv"), "webm-alpha": (".webm", ".mkv")}
_DEFAULT_EXTENSION = {"prores4444": ".mov", "webm-alpha": ".webm", "png-seq": ""}
#: Chroma-key green in BGR (the broadcast 0,177,64 plate).
GREEN = (64, 177, 0)
GREEN_BGR = np.array(GREEN, np.float32)

Notice = Callable[[str], None]


def resolve_format(path: str | Path, fmt: str = "auto") -> str:
    """The format to write ``path`` in: ``fmt`` checked against the extension, or for "auto"
    png-seq when ``path`` has no extension (a folder) and composite otherwise.

    Raises:
        SinkError: unknown format, or an extension the format cannot be written to.
    """
    suffix = Path(path).suffix.lower()
    if fmt == "auto":
        fmt = "png-seq" if not suffix or Path(path).is_dir() else "composite"
    if fmt not in FORMATS:
        raise SinkError(f"unknown output format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "png-seq":
        if suffix in CONTAINERS and not Path(path).is_dir():
            raise SinkError(f"--format png-seq writes a folder, not the video file {path}")
        return fmt
    if suffix not in CONTAINERS:
        raise SinkError(
            f"unsupported output extension {suffix or '(none)'!r} for {path}; use "
            f"{', '.join(CONTAINERS)} (or a folder with --format png-seq)"
        )
    allowed = _FORMAT_EXTENSIONS.get(fmt)
    if allowed and suffix not in allowed:
        raise SinkError(f"--format {fmt} needs a {' or '.join(allowed)} file, not {suffix}")
    return fmt


def default_extension(fmt: str) -> str:
    """File extension used for ``fmt`` when only an output folder is given (batch mode)."""
    return _DEFAULT_EXTENSION.get(fmt, ".mp4")


def alpha_u8(frame: Frame) -> np.ndarray | None:
    """``frame.alpha`` as a uint8 matte (float 0..1 clipped and rounded), or None without one.

    Raises:
        SinkError: the alpha is not the image's size, or neither float nor uint8.
    """
    alpha = frame.alpha
    if alpha is None:
        return None
    if alpha.shape != frame.image.shape[:2]:
        raise SinkError(f"frame.alpha is {alpha.shape}, expected {frame.image.shape[:2]}")
    if alpha.dtype == np.uint8:
        return alpha
    if alpha.dtype.kind != "f":
        raise SinkError(f"frame.alpha must be float 0..1 or uint8, got {alpha.dtype}")
    return alpha_to_u8(np.clip(alpha, 0.0, 1.0))


def _checked(image: np.ndarray, frame: Frame, what: str, channels: tuple[int, ...]) -> np.ndarray:
    h, w = frame.image.shape[:2]
    if (
        not isinstance(image, np.ndarray)
        or image.dtype != np.uint8
        or image.ndim != 3
        or image.shape[:2] != (h, w)
        or image.shape[2] not in channels
    ):
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image)
        want = " or ".join(f"{h}x{w}x{c}" for c in channels)
        raise SinkError(f"{what} must be {want} uint8, got {got}")
    return image


def _need_alpha(frame: Frame, fmt: str) -> np.ndarray:
    alpha = alpha_u8(frame)
    if alpha is None:
        raise SinkError(f"--format {fmt} needs an alpha matte; the pipeline produced none")
    return alpha


def frame_pixels(frame: Frame, fmt: str) -> np.ndarray:
    """The uint8 picture ``fmt`` writes for ``frame``: BGR, BGRA (alpha formats) or grey (matte).

    Raises:
        SinkError: a field has the wrong dtype/shape, or the format needs an alpha it lacks.
    """
    if fmt == "composite":
        out = frame.output if frame.output is not None else frame.image
        out = _checked(out, frame, "frame.output", (3, 4))
        if out.shape[2] == 4:  # transparent background: flatten over black
            return flatten(out, (0, 0, 0))
        return out
    if fmt in ALPHA_FORMATS:
        if frame.output is not None and frame.output.ndim == 3 and frame.output.shape[2] == 4:
            return _checked(frame.output, frame, "frame.output", (4,))
        alpha = _need_alpha(frame, fmt)
        fg = frame.foreground if frame.foreground is not None else frame.image
        return np.dstack([_checked(fg, frame, "frame.foreground", (3,)), alpha])
    if fmt == "matte":
        return _need_alpha(frame, fmt)
    fg = frame.foreground if frame.foreground is not None else frame.image
    fg = _checked(fg, frame, "frame.foreground", (3,))
    if fmt == "foreground":
        return fg
    if fmt == "greenscreen":
        a = _need_alpha(frame, fmt)[..., None].astype(np.float32) / 255.0
        return (fg * a + GREEN_BGR * (1.0 - a) + 0.5).astype(np.uint8)
    raise SinkError(f"unknown output format {fmt!r}; use one of {', '.join(FORMATS)}")


def _check_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise SinkError(f"output folder does not exist: {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SinkError(f"output folder is not writable: {folder}")


def output_image(frame: Frame, what: str = "output") -> np.ndarray:
    """The picture a live sink shows: ``frame.output`` (or the input when unset) or the matte.

    Raises:
        SinkError: not uint8 HxWx3/HxWx4.
    """
    if what == "matte" and frame.alpha is not None:
        return cv2.cvtColor(alpha_u8(frame), cv2.COLOR_GRAY2BGR)
    image = frame.output if frame.output is not None else frame.image
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
        raise SinkError(
            f"live sinks take uint8 BGR or BGRA pictures, got {image.dtype} {image.shape}"
        )
    return image


class FileSink(SinkBase):
    """Base of the sinks that write files: see the module docstring.

    Attributes:
        path: where the result is (after a successful exit).
        partial_path: where the part done was kept after Ctrl-C, else None.
        end_with_video: set before the ``with`` block ends when the input ended early: the
            other streams (audio) are then cut or padded to end with the video.
    """

    path: Path
    partial_path: Path | None = None
    end_with_video: bool = False


class NullSink(SinkBase):
    """Discards what it is sent after the same checks as a real sink (the pixels of ``fmt``,
    or the picture a live sink shows when ``fmt`` is None), counting frames and latency: for
    benchmarks, dry runs and tests.  ``keep``: the last pictures kept in ``pictures``."""

    name = "null"

    def __init__(self, fmt: str | None = None, *, keep: int = 0):
        super().__init__()
        self.fmt = fmt
        self.keep = keep
        self.pictures: list[np.ndarray] = []

    def send(self, frame: Frame, captured_at: float | None = None) -> None:
        image = frame_pixels(frame, self.fmt) if self.fmt else output_image(frame)
        if self.keep:
            self.pictures = [*self.pictures[max(0, len(self.pictures) - self.keep + 1) :], image]
        self._record(captured_at)


class MemorySink(SinkBase):
    """Keeps what it is sent: ``frames`` count, ``images`` (pixels per ``fmt``, when given),
    ``received`` (the Frame objects, when ``keep_frames``) and ``packets``."""

    name = "memory"

    def __init__(self, fmt: str | None = "composite", *, keep_frames: bool = True):
        super().__init__()
        self.fmt, self.keep_frames = fmt, keep_frames
        self.images: list[np.ndarray] = []
        self.received: list[Frame] = []
        self.packets: list[Packet] = []

    def send(self, frame: Frame, captured_at: float | None = None) -> None:
        if self.fmt:
            self.images.append(frame_pixels(frame, self.fmt).copy())
        if self.keep_frames:
            self.received.append(frame)
        self._record(captured_at)

    def send_packet(self, packet: Packet) -> None:
        self.packets.append(packet)


class ImageSink(FileSink):
    """Write one frame as an image file (.png/.webp/.tif keep alpha; .jpg/.bmp do not).

    Raises:
        SinkError: more than one frame, unsupported extension, alpha into a format without it.
    """

    name = "image"

    def __init__(self, path: str | Path, fmt: str = "png-seq"):
        super().__init__()
        self.path = Path(path)
        self.fmt = fmt
        _check_folder(self.path.parent if str(self.path.parent) else Path("."))

    def send(self, frame: Frame, captured_at: float | None = None) -> None:
        if self.frames:
            raise SinkError(f"{self.path} is one image; use a folder for several frames")
        outputs.write_image(self.path, frame_pixels(frame, self.fmt))
        self._record(captured_at)


#: What a PNG sequence folder holds (a stale temporary one is removed only if that is all).
_SEQUENCE_ENTRIES = re.compile(r"frame_\d{6}\.png|timestamps\.txt")


class PngSequenceSink(FileSink):
    """Frames as ``frame_000000.png`` ... in a folder (RGBA for the alpha formats), plus
    ``timestamps.txt`` (mkvmerge "timestamp format v2", ms per frame) so VFR timing survives.

    The folder is built under a temporary name next to it and renamed when complete.

    Raises:
        SinkError: the parent folder is missing/unwritable or the folder exists and is not empty.
    """

    name = "png-seq"

    def __init__(self, folder: str | Path, fmt: str = "png-seq", *, compression: int = 3):
        super().__init__()
        self.path = Path(folder)
        self.fmt = "png-seq" if fmt in ("png-seq", "auto") else fmt
        self.compression = compression
        if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            raise SinkError(f"output folder exists and is not empty: {self.path}")
        _check_folder(self.path.parent if str(self.path.parent) else Path("."))
        self._tmp = make_temporary(self.path, "tmp", directory=True, entries=_SEQUENCE_ENTRIES)
        self._times: list[str] = []

    def send(self, frame: Frame, captured_at: float | None = None) -> None:
        pixels = frame_pixels(frame, self.fmt)
        ok, data = cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, self.compression])
        if not ok:
            raise SinkError(f"could not encode frame {frame.index} as PNG")
        try:
            data.tofile(self._tmp / f"frame_{self.frames:06d}.png")
        except OSError as exc:
            raise SinkError(f"cannot write {self.path}: {exc.strerror}") from None
        if frame.time is not None:
            self._times.append(f"{frame.time * 1000.0:.3f}")
        self._record(captured_at)

    def _finish(self, target: Path) -> None:
        if len(self._times) == self.frames:
            text = "# timestamp format v2\n" + "\n".join(self._times) + "\n"
            (self._tmp / "timestamps.txt").write_text(text, encoding="utf-8")
        if target.is_dir():
            target.rmdir()  # checked empty at construction
        publish(self._tmp, target)

    def close(self) -> None:
        self._finish(self.path)

    def abort(self, keep_partial: bool) -> None:
        if keep_partial and self.frames:
            self.partial_path = self.path.with_name(self.path.name + ".partial")
            if self.partial_path.exists():
                shutil.rmtree(self.partial_path)
            self._finish(self.partial_path)
        else:
            shutil.rmtree(self._tmp, ignore_errors=True)
