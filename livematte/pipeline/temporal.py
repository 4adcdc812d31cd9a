"""Temporal stabilisation of per-frame person alpha mattes (VIDEO and LIVE modes).

Why: a per-frame segmentation model sees a slightly different picture every frame (sensor
noise, compression, auto-exposure) and its soft edge wobbles by a few percent even when
nothing moves; at 30 fps that wobble reads as flicker, the complaint users make most about
matting tools.  Plain exponential smoothing removes it but makes moving edges lag (ghosts).

Method: a *motion-gated exponential moving average* of the final full-resolution alpha,
with the motion measured on the small frame the model already saw (a 256x144 grid).
Smoothing the *final* alpha (not only the model's mask) matters: the guided filter maps
image noise into alpha (``q = a I + b`` with a large ``a`` at low-contrast edges), and that
noise flickers just like the model's own wobble.

For each pixel the new mask is ``m_t = m_{t-1} + w * (raw_t - m_{t-1})``, where the weight
``w`` is chosen per pixel from how much the *image* changed there:

1. ``d = gray_t - gray_{t-1}`` on the area-downsampled frame (downsampling already averages
   away most sensor noise); the frame-wide mean of ``d`` is subtracted so a global
   brightness / exposure change does not count as motion.
2. ``|d|`` is box-averaged (3x3) to ignore isolated noisy pixels, then dilated (max filter) by
   one cell so pixels right next to a moving region - where the edge is about to arrive -
   also count as moving.
   The motion map also remembers recent motion (``MOTION_MEMORY`` decay per frame), because
   the model's mask can trail a fast or motion-blurred limb by a frame or two; without the
   memory that trailing mask lands on a still image and is smoothed into a ghost.
3. ``w = w_static + (1 - w_static) * smoothstep(motion / motion_threshold)``, computed on
   the small grid and bilinearly resized to the alpha's resolution.  Where the image
   is still, ``w = w_static = 1 - 0.9 * strength`` (strong averaging: the noise-driven
   wobble of the model is averaged over several frames); where the image moves, ``w -> 1``
   and the mask follows the new frame immediately, so moving edges never lag.

Limits, measured (scripts/eval_matting.py): a person whose colour matches the background
exactly produces no image change, so a real edge moving there follows with the still-region
time constant (~1/w_static frames).  After motion stops the average settles over a few frames.

The logic relies on the mask only having a reason to change where the image changed; a
model that changes its mind on a still image (pure flicker) is exactly what is smoothed.

Resets: the state is dropped (first frame passes through unchanged) on ``reset()``, when the
grid size changes (resolution / aspect change), and on a scene cut - mean absolute grey
difference above ``scene_cut_threshold`` - because averaging across a cut would blend two
different shots.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["AlphaStabilizer"]

#: Per-frame decay of the motion map.  A pixel that moved recently still counts as moving for
#: a few frames: a fast or motion-blurred limb leaves the model's mask a frame or two after it
#: leaves the image, and smoothing that tail would leave a ghost of the limb behind.  A still
#: image has no memory, so a one-frame model dropout there is still damped.
MOTION_MEMORY = 0.7


class AlphaStabilizer:
    """Motion-gated exponential smoothing of an alpha matte (see module docstring).

    Args:
        strength: 0 = off, 1 = strongest smoothing of still regions.
        scene_cut_threshold: mean |frame difference| in grey levels (0..255) that resets.
        motion_threshold: local grey-level change at which a pixel is fully "moving".

    Example::

        stab = AlphaStabilizer(strength=0.7)
        for alpha, small in frames:   # alpha HxW float32, small hxwx3 uint8 BGR frame
            alpha = stab.update(alpha, small)
    """

    def __init__(
        self,
        strength: float = 0.7,
        scene_cut_threshold: float = 40.0,
        motion_threshold: float = 6.0,
    ) -> None:
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be in 0..1, got {strength}")
        self.strength = float(strength)
        self.scene_cut_threshold = float(scene_cut_threshold)
        self.motion_threshold = max(float(motion_threshold), 1e-3)
        self._mask: np.ndarray | None = None
        self._gray: np.ndarray | None = None
        self._motion: np.ndarray | None = None
        #: How many times the state was dropped for a scene cut (for reports and tests).
        self.cuts = 0

    @property
    def w_static(self) -> float:
        """Blend weight of a new frame in still regions."""
        return 1.0 - 0.9 * self.strength

    def reset(self) -> None:
        """Forget the history; the next frame passes through unchanged."""
        self._mask = None
        self._gray = None
        self._motion = None

    def update(self, mask: np.ndarray, guide: np.ndarray) -> np.ndarray:
        """Stabilise one frame's alpha.

        Args:
            mask: HxW float32 alpha in 0..1 for this frame, any resolution (not modified).
            guide: hxwx3 uint8 BGR (or hxw grey) small version of the frame; motion is
                measured on it (downsampling averages sensor noise away) and mapped to the
                mask's resolution.

        Returns:
            HxW float32 stabilised alpha (a new array).
        """
        gray = guide if guide.ndim == 2 else cv2.cvtColor(guide, cv2.COLOR_BGR2GRAY)
        gray = gray.astype(np.float32)
        mask = mask.astype(np.float32, copy=True)
        prev, prev_gray = self._mask, self._gray
        if (
            prev is None
            or prev_gray is None
            or prev.shape != mask.shape
            or prev_gray.shape != gray.shape
            or self.strength == 0
        ):
            return self._store(mask, gray)
        diff = gray - prev_gray
        if float(np.abs(diff).mean()) > self.scene_cut_threshold:
            self.cuts += 1
            self._motion = None
            return self._store(mask, gray)
        diff -= float(diff.mean())
        motion = cv2.blur(np.abs(diff), (3, 3))
        motion = cv2.dilate(motion, np.ones((3, 3), np.uint8))
        if self._motion is not None and self._motion.shape == motion.shape:
            motion = cv2.max(motion, self._motion * MOTION_MEMORY)
        self._motion = motion
        t = np.minimum(motion * (1.0 / self.motion_threshold), 1.0)
        t = t * t * (3.0 - 2.0 * t)  # smoothstep: no kink between "still" and "moving"
        w_static = self.w_static
        weight = w_static + (1.0 - w_static) * t
        if weight.shape != mask.shape:
            weight = cv2.resize(
                weight, (mask.shape[1], mask.shape[0]), interpolation=cv2.INTER_LINEAR
            )
        # out = prev + weight * (mask - prev), in place to spare full-resolution temporaries
        np.subtract(mask, prev, out=mask)
        np.multiply(mask, weight, out=mask)
        np.add(mask, prev, out=mask)
        return self._store(mask, gray)

    def _store(self, mask: np.ndarray, gray: np.ndarray) -> np.ndarray:
        self._mask = mask
        self._gray = gray
        return mask.copy()
