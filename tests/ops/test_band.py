"""The band of fractional alpha: finding it, gathering, scattering and sampling there."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from livematte.ops.band import (
    SOFT_EPS,
    channels,
    find_band,
    find_small_band,
    opaque_mask,
    pixels_of,
    put,
    sample,
    take,
)

RNG = np.random.default_rng(5)


def _alpha(h: int, w: int) -> np.ndarray:
    """A disc with a soft edge, some exact 0/1 and values within SOFT_EPS of them."""
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(xx - w / 2, yy - h / 2) / (0.35 * min(h, w))
    alpha = np.clip((1.0 - r) * 4.0 + 0.5, 0.0, 1.0).astype(np.float32)
    alpha[0, 0] = SOFT_EPS / 2  # counts as background
    alpha[h // 2, w // 2] = 1.0 - SOFT_EPS / 2  # counts as person
    return alpha


@pytest.mark.parametrize(("h", "w"), [(1, 1), (2, 3), (48, 64), (720, 1280), (37, 211)])
def test_find_band_matches_numpy(h, w):
    alpha = _alpha(h, w)
    band = find_band(alpha)
    expected = np.flatnonzero((alpha > SOFT_EPS) & (alpha < 1.0 - SOFT_EPS))
    assert np.array_equal(band.index, expected)
    assert np.array_equal(band.index, band.ys * w + band.xs)
    assert np.array_equal(band.alpha, alpha.reshape(-1)[expected])
    assert band.size == expected.size and band.shape == (h, w) and band.source is alpha


def test_empty_band_and_opaque_mask():
    ones = np.ones((30, 40), np.float32)
    assert find_band(ones).size == 0 and find_band(np.zeros((30, 40), np.float32)).size == 0
    alpha = _alpha(30, 40)
    assert np.array_equal(opaque_mask(alpha) > 0, alpha >= 1.0 - SOFT_EPS)


@pytest.mark.parametrize(("h", "w", "c"), [(48, 64, 3), (48, 64, 4), (3, 2, 3), (720, 1280, 3)])
def test_take_and_put_round_trip(h, w, c):
    image = RNG.integers(0, 256, (h, w, c), dtype=np.uint8)
    alpha = _alpha(h, w)
    band = find_band(alpha)
    ys, xs = np.unravel_index(band.index, (h, w))
    assert np.array_equal(take(image, band), image[ys, xs])
    assert np.array_equal(take(alpha, band), band.alpha)
    out = image.copy()
    values = RNG.integers(0, 256, (band.size, c), dtype=np.uint8)
    put(out, band, values)
    assert np.array_equal(out[ys, xs], values)
    untouched = np.ones((h, w), bool)
    untouched[ys, xs] = False
    assert np.array_equal(out[untouched], image[untouched])
    matte = np.zeros((h, w), np.float32)
    put(matte, band, band.alpha)
    assert np.array_equal(matte[ys, xs], band.alpha)


def test_put_refuses_a_view_it_cannot_write_through():
    image = np.zeros((20, 40, 3), np.uint8)
    band = find_band(_alpha(20, 20))
    with pytest.raises(ValueError, match="contiguous"):
        put(image[:, :20], band, np.zeros((band.size, 3), np.uint8))


def test_sample_matches_resize():
    # Bilinear samples of a coarse field at full-resolution pixels = cv2.resize there (remap
    # quantises positions to 1/32 of a cell: the difference stays below that slope).
    grid = cv2.GaussianBlur(RNG.random((36, 64, 3), dtype=np.float32), (0, 0), 2)
    alpha = _alpha(144, 256)
    band = find_band(alpha)
    full = cv2.resize(grid, (256, 144), interpolation=cv2.INTER_LINEAR)
    ys, xs = np.unravel_index(band.index, (144, 256))
    got = sample(grid, band)
    assert got.shape == (band.size, 3)
    assert np.abs(got - full[ys, xs]).max() < 0.01
    single = sample(np.ascontiguousarray(grid[..., 0]), band)
    assert single.shape == (band.size,) and np.allclose(single, got[:, 0])


def test_pixels_of_and_channels():
    mask = np.zeros((10, 12), np.uint8)
    mask[2, 3] = mask[7, 11] = 255
    band = pixels_of(mask)
    assert list(band.index) == [2 * 12 + 3, 7 * 12 + 11] and not band.alpha.any()
    values = np.arange(50, dtype=np.float32)
    rep = channels(values, 3)
    assert rep.shape == (50, 3) and np.array_equal(rep, np.repeat(values[:, None], 3, axis=1))
    assert np.array_equal(channels(values[:4], 4), np.repeat(values[:4, None], 4, axis=1))


def test_find_small_band_gives_up_on_a_large_band():
    alpha = _alpha(48, 64)
    n = find_band(alpha).size
    assert find_small_band(alpha, n).size == n
    assert find_small_band(alpha, n - 1) is None


@pytest.mark.parametrize(("h", "w"), [(2, 3), (48, 64), (720, 1280)])
def test_cover_is_alpha_above_eps(h, w):
    alpha = _alpha(h, w)
    assert np.array_equal(find_band(alpha).cover > 0, alpha > SOFT_EPS)
    small = find_small_band(alpha, alpha.size)
    assert small is not None and np.array_equal(small.cover > 0, alpha > SOFT_EPS)


def test_kept_values_only_for_the_array_they_were_put_in():
    from livematte.ops.band import kept

    alpha = _alpha(48, 64)
    band = find_band(alpha)
    image = RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    values = RNG.integers(0, 256, (band.size, 3), dtype=np.uint8)
    other = image.copy()
    put(other, band, values)  # not kept
    assert kept(other, band) is None and kept(image, band) is None
    put(image, band, values, keep=True)
    got = kept(image, band)
    assert np.array_equal(got, values) and np.array_equal(got, take(image, band))
    assert not got.flags.writeable
    assert kept(image.copy(), band) is None and kept(image, find_band(alpha)) is None
    # The band holds the array weakly: once gone, an array at the same address is not it.
    del image, got
    assert all(ref() is None for ref, _ in band._kept.values())
