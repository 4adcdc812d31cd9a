"""BlazePose person detector maths: SSD anchors, box decoding, weighted NMS and ROIs.

Pure NumPy/OpenCV, no model session: ``keypoints.py`` feeds the detector's raw tensors in and
gets detections and regions of interest out.  Constants follow MediaPipe's graphs
(``pose_detection_cpu.pbtxt``, ``pose_detection_to_roi.pbtxt``, ``pose_landmarks_to_roi.pbtxt``)
and the calculators they name; no MediaPipe code is used.

Coordinate conventions: detections are in *source-image pixels*; a ``Roi`` is a square rotated
rectangle in pixels whose ``rotation`` (radians) turns the crop's axes into the image's
(positive = clockwise on screen, since image y points down).

Example::

    tensor, pad = letterbox(image_bgr)
    dets = decode_detections(boxes[0], scores[0, :, 0], ssd_anchors(), min_score=0.5)
    dets = remove_letterbox(weighted_nms(dets), pad, image.shape[1], image.shape[0])
    roi = roi_from_alignment(dets.keypoints[0, 0], dets.keypoints[0, 1])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

#: Detector input side (pixels); the model sees a letterboxed 224x224 RGB image in [-1, 1].
DETECTOR_SIZE = 224
#: SSD anchor options of the pose detector (``SsdAnchorsCalculator`` in pose_detection_cpu).
ANCHOR_STRIDES = (8, 16, 32, 32, 32)
ANCHOR_MIN_SCALE = 0.1484375
ANCHOR_MAX_SCALE = 0.75
ANCHOR_OFFSET = 0.5
#: Raw values per anchor: box (x, y, w, h) then 4 keypoints (x, y), all in 224-px units.
NUM_COORDS = 12
NUM_KEYPOINTS = 4
#: Logits are clipped to +-100 before the sigmoid (``score_clipping_thresh``).
SCORE_CLIP = 100.0
#: Weighted NMS merges boxes whose IoU exceeds this (``min_suppression_threshold``).
NMS_IOU = 0.3
#: ROI: rotate so the hip-centre -> scale-point vector points up (90 degrees), then add margin.
ROI_TARGET_ANGLE = math.pi / 2
ROI_SCALE = 1.25


@lru_cache(maxsize=4)
def ssd_anchors(
    input_size: int = DETECTOR_SIZE,
    strides: tuple[int, ...] = ANCHOR_STRIDES,
    offset: float = ANCHOR_OFFSET,
    anchors_per_cell: int = 2,
) -> np.ndarray:
    """Anchor centres (N, 2) as fractions of the input, in the model's output order.

    Consecutive layers with the same stride share one feature map; each layer contributes
    ``anchors_per_cell`` anchors per cell (one at the layer's scale and one interpolated between
    it and the next layer's, both of aspect 1; the pose model uses ``fixed_anchor_size`` so
    every anchor is 1x1 and only the centres matter).  For the pose detector:
    28*28*2 + 14*14*2 + 7*7*3*2 = 2254.
    """
    centres: list[np.ndarray] = []
    layer = 0
    while layer < len(strides):
        same = layer
        while same < len(strides) and strides[same] == strides[layer]:
            same += 1
        per_cell = anchors_per_cell * (same - layer)
        side = math.ceil(input_size / strides[layer])
        ys, xs = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
        grid = np.stack([(xs + offset) / side, (ys + offset) / side], axis=-1).reshape(-1, 2)
        centres.append(np.repeat(grid, per_cell, axis=0))
        layer = same
    anchors = np.concatenate(centres).astype(np.float32)
    anchors.setflags(write=False)
    return anchors


@dataclass
class Detections:
    """A set of person detections (K of them).

    Attributes:
        scores: (K,) probabilities.
        boxes: (K, 4) xmin, ymin, xmax, ymax (fractions of the detector input, or pixels after
            ``remove_letterbox``).  The box covers the face; the body is found via keypoints.
        keypoints: (K, 4, 2): hip centre, full-body scale/rotation point, shoulder centre,
            upper-body scale/rotation point.
    """

    scores: np.ndarray
    boxes: np.ndarray
    keypoints: np.ndarray

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @staticmethod
    def empty() -> Detections:
        """No detections."""
        return Detections(
            np.zeros(0, np.float32), np.zeros((0, 4), np.float32), np.zeros((0, 4, 2), np.float32)
        )


def letterbox(image_bgr: np.ndarray, size: int = DETECTOR_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Fit a BGR image into ``size`` x ``size`` keeping its aspect, centred, padded with black.

    Returns:
        (tensor, padding): tensor (1, size, size, 3) float32 RGB in [-1, 1] (padding is -1, as
        MediaPipe's zero border becomes -1 after range conversion); padding (4,) left, top, right,
        bottom as fractions of ``size``.
    """
    h, w = image_bgr.shape[:2]
    s = size / max(w, h)
    ox, oy = (size - w * s) / 2.0, (size - h * s) / 2.0
    m = np.array([[s, 0.0, ox], [0.0, s, oy]], dtype=np.float64)
    # One warp does resize + pad; corners map to corners as in MediaPipe's ImageToTensor.
    small = cv2.warpAffine(
        image_bgr, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
    tensor = rgb.astype(np.float32) * (2.0 / 255.0) - 1.0
    pad = np.array([ox / size, oy / size, ox / size, oy / size], dtype=np.float32)
    return tensor[None], pad


def decode_detections(
    raw_boxes: np.ndarray,
    raw_scores: np.ndarray,
    anchors: np.ndarray,
    min_score: float = 0.5,
    scale: float = DETECTOR_SIZE,
) -> Detections:
    """Turn raw regressors into detections above ``min_score`` (input fractions).

    Args:
        raw_boxes: (N, 12) per anchor: x, y, w, h offsets then 4 keypoints (x, y), in ``scale``
            pixels relative to the anchor centre (anchors are 1x1, so no size factor).
        raw_scores: (N,) or (N, 1) logits.
        anchors: (N, 2) anchor centres from ``ssd_anchors()``.
        min_score: probability threshold.
    """
    # float64: exp(100) overflows float32.
    raw_scores = np.asarray(raw_scores, dtype=np.float64).reshape(-1)
    raw_boxes = np.asarray(raw_boxes, dtype=np.float32).reshape(-1, NUM_COORDS)
    if raw_boxes.shape[0] != anchors.shape[0] or raw_scores.shape[0] != anchors.shape[0]:
        raise ValueError(
            f"expected {anchors.shape[0]} anchors, got boxes {raw_boxes.shape} "
            f"and scores {raw_scores.shape}"
        )
    scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores, -SCORE_CLIP, SCORE_CLIP)))
    keep = np.flatnonzero(scores >= min_score)
    if keep.size == 0:
        return Detections.empty()
    raw = raw_boxes[keep] / scale
    centre = anchors[keep]
    cxcy = raw[:, 0:2] + centre
    half = raw[:, 2:4] / 2.0
    boxes = np.concatenate([cxcy - half, cxcy + half], axis=1)
    kps = raw[:, 4:].reshape(-1, NUM_KEYPOINTS, 2) + centre[:, None, :]
    # A negative or NaN size is a broken regression; MediaPipe drops those too.
    ok = np.all(raw[:, 2:4] >= 0, axis=1)
    return Detections(scores[keep][ok].astype(np.float32), boxes[ok], kps[ok].astype(np.float32))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix between boxes a (A, 4) and b (B, 4), both xmin, ymin, xmax, ymax."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def weighted_nms(
    dets: Detections, iou_threshold: float = NMS_IOU, max_count: int | None = None
) -> Detections:
    """Weighted non-maximum suppression (MediaPipe's WEIGHTED algorithm).

    Take the best remaining detection, gather every remaining one overlapping it by IoU >
    ``iou_threshold`` (itself included), and output the score-weighted mean of their boxes and
    keypoints with the best one's score.  Averaging many overlapping anchors gives steadier
    boxes than keeping the single best.
    """
    if len(dets) == 0:
        return dets
    order = np.argsort(-dets.scores, kind="stable")
    remaining = order
    scores: list[float] = []
    boxes: list[np.ndarray] = []
    kps: list[np.ndarray] = []
    while remaining.size and (max_count is None or len(scores) < max_count):
        best = remaining[0]
        iou = box_iou(dets.boxes[best], dets.boxes[remaining])[0]
        group = remaining[iou > iou_threshold]
        if group.size == 0:  # zero-area box: it cannot even overlap itself
            group = remaining[:1]
        w = dets.scores[group].astype(np.float64)
        total = w.sum()
        scores.append(float(dets.scores[best]))
        boxes.append((dets.boxes[group] * w[:, None]).sum(axis=0) / total)
        kps.append((dets.keypoints[group] * w[:, None, None]).sum(axis=0) / total)
        remaining = remaining[~np.isin(remaining, group)]
    return Detections(
        np.array(scores, np.float32),
        np.array(boxes, np.float32).reshape(-1, 4),
        np.array(kps, np.float32).reshape(-1, NUM_KEYPOINTS, 2),
    )


