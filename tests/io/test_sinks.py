"""Sinks: every output format decodes back with the right frames, timestamps, alpha and audio;
atomic writes, Ctrl-C partials and one-line errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from media import (
    REPO,
    file_mode,
    umask_fixture,  # noqa: F401 - the umask fixture
)

from livematte.errors import SinkError
from livematte.frame import Frame
from livematte.io.sinks import (
    GREEN_BGR,
    ImageSink,
    MemorySink,
    NullSink,
    PngSequenceSink,
    frame_pixels,
    resolve_format,
)
from livematte.io.sources import open_source
from livematte.io.synthetic import SyntheticSource, write_clip
from livematte.io.table import open_sink
from livematte.io.video_sink import VideoFileSink

W, H, N = 160, 120, 12


def _frames(n=N, time_base=Fraction(1, 25), step=1, transparent=False):
    """Synthetic frames with ground-truth alpha, a foreground and an output filled in."""
    source = SyntheticSource(W, H, n, 25)
    for frame in source:
        frame.alpha = source.ground_truth(frame.index)
        frame.foreground = frame.image
        a = frame.alpha[..., None]
        if transparent:
            frame.output = np.dstack([frame.image, (a[..., 0] * 255 + 0.5).astype(np.uint8)])
        else:
            frame.output = (frame.image * a + np.array([0, 0, 255]) * (1 - a)).astype(np.uint8)
        frame.pts, frame.time_base = frame.index * step, time_base
        yield frame


def _write(path, fmt="auto", frames=None, **kwargs):
    with open_sink(path, fmt, notice=kwargs.pop("notice", lambda m: None), **kwargs) as sink:
        for frame in frames if frames is not None else _frames():
            sink.send(frame)
    return sink


def _decoded(path, alpha=False):
    with open_source(path, alpha=alpha) as source:
        return list(source)


def _times(frames):
    return [round(float(f.pts * f.time_base), 4) for f in frames]


def _no_leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    "name, fmt, codec, decoded_codec",
    [
        ("out.mp4", "composite", None, "h264"),
        ("out.mkv", "composite", None, "h264"),
        ("out.mov", "composite", None, "h264"),  # .mov implies nothing by itself
        ("out.mp4", "composite", "h265", "hevc"),
        ("out.webm", "composite", None, "vp9"),
        ("out.mp4", "foreground", None, "h264"),
    ],
)
def test_opaque_formats_round_trip(tmp_path, name, fmt, codec, decoded_codec):
    path = tmp_path / name
    sink = _write(path, fmt, codec=codec)
    assert sink.frames == N and path.exists() and _no_leftovers(tmp_path)
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == decoded_codec
    frames = _decoded(path)
    assert len(frames) == N
    assert _times(frames) == pytest.approx([i / 25 for i in range(N)], abs=1e-3)
    expected = next(_frames()).output if fmt == "composite" else next(_frames()).foreground
    assert np.abs(frames[0].image.astype(int) - expected).mean() < 12


@pytest.mark.parametrize(
    "name, fmt, tolerance",
    [
        ("out.mov", "prores4444", 1.0),
        ("out.webm", "webm-alpha", 6.0),
        ("out.mkv", "prores4444", 1.0),
    ],
)
def test_alpha_formats_keep_the_alpha_plane(tmp_path, name, fmt, tolerance):
    path = tmp_path / name
    _write(path, fmt)
    frames = _decoded(path, alpha=True)
    assert len(frames) == N
    assert _times(frames) == pytest.approx([i / 25 for i in range(N)], abs=1e-3)
    truth = SyntheticSource(W, H, N, 25)
    for frame in frames[:: N // 3]:
        assert frame.alpha is not None, "alpha plane lost"
        error = np.abs(frame.alpha - truth.ground_truth(frame.index)) * 255
        assert error.mean() < tolerance and np.percentile(error, 99) < 8 * tolerance


def test_vp9_alpha_needs_libvpx_to_decode(tmp_path):
    """FFmpeg's native vp9 decoder drops the alpha channel; libvpx-vp9 keeps it."""
    path = tmp_path / "out.webm"
    _write(path, "webm-alpha")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.metadata.get("alpha_mode") == "1"
        native = next(container.decode(stream))
        assert native.format.name == "yuv420p"
    with av.open(str(path)) as container:
        decoder = av.CodecContext.create("libvpx-vp9", "r")
        first = next(f for p in container.demux(video=0) for f in decoder.decode(p))
        assert first.format.name == "yuva420p"


