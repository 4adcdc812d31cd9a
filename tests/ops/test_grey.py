"""Telling black-and-white photos from colour ones (livematte.ops.grey)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from media import SHARED_DATA, needs_shared

from livematte.ops.grey import TOLERANCE, is_grey
from livematte.outputs import read_image

P3M = SHARED_DATA / "matting" / "p3m_pseudo_gt"
#: The p3m portraits that are black-and-white photos to begin with.
BLACK_AND_WHITE = ("p_514ca06a", "p_51c916fc", "p_71bcce3a")


def scene(width: int = 320, height: int = 240) -> np.ndarray:
    """A colourful BGR test picture: hue across, brightness down."""
    hue = np.tile(np.linspace(0, 179, width, dtype=np.float32), (height, 1))
    value = np.repeat(np.linspace(60, 255, height, dtype=np.float32)[:, None], width, 1)
    hsv = cv2.merge([hue, np.full_like(hue, 200), value]).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def to_grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


def test_colour_is_not_grey_and_its_grey_copy_is():
    image = scene()
    assert not is_grey(image)
    assert is_grey(to_grey(image))


def test_grey_jpeg_with_chroma_noise_is_grey():
    ycrcb = cv2.cvtColor(to_grey(scene(640, 480)), cv2.COLOR_BGR2YCrCb).astype(np.int16)
    rng = np.random.default_rng(0)
    ycrcb[..., 1:] += rng.integers(-2, 3, ycrcb[..., 1:].shape, dtype=np.int16)
    noisy = cv2.cvtColor(np.clip(ycrcb, 0, 255).astype(np.uint8), cv2.COLOR_YCrCb2BGR)
    assert not np.array_equal(noisy[..., 0], noisy[..., 2])  # the channels really differ
    ok, data = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 70])
    assert ok
    assert is_grey(cv2.imdecode(data, cv2.IMREAD_COLOR))


def test_16_bit_grey_png_is_grey_once_read(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 300), (200, 1)).astype(np.uint16)
    path = tmp_path / "grey16.png"
    assert cv2.imwrite(str(path), ramp)
    image = read_image(path)
    assert image.dtype == np.uint8 and image.shape == (200, 300, 3)
    assert is_grey(image)


def test_a_faint_toning_counts_as_grey_but_sepia_does_not():
    grey = to_grey(scene()).astype(np.int16)
    toned = grey.copy()
    toned[..., 2] += TOLERANCE // 2  # a little warmer everywhere
    assert is_grey(np.clip(toned, 0, 255).astype(np.uint8))
    sepia = (grey * np.array([0.75, 0.88, 1.0])).astype(np.uint8)
    assert not is_grey(sepia)


def test_a_small_coloured_logo_is_tolerated_a_large_one_is_not():
    image = to_grey(scene(400, 400))
    small = image.copy()
    small[:3, :100] = (0, 0, 255)  # 0.2% of the picture
    assert is_grey(small)
    large = image.copy()
    large[:40, :100] = (0, 0, 255)  # 2.5%
    assert not is_grey(large)


@needs_shared("matting", "p3m_pseudo_gt")
@pytest.mark.parametrize("path", sorted(P3M.glob("p_*[0-9a-f].jpg")), ids=lambda p: p.stem)
def test_p3m_portraits(path):
    image = cv2.imread(str(path))
    assert is_grey(image) == (path.stem in BLACK_AND_WHITE)
    assert is_grey(to_grey(image))
