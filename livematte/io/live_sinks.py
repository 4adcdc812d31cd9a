"""Live outputs: virtual camera (pyvirtualcam) and network stream (PyAV); the window is in
``livematte.io.window``, the contract in ``livematte.io.base``.

Every sink is a context manager: ``open()`` on enter (so a missing backend fails before the
camera starts), ``send(frame, captured_at)`` per frame, ``close()`` on exit.  ``send`` checks
the picture (uint8, HxWx3 BGR or HxWx4 BGRA) and raises ``SinkError`` otherwise.

Transparent backgrounds (BGRA output) are flattened for these sinks, which carry no alpha:
over chroma green (0, 177, 64) by default, so OBS's chroma-key filter can restore the
transparency, or over black (``flatten="black"``).  The window flattens over a checkerboard.

The virtual camera and the stream run a sender thread fed through a one-slot mailbox, so a
slow consumer never delays the pipeline, and the sender re-sends the last picture when the
pipeline stalls: apps reading the virtual camera (Zoom, a browser, OBS) never see it freeze
or vanish, and stream receivers never time out.

Example::

    with VirtualCameraSink((1280, 720), 30) as vcam:
        vcam.send(frame, captured_at)
"""

from __future__ import annotations

import sys
import threading
import time
from fractions import Fraction
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import numpy as np

from livematte.errors import SinkError
from livematte.frame import Frame
from livematte.io.base import LatestSlot, SinkBase
from livematte.io.sinks import GREEN, output_image
from livematte.ops.compose import flatten, resize_image

if TYPE_CHECKING:  # the backends load when a sink opens
    import pyvirtualcam
    from av.container import OutputContainer
    from av.video.stream import VideoStream

_FLATTEN_COLOURS = {"green": GREEN, "black": (0, 0, 0)}


