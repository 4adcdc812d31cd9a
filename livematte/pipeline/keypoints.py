"""Body keypoints stage: person detection, 33 BlazePose landmarks, multi-person tracking.

Per frame (``KeypointStage.process``):

* IMAGE mode: the detector runs every call; each detection (best first, up to
  ``max_people``) gives a rotated ROI, the landmark model runs on a 256x256 crop of it, and
  people whose pose flag is below ``min_tracking_score`` are dropped.
* VIDEO / LIVE: each tracked person's ROI comes from the previous frame's auxiliary landmarks
  (hip centre and scale point, heavily smoothed as MediaPipe does), so the detector only runs
  when nobody is tracked, when a track was lost on this frame, and every ``detect_interval``
  frames while fewer than ``max_people`` are tracked.  Detections overlapping a tracked person
  are ignored; new people get fresh, increasing ``track_id`` values.  Landmarks are smoothed
  per person with a One Euro filter (``landmark_filter.py``) in source-image pixels.

The landmark model's 256x256 person mask is kept per person (``person_masks()``, also stored
as ``frame.person_masks``) so matting can fuse it.  Model constants follow MediaPipe's pose
graphs (see ``pose_detection.py``).

Example::

    stage = KeypointStage(config.keypoints, config.runtime)
    frame = stage.process(frame)
    for person in frame.people:
        print(person.track_id, person.landmark("nose"))
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from livematte.config import KeypointsConfig, RuntimeConfig
from livematte.frame import Frame, Mode, Person
from livematte.models.session import create_session
from livematte.pipeline.landmark_filter import LandmarkSmoother, OneEuroFilter
from livematte.pipeline.pose_detection import (
    ROI_SCALE,
    Detections,
    Roi,
    crop_roi,
    decode_detections,
    letterbox,
    remove_letterbox,
    roi_from_alignment,
    ssd_anchors,
    weighted_nms,
)

DETECTOR_MODEL = "pose_detection"
LANDMARK_MODEL = "pose_landmark_full"
#: Landmark model input side and heatmap refinement window (``RefineLandmarksFromHeatmap``).
LANDMARK_SIZE = 256
HEATMAP_KERNEL = 7
HEATMAP_MIN_CONFIDENCE = 0.5
NUM_LANDMARKS = 33
#: Auxiliary landmarks 33 (hip centre) and 34 (scale point) steer the next frame's ROI; MediaPipe
#: smooths them harder than the visible landmarks so the crop stays put while a person is still.
AUX_MIN_CUTOFF = 0.01
AUX_BETA = 10.0
#: Frame rate assumed for VIDEO frames without timestamps.
FALLBACK_FPS = 30.0


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # tanh form: no overflow warnings for large logits, keeps the input dtype.
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


@dataclass
class PersonMask:
    """The landmark model's segmentation for one person, in its ROI crop.

    Attributes:
        track_id: the person it belongs to (matches ``Person.track_id``).
        logits: (256, 256) float32 raw logits of "person" in the crop.
        crop_to_image: 2x3 affine matrix mapping crop pixels to source-image pixels.
    """

    track_id: int
    logits: np.ndarray
    crop_to_image: np.ndarray

    @property
    def probability(self) -> np.ndarray:
        """(256, 256) float32 person probability in the crop."""
        return _sigmoid(self.logits).astype(np.float32)

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


@dataclass
class LandmarkResult:
    """Raw output of the landmark model for one ROI, projected to source-image pixels.

    Attributes:
        score: pose flag (probability that a person is in the ROI).
        landmarks: (33, 4) float32 x, y (pixels), visibility, presence.
        aux: (2, 2) hip centre and scale point (pixels), for the next ROI.
        roi: the ROI the model saw.
        mask_logits: (256, 256) segmentation logits in the crop.
    """

    score: float
    landmarks: np.ndarray
    aux: np.ndarray
    roi: Roi
    mask_logits: np.ndarray

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


@dataclass
class _Track:
    track_id: int
    roi: Roi
    smoother: LandmarkSmoother
    aux_filter: OneEuroFilter = field(
        default_factory=lambda: OneEuroFilter(AUX_MIN_CUTOFF, AUX_BETA, 1.0)
    )


class KeypointStage:
    """Pipeline stage that fills ``frame.people`` with landmarks of up to ``max_people``.

    Args:
        config: detection/tracking/smoothing settings.
        runtime: execution providers and threads for both models.

    Raises:
        ModelError, ProviderError: a model cannot be loaded on the requested providers.

    Example::

        stage = KeypointStage(KeypointsConfig(enabled=True), RuntimeConfig(mode=Mode.VIDEO))
        people = stage.process(frame).people
    """

    def __init__(self, config: KeypointsConfig, runtime: RuntimeConfig) -> None:
        self.config = config
        self.runtime = runtime
        self._detector = create_session(DETECTOR_MODEL, runtime.providers, runtime.threads)
        self._landmarker = create_session(LANDMARK_MODEL, runtime.providers, runtime.threads)
        self._anchors = ssd_anchors()
        self._next_id = 0
        self.reset()

    @property
    def provider(self) -> str:
        """Execution provider that runs the landmark model ("cpu", "cuda", ...)."""
        return self._landmarker.provider

    def reset(self) -> None:
        """Drop all tracks (new shot or resolution change); track ids keep increasing."""
        self._tracks: list[_Track] = []
        self._frames_since_detect = 0
        self._size: tuple[int, int] | None = None
        self._last_time: float | None = None
        self._masks: list[PersonMask] = []
        self._live_frames = 0
        self._held: list[Person] = []

    def close(self) -> None:
        """Release the model sessions."""
        self._detector.close()
        self._landmarker.close()

    def person_masks(self) -> list[PersonMask]:
        """Per-person segmentation from the last processed frame (same order as its people)."""
        return list(self._masks)

    # -- models ---------------------------------------------------------------------------
    def detect(self, image: np.ndarray) -> Detections:
        """Person detections in source-image pixels, best first (after weighted NMS)."""
        tensor, pad = letterbox(image)
        out = self._detector.run({"image": tensor})
        dets = decode_detections(
            out["boxes"][0], out["scores"][0], self._anchors, self.config.min_detection_score
        )
        dets = weighted_nms(dets)
        return remove_letterbox(dets, pad, image.shape[1], image.shape[0])

    def landmarks(self, image: np.ndarray, roi: Roi) -> LandmarkResult:
        """Run the landmark model on one ROI of a BGR image."""
        crop = crop_roi(image, roi, LANDMARK_SIZE)
        # Colour conversion on the small crop is cheaper than on the whole frame.
        rgb = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32) * np.float32(1.0 / 255.0)
        out = self._landmarker.run({"image": rgb[None]})
        raw = out["landmarks"].reshape(-1, 5)
        xy = raw[:, :2].astype(np.float64) / LANDMARK_SIZE
        if self.config.refine_heatmap:
            xy = refine_from_heatmap(xy, out["heatmap"][0])
        pts = roi.to_image(xy)
        lm = np.empty((NUM_LANDMARKS, 4), np.float32)
        lm[:, :2] = pts[:NUM_LANDMARKS]
        lm[:, 2:] = _sigmoid(raw[:NUM_LANDMARKS, 3:5])
        return LandmarkResult(
            score=float(out["presence"].reshape(-1)[0]),
            landmarks=lm,
            aux=pts[NUM_LANDMARKS : NUM_LANDMARKS + 2].astype(np.float32),
            roi=roi,
            mask_logits=out["segmentation"][0, :, :, 0],
        )

    # -- stage ----------------------------------------------------------------------------
    def process(self, frame: Frame) -> Frame:
        """Fill ``frame.people`` and ``frame.timings['keypoints']`` (ms); returns ``frame``."""
        start = time.perf_counter()
        image = frame.image
        size = (image.shape[1], image.shape[0])
        if frame.mode is Mode.IMAGE or size != self._size:
            self.reset()
            self._size = size
        if frame.mode is Mode.IMAGE:
            results = self._detect_people(image, [])
            people = [self._person(i, r, size) for i, r in enumerate(results)]
            self._masks = [self._mask(p.track_id, r) for p, r in zip(people, results, strict=True)]
        elif frame.mode is Mode.LIVE and self._hold_landmarks():
            # LIVE may run the landmark model on every Nth frame only (keypoints.
            # landmark_interval): the people of the last run are shown in between, which
            # keeps stickers on the body at a fraction of the cost.
            people = self._held
        else:
            people = self._track(image, self._frame_time(frame), size)
            self._held = people
        frame.people = people
        frame.person_masks = self.person_masks()
        frame.timings["keypoints"] = (time.perf_counter() - start) * 1000.0
        return frame

    def _hold_landmarks(self) -> bool:
        """True on the LIVE frames between two landmark runs (never while nobody is tracked)."""
        self._live_frames += 1
        interval = self.config.landmark_interval
        return interval > 1 and bool(self._held) and self._live_frames % interval != 0

    def _frame_time(self, frame: Frame) -> float:
        t = frame.time
        if t is None:
            t = time.monotonic() if frame.mode is Mode.LIVE else frame.index / FALLBACK_FPS
        if self._last_time is not None and t <= self._last_time:
            t = self._last_time + 1.0 / FALLBACK_FPS  # repeated/unknown pts: keep time moving
        self._last_time = t
        return t

    def _duplicate(self, landmarks: np.ndarray, others: list[np.ndarray]) -> bool:
        """True when ``landmarks`` describe the same pose as one of ``others``.

        Poses are compared landmark by landmark (median distance relative to the pose's size)
        rather than by box overlap, so people standing behind one another are kept apart.
        """
        size = max(float(np.ptp(landmarks[:, 0])), float(np.ptp(landmarks[:, 1])), 1.0)
        for other in others:
            dist = np.linalg.norm(landmarks[:, :2] - other[:, :2], axis=1)
            if float(np.median(dist)) < self.config.duplicate_distance * size:
                return True
        return False

    def _detect_people(self, image: np.ndarray, taken: list[np.ndarray]) -> list[LandmarkResult]:
        """Detector + landmarks for people not in ``taken`` ((33, 4) landmarks, extended)."""
        dets = self.detect(image)
        found: list[LandmarkResult] = []
        for i in range(len(dets)):
            if len(taken) >= self.config.max_people:
                break
            roi = roi_from_alignment(dets.keypoints[i, 0], dets.keypoints[i, 1])
            if not math.isfinite(roi.size) or roi.size < 1.0:
                continue
            # The detector's box is a face box: one holding a known person's nose is that person,
            # and skipping it saves a landmark-model run.
            x0, y0, x1, y1 = dets.boxes[i]
            if any(x0 <= o[0, 0] <= x1 and y0 <= o[0, 1] <= y1 for o in taken):
                continue
            result = self.landmarks(image, roi)
            if result.score < self.config.min_tracking_score:
                continue
            if self._duplicate(result.landmarks, taken):
                continue
            taken.append(result.landmarks)
            found.append(result)
        return found

    def _track(self, image: np.ndarray, t: float, size: tuple[int, int]) -> list[Person]:
        kept: list[tuple[_Track, LandmarkResult]] = []
        taken: list[np.ndarray] = []
        lost = False
        for track in self._tracks:
            result = self.landmarks(image, track.roi)
            # Two tracks drifting onto one person: the older (listed first) wins.
            if result.score < self.config.min_tracking_score or self._duplicate(
                result.landmarks, taken
            ):
                lost = True
                continue
            kept.append((track, result))
            taken.append(result.landmarks)

        self._frames_since_detect += 1
        interval = self.config.detect_interval
        periodic = interval > 0 and self._frames_since_detect >= interval
        if not kept or lost or (periodic and len(kept) < self.config.max_people):
            self._frames_since_detect = 0
            for result in self._detect_people(image, taken):
                track = _Track(
                    self._next_id,
                    result.roi,
                    LandmarkSmoother(
                        self.config.min_cutoff, self.config.beta, self.config.derivative_cutoff
                    ),
                )
                self._next_id += 1
                kept.append((track, result))

        people: list[Person] = []
        self._masks = []
        for track, result in kept:
            # Object scale for speed normalisation: the ROI side without its training margin.
            object_size = result.roi.size / ROI_SCALE
            aux = track.aux_filter(result.aux, t=t, value_scale=1.0 / max(object_size, 1e-3))
            track.roi = roi_from_alignment(aux[0], aux[1])
            if self.config.smoothing:
                result.landmarks = track.smoother(result.landmarks, t, object_size)
            people.append(self._person(track.track_id, result, size))
            self._masks.append(self._mask(track.track_id, result))
        self._tracks = [track for track, _ in kept]
        return people

    @staticmethod
    def _mask(track_id: int, result: LandmarkResult) -> PersonMask:
        return PersonMask(track_id, result.mask_logits, result.roi.crop_to_image(LANDMARK_SIZE))

    @staticmethod
    def _person(track_id: int, result: LandmarkResult, size: tuple[int, int]) -> Person:
        box = result.box(*size)
        return Person(
            track_id=track_id,
            landmarks=result.landmarks.astype(np.float32),
            box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
            score=result.score,
        )
