"""Band solvers of the photo path: closed-form alpha and multi-level foreground colours."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from livematte.ops import band_solve as band
from livematte.ops.band_solve import closed_form_band, foreground_ml, pixels, points
from livematte.ops.refine import make_trimap


def two_colour_edge(w: int = 96, h: int = 64, seed: int = 0):
    """A soft vertical edge between two noisy colours: alpha is linear in the colour, so
    closed-form matting recovers it (Levin et al.'s colour line model holds exactly)."""
    rng = np.random.default_rng(seed)
    ramp = np.clip((np.arange(w) - w * 0.4) / (w * 0.2), 0.0, 1.0).astype(np.float32)
    alpha = np.broadcast_to(ramp, (h, w)).copy()
    fg = np.array([40, 80, 220], np.float32) + rng.normal(0, 2, (h, w, 3)).astype(np.float32)
    bg = np.array([200, 160, 30], np.float32)
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    return np.clip(image + 0.5, 0, 255).astype(np.uint8), alpha


def test_closed_form_band_recovers_a_soft_edge_and_keeps_known_pixels():
    image, truth = two_colour_edge()
    trimap = make_trimap((truth > 0.5).astype(np.float32), 14)
    assert (trimap == 0.5).any()
    out = closed_form_band(image, trimap)
    known = trimap != 0.5
    assert out.dtype == np.float32 and np.array_equal(out[known], trimap[known])
    unknown = ~known
    assert np.abs(out - truth)[unknown].mean() < 0.03
    assert np.abs(out - truth)[unknown].mean() < 0.2 * np.abs(0.5 - truth)[unknown].mean()


def dense_closed_form(image: np.ndarray, trimap: np.ndarray, epsilon: float = 1e-7):
    """The textbook solve, window by window into a dense Laplacian (small images only)."""
    h, w = trimap.shape
    colours = image.astype(np.float64).reshape(-1, 3) / 255.0
    laplacian = np.zeros((h * w, h * w))
    for y in range(1, h - 1):
        for x in range(1, w - 1):
            idx = np.array([(y + dy) * w + x + dx for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
            c = colours[idx] - colours[idx].mean(0)
            inv = np.linalg.inv((c.T @ c + epsilon * np.eye(3)) / 9.0)
            laplacian[np.ix_(idx, idx)] += np.eye(9) - (1.0 + c @ inv @ c.T) / 9.0
    t = trimap.ravel()
    unknown = (t != 0) & (t != 1)
    rhs = -laplacian[np.ix_(unknown, ~unknown)] @ t[~unknown]
    out = t.copy()
    out[unknown] = np.linalg.solve(laplacian[np.ix_(unknown, unknown)], rhs)
    return np.clip(out, 0, 1).reshape(h, w)


@pytest.mark.parametrize("solver", ["levels", "sparse"])
@pytest.mark.parametrize("shape", ["inside", "touching the border", "two people"])
def test_closed_form_band_matches_the_dense_textbook_solve(shape, solver, monkeypatch):
    if solver == "sparse":  # the wide-band fallback
        pytest.importorskip("scipy", reason="scipy not installed")
        monkeypatch.setattr(band, "LEVEL_WORK", 0)
    rng = np.random.default_rng(3)
    image = cv2.GaussianBlur(rng.uniform(0, 255, (30, 40, 3)).astype(np.uint8), (0, 0), 1.2)
    coarse = np.zeros((30, 40), np.float32)
    if shape == "two people":  # two bands that do not touch: two components to eliminate
        cv2.circle(coarse, (9, 15), 6, 1.0, -1)
        cv2.circle(coarse, (30, 15), 6, 1.0, -1)
    else:
        cv2.circle(coarse, (20, 26 if shape == "touching the border" else 15), 9, 1.0, -1)
    trimap = make_trimap(coarse, 3)
    assert (trimap == 0.5).any()
    ours = closed_form_band(image, trimap)
    assert np.abs(ours - dense_closed_form(image, trimap)).max() < 1e-6


def test_closed_form_band_nothing_unknown_is_the_trimap():
    image, _ = two_colour_edge(16, 12)
    trimap = np.zeros((12, 16))
    trimap[:, 8:] = 1.0
    assert np.array_equal(closed_form_band(image, trimap), trimap.astype(np.float32))


@pytest.mark.parametrize("size", [(120, 90), (1280, 720)])
def test_foreground_ml_takes_the_old_background_out_of_the_band(size):
    # 1280x720: the levels run on a reduced grid and the band reads from it
    w, h = size
    rng = np.random.default_rng(1)
    big = np.zeros((h * 4, w * 4), np.uint8)
    cv2.circle(big, (w * 2, h * 2), h * 3 // 2, 255, -1)
    alpha = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    fg_true = np.array([60, 90, 240], np.float32)
    bg = np.zeros((h, w, 3), np.float32)
    bg[:] = (30, 160, 40)
    bg += rng.normal(0, 6, bg.shape).astype(np.float32)
    image = alpha[..., None] * fg_true + (1 - alpha[..., None]) * bg
    image = np.clip(image + 0.5, 0, 255).astype(np.uint8)
    fg = foreground_ml(image, alpha)
    assert fg.shape == image.shape and fg.dtype == np.uint8
    opaque_or_clear = (alpha >= 1.0) | (alpha <= 0.0)
    assert np.array_equal(fg[opaque_or_clear], image[opaque_or_clear])
    band = (alpha > 0.05) & (alpha < 0.95)
    before = np.abs(image.astype(np.float32) - fg_true)[band].mean()
    after = np.abs(fg.astype(np.float32) - fg_true)[band].mean()
    assert after < 0.3 * before


def test_pixels_and_points():
    mask = np.zeros((5, 7), np.uint8)
    mask[1, 2] = mask[4, 6] = 255
    ys, xs = pixels(mask)
    assert sorted(zip(ys.tolist(), xs.tolist(), strict=True)) == [(1, 2), (4, 6)]
    assert pixels(np.zeros((3, 3), np.uint8))[0].size == 0
    grid = np.arange(12, dtype=np.float32).reshape(3, 4)
    # The same pixel centres as cv2.resize's bilinear upsampling.
    full = cv2.resize(grid, (8, 6), interpolation=cv2.INTER_LINEAR)
    ys, xs = np.nonzero(np.ones((6, 8), bool))
    assert np.allclose(points(grid, ys, xs, 0.5, 0.5)[:, 0], full[ys, xs], atol=1e-5)