def test_transparent_output_in_an_alpha_format_is_written_as_is(tmp_path):
    frames = list(_frames(4, transparent=True))
    path = tmp_path / "cut.mov"
    _write(path, "prores4444", frames)
    back = _decoded(path, alpha=True)
    assert np.abs(back[1].alpha * 255 - frames[1].output[..., 3]).mean() < 1.0


def test_matte_and_greenscreen_passes(tmp_path):
    _write(tmp_path / "matte.mp4", "matte")
    _write(tmp_path / "green.mp4", "greenscreen")
    truth = SyntheticSource(W, H, N, 25).ground_truth(3)
    matte = _decoded(tmp_path / "matte.mp4")[3].image.astype(float)
    assert np.abs(matte[..., 1] - truth * 255).mean() < 3  # grey: every channel is alpha
    green = _decoded(tmp_path / "green.mp4")[3].image.astype(float)
    corner = green[:10, :10].reshape(-1, 3).mean(axis=0)  # background only there
    assert np.abs(corner - GREEN_BGR).max() < 12


def test_png_sequence_is_rgba_with_exact_alpha_and_timestamps(tmp_path):
    folder = tmp_path / "seq"
    sink = _write(folder, "png-seq", _frames(5, time_base=Fraction(1, 1000), step=37))
    assert sink.path == folder and _no_leftovers(tmp_path)
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"frame_{i:06d}.png" for i in range(5)] + ["timestamps.txt"]
    import cv2

    rgba = cv2.imread(str(folder / "frame_000002.png"), cv2.IMREAD_UNCHANGED)
    assert rgba.shape == (H, W, 4)
    truth = SyntheticSource(W, H, 5, 25).ground_truth(2)
    assert np.abs(rgba[..., 3].astype(int) - np.round(truth * 255)).max() <= 1
    lines = (folder / "timestamps.txt").read_text().splitlines()
    assert lines[0] == "# timestamp format v2" and float(lines[3]) == pytest.approx(74.0)


def test_vfr_timestamps_written_as_given(tmp_path):
    frames = list(_frames(6, time_base=Fraction(1, 1000)))
    for frame, pts in zip(frames, [0, 30, 80, 120, 190, 220], strict=True):
        frame.pts = pts
    _write(tmp_path / "vfr.mp4", "composite", frames)
    assert _times(_decoded(tmp_path / "vfr.mp4")) == pytest.approx(
        [0, 0.03, 0.08, 0.12, 0.19, 0.22], abs=1e-4
    )


def _transcode(src, dst, fmt="auto"):
    """A bare copy through the sink, passing the source's packets as the runner does."""
    notices = []
    source = open_source(src)
    sink = open_sink(dst, fmt, passthrough=source.passthrough_streams, notice=notices.append)
    with source, sink:
        for item in source.items():
            if isinstance(item, Frame):
                item.alpha = np.ones(item.image.shape[:2], np.float32)
                sink.send(item)
            else:
                sink.send_packet(item)
    return notices


def _audio(path):
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None, 0.0
        stream = container.streams.audio[0]
        last = max(p.pts + p.duration for p in container.demux(stream) if p.pts is not None)
        return stream.codec_context.name, float(last * stream.time_base)


@pytest.mark.parametrize(
    "audio, out, expect_codec, reencoded",
    [
        ("aac", "o.mp4", "aac", False),
        ("aac", "o.mov", "aac", False),
        ("aac", "o.mkv", "aac", False),
        ("aac", "o.webm", "opus", True),
        ("libopus", "o.mkv", "opus", False),
        ("libopus", "o.mp4", "opus", False),
    ],
)
def test_audio_copied_or_reencoded_with_duration_kept(tmp_path, audio, out, expect_codec,
                                                      reencoded):  # fmt: skip
    src = tmp_path / ("src.mkv" if audio == "libopus" else "src.mp4")
    write_clip(src, frames=25, audio=audio)
    notices = _transcode(src, tmp_path / out)
    codec, duration = _audio(tmp_path / out)
    _, source_duration = _audio(src)
    assert codec == expect_codec
    assert duration == pytest.approx(source_duration, abs=0.05)
    assert any("re-encoded" in n for n in notices) == reencoded
    assert len(_decoded(tmp_path / out)) == 25


