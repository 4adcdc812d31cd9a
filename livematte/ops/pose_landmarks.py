"""BlazePose landmark model maths: heatmap refinement, projected results, per-person masks.

Pure NumPy/OpenCV, no model session: ``keypoints.py`` runs the model and turns its raw tensors
into ``LandmarkResult`` with ``decode_landmarks``.  Constants follow MediaPipe's pose landmark
graph (``pose_landmark_cpu.pbtxt`` and the calculators it names); no MediaPipe code is used.

Example::

    result = decode_landmarks(session.run({"image": crop}), roi, refine=True)
    mask = PersonMask(track_id, result.mask_logits, result.roi.crop_to_image(LANDMARK_SIZE))
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from livematte.ops.pose_detection import Roi

#: Landmark model input side and heatmap refinement window (``RefineLandmarksFromHeatmap``).
LANDMARK_SIZE = 256
HEATMAP_KERNEL = 7
HEATMAP_MIN_CONFIDENCE = 0.5
NUM_LANDMARKS = 33


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # tanh form: no overflow warnings for large logits, keeps the input dtype.
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


#: A person mask's logits, or a function computing them when first asked for (the landmark
#: model's mask decoder is a model of its own, ~6 ms per person on one core).
MaskLogits = np.ndarray | Callable[[], np.ndarray]


class _Deferred:
    """An array, or a function computing it on first use (once, whichever thread asks first)."""

    def __init__(self, value: MaskLogits) -> None:
        self._value: np.ndarray | None = None if callable(value) else value
        self._compute = value if callable(value) else None
        self._lock = threading.Lock()

    @property
    def done(self) -> bool:
        return self._value is not None

    def get(self) -> np.ndarray:
        if self._value is None:
            with self._lock:
                if self._value is None and self._compute is not None:
                    self._value = np.asarray(self._compute(), np.float32)
                    self._compute = None
        assert self._value is not None
        return self._value


class PersonMask:
    """The landmark model's segmentation for one person, in its ROI crop.

    ``logits`` may be given as a function: it then runs on first use of ``logits``,
    ``probability`` or ``to_image`` (once, whichever thread asks first), so a frame whose masks
    nobody reads (keypoints, stickers) never pays for them.  Pickling computes them.
    ``refills`` (the same, deferred too): when the ROI reaches past the image's edge, the
    logits of the same crop filled otherwise there, (2, 256, 256): black, then mirrored (the
    landmark model is fed the edge pixels replicated, as MediaPipe does);
    ``person_roi.fuse_person_masks`` takes the median of the three.

    Attributes:
        track_id: the person it belongs to (matches ``Person.track_id``).
        logits: (256, 256) float32 raw logits of "person" in the crop.
        crop_to_image: 2x3 affine matrix mapping crop pixels to source-image pixels.
    """

    def __init__(
        self,
        track_id: int,
        logits: MaskLogits,
        crop_to_image: np.ndarray,
        refills: MaskLogits | None = None,
    ) -> None:
        self.track_id = track_id
        self.crop_to_image = crop_to_image
        self._logits = _Deferred(logits)
        self._refills = None if refills is None else _Deferred(refills)

    @property
    def logits(self) -> np.ndarray:
        """(256, 256) float32 logits (computed now if they were deferred)."""
        return self._logits.get()

    @property
    def computed(self) -> bool:
        """True once the logits exist (given, or computed on first use)."""
        return self._logits.done

    @property
    def probability(self) -> np.ndarray:
        """(256, 256) float32 person probability in the crop."""
        return _sigmoid(self.logits).astype(np.float32)

    @property
    def refills(self) -> tuple[np.ndarray, ...]:
        """(256, 256) float32 person probabilities of the crop filled black and mirrored past
        the image's edge, when the ROI reaches past it (computed now if deferred); else ()."""
        if self._refills is None:
            return ()
        return tuple(_sigmoid(x).astype(np.float32) for x in self._refills.get())

    def to_image(self, width: int, height: int) -> np.ndarray:
        """Person probability warped into a ``height`` x ``width`` float32 image (0 outside)."""
        return cv2.warpAffine(
            self.probability,
            self.crop_to_image,
            (int(width), int(height)),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0.0,
        )

    def __getstate__(self) -> dict[str, object]:
        refills = None if self._refills is None else self._refills.get()
        return {
            "track_id": self.track_id,
            "logits": self.logits,
            "m": self.crop_to_image,
            "refills": refills,
        }

    def __setstate__(self, state: dict[str, object]) -> None:
        args = (state["track_id"], state["logits"], state["m"], state.get("refills"))
        self.__init__(*args)  # type: ignore[misc, arg-type]

    def __repr__(self) -> str:
        return f"PersonMask(track_id={self.track_id}, computed={self.computed})"


