"""Person-ROI fusion (``livematte.ops.person_roi``): the crop -> coarse-grid warp and the rules."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import pytest

from livematte.ops.person_roi import (
    ROI_FEATHER,
    crop_to_grid,
    fuse_crop_masks,
    fuse_person_masks,
)
from livematte.ops.pose_detection import Roi, crop_roi


@dataclass
class FakeMask:
    """Duck-typed ``PersonMask``: probability in the crop and its crop -> image matrix."""

    probability: np.ndarray
    crop_to_image: np.ndarray
    track_id: int = 0


def test_crop_to_grid_round_trips_a_rotated_crop():
    # A disc in a 640x480 image, cropped by a rotated ROI and warped back onto a 4x smaller
    # grid, lands where the image's own downscale puts it.
    w, h = 640, 480
    image = np.zeros((h, w), np.float32)
    cv2.circle(image, (300, 260), 90, 1.0, -1)
    roi = Roi(cx=310.0, cy=250.0, size=400.0, rotation=math.radians(25))
    crop = crop_roi(np.dstack([image] * 3), roi, 256)[..., 0]
    grid = (w // 4, h // 4)
    matrix = crop_to_grid(roi.crop_to_image(256), (w, h), grid)
    back = cv2.warpAffine(crop, matrix, grid, flags=cv2.INTER_LINEAR)
    expected = cv2.resize(image, grid, interpolation=cv2.INTER_AREA)
    inside = cv2.warpAffine(np.ones((256, 256), np.float32), matrix, grid) > 0.999
    assert np.abs(back - expected)[inside].mean() < 0.02
    # Same grid as the image: the matrix is the crop's own.
    np.testing.assert_allclose(
        crop_to_grid(roi.crop_to_image(256), (w, h), (w, h)), roi.crop_to_image(256), atol=1e-9
    )


def test_fuse_keeps_the_more_confident_probability_inside_the_crop_only():
    w, h = 400, 200  # the coarse grid is 200x100: half the image
    alpha = np.full((100, 200), 0.3, np.float32)
    alpha[:, 150:] = 0.05  # whole-frame model sure of background on the right
    prob = np.full((64, 64), 0.9, np.float32)  # crop sure of a person...
    prob[:, 48:] = 0.4  # ...but unsure in its right quarter
    # The crop covers image x 40..360, y 20..180 -> grid x 20..180, y 10..90.
    matrix = np.array([[5.0, 0.0, 40.0], [0.0, 2.5, 20.0]])
    fused = fuse_person_masks(alpha, [FakeMask(prob, matrix)], (w, h))
    assert fused.dtype == np.float32 and fused.shape == alpha.shape
    assert alpha[50, 100] == np.float32(0.3)  # input untouched
    np.testing.assert_allclose(fused[50, 60], 0.9, atol=1e-6)  # crop surer: it wins
    np.testing.assert_allclose(fused[50, 140], 0.3, atol=1e-6)  # 0.3 is surer than 0.4
    np.testing.assert_allclose(fused[50, 160], 0.05, atol=1e-6)  # whole frame surer
    # Outside the crop (its first pixel centre maps to grid (19.75, 9.75)): unchanged.
    np.testing.assert_allclose(fused[:9], alpha[:9])
    np.testing.assert_allclose(fused[:, :18], alpha[:, :18])
    # The feather: weight rises from ~0 at the crop's edge to 1 ROI_FEATHER crop pixels in.
    edge_row = fused[50, 20:40] - 0.3
    assert 0 < edge_row[0] < 0.1 * 0.6 and np.all(np.diff(edge_row) >= -1e-6)
    ramp_grid = ROI_FEATHER * 2.5  # crop px -> grid px (x scale 5 / 2)
    np.testing.assert_allclose(fused[50, 20 + math.ceil(ramp_grid)], 0.9, atol=1e-6)
    # No masks: a copy of the input.
    assert np.array_equal(fuse_person_masks(alpha, [], (w, h)), alpha)


def test_a_sure_person_mask_wins_over_a_sure_whole_frame_background():
    # A dark arm the whole-frame model is sure is background (0.05) and the landmark model
    # sure is the person (0.9): the person mask wins.  At 0.7 it is less sure than 0.05 is:
    # the whole frame keeps it.
    w = h = 64
    alpha = np.full((h, w), 0.05, np.float32)
    prob = np.full((64, 64), 0.9, np.float32)
    prob[:, 32:] = 0.7
    fused = fuse_person_masks(alpha, [FakeMask(prob, np.eye(2, 3))], (w, h))
    np.testing.assert_allclose(fused[32, 24], 0.9, atol=1e-6)
    np.testing.assert_allclose(fused[32, 40], 0.05, atol=1e-6)


def _disc_mask(cx: float, cy: float) -> np.ndarray:
    """64x64 crop probability: one person (a disc, 0.9) at crop pixel (cx, cy), 0 elsewhere."""
    prob = np.zeros((64, 64), np.float32)
    cv2.circle(prob, (int(cx), int(cy)), 10, 0.9, -1)
    return prob


def test_fusion_keeps_every_person_given_whatever_the_order():
    # Two people side by side whose crops overlap: each crop's mask holds its own person only
    # and is sure the other one is background.  The whole-frame mask is unsure of both.
    w = h = 200  # grid = image
    alpha = np.full((h, w), 0.3, np.float32)
    left = FakeMask(_disc_mask(24, 32), np.array([[2.0, 0.0, 40.0], [0.0, 2.0, 36.0]]))
    right = FakeMask(_disc_mask(40, 32), np.array([[2.0, 0.0, 32.0], [0.0, 2.0, 36.0]]))
    # left person at image (88, 100), right person at (112, 100): both inside both crops.
    for masks in ([left, right], [right, left]):
        fused = fuse_person_masks(alpha, masks, (w, h))
        assert fused[100, 88] > 0.85 and fused[100, 112] > 0.85


def test_a_person_mask_erases_only_near_its_person():
    # The whole-frame mask is fairly sure of a bleed along the person and of a bystander
    # nobody found farther off in the same crop: the person's mask, sure both are background,
    # removes the bleed but leaves the bystander to the whole-frame mask.
    w = h = 256  # one 256-pixel crop covering the image, grid = image
    alpha = np.full((h, w), 0.02, np.float32)
    alpha[118:138, 124:134] = 0.7  # bleed right next to the person (x 40..120)
    alpha[100:160, 180:210] = 0.75  # an unfound bystander
    prob = np.full((256, 256), 0.02, np.float32)
    cv2.circle(prob, (80, 128), 40, 0.98, -1)
    person = FakeMask(prob, np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    fused = fuse_person_masks(alpha, [person], (w, h))
    assert fused[128, 80] > 0.9
    assert fused[128, 128] < 0.1  # bleed gone
    assert fused[128, 195] == pytest.approx(0.75)  # bystander kept


def test_crop_masks_replace_the_whole_frame_mask_inside_their_crop():
    w, h = 400, 200
    alpha = np.full((100, 200), 0.02, np.float32)  # whole frame saw nobody (too small)
    prob = _disc_mask(32, 32)
    matrix = np.array([[1.0, 0.0, 200.0], [0.0, 1.0, 60.0]])  # crop at image x 200..264
    fused = fuse_crop_masks(alpha, [FakeMask(prob, matrix)], (w, h))
    assert fused[46, 116] > 0.85  # crop centre (232, 92) on the half-size grid
    assert fused[46, 60] == pytest.approx(0.02)  # outside: unchanged
    # Two overlapping crops that agree give the same; none gives a copy.
    twice = fuse_crop_masks(alpha, [FakeMask(prob, matrix)] * 2, (w, h))
    np.testing.assert_allclose(twice, fused, atol=1e-6)
    assert np.array_equal(fuse_crop_masks(alpha, [], (w, h)), alpha)


@dataclass
class FakeCrop:
    """Duck-typed ``CropMask`` with its looks filled black and mirrored past the edge."""

    probability: np.ndarray
    crop_to_image: np.ndarray
    refills: tuple[np.ndarray, ...] = ()


def test_a_crop_past_the_edge_is_the_median_of_its_three_fills():
    # A crop hanging over the top of the image: the streaked look says nobody, the black and
    # mirrored looks a person on the left; on the right only the black look does.
    w, h = 256, 128
    alpha = np.full((h, w), 0.02, np.float32)
    streaked = np.full((256, 256), 0.02, np.float32)
    black = np.full((256, 256), 0.95, np.float32)
    mirror = np.full((256, 256), 0.05, np.float32)
    mirror[:, :128] = 0.9
    matrix = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, -128.0]])  # crop rows 128.. on the image
    fused = fuse_crop_masks(alpha, [FakeCrop(streaked, matrix, (black, mirror))], (w, h))
    assert fused[64, 60] == pytest.approx(0.9, abs=1e-5)
    assert fused[64, 190] == pytest.approx(0.05, abs=1e-5)
    # Without other fills the crop replaces the views, as inside the image.
    alone = fuse_crop_masks(alpha, [FakeCrop(streaked, matrix)], (w, h))
    assert alone[64, 60] == pytest.approx(0.02, abs=1e-5)
    # A person mask past the edge is the median of its fills too.
    person = fuse_person_masks(alpha, [FakeCrop(streaked, matrix, (black, mirror))], (w, h))
    assert person[64, 60] == pytest.approx(0.9, abs=1e-5)