def test_interrupt_keeps_a_playable_partial(tmp_path):
    path = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt), open_sink(path, notice=print) as sink:
        for frame in _frames(20):
            if frame.index == 8:
                raise KeyboardInterrupt
            sink.send(frame)
    assert not path.exists()
    assert sink.partial_path == tmp_path / "out.partial.mp4"
    assert len(_decoded(sink.partial_path)) == 8
    assert _no_leftovers(tmp_path)


def test_error_leaves_nothing_behind(tmp_path):
    path = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError), open_sink(path) as sink:
        for frame in _frames(5):
            sink.send(frame)
        raise RuntimeError("pipeline failed")
    assert list(tmp_path.iterdir()) == [] and sink.partial_path is None


def test_png_sequence_interrupt_keeps_partial_folder(tmp_path):
    with pytest.raises(KeyboardInterrupt), open_sink(tmp_path / "seq", "png-seq") as sink:
        for frame in _frames(4):
            sink.send(frame)
        raise KeyboardInterrupt
    assert sink.partial_path == tmp_path / "seq.partial"
    assert len(list(sink.partial_path.glob("*.png"))) == 4


def test_odd_sizes_are_padded_for_420(tmp_path):
    notices = []
    frames = []
    for frame in _frames(3):
        frame.image = frame.image[:119, :159].copy()
        frame.output = frame.output[:119, :159].copy()
        frames.append(frame)
    with open_sink(tmp_path / "odd.mp4", notice=notices.append) as sink:
        for frame in frames:
            sink.send(frame)
    assert _decoded(tmp_path / "odd.mp4")[0].image.shape == (120, 160, 3)
    assert any("odd-sized" in n for n in notices)


def test_composite_of_a_transparent_output_is_flattened_with_a_notice(tmp_path):
    notices = []
    sink = _write(tmp_path / "flat.mp4", "composite", _frames(3, transparent=True),
                  notice=notices.append)  # fmt: skip
    assert sink.frames == 3 and len(notices) == 1 and "transparent" in notices[0]


def _bad_frame(kind):
    frame = next(_frames(1))
    if kind == "float output":
        frame.output = frame.output.astype(np.float32)
    elif kind == "wrong size":
        frame.output = frame.output[:10]
    elif kind == "no alpha":
        frame.alpha = None
    elif kind == "alpha shape":
        frame.alpha = frame.alpha[:5]
    return frame


@pytest.mark.parametrize(
    "fmt, kind, message",
    [
        ("composite", "float output", "must be 120x160x3 or 120x160x4 uint8"),
        ("composite", "wrong size", "frame.output must be"),
        ("matte", "no alpha", "needs an alpha matte"),
        ("greenscreen", "no alpha", "needs an alpha matte"),
        ("prores4444", "alpha shape", "frame.alpha is"),
    ],
)
def test_send_checks_dtype_and_shape(fmt, kind, message):
    with pytest.raises(SinkError, match=message):
        frame_pixels(_bad_frame(kind), fmt)


@pytest.mark.parametrize(
    "name, fmt, message",
    [
        ("out.avi", "auto", "unsupported output extension '.avi'"),
        ("out.mp4", "prores4444", "needs a .mov or .mkv file"),
        ("out.mov", "webm-alpha", "needs a .webm or .mkv file"),
        ("out.mp4", "hdr", "unknown output format 'hdr'"),
        ("missing/out.mp4", "auto", "output folder does not exist"),
        ("seq.mp4", "png-seq", "png-seq writes a folder, not the video file"),
    ],
)
def test_bad_outputs_raise_one_line_sink_errors(tmp_path, name, fmt, message):
    with pytest.raises(SinkError, match=message) as info:
        open_sink(tmp_path / name, fmt)
    assert "\n" not in str(info.value) and info.value.exit_code == 4


def test_unknown_quality_and_codec(tmp_path):
    with pytest.raises(SinkError, match="unknown quality"):
        VideoFileSink(tmp_path / "a.mp4", quality="ultra")
    with pytest.raises(SinkError, match="unknown video codec"):
        VideoFileSink(tmp_path / "a.mp4", codec="mpeg2")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(SinkError, match="not writable"):
        open_sink(locked / "out.mp4")


