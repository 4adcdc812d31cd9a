"""``transcode``: the function behind ``livematte video``, end to end on generated clips."""

from __future__ import annotations

import io
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from media import SHARED_DATA, needs_shared, truncated_copy, write_h264

from livematte.errors import SinkError, SourceError
from livematte.frame import Frame
from livematte.io.sources import expand_inputs, open_source
from livematte.io.synthetic import SyntheticSource, write_clip
from livematte.video import Progress, transcode

SHARED_VIDEO = SHARED_DATA / "video"


class DiscMatte:
    """A small real pipeline: alpha = a disc that follows the frame index; the output is the
    person over a blue background.  ``reset`` is counted (a new file is a new shot)."""

    def __init__(self):
        self.resets = 0

    def reset(self):
        self.resets += 1

    def process(self, frame: Frame) -> Frame:
        h, w = frame.image.shape[:2]
        mask = np.zeros((h, w), np.uint8)
        cv2.circle(mask, (w // 4 + frame.index % (w // 2), h // 2), h // 3, 255, -1)
        frame.alpha = mask.astype(np.float32) / 255.0
        frame.foreground = frame.image
        a = frame.alpha[..., None]
        frame.output = (frame.image * a + np.array([255, 0, 0]) * (1 - a)).astype(np.uint8)
        return frame


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    write_clip(folder / "a.mp4", frames=25)
    write_clip(folder / "b.mp4", frames=10)
    (folder / "broken.mp4").write_text("not a video at all")
    return folder


def _count_and_audio(path):
    with av.open(str(path)) as container:
        video = sum(1 for _ in container.decode(video=0))
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return video, None
        stream = container.streams.audio[0]
        end = max(p.pts + p.duration for p in container.demux(stream) if p.pts is not None)
        return video, float(end * stream.time_base)


def test_single_file_composite_keeps_frames_and_audio(clips, tmp_path):
    out = tmp_path / "out.mp4"
    pipeline = DiscMatte()
    summary = transcode(clips / "a.mp4", out, pipeline, progress=False)
    assert summary.frames == 25 and summary.skipped == 0 and summary.exit_code == 0
    assert pipeline.resets == 1
    frames, audio_end = _count_and_audio(out)
    assert frames == 25 and audio_end == pytest.approx(1.0, abs=0.05)
    line = summary.line()
    assert line.startswith("done: 25 frames in ") and "0 skipped" in line and "out.mp4" in line


def _stream_ends(path):
    """Where each stream of ``path`` ends (last packet's pts + duration), in seconds."""
    ends: dict[str, float] = {}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.pts is not None:
                end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                ends[packet.stream.type] = max(ends.get(packet.stream.type, 0.0), end)
    return ends


def test_intact_input_says_nothing_about_ending_early(clips, tmp_path):
    summary = transcode(clips / "b.mp4", tmp_path / "b.mkv", DiscMatte(), progress=False)
    assert summary.results[0].ended_early is None and "ended early" not in summary.line()


@pytest.mark.parametrize(
    "ext, lead, output",
    [
        ("mp4", 0.5, "out.mp4"),  # audio runs ahead in the file: trimmed (copied AAC)
        ("mkv", 0.5, "out.mkv"),
        ("mp4", -0.3, "out.mp4"),  # audio behind: padded with silence (copied AAC)
        ("mkv", -0.3, "out.webm"),  # padded while re-encoding to Opus
    ],
)
def test_truncated_input_is_reported_and_its_audio_ends_with_the_video(tmp_path, ext, lead,
                                                                       output):  # fmt: skip
    images = (frame.image for frame in SyntheticSource(160, 120, 50, 25))
    full = write_h264(tmp_path / f"full.{ext}", images, 25, audio_lead=lead)
    cut = truncated_copy(full, 0.6, tmp_path / f"cut.{ext}")
    source_ends = _stream_ends(cut)
    assert abs(source_ends["audio"] - source_ends["video"]) > 0.2  # the problem is there
    notices = []
    summary = transcode(cut, tmp_path / output, DiscMatte(), progress=False,
                        notice=notices.append)  # fmt: skip
    assert summary.exit_code == 0  # written and playable; the warning says what is missing
    ends = _stream_ends(tmp_path / output)
    assert ends["video"] == pytest.approx(summary.frames / 25, abs=1e-3)
    assert abs(ends["audio"] - ends["video"]) <= 0.025  # within one audio packet
    count = "50" if ext == "mp4" else "~50"  # mp4 stores a frame count, Matroska a duration
    seconds = f"{summary.frames / 25:.2f} of 2.00 s"
    phrase = f"cut.{ext} ended early: {summary.frames} of {count} frames ({seconds})"
    assert 10 < summary.frames < 40 and phrase in summary.line()
    assert any(phrase in n for n in notices)


def test_prores_alpha_output_decodes_back_with_alpha(clips, tmp_path):
    out = tmp_path / "cut.mov"
    transcode(clips / "b.mp4", out, DiscMatte(), fmt="prores4444", progress=False)
    with open_source(out, alpha=True) as source:
        frames = list(source)
    assert len(frames) == 10
    expected = DiscMatte().process(frames[4]).alpha  # same disc from the same index
    assert np.abs(frames[4].alpha - expected).mean() < 0.01


def test_trim_range(clips, tmp_path):
    out = tmp_path / "trim.mkv"
    summary = transcode(clips / "a.mp4", out, DiscMatte(), start=0.2, end=0.6, progress=False)
    frames, audio_end = _count_and_audio(out)
    assert summary.frames == frames == 10
    assert audio_end == pytest.approx(0.4, abs=0.05)
    # the audio packet straddling --start must not push the video late (Matroska shifts all
    # streams when one starts below zero)
    with av.open(str(out)) as container:
        first = next(container.decode(video=0))
    assert float(first.pts * first.time_base) == pytest.approx(0.0, abs=1e-3)


def test_image_sequence_input(tmp_path):
    for n in range(6):
        cv2.imwrite(str(tmp_path / f"img_{n}.png"), np.full((48, 64, 3), n * 30, np.uint8))
    out = tmp_path / "seq.mp4"
    summary = transcode(str(tmp_path / "img_*.png"), out, DiscMatte(), fps=12, progress=False)
    assert summary.frames == 6
    with open_source(out) as source:
        times = [float(f.pts * f.time_base) for f in source]
    assert times == pytest.approx([n / 12 for n in range(6)], abs=1e-3)


def test_ctrl_c_leaves_a_playable_partial_and_says_where(clips, tmp_path):
    class Interrupting(DiscMatte):
        def process(self, frame):
            if frame.index == 12:
                raise KeyboardInterrupt
            return super().process(frame)

    notices = []
    out = tmp_path / "out.mp4"
    summary = transcode(clips / "a.mp4", out, Interrupting(), progress=False,
                        notice=notices.append)  # fmt: skip
    assert summary.interrupted and summary.results[0].interrupted
    partial = tmp_path / "out.partial.mp4"
    assert not out.exists() and partial.exists()
    assert _count_and_audio(partial)[0] == 12
    assert str(partial) in notices[-1] and "interrupted after 12 frames" in notices[-1]
    assert summary.results[0].partial == str(partial) and summary.results[0].frames == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.partial.mp4"]


def test_batch_continues_past_a_bad_file_and_reports_it(clips, tmp_path):
    notices = []
    pipeline = DiscMatte()
    summary = transcode(str(clips / "*.mp4"), tmp_path, pipeline, fmt="webm-alpha",
                        progress=False, notice=notices.append)  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.webm", "b.webm"]
    assert summary.frames == 35 and pipeline.resets == 2
    assert [Path(r.input).name for r in summary.failed] == ["broken.mp4"]
    assert summary.exit_code == 1
    assert "1 failed: " in summary.line() and "broken.mp4" in summary.line()
    assert any("skipping" in n and "broken.mp4" in n for n in notices)


def test_batch_can_stop_at_the_first_error(clips, tmp_path):
    with pytest.raises(SourceError, match="broken.mp4"):
        transcode([clips / "broken.mp4", clips / "a.mp4"], tmp_path, DiscMatte(),
                  progress=False, on_error="raise")  # fmt: skip


@pytest.mark.parametrize(
    "inp, out, fmt, error, message",
    [
        ("missing.mp4", "out.mp4", "auto", SourceError, "input not found"),
        ("clips/broken.mp4", "out.mp4", "auto", SourceError, "not a video"),
        ("clips/a.mp4", "no/such/dir/out.mp4", "auto", SinkError, "does not exist"),
        ("clips/a.mp4", "out.mp4", "prores4444", SinkError, "needs a .mov or .mkv"),
        ("clips/a.mp4", "out.mp4", "hdr", SinkError, "unknown output format"),
        ("clips/a.mp4", "out.xyz", "auto", SinkError, "unsupported output extension"),
        ("clips/a.mp4", "clips/a.mp4", "auto", SinkError, "overwrite the input"),
        (["clips/a.mp4", "clips/b.mp4"], "out.mp4", "auto", SinkError, "not the file"),
        ("clips/a.mp4", "seq.mp4", "png-seq", SinkError, "writes a folder"),
    ],
)
def test_bad_input_and_output_fail_with_one_line(clips, tmp_path, inp, out, fmt, error, message):
    def place(p):
        return str(p).replace("clips/", str(clips) + "/") if "clips/" in str(p) else tmp_path / p

    inputs = [place(i) for i in inp] if isinstance(inp, list) else place(inp)
    with pytest.raises(error, match=message) as info:
        transcode(inputs, place(out), DiscMatte(), fmt=fmt, progress=False)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out.mp4").exists()


def test_batch_creates_its_output_folder_as_image_does(clips, tmp_path):
    out = tmp_path / "new" / "folder"
    summary = transcode([clips / "a.mp4", clips / "b.mp4"], out, DiscMatte(), progress=False)
    assert summary.exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "b.mp4"]


def test_batch_refuses_inputs_with_one_output_name_before_decoding(clips, tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "a.mp4").write_bytes((clips / "a.mp4").read_bytes())
    with pytest.raises(SinkError, match="share a file name"):
        transcode([clips / "a.mp4", other / "a.mp4"], tmp_path / "out", DiscMatte(),
                  progress=False)  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_expand_inputs(clips):
    videos = expand_inputs(str(clips / "*.mp4"))
    assert [Path(v).name for v in videos] == ["a.mp4", "b.mp4", "broken.mp4"]
    assert expand_inputs("synthetic:32x24:3") == ["synthetic:32x24:3"]
    with pytest.raises(SourceError, match="no files match"):
        expand_inputs(str(clips / "*.nothing"))


def test_progress_bar_on_a_terminal_only():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    bar = Progress("in.mp4", 100, stream=tty)
    bar(50, 2.0)
    text = tty.getvalue()
    assert "50/100" in text and "25.0 fps" in text and "ETA 0:02" in text
    pipe = io.StringIO()
    Progress("in.mp4", 100, stream=pipe)(50, 2.0)
    assert pipe.getvalue() == ""
    quiet = Tty()
    Progress("in.mp4", 100, stream=quiet, enabled=False)(50, 2.0)
    assert quiet.getvalue() == ""
    guess = Tty()  # a total from a duration is an estimate, and never below the frames done
    Progress("in.mkv", 100, stream=guess, estimated=True)(50, 2.0)
    assert "50/~100" in guess.getvalue()
    over = Tty()
    Progress("in.mkv", 100, stream=over, estimated=True)(103, 2.0)
    assert "103/~103" in over.getvalue() and "100%" in over.getvalue()


@needs_shared("video")
def test_real_clip_with_audio_to_every_format(tmp_path):
    src = SHARED_VIDEO / "pixabay_thumbs_up.mp4"
    if not src.exists():
        pytest.skip(f"{src.name} not in ../shared/data/video")
    for fmt, name in [("composite", "c.mp4"), ("webm-alpha", "w.webm"), ("prores4444", "p.mov")]:
        summary = transcode(src, tmp_path / name, DiscMatte(), fmt=fmt, end=0.2,
                            progress=False, notice=lambda m: None)  # fmt: skip
        frames, audio_end = _count_and_audio(tmp_path / name)
        assert summary.frames == frames == 5  # 25 fps: t = 0.00 .. 0.16
        assert audio_end == pytest.approx(0.2, abs=0.06)
