"""Video files through PyAV: encoder settings per format, and copying or re-encoding the
source's audio, subtitle and data streams.  The formats and the temporary-name / partial-file
rules every sink follows are described in :mod:`livematte.io.sinks`.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from livematte.atomic import make_temporary, publish
from livematte.errors import SinkError, stderr_notice
from livematte.frame import Frame
from livematte.io.silence import silence_packets
from livematte.io.sinks import (
    CONTAINERS,
    QUALITIES,
    FileSink,
    Notice,
    _check_folder,
    frame_pixels,
    resolve_format,
)

if TYPE_CHECKING:
    from av.audio.stream import AudioStream
    from av.container import OutputContainer
    from av.packet import Packet
    from av.stream import Stream
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream

_CRF = {
    "libx264": {"low": 28, "medium": 23, "high": 18, "max": 12},
    "libx265": {"low": 30, "medium": 26, "high": 22, "max": 16},
    "libvpx-vp9": {"low": 40, "medium": 34, "high": 28, "max": 20},
}
_VP9_CPU_USED = {"low": 8, "medium": 6, "high": 4, "max": 2}
#: Codecs each muxer takes as-is (stream copy); matroska takes any audio (None).
_COPYABLE: dict[str, dict[str, frozenset[str] | None]] = {
    "mp4": {
        "audio": frozenset({"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"}),
        "subtitle": frozenset({"mov_text"}),
    },
    "mov": {
        "audio": frozenset(
            {"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s24le", "pcm_s16be",
             "pcm_s24be", "pcm_f32le"}
        ),
        "subtitle": frozenset({"mov_text"}),
    },
    "matroska": {
        "audio": None,
        "subtitle": frozenset({"subrip", "ass", "ssa", "webvtt", "hdmv_pgs_subtitle",
                               "dvd_subtitle", "dvb_subtitle"}),
    },
    "webm": {"audio": frozenset({"opus", "vorbis"}), "subtitle": frozenset({"webvtt"})},
}  # fmt: skip
_REENCODE_AUDIO = {"mp4": "aac", "mov": "aac", "matroska": "libopus", "webm": "libopus"}
#: Packets further ahead of the video than this are not interleaving slack: FFmpeg's own
#: interleaving limit (max_interleave_delta) is 10 s, so nothing is held longer.
_HOLD_LIMIT_S = 10.0


def _wrap(pixels: np.ndarray, layout: str) -> VideoFrame:
    """A PyAV frame on ``pixels`` (C-contiguous) for the conversion to the codec's format.

    Wrapped without a copy when the rows are 16-byte aligned (what swscale's vector paths
    want), else copied into an aligned frame: ``from_ndarray`` copies the picture twice
    while holding the GIL the processing thread needs (0.2 ms per 720p frame).  The frame
    lives only until its conversion, so the array is not written meanwhile.
    """
    import av

    if pixels.ctypes.data % 16 == 0 and pixels.strides[0] % 16 == 0:
        return av.VideoFrame.from_numpy_buffer(pixels, format=layout)
    return av.VideoFrame.from_ndarray(pixels, format=layout)


class VideoFileSink(FileSink):
    """Encode frames into a video file with PyAV; copy or re-encode the source's other streams.

    The container opens on the first frame (its size and time base come from it).  Output
    timestamps are the frames' own ``pts``/``time_base``.  Audio packets are copied when the
    container takes their codec, else decoded and re-encoded (AAC for mp4/mov, Opus for
    webm/mkv); subtitles are copied when possible; anything else is skipped with a notice.
    Packets that start after the last frame written are held until the video reaches them,
    so with ``end_with_video`` set (the input ended early) the ones past the video's end are
    dropped on close, and audio that stops short is padded with silence, so both end together.

    Raises:
        SinkError: bad extension/format, missing/unwritable folder, wrong frame size/dtype,
            encoder or muxer failure.
    """

    def __init__(
        self,
        path: str | Path,
        fmt: str = "composite",
        *,
        quality: str | int = "high",
        codec: str | None = None,
        preset: str = "veryfast",
        passthrough: Sequence[Stream] = (),
        rate: Fraction | None = None,
        notice: Notice = stderr_notice,
    ):
        super().__init__()
        self.name = str(path)
        self.path = Path(path)
        self.fmt = resolve_format(self.path, fmt)
        if isinstance(quality, str) and quality not in QUALITIES:
            raise SinkError(f"unknown quality {quality!r}; use one of {', '.join(QUALITIES)}")
        self.quality, self.preset, self.rate, self.notice = quality, preset, rate, notice
        self.muxer = CONTAINERS[self.path.suffix.lower()]
        self.codec, self.pix_fmt, self.options = self._codec_settings(codec)
        self.passthrough = list(passthrough)
        _check_folder(self.path.parent if str(self.path.parent) else Path("."))
        self._tmp = make_temporary(self.path, "tmp")
        self._container: OutputContainer | None = None
        self._video: VideoStream | None = None
        self._size: tuple[int, int] | None = None
        self._pad = (0, 0)
        self._pending: list[Packet] = []
        self._copy: dict[int, Stream] = {}  # source stream index -> output stream
        self._recode: dict[int, tuple[AudioStream, AudioStream]] = {}  # index -> (source, output)
        self._flattened = False
        self.end_with_video = False
        self._held: deque[tuple[float, Packet]] = deque()  # (start s, packet) ahead of the video
        self._video_end = 0.0  # seconds: the end of the last frame written
        self._last_time: float | None = None
        self._audio_ends: dict[int, float] = {}  # output stream index -> seconds

    def _codec_settings(self, codec: str | None) -> tuple[str, str, dict[str, str]]:
        level = self.quality if isinstance(self.quality, str) else None
        if self.fmt == "prores4444":
            profile = "4444xq" if level == "max" else "4444"
            return "prores_ks", "yuva444p10le", {"profile": profile, "vendor": "apl0"}
        if self.fmt == "webm-alpha" or self.path.suffix.lower() == ".webm":
            name = "libvpx-vp9"
            pix = "yuva420p" if self.fmt == "webm-alpha" else "yuv420p"
            crf = _CRF[name][level] if level else int(self.quality)
            cpu = _VP9_CPU_USED[level or "high"]
            opts = {"crf": str(crf), "b": "0", "row-mt": "1", "cpu-used": str(cpu)}
            return name, pix, opts
        choice = (codec or "h264").lower()
        if choice in ("h265", "hevc", "libx265", "x265"):
            name = "libx265"
            opts = {"preset": self.preset, "x265-params": "log-level=error"}
        elif choice in ("h264", "avc", "libx264", "x264"):
            name, opts = "libx264", {"preset": self.preset}
        else:
            raise SinkError(f"unknown video codec {codec!r}; use h264 or h265")
        opts["crf"] = str(_CRF[name][level] if level else int(self.quality))
        return name, "yuv420p", opts

    # -- opening ---------------------------------------------------------------------------

    def _open(self, frame: Frame, pixels: np.ndarray) -> None:
        import av

        h, w = pixels.shape[:2]
        if self.pix_fmt.endswith(("420p", "420p10le")) and (w % 2 or h % 2):
            # 4:2:0 needs even sizes; repeat the last row/column rather than refuse the input.
            self._pad = (h % 2, w % 2)
            self.notice(f"{w}x{h} is odd-sized; padded to {w + w % 2}x{h + h % 2} for 4:2:0")
        self._size = (w, h)
        time_base = frame.time_base or (1 / (self.rate or Fraction(25)))
        try:
            self._container = av.open(str(self._tmp), "w", format=self.muxer)
            stream = self._container.add_stream(
                self.codec, rate=self.rate or Fraction(25), options=self.options
            )
            stream.width, stream.height = w + self._pad[1], h + self._pad[0]
            stream.pix_fmt = self.pix_fmt
            stream.time_base = time_base
            stream.codec_context.time_base = time_base
            # Tag what we convert with (BT.709, limited range) so players decode it the same way.
            ctx = stream.codec_context
            ctx.colorspace, ctx.color_range, ctx.color_primaries, ctx.color_trc = 1, 1, 1, 1
            if self.codec == "libx265" and self.muxer in ("mp4", "mov"):
                ctx.codec_tag = "hvc1"  # Apple players only accept HEVC tagged hvc1
        except av.error.FFmpegError as exc:
            raise SinkError(f"cannot create {self.path}: {exc.strerror or exc}") from None
        self._video = stream
        for source_stream in self.passthrough:
            self._add_passthrough(source_stream)
        pending, self._pending = self._pending, []
        for packet in pending:
            self.send_packet(packet)

    def _add_passthrough(self, source: Stream) -> None:
        # The codec's canonical name: a decoder may go by another ("srt" decodes subrip).
        name = source.codec_context.codec.canonical_name if source.codec_context else "unknown"
        label = f"{source.type} stream #{source.index} ({name})"
        allowed = _COPYABLE[self.muxer].get(source.type, frozenset())
        if source.type in ("audio", "subtitle") and (allowed is None or name in allowed):
            try:
                self._copy[source.index] = self._container.add_stream_from_template(source)
                return
            except Exception as exc:  # noqa: BLE001 - fall through to re-encode or skip
                self.notice(f"{label}: cannot copy ({exc}); trying to re-encode")
        if source.type == "audio":
            encoder = _REENCODE_AUDIO[self.muxer]
            out = self._container.add_stream(encoder, rate=48000 if "opus" in encoder else
                                             source.codec_context.sample_rate)  # fmt: skip
            layout = source.codec_context.layout
            out.layout = layout if layout.nb_channels <= 2 or encoder == "aac" else "stereo"
            out.bit_rate = 192_000
            self._recode[source.index] = (source, out)
            self.notice(f"{label} re-encoded to {encoder.removeprefix('lib')} for {self.muxer}")
            return
        self.notice(f"{label} skipped: {self.path.suffix} cannot carry it")

    # -- writing ---------------------------------------------------------------------------

    def _mux(self, packets: Iterable[Packet]) -> None:
        import av

        try:
            for packet in packets:
                if packet.stream.type == "audio" and packet.pts is not None:
                    end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                    index = packet.stream.index
                    self._audio_ends[index] = max(self._audio_ends.get(index, 0.0), end)
                self._container.mux(packet)
        except av.error.FFmpegError as exc:
            raise SinkError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def send(self, frame: Frame, captured_at: float | None = None) -> None:
        import av

        pixels = frame_pixels(frame, self.fmt)
        flattened = frame.output is not None and pixels is not frame.output
        if self.fmt == "composite" and flattened and not self._flattened:
            self._flattened = True
            self.notice(
                "the background is transparent; composite flattened over black "
                "(use --format prores4444, webm-alpha or png-seq to keep alpha)"
            )
        if self._container is None:
            self._open(frame, pixels)
        if (pixels.shape[1], pixels.shape[0]) != self._size:
            raise SinkError(
                f"frame {frame.index} is {pixels.shape[1]}x{pixels.shape[0]} but the video is "
                f"{self._size[0]}x{self._size[1]}"
            )
        if any(self._pad):
            pad_h, pad_w = self._pad
            pixels = cv2.copyMakeBorder(pixels, 0, pad_h, 0, pad_w, cv2.BORDER_REPLICATE)
        layout = {2: "gray", 3: "bgr24", 4: "bgra"}[pixels.ndim if pixels.ndim == 2 else
                                                   pixels.shape[2]]  # fmt: skip
        # One swscale thread: with PyAV's default (0, "automatic") every frame's converter
        # starts and stops its own pool of one thread per core, which cost 0.6-1.1 ms more CPU
        # per 720p frame than converting on this thread (same pixels).
        vframe = _wrap(np.ascontiguousarray(pixels), layout).reformat(
            format=self.pix_fmt, dst_colorspace="ITU709", dst_color_range="MPEG", threads=1
        )
        time_base = self._video.codec_context.time_base
        if frame.pts is not None and frame.time_base is not None:
            seconds = frame.pts * frame.time_base
        else:
            seconds = frame.index / (self.rate or Fraction(25))
        vframe.pts = round(seconds / time_base)
        vframe.time_base = time_base
        try:
            self._mux(self._video.encode(vframe))
        except av.error.FFmpegError as exc:
            raise SinkError(f"encoding {self.path} failed: {exc.strerror or exc}") from None
        self._record(captured_at)
        step = float(seconds) - self._last_time if self._last_time is not None else 0.0
        self._last_time = float(seconds)
        self._video_end = float(seconds) + (step or 1 / float(self.rate or 25))
        self._release()

    def send_packet(self, packet: Packet) -> None:
        if self._container is None:
            self._pending.append(packet)
            return
        start = float(packet.pts * packet.time_base) if packet.pts is not None else 0.0
        if self._held or start >= self._video_end:
            self._held.append((start, packet))  # file order is kept: all wait behind the first
            self._release()
        else:
            self._dispatch(packet)

    def _release(self) -> None:
        held = self._held
        while held and (held[0][0] < self._video_end
                        or held[-1][0] - self._video_end > _HOLD_LIMIT_S):  # fmt: skip
            self._dispatch(held.popleft()[1])

    def _dispatch(self, packet: Packet) -> None:
        index = packet.stream.index
        if index in self._copy:
            packet.stream = self._copy[index]
            self._mux([packet])
        elif index in self._recode:
            self._recode_packet(index, packet)

    def _recode_packet(self, index: int, packet: Packet) -> None:
        import av

        source, out = self._recode[index]
        try:
            decoded = source.decode(packet)
        except av.error.FFmpegError:
            return  # a corrupt audio packet costs a few ms of sound, not the file
        for aframe in decoded:
            self._mux(out.encode(aframe))

    # -- finishing -------------------------------------------------------------------------

    def _end_with_video(self) -> None:
        """Drop held packets (all start at or after the video's end); say how much went."""
        ends = [
            start + float((packet.duration or 0) * packet.time_base)
            for start, packet in self._held
            if packet.stream.type == "audio"
        ]
        self._held.clear()
        if ends:
            self.notice(f"audio cut by {max(ends) - self._video_end:.2f} s to end with the video")

    def _flush(self, pad: bool = False) -> None:
        import av

        for source, out in self._recode.values():
            try:
                for aframe in source.decode(None):
                    self._mux(out.encode(aframe))
            except av.error.FFmpegError:
                pass
            self._mux(out.encode(None))
        for out in [*self._copy.values(), *(o for _, o in self._recode.values())]:
            end = self._audio_ends.get(out.index)
            if pad and out.type == "audio" and end is not None:
                self._pad_silence(out, end)
        self._mux(self._video.encode(None))
        try:
            self._container.close()
        except av.error.FFmpegError as exc:
            raise SinkError(f"cannot finish {self.path}: {exc.strerror or exc}") from None
        self._container = None

    def _pad_silence(self, out: AudioStream, end: float) -> None:
        """Silence from ``end`` to the video's end in audio stream ``out`` (copied or
        re-encoded), made by an encoder of the same codec whose setup matches the stream's."""
        ctx = out.codec_context
        gap = self._video_end - end
        try:
            packets = silence_packets(ctx, gap)
        except Exception as exc:  # noqa: BLE001 - no matching encoder: say so, keep the file
            self.notice(f"audio stream #{out.index} ends {gap:.2f} s before the video; "
                        f"not padded ({exc})")  # fmt: skip
            return
        if not packets:
            return
        rate = ctx.sample_rate
        position = round(end * rate)
        for packet in packets:
            packet.time_base = Fraction(1, rate)
            packet.pts = packet.dts = position
            position += packet.duration
            packet.stream = out
        self._mux(packets)
        self.notice(f"audio padded with {gap:.2f} s of silence to end with the video")

    def close(self) -> None:
        if self._container is None:
            self._tmp.unlink(missing_ok=True)
            raise SinkError(f"no frames to write to {self.path} (empty input or trim range)")
        try:
            if self.end_with_video:
                self._end_with_video()
            while self._held:
                self._dispatch(self._held.popleft()[1])
            self._flush(pad=self.end_with_video)
            publish(self._tmp, self.path)
        except OSError as exc:
            self._tmp.unlink(missing_ok=True)
            if isinstance(exc, SinkError):
                raise
            raise SinkError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def abort(self, keep_partial: bool) -> None:
        if self._container is not None:
            try:
                self._flush()  # flushed and closed: the part done plays
            except Exception:  # noqa: BLE001 - already failing; keep the original error
                keep_partial = False
                with contextlib.suppress(Exception):
                    self._container.close()
        if keep_partial and self.frames:
            self.partial_path = self.path.with_name(f"{self.path.stem}.partial{self.path.suffix}")
            publish(self._tmp, self.partial_path)
        else:
            self._tmp.unlink(missing_ok=True)