def remove_letterbox(dets: Detections, padding: np.ndarray, width: int, height: int) -> Detections:
    """Map detections from letterboxed input fractions to source-image pixels."""
    left, top, right, bottom = (float(p) for p in padding)
    sx = width / (1.0 - left - right)
    sy = height / (1.0 - top - bottom)
    boxes = dets.boxes.copy()
    boxes[:, [0, 2]] = (boxes[:, [0, 2]] - left) * sx
    boxes[:, [1, 3]] = (boxes[:, [1, 3]] - top) * sy
    kps = dets.keypoints.copy()
    kps[..., 0] = (kps[..., 0] - left) * sx
    kps[..., 1] = (kps[..., 1] - top) * sy
    return Detections(dets.scores.copy(), boxes, kps)


def normalize_radians(angle: float) -> float:
    """Wrap an angle to [-pi, pi)."""
    return angle - 2.0 * math.pi * math.floor((angle + math.pi) / (2.0 * math.pi))


@dataclass(frozen=True)
class Roi:
    """A rotated square region of interest in source-image pixels.

    Attributes:
        cx, cy: centre.
        size: side length.
        rotation: radians; the crop's "up" is the image direction (sin r, -cos r).
    """

    cx: float
    cy: float
    size: float
    rotation: float

    def crop_to_image(self, crop_size: int) -> np.ndarray:
        """2x3 affine matrix mapping crop pixels (u, v) in [0, crop_size] to image pixels.

        The crop's corners land on the rotated square's corners, as MediaPipe's ImageToTensor
        maps them; use with ``cv2.WARP_INVERSE_MAP`` to sample the crop.
        """
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        k = self.size / crop_size
        half = self.size / 2.0
        return np.array(
            [
                [c * k, -s * k, self.cx - c * half + s * half],
                [s * k, c * k, self.cy - s * half - c * half],
            ],
            dtype=np.float64,
        )

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Project points given as crop fractions (..., 2) in [0, 1] to image pixels."""
        p = np.asarray(points, dtype=np.float64) - 0.5
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        x = (c * p[..., 0] - s * p[..., 1]) * self.size + self.cx
        y = (s * p[..., 0] + c * p[..., 1]) * self.size + self.cy
        return np.stack([x, y], axis=-1)

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """Inverse of ``to_image``: image pixels (..., 2) to crop fractions."""
        p = np.asarray(points, dtype=np.float64)
        dx, dy = (p[..., 0] - self.cx) / self.size, (p[..., 1] - self.cy) / self.size
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        return np.stack([c * dx + s * dy + 0.5, -s * dx + c * dy + 0.5], axis=-1)

    def corners(self) -> np.ndarray:
        """(4, 2) pixel corners of the crop: top-left, top-right, bottom-right, bottom-left."""
        return self.to_image(np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=np.float64))

    def bounds(self) -> np.ndarray:
        """Axis-aligned bounding box (xmin, ymin, xmax, ymax) of the rotated square."""
        c = self.corners()
        return np.concatenate([c.min(axis=0), c.max(axis=0)])

    def past_edge(self, width: int, height: int) -> bool:
        """True when the square reaches past the edge of a ``width`` x ``height`` image (its
        crop then holds pixels ``crop_roi`` made up, ``FILLS``)."""
        x0, y0, x1, y1 = self.bounds()
        return bool(x0 < 0.0 or y0 < 0.0 or x1 > width or y1 > height)


def roi_from_alignment(
    centre: np.ndarray, scale_point: np.ndarray, scale: float = ROI_SCALE
) -> Roi:
    """ROI from two alignment points (MediaPipe's AlignmentPointsRects + RectTransformation).

    The square is centred on ``centre`` (the hip centre), its side is twice the distance to
    ``scale_point`` times ``scale``, and it is rotated so that centre -> scale_point points up
    in the crop.  Used both for detector keypoints 0, 1 and for the landmark model's auxiliary
    landmarks 33, 34.
    """
    x0, y0 = float(centre[0]), float(centre[1])
    x1, y1 = float(scale_point[0]), float(scale_point[1])
    size = 2.0 * math.hypot(x1 - x0, y1 - y0)
    rotation = normalize_radians(ROI_TARGET_ANGLE - math.atan2(-(y1 - y0), x1 - x0))
    return Roi(x0, y0, size * scale, rotation)


#: How ``crop_roi`` fills a crop where it reaches past the image: the edge pixels replicated
#: (MediaPipe's default, what the landmark model is fed), black (a letterboxed input's padding)
#: or the image mirrored at its edge.
FILLS = {
    "replicate": cv2.BORDER_REPLICATE,
    "black": cv2.BORDER_CONSTANT,
    "mirror": cv2.BORDER_REFLECT_101,
}
#: The other fills a crop past the image's edge is looked at with (the closer looks and the
#: landmark model's person masks): the per-pixel median of the three is what the crop says
#: whatever the fill (``person_roi.fuse_crop_masks``).
REFILLS = ("black", "mirror")


def crop_roi(
    image: np.ndarray, roi: Roi, crop_size: int, *, fill: str = "replicate"
) -> np.ndarray:
    """Sample the ROI into a ``crop_size`` square (bilinear); outside the image it is filled
    as ``fill`` says (``FILLS``: edge pixels replicated by default)."""
    return cv2.warpAffine(
        image,
        roi.crop_to_image(crop_size),
        (crop_size, crop_size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=FILLS[fill],
        borderValue=0,
    )
