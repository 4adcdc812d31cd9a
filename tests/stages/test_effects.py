"""Background effects: --bg grammar and golden composites computed analytically."""

from __future__ import annotations

import signal
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from media import write_h264

from livematte.config import load_config
from livematte.errors import ConfigError, SourceError
from livematte.frame import Frame
from livematte.ops.compose import cover_fit
from livematte.stages.effects import (
    NAMED_COLOURS,
    EffectsStage,
    VideoBackground,
    parse_background,
)

FG = (10, 200, 30)
SIZES = [(37, 23), (64, 48), (101, 211), (1280, 720)]


def stage(**effects):
    return EffectsStage(load_config(None, {f"effects.{k}": v for k, v in effects.items()}).effects)


def half_plane(w, h, ramp=8):
    """Alpha 1 on the left, 0 on the right, with a linear ramp of ``ramp`` px between."""
    x = np.arange(w, dtype=np.float32)
    a = np.clip((w / 2 - x) / ramp + 0.5, 0.0, 1.0)
    return np.repeat(a[None, :], h, axis=0)


def frame_with(w, h, alpha, image=None, fg=FG):
    if image is None:
        image = np.full((h, w, 3), 77, np.uint8)
    foreground = np.empty((h, w, 3), np.uint8)
    foreground[:] = fg
    return Frame(image=image, alpha=alpha, foreground=foreground)


def expected(alpha, fg, bg):
    a = alpha[..., None]
    return np.round(a * np.array(fg, float) + (1 - a) * np.asarray(bg, float))


@pytest.mark.parametrize(
    "spec,kind,extra",
    [
        ("transparent", "transparent", None),
        ("original", "original", None),
        ("#00ff00", "color", (0, 255, 0)),
        ("#0F0", "color", (0, 255, 0)),
        ("#102030", "color", (0x30, 0x20, 0x10)),
        ("White", "color", (255, 255, 255)),
        ("blue", "color", NAMED_COLOURS["blue"]),
        ("blur", "blur", 15),
        ("blur:25", "blur", 25),
        (" blur:3 ", "blur", 3),
    ],
)
def test_parse_background(spec, kind, extra):
    parsed = parse_background(spec)
    assert parsed.kind == kind
    if kind == "color":
        assert parsed.color == extra
    if kind == "blur":
        assert parsed.radius == extra


@pytest.mark.parametrize(
    "spec,error",
    [
        ("blur:0", ConfigError),
        ("blur:abc", ConfigError),
        ("blur:2.5", ConfigError),
        ("blur:500", ConfigError),
        ("#12345", ConfigError),
        ("#gggggg", ConfigError),
        ("purple", ConfigError),
        ("beach.jpg", SourceError),
        ("no/such/clip.mp4", SourceError),
    ],
)
def test_parse_background_errors(spec, error):
    with pytest.raises(error) as info:
        parse_background(spec)
    assert "\n" not in str(info.value) and spec.strip() in str(info.value)


def test_bad_spec_through_config_raises():
    with pytest.raises(ConfigError):
        stage(background="nonsense")


@pytest.mark.parametrize("w,h", SIZES)
def test_colour_background_golden(w, h):
    a = half_plane(w, h)
    f = stage(background="#3366cc").process(frame_with(w, h, a))
    assert f.output.shape == (h, w, 3) and f.output.dtype == np.uint8
    assert np.abs(f.output.astype(int) - expected(a, FG, (0xCC, 0x66, 0x33))).max() <= 1
    assert f.timings["effects"] >= 0


def test_foreground_not_image_is_composited():
    w, h = 40, 30
    a = half_plane(w, h)
    f = stage(background="black").process(frame_with(w, h, a))
    assert (f.output[:, 0] == FG).all()  # image is 77 grey; the decontaminated fg wins
    # No foreground: the image itself is the person's colour.
    f2 = stage(background="black").process(Frame(image=np.full((h, w, 3), 77, np.uint8), alpha=a))
    assert (f2.output[:, 0] == 77).all()


def test_alpha_none_passes_the_picture_and_uint8_alpha_works():
    img = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    out = stage(background="white").process(Frame(image=img)).output
    assert np.array_equal(out, img) and out is not img
    a8 = (half_plane(30, 20) * 255).astype(np.uint8)
    out = stage(background="white").process(frame_with(30, 20, a8)).output
    assert np.abs(out.astype(int) - expected(a8 / 255.0, FG, (255, 255, 255))).max() <= 1


