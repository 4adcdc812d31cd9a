"""Live sources: a camera, or any PyAV-readable file/URL standing in for one.

They are :class:`~livematte.io.base.Source` objects like files are: ``open`` acquires the
device (a bad one raises one ``SourceError`` line that lists the cameras that exist),
``items(stop)`` yields frames as the device delivers them, stamped with the time of capture,
until ``stop`` is set.  Which frames get processed is the runner's business: the latest-frame
scheduler (``livematte.runner.latest``) iterates a live source on its own capture thread and
keeps only the newest frame, so latency never builds up in a queue.

Robustness: when the device fails (unplugged, stalled, a network stream drops) ``items``
closes it and retries with exponential backoff, yielding nothing meanwhile (``status`` says
``reconnecting``), and resumes by itself when the device comes back.

Example::

    with open_live_source(source="clip.mp4", fps=30) as cam:
        for frame in cam.items():
            print(frame.size, cam.status)
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict, Unpack

import cv2
import numpy as np

from livematte.errors import SourceError
from livematte.frame import Frame, Mode
from livematte.io.base import SourceBase

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.frame import VideoFrame
#: Timestamps of live frames: microseconds of capture time since the source started.
LIVE_TIME_BASE = Fraction(1, 1_000_000)
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


class DeviceTiming(TypedDict, total=False):
    """How a live source waits for a failing device (see :class:`LiveSource`)."""

    stall_timeout: float
    max_backoff: float
    on_status: Callable[[str], None] | None


class LiveOptions(DeviceTiming, total=False):
    """Every option of :class:`LiveSource`."""

    size: tuple[int, int] | None
    fps: float | None


class LiveSource(SourceBase):
    """Base of live sources: a device opened, read frame by frame and reopened when it fails.

    Subclasses implement ``_open`` (raise on failure), ``_grab`` (one BGR image, or None when
    the device failed) and ``_close``.  ``open`` opens the device synchronously so a bad
    device is reported at once; afterwards ``items`` retries failures itself.

    Args:
        size: (width, height) frames are resized to (None = as captured).
        fps: requested frame rate (None = the device's own).
        stall_timeout: seconds without a frame after which the device is reopened.
        max_backoff: longest wait (s) between reconnection attempts.
        on_status: called (from the thread iterating) with the new status when it changes.

    Attributes:
        captured: frames yielded; ``reconnects``: successful reopenings; ``status``: "live",
        "stalled" or "reconnecting"; ``last_error``: why the device last failed.
    """

    name = "live source"

    def __init__(
        self,
        *,
        size: tuple[int, int] | None = None,
        fps: float | None = None,
        stall_timeout: float = 2.0,
        max_backoff: float = 5.0,
        on_status: Callable[[str], None] | None = None,
    ) -> None:
        self.size = size
        self.fps = fps
        self.stall_timeout = stall_timeout
        self.max_backoff = max_backoff
        self.on_status = on_status
        self.captured = 0
        self.reconnects = 0
        self.status = "idle"
        self.last_error = ""
        self._stop = threading.Event()
        self._opened = False
        self._iterating = False
        self._t0 = time.monotonic()

    # -- to implement ------------------------------------------------------------------------
    def _open(self) -> None:
        raise NotImplementedError

    def _grab(self) -> np.ndarray | None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    # -- the Source protocol -------------------------------------------------------------------
    @property
    def rate(self) -> Fraction | None:  # type: ignore[override]
        """The frame rate asked for or reported by the device (None before ``open``)."""
        return Fraction(self.fps).limit_denominator(1001) if self.fps else None

    def open(self) -> None:
        """Open the device (once; later calls do nothing).

        Raises:
            SourceError: the device cannot be opened (the message lists what exists).
        """
        if self._opened:
            return
        self._open()
        self._opened = True
        self._set_status("live")
        self._t0 = time.monotonic()

    def items(self, stop: threading.Event | None = None) -> Iterator[Frame]:
        """Frames as the device delivers them (LIVE mode, ``pts`` in microseconds since
        ``open``), reconnecting with backoff when it fails, until ``stop`` (or ``close``) is
        set or the input ends; the device is closed on the way out."""
        self.open()
        if stop is not None:
            self._stop = stop
        self._iterating = True
        try:
            yield from self._capture()
        finally:
            self._iterating = False
            self._safe_close()

    def close(self) -> None:
        """Stop ``items`` at its next step; release the device when nothing reads it."""
        self._stop.set()
        if not self._iterating and self._opened:
            self._safe_close()

    # -- the capture loop ----------------------------------------------------------------------
    def _set_status(self, status: str) -> None:
        if status != self.status:
            self.status = status
            if self.on_status is not None:
                self.on_status(status)

    def _safe_close(self) -> None:
        self._opened = False
        # A failing device may also fail to close; there is nothing to recover then.
        with contextlib.suppress(Exception):
            self._close()

    def _frame(self, image: np.ndarray) -> Frame:
        if self.size is not None and (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        frame = Frame(
            image=image,
            index=self.captured,
            pts=round((time.monotonic() - self._t0) * 1e6),
            time_base=LIVE_TIME_BASE,
            mode=Mode.LIVE,
        )
        self.captured += 1
        return frame

    def _ended(self) -> bool:
        """True when the input has nothing more to give (a file played once)."""
        return False

    def _capture(self) -> Iterator[Frame]:
        backoff = 0.25
        last_ok = time.monotonic()
        while not self._stop.is_set():
            if not self._opened:
                try:
                    self._open()
                except Exception as exc:  # anything a driver raises means "not back yet"
                    self.last_error = " ".join(str(exc).split())
                    self._set_status("reconnecting")
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2.0, self.max_backoff)
                    continue
                self._opened = True
                self.reconnects += 1
                backoff = 0.25
                last_ok = time.monotonic()
            try:
                image = self._grab()
            except Exception as exc:
                self.last_error = " ".join(str(exc).split())
                image = None
            if self._stop.is_set() or self._ended():
                break
            if image is None:
                if time.monotonic() - last_ok > self.stall_timeout:
                    self._set_status("reconnecting")
                    self._safe_close()
                else:
                    self._set_status("stalled")
                    self._stop.wait(0.02)  # a failing read can return at once: don't spin
                continue
            last_ok = time.monotonic()
            self._set_status("live")
            yield self._frame(image)


# --- cameras ----------------------------------------------------------------------------------


def list_cameras() -> list[str]:
    """Video capture devices that exist, as "PATH (name)" (Linux); empty elsewhere."""
    found = []
    for path in sorted(glob.glob("/dev/video*"), key=lambda p: int(re.sub(r"\D", "", p) or 0)):
        name_file = Path("/sys/class/video4linux") / Path(path).name / "name"
        try:
            label = name_file.read_text(encoding="utf-8").strip()
        except OSError:
            label = ""
        found.append(f"{path} ({label})" if label else path)
    return found


def describe_cameras() -> str:
    """One clause listing the cameras that exist, for error messages."""
    if sys.platform.startswith("linux"):
        cams = list_cameras()
        if not cams:
            return "no cameras found (/dev/video* does not exist); try --source FILE as a stand-in"
        return "cameras found: " + ", ".join(cams)
    return "cameras are numbered 0, 1, ... on this platform (close other apps using them)"


def parse_camera(spec: str | int) -> int | str:
    """``"0"`` -> 0 (an index); anything else is a device path or name."""
    if isinstance(spec, int):
        return spec
    return int(spec) if spec.strip().isdigit() else spec


class CameraSource(LiveSource):
    """A camera by index or device path, through OpenCV.

    Requests MJPG (USB cameras deliver 720p/1080p at 30 fps only compressed), the size and the
    frame rate; the camera may pick the nearest mode it supports (``actual_size``).  The
    driver's queue is shortened to one buffer so frames are fresh.

    Raises (from ``open``):
        SourceError: missing or busy camera, naming the cameras that exist.
    """

    def __init__(
        self, camera: int | str, *, mjpg: bool = True, **kwargs: Unpack[LiveOptions]
    ) -> None:
        super().__init__(**kwargs)
        self.camera = parse_camera(camera)
        self.mjpg = mjpg
        self.name = f"camera {self.camera}"
        self.actual_size: tuple[int, int] | None = None
        self._cap: cv2.VideoCapture | None = None

    def _backend(self) -> int:
        if sys.platform.startswith("linux"):
            return cv2.CAP_V4L2
        if sys.platform == "win32":
            return cv2.CAP_DSHOW if hasattr(cv2, "CAP_DSHOW") else cv2.CAP_ANY
        return cv2.CAP_ANY

    def _open(self) -> None:
        cam = self.camera
        if isinstance(cam, str) and cam.startswith("/dev/") and not os.path.exists(cam):
            raise SourceError(f"camera {cam} does not exist; {describe_cameras()}")
        # OpenCV logs a WARN line per failed open; the SourceError below says it once, clearly.
        previous = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            cap = cv2.VideoCapture(cam, self._backend())
            if not cap.isOpened():
                raise SourceError(
                    f"cannot open camera {cam} (missing, or busy in another app); "
                    f"{describe_cameras()}"
                )
            if self.mjpg:
                cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG"))
            if self.size:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[0])
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[1])
            if self.fps:
                cap.set(cv2.CAP_PROP_FPS, float(self.fps))
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
            if hasattr(cv2, "CAP_PROP_READ_TIMEOUT_MSEC"):
                cap.set(cv2.CAP_PROP_READ_TIMEOUT_MSEC, self.stall_timeout * 1000.0)
            # A busy camera opens but fails to stream; only a first frame proves it works.
            ok, image = cap.read()
        finally:
            cv2.utils.logging.setLogLevel(previous)
        if not ok or image is None:
            cap.release()
            raise SourceError(
                f"camera {cam} opened but delivers no frames (busy in another app?); "
                f"{describe_cameras()}"
            )
        self._cap = cap
        self.actual_size = (image.shape[1], image.shape[0])
        if not self.fps:
            self.fps = cap.get(cv2.CAP_PROP_FPS) or 30.0

    def _grab(self) -> np.ndarray | None:
        ok, image = self._cap.read()
        return image if ok else None

    def _close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


# --- files and URLs as a stand-in camera ---------------------------------------------------


def is_url(spec: str) -> bool:
    """True for ``scheme://...`` (except ``file://``)."""
    return bool(_URL.match(spec)) and not spec.startswith("file://")


class StreamSource(LiveSource):
    """Any file or URL PyAV can read, standing in for a camera.

    Files are paced at ``fps`` (default: the file's own rate) from the monotonic clock, like a
    camera delivering frames, and looped; a URL is already live, so it is read as fast as it
    arrives and reopened when it ends or fails.

    Args:
        spec: a path or URL.
        loop: restart at the end (files) / reconnect (URLs); False ends capture at the end.
        realtime: pace frames at ``fps`` (default: True for files, False for URLs).
        kwargs: see ``LiveSource`` (``size`` resizes, ``fps`` overrides the file's rate).

    Raises (from ``open``):
        SourceError: missing file, or nothing FFmpeg can read, or no video stream.
    """

    def __init__(
        self,
        spec: str,
        *,
        loop: bool = True,
        realtime: bool | None = None,
        **kwargs: Unpack[LiveOptions],
    ) -> None:
        super().__init__(**kwargs)
        self.spec = str(spec)
        self.url = is_url(self.spec)
        self.loop = loop
        self.realtime = (not self.url) if realtime is None else realtime
        self.name = self.spec
        self.loops = 0
        self.ended = False
        self._container: InputContainer | None = None
        self._frames: Iterator[VideoFrame] | None = None
        self._due = 0.0
        self._interval = 1.0 / 30.0

    def _open(self) -> None:
        import av

        if not self.url and not os.path.exists(self.spec):
            raise SourceError(f"stand-in source not found: {self.spec}")
        options = {"rw_timeout": str(int(self.stall_timeout * 1e6))} if self.url else {}
        try:
            container = av.open(self.spec, options=options, timeout=max(self.stall_timeout, 5.0))
        except av.error.FFmpegError as exc:
            raise SourceError(f"cannot read {self.spec}: {exc.strerror or exc}") from None
        except OSError as exc:
            raise SourceError(f"cannot read {self.spec}: {exc.strerror or exc}") from None
        if not container.streams.video:
            container.close()
            raise SourceError(f"no video stream in {self.spec}")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # decode overlaps; PyAV releases the GIL meanwhile
        rate = stream.average_rate or stream.guessed_rate or 30
        if not self.fps:
            self.fps = float(rate)
        self._interval = 1.0 / float(self.fps)
        self._container = container
        self._frames = container.decode(stream)
        self._due = time.monotonic()

    def _next_picture(self) -> VideoFrame | None:
        try:
            return next(self._frames)
        except StopIteration:
            pass
        if not self.loop:
            self.ended = True
            return None
        self.loops += 1
        if self.url:
            return None  # a finished live stream: the loop reopens it with backoff
        try:  # cheaper than reopening and keeps the decoder's threads
            self._container.seek(0)
            self._frames = self._container.decode(self._container.streams.video[0])
        except Exception:
            self._safe_close()
            self._open()
            self._opened = True
        return next(self._frames, None)

    def _grab(self) -> np.ndarray | None:
        import av

        try:
            picture = self._next_picture()
        except av.error.FFmpegError as exc:
            self.last_error = str(exc)
            return None
        if picture is None:
            return None
        image = picture.to_ndarray(format="bgr24")
        if self.realtime:
            now = time.monotonic()
            if now - self._due > 4 * self._interval:
                self._due = now  # we fell behind (machine busy): don't burst to catch up
            elif self._stop.wait(max(0.0, self._due - now)):
                return None
            self._due += self._interval
        return image

    def _ended(self) -> bool:
        return self.ended

    def _close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
            self._frames = None


def open_live_source(
    *,
    camera: str | int | None = None,
    source: str | None = None,
    size: tuple[int, int] | None = None,
    fps: float | None = None,
    **kwargs: Unpack[DeviceTiming],
) -> LiveSource:
    """A camera (``camera``) or a stand-in file/URL (``source``); not opened yet.

    Raises:
        SourceError: both or neither given.
    """
    if (camera is None) == (source is None):
        raise SourceError("give either a camera (--camera) or a stand-in (--source), not both")
    if source is not None:
        return StreamSource(source, size=size, fps=fps, **kwargs)
    assert camera is not None
    return CameraSource(camera, size=size, fps=fps, **kwargs)