@dataclass
class LandmarkResult:
    """Raw output of the landmark model for one ROI, projected to source-image pixels.

    Attributes:
        score: pose flag (probability that a person is in the ROI).
        landmarks: (33, 4) float32 x, y (pixels), visibility, presence.
        aux: (2, 2) hip centre and scale point (pixels), for the next ROI.
        roi: the ROI the model saw.
        mask_logits: (256, 256) segmentation logits in the crop, or a function computing them
            (``MaskLogits``).
    """

    score: float
    landmarks: np.ndarray
    aux: np.ndarray
    roi: Roi
    mask_logits: MaskLogits

    def box(self, width: int, height: int) -> np.ndarray:
        """Axis-aligned box (l, t, r, b) of landmarks present in the image, clipped to it."""
        return landmarks_box(self.landmarks, width, height)


def landmarks_box(landmarks: np.ndarray, width: int, height: int) -> np.ndarray:
    """Box (l, t, r, b) around landmarks with presence >= 0.5 (all if none), clipped."""
    pts = landmarks[landmarks[:, 3] >= 0.5, :2] if landmarks.shape[1] > 3 else landmarks[:, :2]
    if len(pts) == 0:
        pts = landmarks[:, :2]
    lo = np.clip(pts.min(axis=0), 0, [width, height])
    hi = np.clip(pts.max(axis=0), 0, [width, height])
    return np.concatenate([lo, hi]).astype(np.float32)


def refine_from_heatmap(
    xy: np.ndarray,
    heatmap: np.ndarray,
    kernel: int = HEATMAP_KERNEL,
    min_confidence: float = HEATMAP_MIN_CONFIDENCE,
) -> np.ndarray:
    """Refine crop-fraction landmarks with the model's heatmap (vectorised).

    For each landmark, the sigmoid heatmap values in a ``kernel`` window around its cell give a
    weighted mean cell position; it replaces the regressed position when the window's peak is
    at least ``min_confidence``.  Landmarks outside the heatmap are kept as they are.

    Args:
        xy: (N, 2) positions as fractions of the crop.
        heatmap: (H, W, N) logits.
    """
    hm_h, hm_w, n = heatmap.shape
    out = np.array(xy, dtype=np.float64, copy=True)
    # C++ int conversion truncates toward zero; keep that so edge cases match the reference.
    col = np.trunc(out[:, 0] * hm_w).astype(np.int64)
    row = np.trunc(out[:, 1] * hm_h).astype(np.int64)
    inside = (col >= 0) & (col < hm_w) & (row >= 0) & (row < hm_h)
    half = (kernel - 1) // 2
    offs = np.arange(-half, half + 1)
    rows = row[:, None, None] + offs[None, :, None]  # (N, k, 1)
    cols = col[:, None, None] + offs[None, None, :]  # (N, 1, k)
    valid = (rows >= 0) & (rows < hm_h) & (cols >= 0) & (cols < hm_w)
    idx = np.arange(n)[:, None, None]
    vals = heatmap[np.clip(rows, 0, hm_h - 1), np.clip(cols, 0, hm_w - 1), idx]
    conf = _sigmoid(vals.astype(np.float64)) * valid
    total = conf.sum(axis=(1, 2))
    peak = conf.max(axis=(1, 2))
    ok = inside & (peak >= min_confidence) & (total > 0)
    safe = np.where(total > 0, total, 1.0)
    ref_x = (conf * cols).sum(axis=(1, 2)) / safe / hm_w
    ref_y = (conf * rows).sum(axis=(1, 2)) / safe / hm_h
    out[ok, 0] = ref_x[ok]
    out[ok, 1] = ref_y[ok]
    return out


def decode_landmarks(
    outputs: dict[str, np.ndarray], roi: Roi, refine: bool, mask: MaskLogits | None = None
) -> LandmarkResult:
    """The landmark model's raw outputs for the crop of ``roi`` as a ``LandmarkResult``.

    Args:
        outputs: "landmarks" (1, 195), "presence", when ``refine`` "heatmap" (1, 64, 64, 39),
            and "segmentation" (1, 256, 256, 1) unless ``mask`` is given.
        roi: the region the crop was sampled from (``crop_roi(image, roi, LANDMARK_SIZE)``).
        refine: move landmarks to their heatmap peaks (``refine_from_heatmap``).
        mask: the person mask's logits or a function computing them (the split-off decoder).
    """
    raw = outputs["landmarks"].reshape(-1, 5)
    xy = raw[:, :2].astype(np.float64) / LANDMARK_SIZE
    if refine:
        xy = refine_from_heatmap(xy, outputs["heatmap"][0])
    pts = roi.to_image(xy)
    lm = np.empty((NUM_LANDMARKS, 4), np.float32)
    lm[:, :2] = pts[:NUM_LANDMARKS]
    lm[:, 2:] = _sigmoid(raw[:NUM_LANDMARKS, 3:5])
    return LandmarkResult(
        score=float(outputs["presence"].reshape(-1)[0]),
        landmarks=lm,
        aux=pts[NUM_LANDMARKS : NUM_LANDMARKS + 2].astype(np.float32),
        roi=roi,
        mask_logits=outputs["segmentation"][0, :, :, 0] if mask is None else mask,
    )
