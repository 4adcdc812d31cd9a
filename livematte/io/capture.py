"""Live sources: a camera, or any PyAV-readable file/URL standing in for one.

A live source runs its own capture thread and keeps ONLY the newest frame (a one-slot
"mailbox"): when the consumer is slower than the camera, older frames are overwritten and
counted as dropped, so latency never builds up in a queue.  Each frame carries the monotonic
time at which it was captured, which the LIVE runner uses to measure capture-to-sink latency.

Robustness: when the device fails (unplugged, stalled, a network stream drops) the thread
closes it and retries with exponential backoff while the consumer keeps its outputs alive with
the last frame; capture resumes by itself when the device comes back.  Opening a busy or
missing camera at start raises one ``SourceError`` line that lists the cameras that exist.

Example::

    with open_live_source(source="clip.mp4", fps=30) as cam:
        item = cam.read(timeout=1.0)      # Captured(frame, captured_at, seq) or None
        print(item.frame.size, cam.status)
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Generic, TypeVar

import cv2
import numpy as np

from livematte.errors import SourceError
from livematte.frame import Frame, Mode

T = TypeVar("T")
#: Timestamps of live frames: microseconds of capture time since the source started.
LIVE_TIME_BASE = Fraction(1, 1_000_000)
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


class LatestSlot(Generic[T]):
    """A one-item mailbox: ``put`` replaces what is there, ``take`` empties it.

    This is the bounded queue of LIVE mode: a writer never blocks and a reader always gets the
    newest item.  ``overwritten`` counts items replaced before anyone took them (drops).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._closed = False
        self.overwritten = 0

    def put(self, item: T) -> None:
        """Store ``item``, replacing (and counting) an untaken one."""
        with self._cond:
            if self._item is not None:
                self.overwritten += 1
            self._item = item
            self._cond.notify_all()

    def take(self, timeout: float | None = None) -> T | None:
        """The newest item, waiting up to ``timeout`` s; None on timeout or after ``close``."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait_for(lambda: self._item is not None or self._closed, timeout)
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        """Wake every waiting reader; later ``take`` calls return what is left, then None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


@dataclass
class Captured:
    """A captured frame and the monotonic time (s) at which it was captured."""

    frame: Frame
    captured_at: float
    seq: int


class LiveSource:
    """Base of live sources: a capture thread that publishes the newest frame.

    Subclasses implement ``_open`` (raise on failure), ``_grab`` (one BGR image, or None when
    the device failed) and ``_close``.  ``start`` opens the device synchronously so a bad
    device is reported at once; afterwards failures are retried in the background.

    Args:
        size: (width, height) frames are resized to (None = as captured).
        fps: requested frame rate (None = the device's own).
        stall_timeout: seconds without a frame after which the device is reopened.
        max_backoff: longest wait (s) between reconnection attempts.
        on_status: called from the capture thread with a short status text when it changes.

    Attributes:
        captured: frames published; ``dropped``: frames overwritten before anyone read them;
        reconnects: successful reopenings; ``status``: "live", "stalled" or "reconnecting".
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
        self._slot: LatestSlot[Captured] = LatestSlot()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._opened = False
        self._t0 = time.monotonic()
        self._last_capture = 0.0

    # -- to implement ------------------------------------------------------------------------
    def _open(self) -> None:
        raise NotImplementedError

    def _grab(self) -> np.ndarray | None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    # -- public ------------------------------------------------------------------------------
    @property
    def dropped(self) -> int:
        """Frames captured but overwritten before the consumer took them."""
        return self._slot.overwritten

    @property
    def running(self) -> bool:
        """True while the capture thread runs (False after ``stop`` or a non-looping end)."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def frame_age(self) -> float:
        """Seconds since the last frame was captured (inf before the first one)."""
        return time.monotonic() - self._last_capture if self.captured else float("inf")

    def start(self) -> LiveSource:
        """Open the device and start the capture thread.

        Raises:
            SourceError: the device cannot be opened (the message lists what exists).
        """
        self._open()
        self._opened = True
        self._set_status("live")
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name=f"capture:{self.name}", daemon=True)
        self._thread.start()
        return self

    def read(self, timeout: float | None = None) -> Captured | None:
        """The newest frame not yet read, waiting up to ``timeout`` s (None when none came)."""
        return self._slot.take(timeout)

    def stop(self, timeout: float = 3.0) -> bool:
        """Stop the thread and close the device; True when the thread ended within timeout."""
        self._stop.set()
        self._slot.close()
        joined = True
        if self._thread is not None:
            self._thread.join(timeout)
            joined = not self._thread.is_alive()
        if joined and self._opened:
            # A thread still blocked in a driver call owns the device; closing under it could
            # crash, and the daemon thread dies with the process anyway.
            self._safe_close()
        return joined

    def __enter__(self) -> LiveSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- capture thread ------------------------------------------------------------------------
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

    def _publish(self, image: np.ndarray) -> None:
        if self.size is not None and (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        now = time.monotonic()
        frame = Frame(
            image=image,
            index=self.captured,
            pts=round((now - self._t0) * 1e6),
            time_base=LIVE_TIME_BASE,
            mode=Mode.LIVE,
        )
        self._last_capture = now
        self.captured += 1
        self._slot.put(Captured(frame, now, self.captured))

    def _loop(self) -> None:
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
            if self._stop.is_set():
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
            self._publish(image)


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

    Raises (from ``start``):
        SourceError: missing or busy camera, naming the cameras that exist.
    """

    def __init__(self, camera: int | str, *, mjpg: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.camera = parse_camera(camera)
        self.mjpg = mjpg
        self.name = f"camera {self.camera}"
        self.actual_size: tuple[int, int] | None = None
        self._cap: Any = None

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

    Raises (from ``start``):
        SourceError: missing file, or nothing FFmpeg can read, or no video stream.
    """

    def __init__(
        self, spec: str, *, loop: bool = True, realtime: bool | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.spec = str(spec)
        self.url = is_url(self.spec)
        self.loop = loop
        self.realtime = (not self.url) if realtime is None else realtime
        self.name = self.spec
        self.loops = 0
        self.ended = False
        self._container: Any = None
        self._frames: Any = None
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

    def _next_picture(self) -> Any:
        try:
            return next(self._frames)
        except StopIteration:
            pass
        if not self.loop:
            self.ended = True
            self._stop.set()
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
    **kwargs: Any,
) -> LiveSource:
    """A camera (``camera``) or a stand-in file/URL (``source``); not started yet.

    Raises:
        SourceError: both or neither given.
    """
    if (camera is None) == (source is None):
        raise SourceError("give either a camera (--camera) or a stand-in (--source), not both")
    if source is not None:
        return StreamSource(source, size=size, fps=fps, **kwargs)
    assert camera is not None
    return CameraSource(camera, size=size, fps=fps, **kwargs)
