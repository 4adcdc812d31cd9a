"""Subtitle and data streams through ``transcode``: copied when the output container takes the
codec (same codec, packets, timestamps and text), else skipped with a notice and a valid file.

The inputs are built here with PyAV: a plain clip from ``write_clip``, remuxed with a subtitle
stream of hand-made packets (``add_mux_stream``) or a data stream (KLV in MPEG-TS, a QuickTime
``tmcd`` timecode track).
"""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from livematte.frame import Frame
from livematte.io.synthetic import write_clip
from livematte.video import transcode

FRAMES = 25  # one second at 25 fps
TEXTS = ["Hello", "wörld", "third line"]
MS = Fraction(1, 1000)


def fill_matte(frame: Frame) -> Frame:
    """A small real processing step: a centred box matte over a blue background."""
    h, w = frame.image.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    cv2.rectangle(mask, (w // 4, h // 4), (3 * w // 4, 3 * h // 4), 255, -1)
    frame.alpha = mask.astype(np.float32) / 255.0
    frame.foreground = frame.image
    a = frame.alpha[..., None]
    frame.output = (frame.image * a + np.array([255, 0, 0]) * (1 - a)).astype(np.uint8)
    return frame


def _payload(codec: str, text: str) -> bytes:
    data = text.encode()
    # mov_text samples are a big-endian 16-bit length, then the UTF-8 text.
    return struct.pack(">H", len(data)) + data if codec == "mov_text" else data


def _remux(base: Path, out: Path, fmt: str, codec: str | None = None, data: str | None = None):
    """Copy ``base``'s video into ``out`` plus one subtitle (``codec``) or data (``data``)
    stream with a cue every 200 ms from 100 ms, each 150 ms long."""
    with av.open(str(base)) as src, av.open(str(out), "w", format=fmt) as dst:
        video = dst.add_stream_from_template(src.streams.video[0])
        if codec:
            extra = dst.add_mux_stream(codec)
            extra.time_base = MS
        else:
            extra = dst.add_data_stream(data)
        cues = []
        for i, text in enumerate(TEXTS):
            packet = av.Packet(_payload(codec or "", text))
            packet.pts = packet.dts = 100 + 200 * i
            packet.duration = 150
            packet.time_base = MS
            cues.append(packet)
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is None:
                continue
            while cues and cues[0].pts * MS <= packet.dts * packet.time_base:
                cue = cues.pop(0)
                cue.stream = extra
                dst.mux(cue)
            packet.stream = video
            dst.mux(packet)
        for cue in cues:
            cue.stream = extra
            dst.mux(cue)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("subs")
    write_clip(folder / "base.mp4", frames=FRAMES, audio="aac")
    write_clip(folder / "base.webm", frames=FRAMES, codec="libvpx-vp9", audio=None)
    _remux(folder / "base.mp4", folder / "srt.mkv", "matroska", codec="subrip")
    _remux(folder / "base.mp4", folder / "movtext.mp4", "mp4", codec="mov_text")
    _remux(folder / "base.webm", folder / "vtt.webm", "webm", codec="webvtt")
    _remux(folder / "base.mp4", folder / "klv.ts", "mpegts", data="klv")
    with av.open(str(folder / "base.mp4")) as src, av.open(str(folder / "tc.mov"), "w") as dst:
        video = dst.add_stream_from_template(src.streams.video[0])
        dst.metadata["timecode"] = "01:00:00:00"  # the mov muxer writes it as a tmcd track
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = video
                dst.mux(packet)
    return folder


def _streams(path: Path) -> list[tuple[str, str | None]]:
    with av.open(str(path)) as container:
        return [
            (s.type, s.codec_context.codec.canonical_name if s.codec_context else None)
            for s in container.streams
        ]


def _cues(path: Path) -> list[tuple[Fraction, Fraction, bytes]]:
    """(start s, duration s, payload) of every non-empty subtitle packet."""
    with av.open(str(path)) as container:
        stream = container.streams.subtitles[0]
        cues = []
        for packet in container.demux(stream):
            if packet.pts is None or packet.size == 0:
                continue
            payload = bytes(packet)
            if stream.codec_context.name == "mov_text" and payload == b"\x00\x00":
                continue  # the empty sample mp4 puts in the gaps between cues
            tb = packet.time_base
            cues.append((packet.pts * tb, (packet.duration or 0) * tb, payload))
        return cues


def _video_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def _run(source: Path, out: Path, **kwargs) -> list[str]:
    notices: list[str] = []
    summary = transcode(source, out, fill_matte, progress=False, notice=notices.append, **kwargs)
    assert summary.exit_code == 0 and summary.frames == FRAMES
    assert out.exists() and _video_frames(out) == FRAMES
    return notices


def test_fixture_inputs_carry_the_streams(media):
    assert ("subtitle", "subrip") in _streams(media / "srt.mkv")
    assert ("subtitle", "mov_text") in _streams(media / "movtext.mp4")
    assert ("subtitle", "webvtt") in _streams(media / "vtt.webm")
    assert [t for t, _ in _streams(media / "klv.ts")] == ["video", "data"]
    assert [t for t, _ in _streams(media / "tc.mov")] == ["video", "data"]
    expected = [(Fraction(100 + 200 * i, 1000), Fraction(150, 1000)) for i in range(3)]
    for name in ("srt.mkv", "movtext.mp4", "vtt.webm"):
        assert [c[:2] for c in _cues(media / name)] == expected, name


@pytest.mark.parametrize(
    "source, output, codec",
    [
        ("srt.mkv", "out.mkv", "subrip"),
        ("movtext.mp4", "out.mp4", "mov_text"),
        ("movtext.mp4", "out.mov", "mov_text"),
        ("vtt.webm", "out.webm", "webvtt"),
        ("vtt.webm", "out.mkv", "webvtt"),
    ],
)
def test_subtitles_are_copied_when_the_container_takes_them(media, tmp_path, source, output, codec):
    out = tmp_path / output
    notices = _run(media / source, out)
    assert not [n for n in notices if "subtitle" in n], notices
    assert ("subtitle", codec) in _streams(out)
    cues = _cues(out)
    assert cues == _cues(media / source)
    assert [payload for *_, payload in cues] == [_payload(codec, t) for t in TEXTS]


def test_trimmed_subtitles_shift_with_the_video(media, tmp_path):
    out = tmp_path / "cut.mkv"
    notices: list[str] = []
    summary = transcode(media / "srt.mkv", out, fill_matte, start=0.2, end=0.8,
                        progress=False, notice=notices.append)  # fmt: skip
    assert summary.frames == 15 and not notices
    # The cue at 0.1-0.25 s is showing at 0.2 s: its last 50 ms stay, from zero (a negative
    # time would make the muxer shift the video too); the 0.3 and 0.5 s cues follow.
    cues = [(float(t), float(d), p) for t, d, p in _cues(out)]
    assert [p for *_, p in cues] == [_payload("subrip", t) for t in TEXTS]
    # flattened: newer pytest's approx refuses nested sequences
    flat = [value for cue in cues for value in cue[:2]]
    assert flat == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.3, 0.15])
    with av.open(str(out)) as container:
        first = min(p.pts * p.time_base for p in container.demux(video=0) if p.pts is not None)
    assert first == 0


@pytest.mark.parametrize(
    "source, output",
    [
        ("srt.mkv", "out.mp4"),  # mp4 only carries mov_text
        ("srt.mkv", "out.webm"),  # webm only carries webvtt
        ("movtext.mp4", "out.mkv"),  # matroska has no mov_text
        ("movtext.mp4", "out.webm"),
    ],
)
def test_subtitles_are_skipped_with_a_notice_otherwise(media, tmp_path, source, output):
    out = tmp_path / output
    notices = _run(media / source, out)
    skipped = [n for n in notices if "subtitle stream" in n and "skipped" in n]
    assert len(skipped) == 1, notices
    assert Path(output).suffix in skipped[0]
    assert [t for t, _ in _streams(out) if t == "subtitle"] == []


@pytest.mark.parametrize("source, output", [("klv.ts", "out.mkv"), ("tc.mov", "out.mp4")])
def test_data_streams_are_skipped_with_a_notice(media, tmp_path, source, output):
    out = tmp_path / output
    notices = _run(media / source, out)
    skipped = [n for n in notices if "data stream" in n and "skipped" in n]
    assert len(skipped) == 1, notices
    assert [t for t, _ in _streams(out)] == ["video"]
