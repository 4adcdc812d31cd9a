"""Alpha blending and sprite compositing against analytic expectations."""

from __future__ import annotations

import numpy as np
import pytest

from livematte.ops.compose import (
    Compositor,
    alpha_to_u8,
    over,
    paste_sprite,
    premultiply,
    warp_sprite,
)

RNG = np.random.default_rng(3)


def _ref_blend(f, b, a):
    return np.round(f * a[..., None] + b * (1.0 - a[..., None])).astype(np.int16)


@pytest.mark.parametrize("size", [(1, 1), (23, 37), (720, 1280), (211, 101)])
def test_blend_matches_reference(size):
    h, w = size
    f = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
    b = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
    a = RNG.random((h, w), dtype=np.float32)
    comp = Compositor()
    out = comp.blend(f, b, a)
    assert out.dtype == np.uint8 and out.shape == (h, w, 3)
    assert np.abs(out.astype(np.int16) - _ref_blend(f, b, a)).max() <= 1
    # Reusing the compositor (and its scratch buffers) with another size is fine.
    out2 = comp.blend(f[: h // 2 + 1], b[: h // 2 + 1], a[: h // 2 + 1])
    assert np.abs(out2.astype(np.int16) - _ref_blend(f, b, a)[: h // 2 + 1]).max() <= 1


@pytest.mark.parametrize("h", range(1, 6))
@pytest.mark.parametrize("w", range(1, 6))
def test_blend_tiny_pictures(h, w):
    # OpenCV's bindings read arrays of <= 4 elements in a column as a Scalar: 1x1 and 4x1
    # pictures came out wrong on OpenCV 5.1 (200 over 0 at alpha 1.0 gave 161).
    f = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
    b = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
    a = RNG.random((h, w), dtype=np.float32)
    a.flat[0] = 1.0
    out = Compositor().blend(f, b, a)
    assert np.abs(out.astype(np.int16) - _ref_blend(f, b, a)).max() <= 1
    assert (out.reshape(-1, 3)[0] == f.reshape(-1, 3)[0]).all()


def test_blend_endpoints_are_exact_and_uint8_alpha_accepted():
    f = np.full((5, 7, 3), 200, np.uint8)
    b = np.full((5, 7, 3), 10, np.uint8)
    a = np.zeros((5, 7), np.float32)
    a[:, 4:] = 1.0
    out = Compositor().blend(f, b, a)
    assert (out[:, :4] == 10).all() and (out[:, 4:] == 200).all()
    out8 = Compositor().blend(f, b, (a * 255).astype(np.uint8))
    assert np.array_equal(out, out8)


def test_bgra_is_straight_alpha():
    f = RNG.integers(0, 256, (9, 13, 3), dtype=np.uint8)
    a = RNG.random((9, 13), dtype=np.float32)
    out = Compositor().bgra(f, a)
    assert out.shape == (9, 13, 4)
    assert np.array_equal(out[..., :3], f)
    assert np.abs(out[..., 3].astype(int) - np.round(a * 255)).max() <= 1
    a8 = out[..., 3]
    assert alpha_to_u8(a8) is a8  # uint8 alpha passes through without a copy


def _sprite(h, w, bgr, alpha):
    s = np.zeros((h, w, 4), np.uint8)
    s[..., :3] = bgr
    s[..., 3] = alpha
    return premultiply(s)


def test_paste_translation_is_exact():
    pic = np.zeros((20, 30, 3), np.uint8)
    m = np.array([[1.0, 0, 5], [0, 1.0, 7]])
    assert paste_sprite(pic, _sprite(4, 6, (10, 20, 30), 255), m)
    assert (pic[7:11, 5:11] == (10, 20, 30)).all()
    pic[7:11, 5:11] = 0
    assert pic.max() == 0


def test_paste_half_transparent_over_known_colour():
    pic = np.full((10, 10, 3), 100, np.uint8)
    paste_sprite(pic, _sprite(4, 4, (200, 0, 50), 128), np.array([[1.0, 0, 3], [0, 1.0, 3]]))
    s = 128 / 255
    expected = np.round(np.array([200, 0, 50]) * s + 100 * (1 - s))
    assert np.abs(pic[4, 4].astype(int) - expected).max() <= 1
    assert (pic[0, 0] == 100).all()


@pytest.mark.parametrize("tx,ty", [(-3, -2), (27, 17), (-3, 17)])
def test_paste_clips_at_the_borders(tx, ty):
    pic = np.zeros((20, 30, 3), np.uint8)
    assert paste_sprite(
        pic, _sprite(6, 6, (255, 255, 255), 255), np.array([[1.0, 0, tx], [0, 1, ty]])
    )
    x0, y0 = max(tx, 0), max(ty, 0)
    x1, y1 = min(tx + 6, 30), min(ty + 6, 20)
    assert (pic[y0:y1, x0:x1] == 255).all()
    assert pic.sum() == 255 * 3 * (x1 - x0) * (y1 - y0)


def test_paste_outside_draws_nothing():
    pic = np.zeros((20, 30, 3), np.uint8)
    assert not paste_sprite(
        pic, _sprite(4, 4, (255, 0, 0), 255), np.array([[1.0, 0, 50], [0, 1, 5]])
    )
    assert (
        warp_sprite(_sprite(4, 4, (255, 0, 0), 255), np.array([[1.0, 0, -9], [0, 1, 0]]), (5, 5))
        is None
    )
    assert pic.max() == 0


def test_resampled_edges_have_no_dark_fringe():
    # White opaque square inside fully transparent *black* pixels: resampling straight colour
    # would drag black into the edge; premultiplied resampling must not.
    raw = np.zeros((20, 20, 4), np.uint8)
    raw[5:15, 5:15] = (255, 255, 255, 255)
    pic = np.full((60, 60, 3), 255, np.uint8)
    m = np.array([[1.37, 0.2, 10.3], [-0.2, 1.37, 12.7]])
    paste_sprite(pic, premultiply(raw), m)
    assert pic.min() >= 254


def test_behind_is_occluded_by_the_matte_bgr():
    h, w = 8, 12
    background = np.full((h, w, 3), 40, np.uint8)
    person = np.full((h, w, 3), 220, np.uint8)
    a = np.zeros((h, w), np.float32)
    a[:, :4] = 1.0
    a[:, 4:8] = 0.5
    pic = Compositor().blend(person, background, a)
    patch = _sprite(h, w, (0, 0, 255), 255)
    over(pic, patch, (0, 0, w, h), behind=(person, a))
    assert (pic[:, :4] == 220).all()  # fully covered by the person
    assert (pic[:, 8:] == (0, 0, 255)).all()  # no person: the sticker
    mid = np.round(0.5 * np.array([220, 220, 220]) + 0.5 * np.array([0, 0, 255]))
    assert np.abs(pic[:, 4:8].astype(int) - mid).max() <= 1  # soft edge: mixed exactly


def test_front_and_behind_on_transparent_output():
    h, w = 4, 6
    person = np.full((h, w, 3), 200, np.uint8)
    a = np.zeros((h, w), np.float32)
    a[:, :3] = 1.0
    for behind, left in ((False, (0, 0, 255)), (True, (200, 200, 200))):
        pic = Compositor().bgra(person, a)
        over(pic, _sprite(h, w, (0, 0, 255), 255), (0, 0, w, h), (person, a) if behind else None)
        assert (pic[:, :3, :3] == left).all()
        assert (pic[:, 3:, :3] == (0, 0, 255)).all()
        assert (pic[..., 3] == 255).all()
    # Half-transparent sticker in front of nothing: alpha 0.5, colour unchanged.
    pic = Compositor().bgra(person, np.zeros((h, w), np.float32))
    over(pic, _sprite(h, w, (10, 20, 30), 128), (0, 0, w, h))
    assert (np.abs(pic[..., :3].astype(int) - (10, 20, 30)) <= 1).all()
    assert (pic[..., 3] == 128).all()


@pytest.mark.parametrize("size", [(720, 1280), (61, 97)])
def test_blend_of_a_matte_blends_only_its_band(size):
    # A matte (0 and 1 almost everywhere): the person is copied over the background and the
    # band of fractional alpha blended; alpha within 1/1024 of 0 or 1 counts as 0 or 1.
    from livematte.ops.band import find_band

    h, w = size
    f = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
    b = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.clip((0.3 * min(h, w) - np.hypot(xx - w / 2, yy - h / 2)) / 6.0, 0, 1)
    a = a.astype(np.float32)
    a[0, :3] = (1e-4, 1.0 - 1e-4, 0.5)
    band = find_band(a)
    assert 0 < band.size < 0.25 * a.size  # the band path, not the dense one
    for given in (None, band):
        out = Compositor().blend(f, b, a, band=given)
        assert np.abs(out.astype(np.int16) - _ref_blend(f, b, a)).max() <= 1
        assert np.array_equal(out[a >= 1.0], f[a >= 1.0])
        assert np.array_equal(out[a <= 0.0], b[a <= 0.0])


@pytest.mark.parametrize("size", [(720, 1280), (61, 97), (3, 3)])
def test_blend_kept_colours_and_plain_background_change_nothing(size):
    # The estimator's kept band colours (no gather) and a one-colour background (Scalar
    # arithmetic, no gather) give the very bytes of the general path.
    from livematte.ops.band import find_band, put

    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.clip((0.3 * min(h, w) - np.hypot(xx - w / 2, yy - h / 2)) / 6.0 + 0.5, 0, 1)
    a = a.astype(np.float32)
    image = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
    plain = np.empty((h, w, 3), np.uint8)
    plain[:] = (200, 30, 90)
    band = find_band(a)
    colours = RNG.integers(0, 256, (band.size, 3), dtype=np.uint8)
    kept_fg, fg = image.copy(), image.copy()
    put(kept_fg, band, colours, keep=True)
    put(fg, band, colours)
    reference = Compositor().blend(fg, plain, a, band=find_band(a))
    for background, is_plain in ((plain, True), (plain.copy(), False)):
        out = Compositor().blend(kept_fg, background, a, band=band, plain=is_plain)
        assert np.array_equal(out, reference)
