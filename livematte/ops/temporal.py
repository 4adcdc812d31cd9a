"""Temporal stabilisation of per-frame person mattes (VIDEO and LIVE modes), in two steps.

Why: a per-frame segmentation model sees a slightly different picture every frame (sensor
noise, compression, auto-exposure, the person's own motion) and changes its mind: its soft
edge wobbles by a few percent even when nothing moves, and on a moving body whole patches
(a white shirt against a bright sky) come and go from one frame to the next.  At 30 fps both
read as flicker, the complaint users make most about matting tools.  Plain exponential
smoothing removes it but makes moving edges lag (ghosts).

Step 1, ``CoarseMaskStabilizer``: a *motion-compensated* exponential moving average of the
model's coarse mask, on the model's own small grid (256x144 for a 16:9 frame):

1. Dense optical flow from the current small grey frame back to the previous one (OpenCV's
   DIS flow, ultrafast preset one pyramid level finer: about 0.6 ms at 256x144 on one core).
2. The previous smoothed mask (and the previous grey frame) are warped along that flow, so
   the history sits where the person is *now*; a moving body is smoothed like a still one.
3. Per pixel ``m_t = warped + w * (raw_t - warped)``.  ``w`` is small (``1 - 0.9 * strength``)
   where the history can be trusted and 1 where it cannot:

   * the warp failed: the warped previous frame does not match the current one (occlusion,
     a limb faster than the flow, new content) - grey residual over ``warp_threshold``;
   * the model changed its answer *and kept it*: the same-signed change from the warped
     history on two frames in a row (opened with a 5x5 window so thin edge slivers do not
     count), while a one-frame dropout or flip is averaged away;
   * the model is sure of a new person there (above 0.9, up by more than 0.5 from the
     history, a blob again): a person walking in, or found late, is taken on the first frame.

Step 2, ``AlphaStabilizer``: a motion-*gated* moving average of the final full-resolution
alpha.  The guided filter maps image noise into alpha (``q = a I + b`` with a large ``a`` at
low-contrast edges), and that noise flickers just like the model's own wobble; it is smoothed
where the image is still and left alone where it moves (step 1 already made the coarse mask
consistent there; warping the full-resolution alpha as well measured no better and cost
2.5 ms at 720p).  For each pixel ``m_t = m_{t-1} + w * (raw_t - m_{t-1})``, ``w`` from how
much the *image* changed there:

1. ``d = gray_t - gray_{t-1}`` on the area-downsampled frame (downsampling already averages
   away most sensor noise); the frame-wide mean of ``d`` is subtracted so a global
   brightness / exposure change does not count as motion.
2. ``|d|`` is box-averaged (3x3) to ignore isolated noisy pixels, then dilated (max filter) by
   one cell so pixels right next to a moving region - where the edge is about to arrive -
   also count as moving.
   The motion map also remembers recent motion (``MOTION_MEMORY`` decay per frame), because
   the mask can trail a fast or motion-blurred limb by a frame or two; without the memory
   that trailing mask lands on a still image and is smoothed into a ghost.
3. ``w = w_static + (1 - w_static) * smoothstep(motion / motion_threshold)``, computed on
   the small grid and bilinearly resized to the alpha's resolution.

Limits, measured (scripts/eval_matting.py): a person whose colour matches the background
exactly produces no image change, so a real edge moving there follows with the still-region
time constant (~1/w_static frames).  A change of the model's mind, other than a confident
new person, is adopted one frame late (that is what tells it from a flip).

Resets: the state is dropped (first frame passes through unchanged) on ``reset()``, when the
grid size changes (resolution / aspect change), and on a scene cut - mean absolute grey
difference above ``scene_cut_threshold`` - because averaging across a cut would blend two
different shots.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["AlphaStabilizer", "CoarseMaskStabilizer"]

#: Per-frame decay of the motion map.  A pixel that moved recently still counts as moving for
#: a few frames: a fast or motion-blurred limb leaves the model's mask a frame or two after it
#: leaves the image, and smoothing that tail would leave a ghost of the limb behind.  A still
#: image has no memory, so a one-frame model dropout there is still damped.
MOTION_MEMORY = 0.7

#: Side (grid cells) of the opening applied to the "model changed its answer" map: a change
#: thinner than this (an edge shifting by a cell) is wobble to smooth, a blob is a decision.
CHANGE_OPENING = 5

#: A mask value the model is sure of, and the rise from the warped history above which such a
#: value starts to be taken at once (fully at a rise of 1).  Measured on real clips: the worst
#: frame's hole 11.6% -> 6.0% of the person (a head the model found late), flicker unchanged.
CONFIDENT = 0.9
RISE_START = 0.5

#: Grids smaller than this on either side are too small for optical flow; the coarse mask then
#: passes through and only the final-alpha step smooths.
MIN_FLOW_SIDE = 16


def _smoothstep(x: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, a smooth S between (no kink between "trust" and "follow")."""
    t = np.clip(x, 0.0, 1.0)
    square = t * t
    # (3 - 2t) t^2 in place: the same products as t * t * (3.0 - 2.0 * t), two temporaries
    # fewer (17 against 22 us at 256x144).
    t *= -2.0
    t += 3.0
    t *= square
    return t


