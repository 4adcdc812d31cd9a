"""One Euro / low-pass filters: still input stays still, steps are followed, time is honoured."""

from __future__ import annotations

import numpy as np
import pytest

from livematte.ops.landmark_filter import LandmarkSmoother, LowPassFilter, OneEuroFilter

FPS = 30.0
SIZE = 300.0  # person size in pixels: speed is measured in sizes per second


def _run(f: OneEuroFilter, samples: np.ndarray) -> np.ndarray:
    return np.array([f(s, t=i / FPS, value_scale=1 / SIZE) for i, s in enumerate(samples)])


def test_first_sample_passes_through() -> None:
    f = OneEuroFilter()
    x = np.array([[10.0, 20.0], [30.0, 40.0]])
    assert f(x, t=0.0) == pytest.approx(x)


def test_still_noisy_input_is_steadied() -> None:
    rng = np.random.default_rng(1)
    samples = 200.0 + rng.normal(0, 1.5, (120, 33, 2))  # 1.5 px jitter on a still body
    out = _run(OneEuroFilter(0.05, 80.0), samples)
    jitter_in = np.abs(np.diff(samples[30:], axis=0)).mean()
    jitter_out = np.abs(np.diff(out[30:], axis=0)).mean()
    assert jitter_out < 0.35 * jitter_in


def test_step_is_followed_quickly() -> None:
    samples = np.concatenate([np.zeros((30, 1)), np.full((30, 1), 60.0)])  # 0.2 body sizes jump
    out = _run(OneEuroFilter(0.05, 80.0), samples)[:, 0]
    assert out[29] == pytest.approx(0.0)
    assert out[30 + 5] > 0.9 * 60.0
    assert out[-1] == pytest.approx(60.0, abs=0.5)


def test_fast_motion_has_little_lag() -> None:
    t = np.arange(60) / FPS
    samples = (300.0 * t)[:, None]  # one body size per second
    out = _run(OneEuroFilter(0.05, 80.0), samples)[:, 0]
    assert np.abs(out[20:] - samples[20:, 0]).max() < 5.0


def test_frequency_follows_timestamps() -> None:
    f = OneEuroFilter(frequency=30.0)
    f(np.zeros(2), t=1.0)
    f(np.ones(2), t=1.1)
    assert f.frequency == pytest.approx(10.0)
    # A repeated or earlier timestamp returns the input and leaves the state alone.
    assert f(np.full(2, 7.0), t=1.1) == pytest.approx([7.0, 7.0])
    assert f.frequency == pytest.approx(10.0)


def test_without_timestamps_uses_default_frequency() -> None:
    a, b = OneEuroFilter(frequency=30.0), OneEuroFilter(frequency=30.0)
    for i, v in enumerate([0.0, 5.0, 5.0, 6.0]):
        assert a(np.array([v])) == pytest.approx(b(np.array([v]), t=i / 30.0))


def test_reset_and_shape_change() -> None:
    f = OneEuroFilter()
    f(np.zeros(3), t=0.0)
    f(np.ones(3), t=0.1)
    f.reset()
    assert f(np.full(3, 9.0), t=0.2) == pytest.approx([9.0] * 3)
    assert f(np.full(4, 2.0), t=0.3) == pytest.approx([2.0] * 4)


@pytest.mark.parametrize(
    ("kwargs", "ok"),
    [
        ({}, True),
        ({"min_cutoff": 0.0}, False),
        ({"derivative_cutoff": -1.0}, False),
        ({"frequency": 0.0}, False),
    ],
)
def test_invalid_parameters(kwargs: dict[str, float], ok: bool) -> None:
    if ok:
        OneEuroFilter(**kwargs)
    else:
        with pytest.raises(ValueError):
            OneEuroFilter(**kwargs)


def test_low_pass_filter() -> None:
    f = LowPassFilter(0.1)
    assert f(np.array([1.0])) == pytest.approx([1.0])
    assert f(np.array([0.0])) == pytest.approx([0.9])
    with pytest.raises(ValueError):
        LowPassFilter(0.0)


def test_landmark_smoother_keeps_layout() -> None:
    s = LandmarkSmoother()
    lm = np.zeros((33, 4), np.float32)
    lm[:, 2:] = 1.0
    out = s(lm, 0.0, 200.0)
    assert out.shape == (33, 4) and out.dtype == np.float32
    lm2 = lm.copy()
    lm2[:, 2:] = 0.0
    out = s(lm2, 1 / 30, 200.0)
    assert out[:, 2:] == pytest.approx(np.full((33, 2), 0.9))  # visibility low-passed
