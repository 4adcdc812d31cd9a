"""The I/O contracts: what a Source and a Sink are, and the one-slot mailbox both sides use.

A **Source** (files, image sequences, synthetic clips, cameras, network streams) is opened,
iterated and closed; ``items(stop)`` yields :class:`~livematte.frame.Frame` objects, and for
video files also the packets of the streams a sink carries over (audio, subtitles), in file
order.  A source never decides what gets dropped: the runner does (``livematte.runner``:
the ordered scheduler keeps every item, the latest-frame scheduler only the newest frame).

A **Sink** (window, virtual camera, network stream, video file, image, PNG sequence, memory,
null; the table by name is :mod:`livematte.io.table`) is opened, sent frames and closed;
leaving its ``with`` block with an error calls ``abort`` instead of ``close`` (file sinks then
keep the part done on Ctrl-C, remove it otherwise).  Sinks that show something to a person
(the window) also hand back the user's actions (``poll``) and stay alive while no frame comes
(``idle``).

Both are context managers: ``with source, sink: ...``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Generic, Protocol, TypeAlias, TypeVar, runtime_checkable

from livematte.frame import Frame

if TYPE_CHECKING:  # PyAV loads only when a video is opened
    from av.packet import Packet
    from av.stream import Stream

#: What a source yields: a decoded frame, or a packet of a stream carried over as-is.
Item: TypeAlias = "Frame | Packet"

T = TypeVar("T")


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


# --- sources ---------------------------------------------------------------------------------


@runtime_checkable
class Source(Protocol):
    """Where frames come from.

    Attributes:
        name: for messages (a path, ``camera 0``, a URL).
        rate: nominal frame rate (None when the source does not say).
        frame_count: frames expected, or None when unknown (live sources).
        skipped: corrupt frames or packets left out so far.
        status: ``live``, ``stalled`` or ``reconnecting`` (devices; files are always live).
        reconnects, last_error: devices that came back after failing, and why they failed.
    """

    name: str
    rate: Fraction | None
    frame_count: int | None
    skipped: int
    status: str
    reconnects: int
    last_error: str

    def open(self) -> None:
        """Acquire the file or device; raise ``SourceError`` (one line) when it cannot."""

    def items(self, stop: threading.Event | None = None) -> Iterator[Item]:
        """Frames (and passthrough packets), in order, until the end or until ``stop`` is set."""

    def close(self) -> None:
        """Release the file or device; safe to call twice."""

    def __enter__(self) -> Source:
        """``open()``, then the source itself."""

    def __exit__(self, *exc: object) -> None:
        """``close()``."""


class SourceBase:
    """Defaults every source shares; subclasses implement ``items`` (and ``open``/``close``
    when they hold something).

    Attributes (besides the :class:`Source` ones):
        frame_count_estimated: ``frame_count`` comes from a duration, not a count.
        ended_early: after iterating, what the input lacks when it stopped before its own
            declared end (truncated or damaged), e.g. ``"23 of 50 frames (0.92 of 2.00 s)"``.
        passthrough_streams: PyAV streams whose packets ``items()`` yields besides frames.
    """

    name: str = "source"
    rate: Fraction | None = None
    frame_count: int | None = None
    frame_count_estimated: bool = False
    skipped: int = 0
    status: str = "live"
    ended_early: str | None = None
    passthrough_streams: Sequence[Stream] = ()
    reconnects: int = 0
    last_error: str = ""

    def open(self) -> None:
        """Files open in the constructor (so a bad path fails at once); nothing to do."""

    def items(self, stop: threading.Event | None = None) -> Iterator[Item]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Frame]:
        for item in self.items():
            if isinstance(item, Frame):
                yield item

    def close(self) -> None:
        """Nothing held by default."""

    def __enter__(self) -> SourceBase:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- sinks -----------------------------------------------------------------------------------


@runtime_checkable
class Sink(Protocol):
    """Where frames go.

    Attributes:
        name: for messages.
        frames: frames delivered (written, shown, sent; keep-alive repeats excluded).
        repeated: keep-alive re-sends of the last picture while the pipeline stalled.
        latencies: (monotonic delivery time, capture-to-delivery ms) per frame sent with a
            capture time.
        poll_interval: longest the live runner may wait for a frame between ``poll``/``idle``.
        takes_input: the sink reads the user's keys, so the live runner calls ``pump`` every
            ``poll_interval`` while a frame is processed too.
    """

    name: str
    frames: int
    repeated: int
    latencies: list[tuple[float, float]]
    poll_interval: float
    takes_input: bool

    def open(self) -> None:
        """Acquire the device or check the target; raise ``SinkError`` when it cannot."""

    def send(self, frame: Frame, captured_at: float | None = None) -> None:
        """Deliver one frame (``captured_at``: monotonic capture time, for latency)."""

    def send_packet(self, packet: Packet) -> None:
        """Carry a packet of a passthrough stream (audio, subtitles)."""

    def poll(self) -> list[str]:
        """The user's actions since the last call (hotkeys)."""

    def idle(self, status: str = "") -> None:
        """Called while no new frame arrives (``status`` says why)."""

    def pump(self) -> None:
        """Take in the user's input without drawing."""

    def close(self) -> None:
        """Finish successfully: flush, move the result into place, release the device."""

    def abort(self, keep_partial: bool) -> None:
        """Stop early: keep a playable partial result (Ctrl-C) or remove it (errors)."""

    def __enter__(self) -> Sink:
        """``open()``, then the sink itself."""

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        """``close()`` on success, ``abort(keep_partial=<Ctrl-C>)`` on an error."""


class SinkBase:
    """Defaults every sink shares: a context manager (``open`` on enter; ``close`` on success,
    ``abort`` on an error) that counts what it delivers and the capture-to-delivery latency."""

    name = "sink"
    poll_interval = 0.1
    takes_input = False

    def __init__(self) -> None:
        self.frames = 0
        self.repeated = 0
        self.latencies: list[tuple[float, float]] = []

    def open(self) -> None:
        """Nothing to acquire by default."""

    def send(self, frame: Frame, captured_at: float | None = None) -> None:
        raise NotImplementedError

    def send_packet(self, packet: Packet) -> None:
        """Packets are dropped unless the sink carries other streams (video files)."""

    def poll(self) -> list[str]:
        return []

    def idle(self, status: str = "") -> None:
        """Nothing to keep alive by default."""

    def pump(self) -> None:
        """No input by default."""

    def close(self) -> None:
        """Nothing to finish by default."""

    def abort(self, keep_partial: bool) -> None:
        """Devices have no partial result: release them as ``close`` does."""
        self.close()

    def _record(self, captured_at: float | None = None) -> None:
        self.frames += 1
        if captured_at is not None:
            now = time.monotonic()
            self.latencies.append((now, (now - captured_at) * 1000.0))

    def __enter__(self) -> SinkBase:
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort(keep_partial=issubclass(exc_type, KeyboardInterrupt))