_3X3 = np.ones((3, 3), np.uint8)


def _local_change(diff: np.ndarray) -> np.ndarray:
    """Per-cell size of a grey difference: frame-wide offset removed (an exposure change is
    not motion), 3x3 averaged (isolated noisy cells do not count), then grown by one cell.

    Modifies ``diff`` (a float32 temporary of the caller).
    """
    diff -= float(diff.mean())
    return cv2.dilate(cv2.blur(np.abs(diff), (3, 3)), _3X3)


def _gray(guide: np.ndarray) -> np.ndarray:
    return guide if guide.ndim == 2 else cv2.cvtColor(guide, cv2.COLOR_BGR2GRAY)


def is_scene_cut(gray: np.ndarray, prev_gray: np.ndarray, threshold: float) -> bool:
    """A new shot: the mean |grey-level difference| of two small grey frames over ``threshold``."""
    if gray.dtype == np.uint8 and prev_gray.dtype == np.uint8 and gray.size > 16:
        # cv2.norm sums the differences exactly, as numpy's mean does, but without holding
        # the GIL the I/O threads wait for (numpy's reduction: ~27 us a call at 256x144).
        return cv2.norm(gray, prev_gray, cv2.NORM_L1) / gray.size > threshold
    return float(cv2.absdiff(gray, prev_gray).mean()) > threshold


class _Smoother:
    """What both steps share: the strength -> weight mapping and the scene-cut test."""

    def __init__(self, strength: float, scene_cut_threshold: float) -> None:
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be in 0..1, got {strength}")
        self.strength = float(strength)
        self.scene_cut_threshold = float(scene_cut_threshold)
        #: How many times the state was dropped for a scene cut (for reports and tests).
        self.cuts = 0

    @property
    def w_static(self) -> float:
        """Blend weight of a new frame where the history is trusted (still or warped)."""
        return 1.0 - 0.9 * self.strength

    def _scene_cut(self, gray: np.ndarray, prev_gray: np.ndarray) -> bool:
        """Count and report a cut (``is_scene_cut``)."""
        cut = is_scene_cut(gray, prev_gray, self.scene_cut_threshold)
        self.cuts += int(cut)
        return cut


