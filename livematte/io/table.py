"""Every sink by name, the way pyvirtualcam keeps its backends: one table, one lookup.

=========  ==========================================================  =====================
name       what                                                        made from
=========  ==========================================================  =====================
window     preview window with hotkeys (main thread)                   ``title``
vcam       virtual camera (v4l2loopback, OBS Virtual Camera)           ``size, fps``
stream     H.264 network stream (udp://, rtmp://, srt://)              ``url, size, fps``
video      video file (H.264/H.265, ProRes 4444, VP9 alpha)            ``path, fmt``
png-seq    a folder of PNG frames + timestamps.txt                     ``folder``
image      one image file                                              ``path``
memory     keeps what it is sent (tests, the API)                      ``fmt``
null       discards after the same checks (benchmarks, dry runs)       ``fmt``
=========  ==========================================================  =====================

``make_sink(name, ...)`` makes one (options as the class takes them); ``open_sink(path, fmt)``
picks the file sink for an output path and format (``video`` or ``png-seq``).  Classes import
their heavy backends (PyAV, pyvirtualcam, highgui windows) only when opened.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from livematte.errors import SinkError, stderr_notice
from livematte.io.base import SinkBase
from livematte.io.live_sinks import StreamSink, VirtualCameraSink
from livematte.io.sinks import (
    FileSink,
    ImageSink,
    MemorySink,
    Notice,
    NullSink,
    PngSequenceSink,
    resolve_format,
)
from livematte.io.video_sink import VideoFileSink
from livematte.io.window import WindowSink

if TYPE_CHECKING:
    from av.stream import Stream

SINKS: dict[str, type[SinkBase]] = {
    "window": WindowSink,
    "vcam": VirtualCameraSink,
    "stream": StreamSink,
    "video": VideoFileSink,
    "png-seq": PngSequenceSink,
    "image": ImageSink,
    "memory": MemorySink,
    "null": NullSink,
}


def make_sink(name: str, *args: object, **options: object) -> SinkBase:
    """The sink called ``name`` in :data:`SINKS`, made with ``args``/``options`` (not opened).

    Raises:
        SinkError: no sink of that name (the message lists them), or bad options.
    """
    try:
        kind = SINKS[name]
    except KeyError:
        raise SinkError(f"unknown sink {name!r}; use one of {', '.join(SINKS)}") from None
    return kind(*args, **options)


def open_sink(
    path: str | Path,
    fmt: str = "auto",
    *,
    quality: str | int = "high",
    codec: str | None = None,
    preset: str = "veryfast",
    passthrough: Sequence[Stream] = (),
    rate: Fraction | None = None,
    notice: Notice | None = None,
) -> FileSink:
    """The file sink for ``path`` and ``fmt`` (see :func:`~livematte.io.sinks.resolve_format`):
    ``png-seq`` for a folder of PNGs, else ``video``.

    Args:
        quality: low | medium | high | max, or a CRF number for x264/x265/VP9.
        codec: "h264" (default for composite and the passes), "h265"/"hevc"; ignored by the
            alpha formats, which fix their codec.
        preset: x264/x265 speed preset.
        passthrough: source streams (audio, subtitles, data) to copy or re-encode.
        rate: nominal frame rate (encoder rate control; timestamps still come from frames).
        notice: called with one-line notices (audio re-encoded, stream skipped, ...).

    Raises:
        SinkError: unknown format, bad extension, missing/unwritable folder.
    """
    fmt = resolve_format(path, fmt)
    if fmt == "png-seq":
        return PngSequenceSink(path, fmt)
    return VideoFileSink(
        path, fmt, quality=quality, codec=codec, preset=preset, passthrough=passthrough,
        rate=rate, notice=notice or stderr_notice,
    )  # fmt: skip