def test_no_frames_is_an_error_and_leaves_nothing(tmp_path):
    with pytest.raises(SinkError, match="no frames"), open_sink(tmp_path / "empty.mp4"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_size_change_is_refused(tmp_path):
    frames = list(_frames(2))
    frames[1] = Frame(np.zeros((60, 80, 3), np.uint8), index=1, pts=1, time_base=Fraction(1, 25))
    with pytest.raises(SinkError, match="frame 1 is 80x60"), open_sink(tmp_path / "x.mp4") as s:
        for frame in frames:
            s.send(frame)


def test_png_sequence_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "seq").mkdir()
    (tmp_path / "seq" / "keep.txt").write_text("mine")
    with pytest.raises(SinkError, match="not empty"):
        PngSequenceSink(tmp_path / "seq")


def test_resolve_format_auto():
    assert resolve_format("out.mov") == "composite"
    assert resolve_format("frames_out") == "png-seq"


def test_image_memory_and_null_sinks(tmp_path):
    with ImageSink(tmp_path / "cut.png") as sink:
        sink.send(next(_frames(1)))
    import cv2

    assert cv2.imread(str(tmp_path / "cut.png"), cv2.IMREAD_UNCHANGED).shape == (H, W, 4)
    with pytest.raises(SinkError, match="one image"), ImageSink(tmp_path / "b.png") as sink:
        for frame in _frames(2):
            sink.send(frame)
    memory = MemorySink("matte")
    with memory:
        for frame in _frames(3):
            memory.send(frame)
    assert memory.frames == 3 and memory.images[0].shape == (H, W)
    null = NullSink("composite")
    with null:
        for frame in _frames(3):
            null.send(frame)
    assert null.frames == 3


def test_every_output_follows_the_umask(tmp_path, umask):
    expected_file, expected_dir = 0o666 & ~umask, 0o777 & ~umask
    _write(tmp_path / "out.mp4")
    _write(tmp_path / "seq", "png-seq")
    with ImageSink(tmp_path / "cut.png") as sink:
        sink.send(next(_frames(1)))
    assert file_mode(tmp_path / "out.mp4") == expected_file
    assert file_mode(tmp_path / "cut.png") == expected_file
    assert file_mode(tmp_path / "seq") == expected_dir
    assert {file_mode(p) for p in (tmp_path / "seq").iterdir()} == {expected_file}
    with pytest.raises(KeyboardInterrupt), open_sink(tmp_path / "cut.mp4") as sink:
        sink.send(next(_frames(1)))
        raise KeyboardInterrupt
    assert file_mode(sink.partial_path) == expected_file


_KILLED_WRITER = """
import sys, time
from pathlib import Path
import numpy as np
from livematte.frame import Frame
from livematte.io.table import open_sink

sink = open_sink(Path(sys.argv[1]), notice=lambda m: None)
for i in range(5):
    frame = Frame(image=np.full((64, 64, 3), 40 * i, np.uint8), index=i)
    frame.alpha = np.ones((64, 64), np.float32)
    sink.send(frame)
print(sink._tmp, flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("fmt_name", ["clip.mp4", "seq"])
def test_temporary_of_a_killed_run_is_removed_by_the_next(tmp_path, fmt_name):
    out = tmp_path / fmt_name
    writer = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(out)], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    try:
        left = Path(writer.stdout.readline().strip())
    finally:
        writer.send_signal(signal.SIGKILL)  # kill -9: no chance to clean up
        writer.wait()
        writer.stdout.close()
    assert left.parent == tmp_path and left.name.startswith(f".{out.stem}.{writer.pid}-")
    assert left.exists() and not out.exists()
    _write(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == [fmt_name]


@pytest.mark.parametrize("layout, channels", [("bgr24", 3), ("bgra", 4), ("gray", 0)])
def test_frames_are_wrapped_when_aligned_and_copied_when_not(layout, channels):
    """``_wrap`` hands swscale the array itself (aligned rows) or an aligned copy; either way
    the frame holds the same pixels."""
    from livematte.io.video_sink import _wrap

    rng = np.random.default_rng(0)
    shape = (6, 32, channels) if channels else (6, 32)
    aligned = rng.integers(0, 256, shape, dtype=np.uint8)
    assert aligned.strides[0] % 16 == 0
    # 31 pixels a row: rows that are not a multiple of 16 bytes apart.
    odd = np.ascontiguousarray(aligned[:, :31])
    for pixels in (aligned, odd):
        frame = _wrap(pixels, layout)
        assert np.array_equal(frame.to_ndarray(format=layout), pixels)