class CoarseMaskStabilizer(_Smoother):
    """Motion-compensated exponential smoothing of a coarse mask (see module docstring).

    Args:
        strength: 0 = off, 1 = strongest smoothing.
        scene_cut_threshold: mean |frame difference| in grey levels (0..255) that resets.
        warp_threshold: grey-level residual after warping at which the history is dropped.
        change_threshold: mask change (0..1), held two frames running, adopted at once.

    Example::

        stab = CoarseMaskStabilizer(strength=1.0)
        for mask, small in frames:   # mask hxw float32 on the grid of small (hxwx3 uint8 BGR)
            mask = stab.update(mask, small)
    """

    def __init__(
        self,
        strength: float = 0.7,
        scene_cut_threshold: float = 40.0,
        warp_threshold: float = 12.0,
        change_threshold: float = 1.0,
    ) -> None:
        super().__init__(strength, scene_cut_threshold)
        self.warp_threshold = max(float(warp_threshold), 1e-3)
        self.change_threshold = max(float(change_threshold), 1e-3)
        self._flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        # Ultrafast stops at 1/4 of the grid (a 256x144 grid gets 64x36 flow): one level finer
        # with sparser patches and fewer descent steps halves the error on a walking person
        # (0.13 -> 0.09 cells) for 0.3 ms more.
        self._flow.setFinestScale(1)
        self._flow.setPatchStride(6)
        self._flow.setGradientDescentIterations(6)
        self._kernel = np.ones((CHANGE_OPENING, CHANGE_OPENING), np.uint8)
        self._mask: np.ndarray | None = None
        self._gray: np.ndarray | None = None
        self._change: np.ndarray | None = None
        self._grid: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the history; the next frame passes through unchanged."""
        self._mask = self._gray = self._change = None

    def update(self, mask: np.ndarray, guide: np.ndarray) -> np.ndarray:
        """Stabilise one frame's coarse mask.

        Args:
            mask: hxw float32 in 0..1 (not modified).
            guide: hxwx3 uint8 BGR (or hxw grey) frame on the same grid as ``mask``.

        Returns:
            hxw float32 stabilised mask (a new array).
        """
        gray = np.ascontiguousarray(_gray(guide), dtype=np.uint8)
        mask = mask.astype(np.float32, copy=True)
        prev, prev_gray = self._mask, self._gray
        if (
            prev is None
            or prev_gray is None
            or prev.shape != mask.shape
            or prev_gray.shape != gray.shape
            or gray.shape != mask.shape
            or min(mask.shape) < MIN_FLOW_SIDE
            or self.strength == 0
        ):
            return self._store(mask, gray, None)
        if self._scene_cut(gray, prev_gray):
            return self._store(mask, gray, None)
        maps = self._maps(self._flow.calc(gray, prev_gray, None))
        warped = self._warp(prev, maps)
        # Does the warped previous frame explain this one?  Exposure drift is not a failure.
        residual = cv2.subtract(gray, self._warp(prev_gray, maps), dtype=cv2.CV_32F)
        misfit = _local_change(residual)
        # Did the model change its answer the same way on the previous frame too?
        change = mask - warped
        follow = misfit * (1.0 / self.warp_threshold)
        if self._change is not None and self._change.shape == change.shape:
            before = self._warp(self._change, maps)
            # min(|change|, |before|) where both have the same sign, else 0: the smaller of
            # the positive parts less the larger of the negative ones.  OpenCV's min/max with
            # a scalar take 4 us here against numpy's 15-18 (it promotes the Python float).
            kept = cv2.min(cv2.max(change, 0.0), cv2.max(before, 0.0))
            kept -= cv2.max(cv2.min(change, 0.0), cv2.min(before, 0.0))
            kept = cv2.morphologyEx(kept, cv2.MORPH_OPEN, self._kernel)
            follow = np.maximum(follow, kept * (1.0 / self.change_threshold))
        # A confident new "person" is taken at once: people walk in, and a model that missed
        # someone for a few frames catches up; a hole where the model is sure is the worst
        # artefact.  Drops still need two frames (dropouts are the common flip).
        rise = (change - RISE_START) * (1.0 / (1.0 - RISE_START))
        # Only where the model is sure: a multiply by the 0/1 test (10 against 55 us for the
        # masked assignment at 256x144).  Its zeros may be -0.0; the max with ``follow``
        # (never negative) below gives the same +0.0 as before.
        rise *= mask >= CONFIDENT
        follow = np.maximum(follow, cv2.morphologyEx(rise, cv2.MORPH_OPEN, self._kernel))
        w_static = self.w_static
        weight = w_static + (1.0 - w_static) * _smoothstep(follow)
        return self._store(warped + weight * change, gray, change)

    def _maps(self, flow: np.ndarray) -> np.ndarray:
        """Where each cell's flow points: hxwx2 float32 (x, y), one map for ``cv2.remap``
        (one add on the interleaved flow instead of two on its strided channels)."""
        h, w = flow.shape[:2]
        if self._grid is None or self._grid.shape != (h, w, 2):
            xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            self._grid = np.dstack([xs, ys])
        return flow + self._grid

    @staticmethod
    def _warp(image: np.ndarray, maps: np.ndarray) -> np.ndarray:
        return cv2.remap(image, maps, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def _store(self, mask: np.ndarray, gray: np.ndarray, change: np.ndarray | None) -> np.ndarray:
        self._mask, self._gray, self._change = mask, gray, change
        return mask.copy()


class AlphaStabilizer(_Smoother):
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
        super().__init__(strength, scene_cut_threshold)
        self.motion_threshold = max(float(motion_threshold), 1e-3)
        self._mask: np.ndarray | None = None
        self._gray: np.ndarray | None = None
        self._motion: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the history; the next frame passes through unchanged."""
        self._mask = None
        self._gray = None
        self._motion = None

    def update(self, mask: np.ndarray, guide: np.ndarray, *, own: bool = False) -> np.ndarray:
        """Stabilise one frame's alpha.

        Args:
            mask: HxW float32 alpha in 0..1 for this frame, any resolution (not modified,
                unless ``own``).
            guide: hxwx3 uint8 BGR (or hxw grey) small version of the frame; motion is
                measured on it (downsampling averages sensor noise away) and mapped to the
                mask's resolution.
            own: the caller hands ``mask`` over (a C-contiguous float32 array nothing else
                holds): the result is computed in it and kept as the history without a copy,
                so the caller must only read the returned array from then on.  Saves a
                full-resolution array and a pass over it per frame (the same values).

        Returns:
            HxW float32 stabilised alpha (a new array, or ``mask`` itself when ``own``).
        """
        own = own and mask.dtype == np.float32 and mask.flags.c_contiguous
        gray = _gray(guide).astype(np.float32)
        prev, prev_gray = self._mask, self._gray
        if (
            prev is None
            or prev_gray is None
            or prev.shape != mask.shape
            or prev_gray.shape != gray.shape
            or self.strength == 0
        ):
            return self._store(mask if own else mask.astype(np.float32, copy=True), gray, own)
        if self._scene_cut(gray, prev_gray):
            self._motion = None
            return self._store(mask if own else mask.astype(np.float32, copy=True), gray, own)
        motion = _local_change(gray - prev_gray)
        if self._motion is not None and self._motion.shape == motion.shape:
            motion = cv2.max(motion, self._motion * MOTION_MEMORY)
        self._motion = motion
        w_static = self.w_static
        weight = w_static + (1.0 - w_static) * _smoothstep(motion * (1.0 / self.motion_threshold))
        if weight.shape != mask.shape:
            weight = cv2.resize(
                weight, (mask.shape[1], mask.shape[0]), interpolation=cv2.INTER_LINEAR
            )
        # out = prev + weight * (mask - prev): three passes into the output; the history is
        # the output itself when the caller gave ``mask`` up, else updated in its own buffer.
        out = mask if own else np.empty(mask.shape, np.float32)
        np.subtract(mask, prev, out=out, dtype=np.float32)
        np.multiply(out, weight, out=out)
        np.add(out, prev, out=out)
        if own:
            self._mask = out
        else:
            np.copyto(prev, out)
        self._gray = gray
        return out

    def _store(self, mask: np.ndarray, gray: np.ndarray, shared: bool = False) -> np.ndarray:
        """Start a new history from ``mask`` (a private copy unless ``shared``), return it."""
        self._mask = mask if shared else mask.copy()
        self._gray = gray
        return mask
