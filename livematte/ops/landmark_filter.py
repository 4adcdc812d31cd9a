"""Temporal filters for landmarks: a vectorised One Euro filter and a plain low-pass filter.

The One Euro filter (Casiez et al., CHI 2012) is an exponential smoother whose cutoff frequency
rises with the signal's speed: a still landmark is smoothed hard (no jitter), a fast one barely
(no lag).  This follows the behaviour of MediaPipe's ``LandmarksSmoothingCalculator``:

* the sampling frequency is re-estimated from the timestamps of consecutive samples;
* the speed is measured on the *raw* previous value and multiplied by ``value_scale`` so one set
  of parameters works for people of any size (callers pass ``1 / person_size_px``);
* the first sample passes through unchanged.

Example::

    f = OneEuroFilter(min_cutoff=0.05, beta=80.0)
    smoothed = f(landmarks_xy, t=frame.time, value_scale=1.0 / person_size_px)
"""

from __future__ import annotations

import math

import numpy as np

#: Frequency assumed until two timestamps have been seen (and when no time is given).
DEFAULT_FREQUENCY = 30.0


def _alpha(cutoff: np.ndarray | float, frequency: float) -> np.ndarray | float:
    """Exponential-smoothing factor of a first-order low-pass filter at ``cutoff`` Hz."""
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau * frequency)


class LowPassFilter:
    """Exponential smoothing ``s = alpha * x + (1 - alpha) * s``; the first sample passes through.

    Args:
        alpha: weight of the new sample, 0 < alpha <= 1 (MediaPipe smooths visibility with 0.1).
    """

    def __init__(self, alpha: float) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self._state: np.ndarray | None = None

    def __call__(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        if self._state is None or self._state.shape != values.shape:
            self._state = values.copy()
        else:
            self._state = self.alpha * values + (1.0 - self.alpha) * self._state
        return self._state.copy()

    def reset(self) -> None:
        """Forget the past: the next sample passes through."""
        self._state = None


class OneEuroFilter:
    """One Euro filter over an array of values (e.g. all 33 landmarks' x and y at once).

    Args:
        min_cutoff: cutoff (Hz) for a still signal; lower = smoother when still.
        beta: how fast the cutoff rises with speed (speed in ``value_scale`` units per second);
            higher = less lag when moving.
        derivative_cutoff: cutoff (Hz) of the low-pass filter on the speed estimate.
        frequency: sampling rate (Hz) assumed until timestamps tell otherwise.

    Raises:
        ValueError: a cutoff or the frequency is not positive.
    """

    def __init__(
        self,
        min_cutoff: float = 0.05,
        beta: float = 80.0,
        derivative_cutoff: float = 1.0,
        frequency: float = DEFAULT_FREQUENCY,
    ) -> None:
        if min_cutoff <= 0 or derivative_cutoff <= 0 or frequency <= 0:
            raise ValueError("min_cutoff, derivative_cutoff and frequency must be > 0")
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.derivative_cutoff = float(derivative_cutoff)
        self._default_frequency = float(frequency)
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next sample passes through."""
        self.frequency = self._default_frequency
        self._last_time: float | None = None
        self._last_raw: np.ndarray | None = None
        self._value: np.ndarray | None = None
        self._speed: np.ndarray | None = None

    def __call__(
        self, values: np.ndarray, t: float | None = None, value_scale: float = 1.0
    ) -> np.ndarray:
        """Filter one sample.

        Args:
            values: array of any shape (kept between calls; a new shape resets the filter).
            t: sample time in seconds; None means "one period after the previous sample".
            value_scale: multiplies the measured speed (pass ``1 / object_size``).

        Returns:
            The filtered values, float64, same shape as ``values``.
        """
        x = np.asarray(values, dtype=np.float64)
        if self._value is None or self._value.shape != x.shape:
            self.reset()
        if t is not None:
            if self._last_time is not None:
                if t <= self._last_time:
                    # Time went backwards or stood still (duplicated frame): MediaPipe returns
                    # the input as is; we keep the state and do the same.
                    return x.copy()
                self.frequency = 1.0 / (t - self._last_time)
            self._last_time = t
        if self._value is None or self._last_raw is None or self._speed is None:
            self._value = x.copy()
            self._last_raw = x.copy()
            self._speed = np.zeros_like(x)
            return x.copy()
        speed = (x - self._last_raw) * (value_scale * self.frequency)
        a_d = _alpha(self.derivative_cutoff, self.frequency)
        self._speed = a_d * speed + (1.0 - a_d) * self._speed
        cutoff = self.min_cutoff + self.beta * np.abs(self._speed)
        a = _alpha(cutoff, self.frequency)
        self._value = a * x + (1.0 - a) * self._value
        self._last_raw = x.copy()
        return self._value.copy()


class LandmarkSmoother:
    """Smooths one person's landmarks: positions by One Euro, visibility/presence by low-pass.

    Positions are in pixels; ``object_size`` (pixels, e.g. the ROI side before its margin)
    normalises speed so the same parameters suit near and far people.  Defaults are MediaPipe's
    ``pose_landmark_filtering`` values (min_cutoff 0.05, beta 80, derivative cutoff 1, and
    visibility low-pass alpha 0.1).

    Example::

        smoother = LandmarkSmoother()
        lm = smoother(lm, t=0.033, object_size=400.0)   # lm: (33, 4) x, y, visibility, presence
    """

    def __init__(
        self,
        min_cutoff: float = 0.05,
        beta: float = 80.0,
        derivative_cutoff: float = 1.0,
        visibility_alpha: float = 0.1,
    ) -> None:
        self._xy = OneEuroFilter(min_cutoff, beta, derivative_cutoff)
        self._scores = LowPassFilter(visibility_alpha)

    def reset(self) -> None:
        """Forget the past (a new person or a new shot)."""
        self._xy.reset()
        self._scores.reset()

    def __call__(self, landmarks: np.ndarray, t: float | None, object_size: float) -> np.ndarray:
        """Return a smoothed float32 copy of ``landmarks`` ((N, 4): x, y, visibility, presence)."""
        out = np.array(landmarks, dtype=np.float32, copy=True)
        scale = 1.0 / max(float(object_size), 1e-3)
        out[:, :2] = self._xy(landmarks[:, :2], t=t, value_scale=scale)
        if landmarks.shape[1] > 2:
            out[:, 2:] = self._scores(landmarks[:, 2:])
        return out
