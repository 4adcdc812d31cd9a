"""The background layer's picture operations (livematte.ops.background): lens blur, light wrap.

Their effect inside a composite (no bleeding of the person, edges only) is tested through the
stage in tests/stages/test_effects.py.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from livematte.ops.background import LensBlur, light_wrap


@pytest.mark.parametrize("radius", [3, 25, 60])
def test_blur_strength(radius):
    h, w = 120, 160
    checker = ((np.indices((h, w)).sum(axis=0) // 4) % 2 * 255).astype(np.uint8)
    image = cv2.merge([checker, checker, checker])
    out = LensBlur(radius).apply(image, np.zeros((h, w), np.float32))
    assert out.shape == image.shape
    core = out[20:-20, 20:-20].astype(float)
    assert core.std() < image.std() / (3 if radius == 3 else 10)
    # Blurring happens on squared values (lens-like highlights): mean sits above 127.5.
    assert 150 < core.mean() < 200
    flat = np.full((h, w, 3), 90, np.uint8)
    assert np.abs(LensBlur(radius).apply(flat, None).astype(int) - 90).max() <= 1


@pytest.mark.parametrize("w,h", [(1, 1), (1, 4), (4, 1), (3, 2)])
def test_light_wrap_on_tiny_pictures(w, h):
    # cv2.multiply(m, k) left 1x1 arrays unchanged on OpenCV 5.1 (scalar ambiguity).
    fg = np.full((h, w, 3), 200, np.uint8)
    bg = np.zeros((h, w, 3), np.uint8)
    out = light_wrap(fg, bg, np.zeros((h, w), np.float32), 0.5)
    assert np.abs(out.astype(int) - 100).max() <= 2
