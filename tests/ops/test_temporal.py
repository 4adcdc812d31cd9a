"""Temporal stabilisation: flicker suppressed on still and moving bodies, no lag, resets."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from livematte.ops.temporal import AlphaStabilizer, CoarseMaskStabilizer

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


# --- CoarseMaskStabilizer: motion-compensated smoothing on the model grid --------------------

GH, GW = 144, 256


def textured_scene(x0: int, *, new_object: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A textured body (columns x0..x0+60) over a different textured background.

    The textures are smooth enough for optical flow to follow the body; returns (mask, guide).
    """
    rng = np.random.default_rng(3)
    background = cv2.GaussianBlur(rng.uniform(30, 110, (GH, GW)).astype(np.float32), (0, 0), 2)
    body = cv2.GaussianBlur(rng.uniform(100, 255, (GH, GW + 80)).astype(np.float32), (0, 0), 1.5)
    gray = background.copy()
    mask = np.zeros((GH, GW), np.float32)
    mask[20:, x0 : x0 + 60] = 1.0
    gray[20:, x0 : x0 + 60] = body[20:, 40:100]  # the body's texture moves with it
    if new_object:
        gray[40:80, 200:240] = 250.0  # something bright walks in: the old frame cannot explain it
    guide = cv2.cvtColor(np.clip(gray, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    return mask, guide


def test_coarse_first_frame_passes_through_and_input_untouched():
    mask, guide = textured_scene(60)
    before = mask.copy()
    out = CoarseMaskStabilizer(1.0).update(mask, guide)
    assert np.array_equal(out, mask) and np.array_equal(mask, before) and out is not mask


def test_coarse_flicker_on_a_moving_body_is_suppressed_without_lag():
    # The model's answer on a walking body flips patch by patch; the flow carries the history
    # along with the body, so the flips are averaged without the mask trailing the body.
    rng = np.random.default_rng(0)
    stab = CoarseMaskStabilizer(strength=1.0)
    raws, outs, truths = [], [], []
    for t in range(30):
        truth, guide = textured_scene(20 + 3 * t)
        raw = truth.copy()
        raw[rng.uniform(size=raw.shape) < 0.1] *= 0.5  # scattered one-frame dropouts
        raw = np.clip(raw + rng.normal(0, 0.05, raw.shape).astype(np.float32), 0, 1)
        raws.append(raw)
        outs.append(stab.update(raw, guide))
        truths.append(truth)
    inside = [cv2.erode(m, np.ones((9, 9), np.uint8)) > 0 for m in truths]  # body interior
    flicker = [
        np.mean([np.abs(a[t] - a[t - 1])[inside[t] & inside[t - 1]].mean() for t in range(10, 30)])
        for a in (raws, outs)
    ]
    # A fixed pixel sees a new point of the body every frame, so even a perfect average of
    # each point shows some change: about 0.4x here.
    assert flicker[1] < 0.5 * flicker[0]
    # No lag: along the body's moving edges the output is where the body is now.
    k = np.ones((7, 7), np.uint8)
    edges = [cv2.dilate(m, k) != cv2.erode(m, k) for m in truths]
    error = [
        np.mean([np.abs(a[t] - truths[t])[edges[t]].mean() for t in range(10, 30)])
        for a in (raws, outs)
    ]
    assert error[1] < error[0] + 0.01


def settled_on_still_scene() -> tuple[CoarseMaskStabilizer, np.ndarray, np.ndarray]:
    """A stabiliser that has seen the same still frame five times, and that frame."""
    mask, guide = textured_scene(60)
    stab = CoarseMaskStabilizer(strength=1.0)
    for _ in range(5):
        stab.update(mask, guide)
    return stab, mask, guide


def test_coarse_one_frame_flips_are_damped_kept_changes_adopted():
    stab, mask, guide = settled_on_still_scene()
    # A dropout on the body for one frame is averaged away.
    dropped = mask.copy()
    dropped[60:120, 65:115] = 0.2
    assert stab.update(dropped, guide)[60:120, 65:115].min() > 0.85
    assert stab.update(mask, guide)[60:120, 65:115].min() > 0.85
    # An unsure claim on the background: damped for one frame, adopted when kept.
    unsure = mask.copy()
    unsure[30:90, 150:200] = 0.7
    assert stab.update(unsure, guide)[30:90, 150:200].max() < 0.2
    assert stab.update(unsure, guide)[35:85, 155:195].min() > 0.5


def test_coarse_confident_new_person_is_taken_at_once():
    stab, mask, guide = settled_on_still_scene()
    found = mask.copy()
    found[30:90, 150:200] = 1.0  # the model is sure of someone it missed until now
    assert stab.update(found, guide)[35:85, 155:195].min() > 0.9


def test_coarse_mask_follows_where_the_warp_cannot_explain_the_image():
    stab = CoarseMaskStabilizer(strength=1.0)
    for _ in range(5):
        stab.update(*textured_scene(60))
    mask, guide = textured_scene(60, new_object=True)
    mask[40:80, 200:240] = 1.0
    out = stab.update(mask, guide)
    assert out[42:78, 202:238].min() > 0.95  # no fade-in over several frames


def test_coarse_resets_on_scene_cut_resolution_change_and_reset():
    mask, guide = textured_scene(60)
    stab = CoarseMaskStabilizer(strength=1.0)
    stab.update(mask, guide)
    other = np.zeros_like(mask)
    out = stab.update(other, 255 - guide)  # a different shot
    assert stab.cuts == 1 and np.array_equal(out, other)
    small = cv2.resize(mask, (128, 72))
    assert np.array_equal(stab.update(small, cv2.resize(guide, (128, 72))), small)
    stab.update(mask, guide)
    stab.reset()
    assert np.array_equal(stab.update(other, guide), other)


def test_coarse_tiny_grid_and_zero_strength_pass_through():
    rng = np.random.default_rng(1)
    tiny = rng.uniform(size=(9, 12)).astype(np.float32)
    tiny_guide = rng.integers(0, 255, (9, 12, 3), np.uint8)
    stab = CoarseMaskStabilizer(strength=1.0)
    for _ in range(3):  # too small for optical flow: untouched, no error
        out = stab.update(tiny, tiny_guide)
    assert np.array_equal(out, tiny)
    off = CoarseMaskStabilizer(strength=0.0)
    off.update(*textured_scene(60))
    mask, guide = textured_scene(62)
    assert np.array_equal(off.update(mask, guide), mask)
    with pytest.raises(ValueError, match="strength"):
        CoarseMaskStabilizer(strength=1.5)


def test_owned_mask_gives_the_same_values_and_keeps_the_history():
    """``own=True`` computes in the caller's array and keeps it as the history: the same
    values as the copying path, frame after frame."""
    mask, guide = person(40)
    rng = np.random.default_rng(1)
    copying, owning = AlphaStabilizer(strength=1.0), AlphaStabilizer(strength=1.0)
    for step in range(12):
        shifted = np.roll(mask, step // 3, axis=1)
        noisy = np.clip(shifted + rng.normal(0, 0.05, mask.shape).astype(np.float32), 0, 1)
        moved = np.roll(guide, step // 3, axis=1)
        expected = copying.update(noisy, moved)
        given = noisy.copy()
        out = owning.update(given, moved, own=True)
        assert out is given  # computed in place, no new array
        assert np.array_equal(out, expected)


def test_owned_mask_of_another_type_is_not_written():
    mask, guide = person(40)
    stab = AlphaStabilizer(strength=1.0)
    stab.update(mask, guide)
    as_float64 = mask.astype(np.float64)
    out = stab.update(as_float64, guide, own=True)
    assert out is not as_float64 and out.dtype == np.float32


def test_scene_cut_measure_is_the_mean_absolute_difference():
    """The uint8 path (cv2.norm) gives numpy's mean exactly; floats keep numpy's."""
    from livematte.ops.temporal import is_scene_cut

    rng = np.random.default_rng(2)
    for _ in range(20):
        a = rng.integers(0, 256, (144, 256), dtype=np.uint8)
        b = rng.integers(0, 256, (144, 256), dtype=np.uint8)
        mean = float(np.abs(a.astype(np.int32) - b.astype(np.int32)).mean())
        assert is_scene_cut(a, b, np.nextafter(mean, 0.0))
        assert not is_scene_cut(a, b, mean)
        assert is_scene_cut(a.astype(np.float32), b.astype(np.float32), mean - 0.01)