class ThreadedSink(SinkBase):
    """A sink whose delivery runs in a sender thread fed by a one-slot mailbox.

    While no new picture arrives for ``stall_after`` s (default 0.25), the last one is re-sent
    every ``1/fps`` s (counted in ``repeated``).  An error in the thread is raised by the next
    ``send``.
    """

    def __init__(
        self,
        size: tuple[int, int],
        fps: float,
        *,
        flatten: str = "green",
        stall_after: float | None = None,
    ) -> None:
        super().__init__()
        if flatten not in _FLATTEN_COLOURS:
            raise SinkError(f"flatten must be one of {', '.join(_FLATTEN_COLOURS)}")
        self.size = (int(size[0]), int(size[1]))
        self.fps = float(fps) if fps and fps > 0 else 30.0
        # A pipeline that is merely slower than the camera (say 15 fps) is not a stall: the
        # picture moves and re-sending would only steal CPU from it.  A quarter second without
        # a picture is a visible freeze, so that is when re-sending starts.
        self.stall_after = stall_after if stall_after is not None else max(0.25, 2.0 / self.fps)
        self._under = _FLATTEN_COLOURS[flatten]
        self._slot: LatestSlot[tuple[np.ndarray, float | None]] = LatestSlot()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.repeated_since_new = 0

    def _deliver(self, image: np.ndarray) -> None:
        raise NotImplementedError

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"sink:{self.name}", daemon=True)
        self._thread.start()

    def send(self, frame: Frame, captured_at: float | None = None) -> None:
        if self._error is not None:
            raise SinkError(f"{self.name}: {self._error}") from self._error
        if self._thread is None:
            raise SinkError(f"{self.name} is not open")
        self._slot.put((output_image(frame), captured_at))

    def _prepare(self, image: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(resize_image(flatten(image, self._under), self.size))

    def _run(self) -> None:
        last: np.ndarray | None = None
        interval = 1.0 / self.fps
        try:
            while not self._stop.is_set():
                wait = self.stall_after if self.repeated_since_new == 0 else interval
                item = self._slot.take(wait if last is not None else 0.2)
                if self._stop.is_set():
                    break
                if item is None:
                    if last is not None:  # the pipeline stalls: keep the consumer fed
                        self._deliver(last)
                        self.repeated += 1
                        self.repeated_since_new += 1
                    continue
                last = self._prepare(item[0])
                self._deliver(last)
                self.repeated_since_new = 0
                self._record(item[1])
        except BaseException as exc:  # surfaced by the next send(); the thread must not die mute
            self._error = exc

    def _join(self, timeout: float = 3.0) -> None:
        self._stop.set()
        self._slot.close()
        if self._thread is not None:
            self._thread.join(timeout)


# --- virtual camera ---------------------------------------------------------------------------


def no_vcam_message(detail: str, platform: str | None = None) -> str:
    """One line telling the user what to install for a virtual camera on their platform."""
    platform = platform or sys.platform
    if platform.startswith("linux"):
        fix = (
            "install v4l2loopback (e.g. sudo apt install v4l2loopback-dkms) and load it: "
            "sudo modprobe v4l2loopback devices=1 exclusive_caps=1"
        )
    elif platform == "darwin":
        fix = (
            "install OBS Studio (30 or newer), click 'Start Virtual Camera' once and allow "
            "its system extension"
        )
    elif platform.startswith("win"):
        fix = "install OBS Studio (26 or newer) and click 'Start Virtual Camera' once"
    else:
        fix = "pyvirtualcam has no virtual-camera backend for this platform"
    detail = "; ".join(line.strip() for line in detail.splitlines() if line.strip())
    tried = f" (tried: {detail})" if detail else ""
    return f"no virtual camera available{tried}; {fix}; or run with --no-vcam"


class VirtualCameraSink(ThreadedSink):
    """A virtual camera through pyvirtualcam (``PixelFormat.BGR``, the source's size and fps).

    Args:
        size, fps: of the virtual camera (pictures of another size are resized).
        device: e.g. "/dev/video10" or "OBS Virtual Camera" (None = first available).
        backend: a pyvirtualcam backend name (None = try every registered one in order).
        flatten: "green" or "black": what shows through a transparent background.

    Raises (from ``open``):
        SinkError: no usable backend, with what to install on this platform.
    """

    name = "virtual camera"

    def __init__(
        self,
        size: tuple[int, int],
        fps: float,
        *,
        device: str | None = None,
        backend: str | None = None,
        flatten: str = "green",
        stall_after: float | None = None,
    ) -> None:
        super().__init__(size, fps, flatten=flatten, stall_after=stall_after)
        self.device = device
        self.backend = backend
        self._camera: pyvirtualcam.Camera | None = None

    def open(self) -> None:
        try:
            import pyvirtualcam
        except ImportError as exc:
            message = f"pyvirtualcam is not installed ({exc}); pip install pyvirtualcam"
            raise SinkError(message) from None
        if self.backend is not None and self.backend not in pyvirtualcam.camera.BACKENDS:
            known = ", ".join(pyvirtualcam.camera.BACKENDS) or "none"
            raise SinkError(f"unknown virtual-camera backend {self.backend!r}; known: {known}")
        try:
            self._camera = pyvirtualcam.Camera(
                self.size[0],
                self.size[1],
                self.fps,
                fmt=pyvirtualcam.PixelFormat.BGR,
                device=self.device,
                backend=self.backend,
            )
        except Exception as exc:  # pyvirtualcam raises RuntimeError listing each backend
            raise SinkError(no_vcam_message(str(exc))) from None
        self.name = f"virtual camera {self._camera.device} ({self._camera.backend})"
        self._start()

    def _deliver(self, image: np.ndarray) -> None:
        self._camera.send(image)

    def close(self) -> None:
        self._join()
        if self._camera is not None:
            self._camera.close()
            self._camera = None


# --- network stream -------------------------------------------------------------------------

#: URL scheme -> FFmpeg muxer.
_STREAM_FORMATS = {
    "udp": "mpegts",
    "srt": "mpegts",
    "tcp": "mpegts",
    "rtp": "rtp_mpegts",
    "rtmp": "flv",
    "rtmps": "flv",
    "rtsp": "rtsp",
}


def stream_format(url: str) -> str:
    """The muxer for a stream URL (or for a file, by its extension: ``.ts``, ``.flv``...)."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in _STREAM_FORMATS:
        return _STREAM_FORMATS[scheme]
    if len(scheme) > 1:  # not a Windows drive letter
        raise SinkError(
            f"unsupported stream URL {url!r}; use one of "
            + ", ".join(f"{s}://" for s in _STREAM_FORMATS)
        )
    return {".flv": "flv", ".mkv": "matroska", ".mp4": "mp4"}.get(
        url[url.rfind(".") :].lower(), "mpegts"
    )


class StreamSink(ThreadedSink):
    """H.264 over the network through PyAV: MPEG-TS for udp:// srt:// tcp://, FLV for rtmp://.

    The encoder is tuned for latency (``tune=zerolatency``: no B-frames, no look-ahead, one
    frame in, one packet out) with a key frame every second so a receiver joining late gets a
    picture fast.  Timestamps follow the wall clock (ms), so a stall shows as a stall rather
    than as fast-forward.  Re-sends start after 0.5 s without frames.

    Args:
        url: e.g. ``udp://127.0.0.1:5000`` (``pkt_size=1316`` added: 7 TS packets per datagram).
        size, fps: of the stream.  ``bitrate``: e.g. "4M".  ``preset``: x264 speed preset.

    Raises (from ``open``):
        SinkError: bad URL, protocol missing from PyAV's FFmpeg, no H.264 encoder.
    """

    def __init__(
        self,
        url: str,
        size: tuple[int, int],
        fps: float,
        *,
        bitrate: str = "4M",
        preset: str = "ultrafast",
        codec: str = "libx264",
        flatten: str = "green",
        stall_after: float = 0.5,
    ) -> None:
        super().__init__(size, fps, flatten=flatten, stall_after=stall_after)
        self.url = url
        self.bitrate = bitrate
        self.preset = preset
        self.codec = codec
        self.name = f"stream {url}"
        self._container: OutputContainer | None = None
        self._stream: VideoStream | None = None
        self._t0 = 0.0
        self._last_pts = -1

    def open(self) -> None:
        import av

        fmt = stream_format(self.url)
        url = self.url
        if url.startswith("udp://") and "pkt_size" not in url:
            url += ("&" if "?" in url else "?") + "pkt_size=1316"
        if self.size[0] % 2 or self.size[1] % 2:
            raise SinkError(f"stream size must be even for H.264 4:2:0, got {self.size}")
        try:
            self._container = av.open(url, "w", format=fmt, timeout=5.0)
        except Exception as exc:
            text = getattr(exc, "strerror", None) or str(exc)
            raise SinkError(f"cannot open stream {self.url}: {text}") from None
        try:
            rate = Fraction(self.fps).limit_denominator(1001)
            gop = str(max(1, round(self.fps)))
            stream = self._container.add_stream(
                self.codec,
                rate=rate,
                options={"preset": self.preset, "tune": "zerolatency", "g": gop, "bf": "0"},
            )
        except Exception as exc:
            self._container.close()
            raise SinkError(f"no {self.codec} encoder in PyAV's FFmpeg ({exc})") from None
        stream.width, stream.height = self.size
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = _parse_bitrate(self.bitrate)
        stream.codec_context.time_base = Fraction(1, 1000)
        try:
            # Opens the connection/file and writes the header now, so a bad URL fails here,
            # before the camera starts, rather than in the sender thread.
            self._container.start_encoding()
        except Exception as exc:
            self._container.close()
            self._container = None
            text = getattr(exc, "strerror", None) or str(exc)
            if "protocol not found" in text.lower():
                scheme = urlsplit(self.url).scheme
                text = (
                    f"PyAV's FFmpeg was built without the {scheme} protocol; "
                    "use udp:// or rtmp://, or a PyAV built against a fuller FFmpeg"
                )
            raise SinkError(f"cannot open stream {self.url}: {text}") from None
        self._stream = stream
        self._t0 = time.monotonic()
        self._start()

    def _deliver(self, image: np.ndarray) -> None:
        import av

        picture = av.VideoFrame.from_ndarray(image, format="bgr24")
        # Wall-clock timestamps, strictly increasing (the muxer refuses equal ones).
        pts = max(self._last_pts + 1, round((time.monotonic() - self._t0) * 1000.0))
        self._last_pts = pts
        picture.pts, picture.time_base = pts, Fraction(1, 1000)
        for packet in self._stream.encode(picture):
            self._container.mux(packet)

    def close(self) -> None:
        self._join()
        if self._container is None:
            return
        try:
            if self._thread is None or not self._thread.is_alive():
                for packet in self._stream.encode():  # flush: the receiver gets every frame
                    self._container.mux(packet)
        except Exception:  # a gone receiver or closed socket must not mask the real exit
            pass
        finally:
            self._container.close()
            self._container = None


def _parse_bitrate(text: str) -> int:
    """ "4M" -> 4_000_000, "800k" -> 800_000."""
    text = str(text).strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    try:
        return int(float(text.rstrip("km")) * scale)
    except ValueError:
        raise SinkError(f"bad bitrate {text!r}; e.g. 4M or 800k") from None
