"""Refinement: guided upsampling, closed-form band solve, foreground estimation."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from livematte.ops.refine import (
    closed_form_refine,
    estimate_foreground,
    estimate_foreground_blur_fusion,
    estimate_foreground_ml,
    fast_guided_upsample,
    fit_clip,
    guided_coefficients,
    make_trimap,
    thin_cores,
    upsample,
)

FG_COLOR = np.array([60, 90, 240], np.float32)  # light reddish person (BGR)


def scene(w: int = 320, h: int = 240, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A person-like blob (body ellipse + head) over a textured green background.

    Returns the BGR uint8 image and its true alpha (anti-aliased by supersampling).
    """
    rng = np.random.default_rng(seed)
    big = np.zeros((h * 4, w * 4), np.uint8)
    cv2.ellipse(big, (w * 2, h * 4), (w // 1, h * 2), 0, 0, 360, 255, -1)
    cv2.circle(big, (w * 2, h * 4 - h * 2 - h // 2), h // 2, 255, -1)
    alpha = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    texture = cv2.GaussianBlur(rng.uniform(0, 255, (h, w)).astype(np.float32), (0, 0), 2)
    bg = np.stack([texture * 0.3 + 20, texture * 0.4 + 60, texture * 0.3 + 20], -1)
    fg = FG_COLOR + rng.normal(0, 4, (h, w, 3)).astype(np.float32)
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    return np.clip(image + 0.5, 0, 255).astype(np.uint8), alpha


def coarse_of(alpha: np.ndarray, size: tuple[int, int] = (64, 48)) -> np.ndarray:
    """What a low-resolution segmentation model would give: small and soft."""
    small = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(small, (0, 0), 1.0)


def sad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).sum())


@pytest.mark.parametrize(
    ("src", "size", "expected"),
    [((48, 64), (128, 96), (96, 128)), ((96, 128), (64, 48), (48, 64)), ((5, 5), (5, 5), (5, 5))],
)
def test_upsample_shapes(src, size, expected):
    out = upsample(np.random.default_rng(0).random(src, dtype=np.float32), size)
    assert out.shape == expected and out.dtype == np.float32


def test_fit_clip_ramp():
    a = np.array([0.0, 0.01, 0.5, 0.99, 1.0], np.float32)
    out = fit_clip(a.copy(), 0.02, 0.98)
    assert out[0] == out[1] == 0.0 and out[3] == out[4] == 1.0
    assert out[2] == pytest.approx(0.5)


def test_guided_coefficients_identity_and_flat_guide():
    rng = np.random.default_rng(1)
    guide = rng.random((40, 50), dtype=np.float32)
    a, b = guided_coefficients(guide, guide.copy(), 2, 1e-6)
    assert np.allclose(a, 1.0, atol=1e-2) and np.allclose(b, 0.0, atol=1e-2)
    flat = np.full((40, 50), 0.5, np.float32)
    p = rng.random((40, 50), dtype=np.float32)
    a, b = guided_coefficients(flat, p, 2, 1e-3)
    assert np.allclose(a, 0.0, atol=1e-3)  # no guide structure: output is the local mean of p
    colour = np.dstack([guide, rng.random((40, 50, 2), dtype=np.float32)])
    a3, b3 = guided_coefficients(colour, guide.copy(), 2, 1e-6)
    assert a3.shape == (40, 50, 3)
    assert np.allclose(a3[..., 0], 1.0, atol=2e-2) and np.allclose(a3[..., 1:], 0.0, atol=2e-2)


@pytest.mark.parametrize("color", [False, True])
def test_fast_guided_upsample_beats_bilinear(color):
    image, truth = scene()
    coarse = coarse_of(truth)
    raw = upsample(coarse, (320, 240))
    refined = fast_guided_upsample(coarse, image, 8, 1e-4, color=color, clip=(0.02, 0.98))
    assert refined.shape == truth.shape and refined.dtype == np.float32
    assert refined.min() >= 0.0 and refined.max() <= 1.0
    assert sad(refined, truth) < 0.7 * sad(raw, truth)


@pytest.mark.parametrize(("w", "h"), [(4, 4), (1, 30), (30, 1), (16, 16)])
def test_fast_guided_upsample_tiny_images(w, h):
    image = np.full((h, w, 3), 128, np.uint8)
    out = fast_guided_upsample(np.full((48, 64), 0.7, np.float32), image, 8, 1e-4)
    assert out.shape == (h, w)
    assert np.allclose(out, 0.7, atol=1e-3)


def test_make_trimap_band():
    alpha = np.zeros((100, 100), np.float32)
    alpha[:, 50:] = 1.0
    tri = make_trimap(alpha, 5)
    assert set(np.unique(tri)) == {0.0, 0.5, 1.0}
    assert (tri[:, 45:55] == 0.5).all() and (tri[:, :40] == 0).all() and (tri[:, 60:] == 1).all()


def test_thin_cores_mark_the_middle_of_thin_parts_only():
    fg = np.zeros((60, 80), np.uint8)
    fg[10:50, 10:16] = 1  # a thin part, 6 px wide: nothing survives a band of 5
    fg[5:55, 40:75] = 1  # a wide one: its middle is the erosion's business
    fg[30, 30] = 1  # a speck: no core
    core = thin_cores(fg, 5)
    assert core[12:48, 12:14].all() and not core[:, 10].any() and not core[:, 15].any()
    assert not core[30, 30]
    assert not core[15:45, 40:45].any()  # a wide part keeps its band along its edges
    tri = make_trimap(fg.astype(np.float32), 5)
    assert (tri[20:40, 12:14] == 1.0).all()


def test_closed_form_refine_keeps_people_thinner_than_the_band():
    # A small person far away: a bar 8 px wide on a textured background, band 6 either side.
    # Without a known core the solve, with only background around, returned 0 and the person
    # vanished.
    image, _ = scene(160, 120)
    alpha = np.zeros((120, 160), np.float32)
    alpha[30:100, 30:38] = 1.0
    image[30:100, 30:38] = FG_COLOR.astype(np.uint8)
    out = closed_form_refine(alpha, image, band_width=6, solve_scale=1.0)
    assert (out[35:95, 32:36] > 0.9).all()
    assert out[:, 60:].max() < 0.05


def test_closed_form_refine_improves_soft_edge_and_keeps_the_rest():
    image, truth = scene(200, 150)
    guided = fast_guided_upsample(coarse_of(truth, (50, 38)), image, 6, 1e-2, clip=(0.02, 0.98))
    out = closed_form_refine(guided, image, band_width=8, solve_scale=1.0)
    assert out.shape == truth.shape and out.dtype == np.float32
    assert sad(out, truth) < sad(guided, truth)
    far = make_trimap(guided, 8) != 0.5
    assert np.array_equal(out[far], guided[far])


def test_closed_form_refine_all_known_is_noop():
    image, _ = scene(64, 48)
    ones = np.ones((48, 64), np.float32)
    assert np.array_equal(closed_form_refine(ones, image, 4, 0.5), ones)


def _fringe(fg_est: np.ndarray, alpha: np.ndarray) -> float:
    band = (alpha > 0.05) & (alpha < 0.95)
    return float(np.abs(fg_est.astype(np.float32) - FG_COLOR)[band].mean())


@pytest.mark.parametrize(
    ("method", "width", "height"),
    [("blur_fusion", 320, 240), ("ml", 320, 240), ("fast", 320, 240), ("fast", 1280, 720)],
)
def test_foreground_removes_old_background(method, width, height):
    # 1280x720 makes "fast" work at reduced resolution and upsample into the band
    image, truth = scene(width, height)
    fg = estimate_foreground(image, truth, method)
    assert fg.shape == image.shape and fg.dtype == np.uint8
    # Where alpha is 1 the foreground is the image itself.
    assert np.array_equal(fg[truth >= 1.0], image[truth >= 1.0])
    assert _fringe(fg, truth) < 0.5 * _fringe(image, truth)


def test_foreground_edge_cases():
    image, _ = scene(32, 24)
    for alpha in (np.zeros((24, 32), np.float32), np.ones((24, 32), np.float32)):
        assert np.array_equal(estimate_foreground_blur_fusion(image, alpha), image)
        assert np.array_equal(estimate_foreground_ml(image, alpha), image)
    with pytest.raises(ValueError, match="blur_fusion"):
        estimate_foreground(image, np.zeros((24, 32), np.float32), "magic")


def test_fast_foreground_reuses_the_models_grid_and_band():
    # The matting stage hands over the frame on the model's grid and the band it found: the
    # result is the same as working them out again (the grid is the same reduction).
    from livematte.ops.band import find_band
    from livematte.ops.blur_fusion import estimate_foreground_fast
    from livematte.ops.compose import resize_image

    image, truth = scene(1280, 720)
    small = resize_image(image, (256, 144))
    alone = estimate_foreground_fast(image, truth)
    handed = estimate_foreground_fast(image, truth, small, find_band(truth))
    assert np.abs(alone.astype(int) - handed.astype(int)).max() <= 2
    assert _fringe(handed, truth) < 0.5 * _fringe(image, truth)
    wrong = resize_image(image, (144, 144))  # not the frame's aspect: ignored
    assert np.abs(estimate_foreground_fast(image, truth, wrong).astype(int) - alone).max() <= 2
