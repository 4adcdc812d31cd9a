"""Sources: video files through PyAV (timestamps, VFR, rotation, 10-bit, trim, corruption),
images / folders / globs, and the synthetic source.  Clips are written by the fixtures."""

from __future__ import annotations

import struct
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
from media import SHARED_DATA, needs_shared

from livematte.errors import SourceError
from livematte.frame import Mode
from livematte.io.sources import ImageSequenceSource, VideoFileSource, open_source
from livematte.io.synthetic import SyntheticSource, write_clip


def _has_encoder(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
    except Exception:
        return False
    return True


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("src") / "clip.mp4"
    pts = write_clip(path, frames=25)
    return path, pts


def _close_to_synthetic(image: np.ndarray, tolerance: float) -> bool:
    """Frame 0 of the synthetic clip, compared blurred (the noise texture does not survive
    compression; colour and geometry must)."""
    expected = next(iter(SyntheticSource(image.shape[1], image.shape[0], 25, 25))).image
    blur = [cv2.blur(x, (5, 5)).astype(float) for x in (image, expected)]
    return np.abs(blur[0] - blur[1]).mean() < tolerance and abs((blur[0] - blur[1]).mean()) < 3


def _times(frames):
    return [float(f.pts * f.time_base) for f in frames]


def test_video_frames_are_bgr_in_order_with_exact_timestamps(clip):
    path, pts = clip
    with open_source(path) as source:
        assert isinstance(source, VideoFileSource)
        assert source.frame_count == 25
        assert [s.type for s in source.passthrough_streams] == ["audio"]
        frames = list(source)
    assert len(frames) == 25
    assert [f.index for f in frames] == list(range(25))
    assert all(f.mode is Mode.VIDEO and f.image.shape == (120, 160, 3) for f in frames)
    assert _times(frames) == pytest.approx([p / 25 for p in pts])
    # Colours survive the YUV round trip (synthetic frame 0 vs decoded frame 0).
    assert _close_to_synthetic(frames[0].image, 6)


def test_items_interleave_audio_packets_with_frames(clip):
    with open_source(clip[0]) as source:
        items = list(source.items())
        packets = [i for i in items if isinstance(i, av.Packet)]
        # (a packet's .stream must not be touched once its container is closed)
        assert packets and all(p.stream.type == "audio" for p in packets)
    # Interleaved: some audio arrives before the last frame, not all at the end.
    first_packet = next(n for n, i in enumerate(items) if isinstance(i, av.Packet))
    assert first_packet < len(items) - len(packets)


@pytest.mark.parametrize(
    "time_base, durations, fps",
    [
        (Fraction(1, 1000), [30, 50, 40, 70], 25),  # VFR
        (Fraction(1001, 30000), None, 30),  # NTSC
        (Fraction(1, 90000), [3003, 3000, 6006], 30),  # VFR in an MPEG-style clock
    ],
)
def test_vfr_and_odd_time_bases_are_kept(tmp_path, time_base, durations, fps):
    path = tmp_path / "vfr.mkv"
    written = write_clip(path, frames=12, fps=fps, time_base=time_base, durations=durations)
    with open_source(path) as source:
        frames = list(source)
    assert len(frames) == 12
    # Matroska stores milliseconds: timestamps match to the container's precision.
    assert _times(frames) == pytest.approx([float(p * time_base) for p in written], abs=1e-3)


@pytest.mark.parametrize(
    "rotation, turn",
    [
        (90, cv2.ROTATE_90_COUNTERCLOCKWISE),
        (-90, cv2.ROTATE_90_CLOCKWISE),
        (180, cv2.ROTATE_180),
    ],
)
def test_rotation_metadata_is_applied(tmp_path, rotation, turn):
    plain, rotated = tmp_path / "plain.mp4", tmp_path / "rotated.mp4"
    write_clip(plain, frames=3, audio=None)
    write_clip(rotated, frames=3, audio=None, rotation=rotation)
    with open_source(plain) as a, open_source(rotated) as b:
        upright, turned = next(iter(a)).image, next(iter(b)).image
    assert turned.shape == cv2.rotate(upright, turn).shape
    assert np.array_equal(turned, cv2.rotate(upright, turn))


@pytest.mark.skipif(not _has_encoder("libx265"), reason="no libx265 encoder")
def test_ten_bit_source_converts_to_8_bit_bgr(tmp_path):
    path = tmp_path / "ten.mkv"
    write_clip(path, frames=5, codec="libx265", pix_fmt="yuv420p10le", audio=None)
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p10le"
    with open_source(path) as source:
        frames = list(source)
    assert len(frames) == 5 and frames[0].image.dtype == np.uint8
    assert _close_to_synthetic(frames[0].image, 6)


def test_matroska_frame_count_is_the_video_tracks_not_the_audio_tail(tmp_path):
    # The container's duration covers the audio, which runs 26 ms past the last frame here:
    # 2.026 s x 25 fps made the progress total 51 for 50 frames.
    path = tmp_path / "clip.mkv"
    write_clip(path, frames=50)
    with open_source(path) as source:
        assert source.container.duration / 1e6 > 2.01
        assert source.frame_count == 50 and source.frame_count_estimated
        assert sum(1 for _ in source) == 50
        assert source.ended_early is None
    with open_source(tmp_path / "clip.mkv", start=0.4) as source:
        assert source.frame_count == 40 and source.frame_count_estimated
    # A track that starts late (the first frame at 40 ms): its DURATION tag is where its last
    # frame ends, not a length (a real 30 fps clip starting at 33 ms: 2.600 s is 77 frames).
    intra, shifted = tmp_path / "intra.mkv", tmp_path / "shifted.mkv"
    write_clip(intra, frames=50, codec="mjpeg", pix_fmt="yuvj420p", audio=None)
    with av.open(str(intra)) as src, av.open(str(shifted), "w") as dst:
        video = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(video=0):
            if packet.dts is not None:
                packet.pts, packet.dts, packet.stream = packet.pts + 40, packet.dts + 40, video
                dst.mux(packet)
    with open_source(shifted) as source:
        assert source.frame_count == 50 == sum(1 for _ in source)
    mp4 = tmp_path / "clip.mp4"
    write_clip(mp4, frames=50)
    with open_source(mp4) as source:
        assert source.frame_count == 50 and not source.frame_count_estimated


@needs_shared("video")
def test_frame_count_of_the_shared_matroska_clips_is_exact():
    clips = sorted((SHARED_DATA / "video").glob("*.mkv"))
    if not clips:
        pytest.skip(f"no .mkv clips in {SHARED_DATA / 'video'}")
    for clip in clips:
        with open_source(clip) as source:
            assert (clip.name, source.frame_count) == (clip.name, sum(1 for _ in source))


def test_trim_keeps_range_and_shifts_every_stream(clip):
    path, _ = clip
    with open_source(path, start=0.4, end=0.8) as source:
        items = list(source.items())
    frames = [i for i in items if not isinstance(i, av.Packet)]
    audio = [i for i in items if isinstance(i, av.Packet)]
    assert len(frames) == 10  # 0.40 .. 0.76 at 25 fps
    assert _times(frames)[0] == pytest.approx(0.0, abs=1e-6)
    audio_times = [float(p.pts * p.time_base) for p in audio]
    assert min(audio_times) == pytest.approx(0.0, abs=0.03)
    assert max(audio_times) < 0.4


def test_corrupt_packet_is_counted_and_skipped(tmp_path):
    good, bad = tmp_path / "good.mkv", tmp_path / "bad.mkv"
    write_clip(good, frames=10, codec="mjpeg", pix_fmt="yuvj420p", audio=None)
    with av.open(str(good)) as src, av.open(str(bad), "w") as dst:
        out = dst.add_stream_from_template(src.streams.video[0])
        for n, packet in enumerate(src.demux(video=0)):
            if packet.dts is None:
                continue
            if n == 4:  # replace one picture with garbage of the same timing
                junk = av.Packet(b"\x00garbage" * 40)
                junk.pts, junk.dts, junk.time_base = packet.pts, packet.dts, packet.time_base
                packet = junk
            packet.stream = out
            dst.mux(packet)
    with open_source(bad) as source:
        frames = list(source)
        assert source.skipped == 1
    assert len(frames) == 9
    assert 0.16 not in [round(t, 2) for t in _times(frames)]


def test_alpha_plane_is_read_when_asked(tmp_path):
    path = tmp_path / "alpha.mov"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("prores_ks", rate=25, options={"profile": "4444"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuva444p10le"
        bgra = np.zeros((48, 64, 4), np.uint8)
        bgra[..., :3], bgra[:, :32, 3], bgra[:, 32:, 3] = 128, 255, 64
        picture = av.VideoFrame.from_ndarray(bgra, format="bgra").reformat(format="yuva444p10le")
        picture.pts = 0
        for packet in [*stream.encode(picture), *stream.encode(None)]:
            container.mux(packet)
    with open_source(path, alpha=True) as source:
        frame = next(iter(source))
    assert frame.alpha[0, 0] == pytest.approx(1.0) and frame.alpha[0, 63] == pytest.approx(64 / 255)
    with open_source(path) as source:
        assert next(iter(source)).alpha is None


def _write_png(path, value, size=(32, 24)):
    image = np.full((size[1], size[0], 3), value, np.uint8)
    ok, data = cv2.imencode(".png", image)
    data.tofile(str(path))


def test_image_folder_is_a_sequence_in_natural_order(tmp_path):
    folder = tmp_path / "bilder_ü"
    folder.mkdir()
    for n in (1, 2, 10):
        _write_png(folder / f"frame{n}.png", n * 10)
    (folder / "notes.txt").write_text("not an image")
    with open_source(folder, fps=10) as source:
        frames = list(source)
    assert [int(f.image[0, 0, 0]) for f in frames] == [10, 20, 100]
    assert _times(frames) == pytest.approx([0.0, 0.1, 0.2])
    assert frames[0].mode is Mode.VIDEO


def test_glob_and_single_image(tmp_path):
    for n in range(3):
        _write_png(tmp_path / f"shot_{n}.png", 50)
    with open_source(str(tmp_path / "shot_*.png")) as source:
        assert len(list(source)) == 3
    with open_source(tmp_path / "shot_0.png") as source:
        (only,) = list(source)
    assert only.mode is Mode.IMAGE and only.image.shape == (24, 32, 3)


def test_unreadable_image_in_a_sequence_is_skipped(tmp_path):
    paths = [tmp_path / f"{n}.png" for n in range(3)]
    for p in paths:
        _write_png(p, 9)
    paths[1].write_bytes(b"broken")
    source = ImageSequenceSource(paths, fps=5)
    frames = list(source)
    assert len(frames) == 2 and source.skipped == 1
    assert _times(frames) == pytest.approx([0.0, 0.4])  # the slot is kept: later frames on time


def _jpeg_with_orientation(image: np.ndarray, orientation: int) -> bytes:
    ok, data = cv2.imencode(".jpg", image)
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">H", 1)
    tiff += struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + b"\x00\x00\x00\x00"
    payload = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    raw = data.tobytes()
    return raw[:2] + app1 + raw[2:]


def test_exif_orientation_is_honoured(tmp_path):
    image = np.zeros((20, 40, 3), np.uint8)
    image[:, :10] = 255  # a bright band on the left
    path = tmp_path / "phone.jpg"
    path.write_bytes(_jpeg_with_orientation(image, 6))  # 6 = rotate 90 clockwise to display
    with open_source(path) as source:
        frame = next(iter(source))
    assert frame.image.shape == (40, 20, 3)
    assert frame.image[:8].mean() > 200  # the left band is now on top


def test_synthetic_source_is_deterministic_with_ground_truth():
    a, b = list(SyntheticSource(64, 48, 5)), list(SyntheticSource(64, 48, 5))
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b, strict=True))
    truth = SyntheticSource(64, 48, 5).ground_truth(2)
    assert truth.dtype == np.float32 and 0.05 < truth.mean() < 0.5
    assert not np.array_equal(a[0].image, a[2].image)  # it moves
    assert open_source("synthetic:32x24:7").frame_count == 7


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.mp4", "input not found"),
        (lambda d: _text(d / "notes.mp4"), "not a video"),
        (lambda d: _audio_only(d / "song.m4a"), "no video stream"),
        (lambda d: _mkdir(d / "empty"), "no images in folder"),
        (lambda d: d / "none_*.png", "no files match"),
        (lambda d: d / "missing.png", "input not found"),
        (lambda d: "synthetic:big", "bad synthetic spec"),
    ],
)
def test_bad_inputs_raise_one_line_source_errors(tmp_path, make, message):
    with pytest.raises(SourceError, match=message) as info:
        open_source(make(tmp_path))
    assert "\n" not in str(info.value) and info.value.exit_code == 3


def test_bad_trim_range(clip):
    with pytest.raises(SourceError, match="must be after"):
        open_source(clip[0], start=2.0, end=1.0)


def _text(path):
    path.write_text("hello")
    return path


def _mkdir(path):
    path.mkdir()
    return path


def _audio_only(path):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=48000)
        samples = np.zeros((1, 1024), np.float32)
        chunk = av.AudioFrame.from_ndarray(samples, "fltp", "mono")
        chunk.sample_rate, chunk.pts = 48000, 0
        for packet in [*stream.encode(chunk), *stream.encode(None)]:
            container.mux(packet)
    return path
