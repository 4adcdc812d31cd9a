"""Motion-gated alpha stabilisation: flicker suppressed, moving edges not delayed, resets."""

from __future__ import annotations

import numpy as np
import pytest

from livematte.pipeline.temporal import AlphaStabilizer

H, W = 72, 128


def person(x0: int) -> tuple[np.ndarray, np.ndarray]:
    """A bright block on a dark textured background; returns (mask, BGR guide)."""
    rng = np.random.default_rng(7)
    guide = (rng.uniform(20, 60, (H, W, 1)) * np.ones((1, 1, 3))).astype(np.uint8)
    mask = np.zeros((H, W), np.float32)
    mask[10:, x0 : x0 + 40] = 1.0
    guide[mask > 0] = 200
    return mask, guide


def test_first_frame_passes_through_and_input_untouched():
    mask, guide = person(40)
    stab = AlphaStabilizer(0.7)
    before = mask.copy()
    out = stab.update(mask, guide)
    assert np.array_equal(out, mask) and np.array_equal(mask, before)
    assert out is not mask


def test_static_flicker_is_suppressed():
    mask, guide = person(40)
    rng = np.random.default_rng(0)
    stab = AlphaStabilizer(strength=0.7)
    outs, raws = [], []
    for _ in range(40):
        noisy = np.clip(mask + rng.normal(0, 0.05, mask.shape).astype(np.float32), 0, 1)
        raws.append(noisy)
        outs.append(stab.update(noisy, guide))
    flicker_raw = np.abs(np.diff(np.array(raws[9:]), axis=0)).mean()
    flicker_out = np.abs(np.diff(np.array(outs[9:]), axis=0)).mean()
    assert flicker_out < 0.5 * flicker_raw
    # Smoothing does not bias the mask: still close to the truth on average.
    assert np.abs(np.mean(outs[10:], axis=0) - mask).mean() < 0.03


def test_moving_edge_follows_immediately():
    stab = AlphaStabilizer(strength=1.0)
    for _ in range(5):
        stab.update(*person(30))
    moved_mask, moved_guide = person(50)
    out = stab.update(moved_mask, moved_guide)
    changed = np.abs(moved_mask - person(30)[0]) > 0
    # Where the person arrived or left, the new mask is taken as is (no ghost, no lag).
    assert np.abs(out - moved_mask)[changed].max() < 1e-3


def test_global_brightness_change_is_not_motion():
    mask, guide = person(40)
    stab = AlphaStabilizer(strength=1.0, motion_threshold=6.0)
    stab.update(mask, guide)
    brighter = np.clip(guide.astype(int) + 12, 0, 255).astype(np.uint8)
    out = stab.update(np.zeros_like(mask), brighter)
    # Still smoothing (weight 0.1): a model glitch on an exposure change is damped.
    assert out.max() == pytest.approx(0.9, abs=1e-3)


def test_scene_cut_resets():
    mask, guide = person(40)
    stab = AlphaStabilizer(strength=1.0, scene_cut_threshold=40)
    stab.update(mask, guide)
    other = np.zeros_like(mask)
    out = stab.update(other, 255 - guide)
    assert stab.cuts == 1 and np.array_equal(out, other)


def test_resolution_change_resets_and_reset_method():
    mask, guide = person(40)
    stab = AlphaStabilizer(strength=1.0)
    stab.update(mask, guide)
    small = np.full((36, 64), 0.25, np.float32)
    assert np.array_equal(stab.update(small, np.zeros((36, 64, 3), np.uint8)), small)
    stab.reset()
    zeros = np.zeros_like(mask)
    assert np.array_equal(stab.update(zeros, guide), zeros)


def test_strength_zero_is_passthrough():
    mask, guide = person(40)
    stab = AlphaStabilizer(strength=0.0)
    stab.update(mask, guide)
    other = np.full_like(mask, 0.3)
    assert np.array_equal(stab.update(other, guide), other)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"strength": 1.5}, ValueError), ({"strength": -0.1}, ValueError)],
)
def test_bad_arguments(kwargs, error):
    with pytest.raises(error):
        AlphaStabilizer(**kwargs)


def test_full_resolution_alpha_with_small_guide():
    stab = AlphaStabilizer(strength=1.0)
    small_mask, guide = person(30)
    big = np.kron(small_mask, np.ones((4, 4), np.float32))  # 4x the guide's resolution
    stab.update(big, guide)
    moved_small, moved_guide = person(50)
    moved = np.kron(moved_small, np.ones((4, 4), np.float32))
    out = stab.update(moved, moved_guide)
    assert out.shape == big.shape
    changed = np.abs(moved - big) > 0
    assert np.abs(out - moved)[changed].max() < 1e-3
    still = stab.update(np.zeros_like(moved), moved_guide)  # glitch on a still frame: damped
    assert still[moved > 0].min() == pytest.approx(0.9, abs=1e-3)


def test_mask_lagging_behind_the_image_leaves_no_ghost():
    # A fast limb: the image has already moved, the model's mask follows one frame later.
    # Where the limb was, the image is still by then; motion memory must let the mask clear.
    stab = AlphaStabilizer(strength=1.0, motion_threshold=6.0)
    old_mask, old_guide = person(30)
    new_mask, new_guide = person(45)  # a small move: a big one would count as a scene cut
    for _ in range(3):
        stab.update(old_mask, old_guide)
    stab.update(old_mask, new_guide)  # image moved, model late
    out = stab.update(new_mask, new_guide)  # image still, model catches up
    left_behind = (old_mask > 0) & (new_mask == 0)
    assert out[left_behind].max() < 0.05