@pytest.mark.parametrize("w,h", SIZES)
def test_transparent_gives_bgra(w, h):
    a = half_plane(w, h)
    f = stage(background="transparent", light_wrap=0.5).process(frame_with(w, h, a))
    assert f.output.shape == (h, w, 4)
    assert (f.output[..., :3] == FG).all()
    assert np.abs(f.output[..., 3].astype(int) - np.round(a * 255)).max() <= 1


def test_dim_and_desaturate():
    w, h = 16, 8
    a = np.zeros((h, w), np.float32)
    out = stage(background="red", dim=0.5).process(frame_with(w, h, a)).output
    assert np.abs(out.astype(int) - (0, 0, 128)).max() <= 1
    out = stage(background="red", desaturate=1.0).process(frame_with(w, h, a)).output
    assert np.abs(out.astype(int) - 76).max() <= 1  # BT.601 luma of pure red
    out = stage(background="original", dim=1.0).process(frame_with(w, h, a)).output
    assert out.max() == 0


def coordinate_image(w, h):
    """B = x, G = y (so the source position of each output pixel can be read back)."""
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.arange(w, dtype=np.uint8)[None, :]
    img[..., 1] = np.arange(h, dtype=np.uint8)[:, None]
    return img


@pytest.mark.parametrize("out_size", [(64, 64), (30, 90), (255, 63), (200, 128), (33, 17)])
def test_image_background_is_cover_fitted(tmp_path, out_size):
    src_w, src_h = 256, 128
    path = tmp_path / "bg.png"
    cv2.imwrite(str(path), coordinate_image(src_w, src_h))
    w, h = out_size
    f = stage(background=str(path)).process(frame_with(w, h, np.zeros((h, w), np.float32)))
    out = f.output.astype(float)
    # Cover: one scale for both axes (no distortion), the whole output filled, centred.
    scale = max(w / src_w, h / src_h)
    cw, ch = w / scale, h / scale
    x0, y0 = (src_w - cw) / 2, (src_h - ch) / 2
    u = np.arange(w)
    v = np.arange(h)
    exp_x = x0 + (u + 0.5) * cw / w - 0.5
    exp_y = y0 + (v + 0.5) * ch / h - 0.5
    inner = slice(1, -1)  # the outermost pixels see edge clamping
    tol = 1.0 + 0.5 / scale  # area averaging of a linear ramp is exact up to rounding
    assert np.abs(out[h // 2, inner, 0] - exp_x[inner]).max() <= tol
    assert np.abs(out[inner, w // 2, 1] - exp_y[inner]).max() <= tol


def test_cover_fit_identity_and_bad_files(tmp_path):
    img = coordinate_image(40, 20)
    assert np.array_equal(cover_fit(img, (40, 20)), img)
    bad = tmp_path / "broken.png"
    bad.write_text("not an image")
    with pytest.raises(SourceError, match="broken.png"):
        stage(background=str(bad))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """10 frames at 10 fps, frame k a flat grey of 20 * k + 20."""
    av = pytest.importorskip("av")
    path = tmp_path_factory.mktemp("bg") / "clip.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"qscale": "1"}
        for k in range(10):
            picture = np.full((48, 64, 3), 20 * k + 20, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def grey_of(frame):
    return float(frame.output[frame.output.shape[0] // 2, -1].mean())


@pytest.mark.parametrize("w,h", [(64, 48), (33, 77)])
def test_video_background_follows_time_and_loops(clip, w, h):
    st = stage(background=str(clip))
    a = np.zeros((h, w), np.float32)
    # A 30 fps source: times chosen in the middle of background frames; going back in time
    # (a seek) and past the end (loop) both work.
    for seconds, k in [(0.0, 0), (0.35, 3), (0.95, 9), (1.05, 0), (1.55, 5), (0.25, 2), (3.75, 7)]:
        f = frame_with(w, h, a)
        f.time_base = Fraction(1, 30)
        f.pts = round(seconds * 30)
        assert abs(grey_of(st.process(f)) - (20 * k + 20)) <= 4, seconds
    st.close()


def test_video_background_by_index_without_timestamps(clip):
    st = stage(background=str(clip))
    for index in (0, 1, 2, 9, 10, 13):
        f = frame_with(16, 16, np.zeros((16, 16), np.float32))
        f.index = index
        assert abs(grey_of(st.process(f)) - (20 * (index % 10) + 20)) <= 4
    st.reset()
    st.close()


def test_video_background_loops_at_a_time_just_under_its_length(tmp_path):
    """1.2 % 0.4 is 0.3999999999999999, within the 1e-6 slack of a 4-frame 10 fps clip's end:
    that time used to restart the clip for ever (a 30 fps video hung at its frame 36)."""
    pytest.importorskip("av")
    greys = [np.full((32, 32, 3), 40 * k + 40, np.uint8) for k in range(4)]
    background = VideoBackground(Path(write_h264(tmp_path / "short.mp4", greys, fps=10)))

    def hung(*_):
        raise TimeoutError("frame_at did not return")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.setitimer(signal.ITIMER_REAL, 10.0)
    try:
        assert background.frame_at(0.35)[0] == pytest.approx(0.3)  # the clip's end is learned
        number, picture = background.frame_at(1.2)  # 3 loops: the first frame
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, previous)
        background.close()
    assert number == 0.0 and abs(int(picture[16, 16].mean()) - 40) <= 4


def test_video_background_wraps_a_time_just_under_its_length_without_decoding(tmp_path):
    """Once the length is known, a time a float ulp under it is the first frame at once: no
    decode to the clip's end and back (``frame_at`` maps it before it reads)."""
    pytest.importorskip("av")
    greys = [np.full((32, 32, 3), 40 * k + 40, np.uint8) for k in range(4)]
    background = VideoBackground(Path(write_h264(tmp_path / "short.mp4", greys, fps=10)))
    try:
        background.frame_at(0.35)  # learns the length (0.4 s)
        background.frame_at(0.0)
        pulls = []
        pull = background._pull
        background._pull = lambda: pulls.append(1) or pull()
        number, _ = background.frame_at(1.2)
    finally:
        background.close()
    assert number == 0.0 and pulls == []


def person_disc(w, h):
    a = np.zeros((h, w), np.float32)
    cv2.circle(a, (w // 2, h // 2), min(w, h) // 4, 1.0, -1, cv2.LINE_AA)
    return a


@pytest.mark.parametrize("kind", ["lens", "gaussian"])
@pytest.mark.parametrize("w,h", [(97, 61), (320, 240), (1280, 720)])
def test_blur_does_not_bleed_the_person(kind, w, h):
    bg_colour = np.array([200, 120, 40])
    image = np.empty((h, w, 3), np.uint8)
    image[:] = bg_colour
    a = person_disc(w, h)
    image[a > 0] = (0, 0, 255)  # the person is red in the real picture too
    f = frame_with(w, h, a, image=image, fg=(0, 0, 255))
    out = stage(background="blur:20", blur_kind=kind).process(f).output
    bg_only = a == 0
    # Without alpha weighting, red would smear ~20 px around the person.
    assert np.abs(out[bg_only].astype(int) - bg_colour).max() <= 3
    assert np.abs(out[a == 1].astype(int) - (0, 0, 255)).max() <= 1


def test_light_wrap_touches_only_the_edges():
    w, h = 400, 200
    a = np.zeros((h, w), np.float32)
    a[:, : w // 2] = 1.0
    plain = stage(background="blue").process(frame_with(w, h, a)).output
    wrapped = stage(background="blue", light_wrap=1.0).process(frame_with(w, h, a)).output
    assert np.array_equal(plain[:, w // 2 :], wrapped[:, w // 2 :])  # background untouched
    assert np.array_equal(plain[:, :100], wrapped[:, :100])  # deep inside the person
    edge = wrapped[:, w // 2 - 2].astype(int)
    blue = np.array(NAMED_COLOURS["blue"])
    # At the edge the person takes on a good share of the background's colour.
    d_fg = np.abs(edge - FG).sum(axis=1).mean()
    d_bg = np.abs(edge - blue).sum(axis=1).mean()
    assert d_fg > 0.2 * np.abs(blue - FG).sum() and d_bg < np.abs(blue - FG).sum()
