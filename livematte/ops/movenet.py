"""MoveNet MultiPose maths: input sizing, output decoding, tiles, merging, ROIs, landmark fill-in.

Pure NumPy/OpenCV, no model session: ``stages/person_finder.py`` feeds the model's raw tensor in
and gets people and BlazePose regions of interest out.

The model (MoveNet MultiPose Lightning, embedded as ``movenet_multipose``) takes an int32
``[1, H, W, 3]`` RGB 0..255 image, H and W multiples of 32 (any size), and returns ``[1, 6, 56]``:
per candidate, 17 COCO keypoints as (y, x, score) normalised to the input, then a box (ymin, xmin,
ymax, xmax) and the person's score.  The centre/keypoint post-processing is inside the graph.

Coordinates here are source-image pixels; keypoints are (17, 3) x, y, score rows in COCO order.

Example::

    tensor, scale = movenet_input(image_bgr, long_side=256)
    people = decode_movenet(raw, scale, min_score=0.2)
    roi = roi_from_keypoints(people.keypoints[0])

People MoveNet alone describes get BlazePose-shaped landmarks in ``coco_landmarks.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from livematte.frame import LANDMARK_INDEX
from livematte.ops.pose_detection import ROI_SCALE, Roi, roi_from_alignment

#: The model's input sides must be multiples of this.
SIZE_MULTIPLE = 32
#: Candidates per output and values per candidate.
MAX_CANDIDATES = 6
VALUES = 56

COCO_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
COCO_INDEX = {name: i for i, name in enumerate(COCO_NAMES)}
#: BlazePose landmark row of each COCO keypoint (same names, same person-relative sides).
BLAZEPOSE_FROM_COCO = np.array([LANDMARK_INDEX[n] for n in COCO_NAMES])
#: COCO per-keypoint OKS sigmas (cocoapi), used to compare two poses.
COCO_SIGMAS = np.array(
    [.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89]
) / 10.0  # fmt: skip

#: A keypoint counts as seen at this score (MoveNet's own demos draw keypoints from 0.3 on).
KEYPOINT_SCORE = 0.3
#: Torso length (shoulder centre to hip centre) per shoulder width, for upper-body shots whose
#: hips are not seen (adult proportions: ~50 cm torso, ~38 cm between the shoulder joints).
TORSO_PER_SHOULDERS = 1.3
#: Crown above the nose per nose-to-shoulder-centre distance (~13 cm over ~24 cm).
CROWN_PER_NECK = 0.55
#: Poses whose OKS against each other exceeds this are one person (tiles, merges).
SAME_PERSON_OKS = 0.5


@dataclass
class MovenetPeople:
    """K people found by MoveNet, in source-image pixels.

    Attributes:
        keypoints: (K, 17, 3) float32 x, y, score (COCO order).
        boxes: (K, 4) float32 left, top, right, bottom.
        scores: (K,) float32 person scores.
    """

    keypoints: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @staticmethod
    def empty() -> MovenetPeople:
        """Nobody."""
        return MovenetPeople(
            np.zeros((0, 17, 3), np.float32), np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        )

    def select(self, index: np.ndarray | list[int]) -> MovenetPeople:
        """The people at ``index`` (an index array or boolean mask), in that order."""
        idx = np.asarray(index)
        return MovenetPeople(self.keypoints[idx], self.boxes[idx], self.scores[idx])

    @staticmethod
    def concat(parts: list[MovenetPeople]) -> MovenetPeople:
        """All people of ``parts`` in one set, in order."""
        if not parts:
            return MovenetPeople.empty()
        return MovenetPeople(
            np.concatenate([p.keypoints for p in parts]).astype(np.float32),
            np.concatenate([p.boxes for p in parts]).astype(np.float32),
            np.concatenate([p.scores for p in parts]).astype(np.float32),
        )

    def areas(self) -> np.ndarray:
        """(K,) box areas in pixels."""
        wh = np.clip(self.boxes[:, 2:] - self.boxes[:, :2], 0, None)
        return wh[:, 0] * wh[:, 1]


def input_size(width: int, height: int, long_side: int) -> tuple[int, int, float, float]:
    """Model input (W, H) for an image and the per-axis scale the image is resized by.

    The image keeps its aspect: its longer side becomes ``long_side``; each input side is then
    rounded *up* to a multiple of 32 and the remainder padded (nothing is cut, nothing
    stretched).

    Returns:
        (input_w, input_h, sx, sy): resized image pixels = source pixels * (sx, sy).
    """
    if width < 1 or height < 1:
        raise ValueError(f"image must be at least 1x1, got {width}x{height}")
    if long_side < SIZE_MULTIPLE:
        raise ValueError(f"long_side must be >= {SIZE_MULTIPLE}, got {long_side}")
    s = long_side / max(width, height)
    rw, rh = max(1, round(width * s)), max(1, round(height * s))
    in_w = math.ceil(rw / SIZE_MULTIPLE) * SIZE_MULTIPLE
    in_h = math.ceil(rh / SIZE_MULTIPLE) * SIZE_MULTIPLE
    return in_w, in_h, rw / width, rh / height


def movenet_input(image_bgr: np.ndarray, long_side: int) -> tuple[np.ndarray, np.ndarray]:
    """The model's input tensor for a BGR image, and how to map its coordinates back.

    Returns:
        (tensor, scale): tensor int32 (1, H, W, 3) RGB 0..255, image in the top-left corner,
        black padding right and below; scale (2,) input pixels per source pixel (x, y).
    """
    h, w = image_bgr.shape[:2]
    in_w, in_h, sx, sy = input_size(w, h, long_side)
    rw, rh = round(w * sx), round(h * sy)
    # INTER_AREA when shrinking (no aliasing of thin limbs), bilinear when enlarging.
    interp = cv2.INTER_AREA if rw < w else cv2.INTER_LINEAR
    small = cv2.resize(image_bgr, (rw, rh), interpolation=interp)
    tensor = np.zeros((1, in_h, in_w, 3), np.int32)
    tensor[0, :rh, :rw] = small[..., ::-1]
    return tensor, np.array([sx, sy], np.float64)


def decode_movenet(
    raw: np.ndarray, input_shape: tuple[int, int], scale: np.ndarray, min_score: float = 0.2
) -> MovenetPeople:
    """The model's ``[1, 6, 56]`` output as people in source-image pixels, best first.

    Args:
        raw: the output tensor (any shape holding 6 x 56 values).
        input_shape: (H, W) of the input tensor the output refers to.
        scale: (sx, sy) from ``movenet_input`` (input pixels per source pixel).
        min_score: keep candidates whose person score is at least this.

    Raises:
        ValueError: the output does not hold 56 values per candidate.
    """
    values = np.asarray(raw, dtype=np.float32)
    if values.size % VALUES:
        raise ValueError(f"expected [1, N, {VALUES}] MoveNet output, got shape {values.shape}")
    values = values.reshape(-1, VALUES)
    scores = values[:, 55]
    keep = np.flatnonzero(np.isfinite(scores) & (scores >= min_score))
    if keep.size == 0:
        return MovenetPeople.empty()
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    in_h, in_w = input_shape
    fx, fy = in_w / float(scale[0]), in_h / float(scale[1])
    kp = values[keep, :51].reshape(-1, 17, 3)
    keypoints = np.stack([kp[..., 1] * fx, kp[..., 0] * fy, kp[..., 2]], axis=-1)
    box = values[keep, 51:55]  # ymin, xmin, ymax, xmax
    boxes = np.stack([box[:, 1] * fx, box[:, 0] * fy, box[:, 3] * fx, box[:, 2] * fy], axis=1)
    return MovenetPeople(
        keypoints.astype(np.float32), boxes.astype(np.float32), scores[keep].astype(np.float32)
    )


def shift(people: MovenetPeople, dx: float, dy: float) -> MovenetPeople:
    """The same people moved by (dx, dy) pixels (tile coordinates -> image coordinates)."""
    kps = people.keypoints.copy()
    kps[..., 0] += dx
    kps[..., 1] += dy
    boxes = people.boxes + np.array([dx, dy, dx, dy], np.float32)
    return MovenetPeople(kps, boxes, people.scores.copy())


def tiles(width: int, height: int, grid: int, overlap: float = 0.25) -> list[tuple[int, ...]]:
    """``grid`` x ``grid`` overlapping tiles (x0, y0, x1, y1) covering a width x height image.

    Each tile spans ``(1 + overlap) / grid`` of each side, so a person cut by one tile's edge is
    whole in its neighbour when no taller than ``overlap / grid`` of the image.
    """
    if grid < 1:
        raise ValueError(f"grid must be >= 1, got {grid}")
    out = []
    for axis_len in (width, height):
        span = min(axis_len, math.ceil(axis_len * min(1.0, (1.0 + overlap) / grid)))
        starts = [round(i * (axis_len - span) / (grid - 1)) if grid > 1 else 0 for i in range(grid)]
        out.append([(s, s + span) for s in starts])
    return [(x0, y0, x1, y1) for (y0, y1) in out[1] for (x0, x1) in out[0]]


#: A tile detection reaching within this fraction of the tile's side of an edge that is not
#: the image's own is cut by the tile: the whole-image pass or the overlapping neighbour tile
#: sees that person whole (a portrait cut by 2x2 tiles gave 4 entries for one person).
TILE_EDGE = 0.02


def cut_by_tile(
    boxes: np.ndarray, tile: tuple[int, int, int, int], image_size: tuple[int, int]
) -> np.ndarray:
    """(K,) bool: boxes (tile pixels) touching an inner edge of ``tile`` (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = tile
    w, h = image_size
    mx, my = TILE_EDGE * (x1 - x0), TILE_EDGE * (y1 - y0)
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    cut = np.zeros(len(b), bool)
    if x0 > 0:
        cut |= b[:, 0] <= mx
    if y0 > 0:
        cut |= b[:, 1] <= my
    if x1 < w:
        cut |= b[:, 2] >= (x1 - x0) - mx
    if y1 < h:
        cut |= b[:, 3] >= (y1 - y0) - my
    return cut


def pose_similarity(a: np.ndarray, b: np.ndarray, min_score: float = KEYPOINT_SCORE) -> float:
    """OKS between two (17, >=3) poses over the keypoints both see (0 when none are shared).

    The object scale is the larger pose's keypoint box area, so a partial pose (cut by a tile
    edge) still matches the whole one it belongs to.
    """
    both = (a[:, 2] >= min_score) & (b[:, 2] >= min_score)
    if not both.any():
        return 0.0
    area = max(_keypoint_area(a, min_score), _keypoint_area(b, min_score), 1.0)
    d2 = np.sum((a[both, :2] - b[both, :2]) ** 2, axis=1)
    e = d2 / (2.0 * (2.0 * COCO_SIGMAS[both]) ** 2 * area)
    return float(np.mean(np.exp(-e)))


def _keypoint_area(pose: np.ndarray, min_score: float) -> float:
    pts = pose[pose[:, 2] >= min_score, :2]
    if len(pts) < 2:
        return 0.0
    wh = pts.max(axis=0) - pts.min(axis=0)
    return float(wh[0] * wh[1])


def merge_people(people: MovenetPeople, same_oks: float = SAME_PERSON_OKS) -> MovenetPeople:
    """One entry per person: of poses more similar than ``same_oks``, keep the best scored.

    Used to join the whole-image pass with tile passes (``people`` listed in that order, so the
    whole-image pose wins a tie).
    """
    order = np.argsort(-people.scores, kind="stable")
    kept: list[int] = []
    for i in order:
        if all(pose_similarity(people.keypoints[i], people.keypoints[j]) <= same_oks for j in kept):
            kept.append(int(i))
    return people.select(np.array(kept, dtype=np.int64))


def largest_first(people: MovenetPeople) -> MovenetPeople:
    """The people by decreasing box area (ties: the better score first)."""
    order = np.lexsort((-people.scores, -people.areas()))
    return people.select(order)


def _mid(kps: np.ndarray, a: str, b: str) -> np.ndarray:
    return (kps[COCO_INDEX[a], :2] + kps[COCO_INDEX[b], :2]) / 2.0


def _seen(kps: np.ndarray, *names: str, min_score: float = KEYPOINT_SCORE) -> bool:
    return all(kps[COCO_INDEX[n], 2] >= min_score for n in names)


def roi_from_keypoints(
    kps: np.ndarray, box: np.ndarray | None = None, min_score: float = KEYPOINT_SCORE
) -> Roi | None:
    """The BlazePose landmark ROI for one MoveNet pose, as its own detector would give it.

    BlazePose's ROI is a square centred on the hip centre, rotated so the hip -> shoulder
    direction points up, with side 2 x 1.25 x the radius of the circle (around the hip centre)
    holding the whole body.  Here the hip centre is the seen hips' midpoint or, for upper-body
    shots, extrapolated from the shoulders (``TORSO_PER_SHOULDERS``); the radius reaches the
    farthest seen keypoint or the estimated crown.  Without seen shoulders or
    hips the ROI is upright around the seen keypoints (or the box).  None when nothing is seen.

    Hands are not reached for: BlazePose's own ROI for the arms-out golden (pose.jpg) is 632 px,
    the farthest seen keypoint (an ankle) gives 650 px, reaching for the finger tips 757 px.
    """
    kps = np.asarray(kps, dtype=np.float64)
    seen = kps[:, 2] >= min_score
    shoulders = _seen(kps, "left_shoulder", "right_shoulder", min_score=min_score)
    hips = _seen(kps, "left_hip", "right_hip", min_score=min_score)
    up: np.ndarray | None = None
    if shoulders and hips:
        centre = _mid(kps, "left_hip", "right_hip")
        up = _mid(kps, "left_shoulder", "right_shoulder") - centre
    elif shoulders:
        top = _mid(kps, "left_shoulder", "right_shoulder")
        across = kps[COCO_INDEX["left_shoulder"], :2] - kps[COCO_INDEX["right_shoulder"], :2]
        # Perpendicular to the shoulder line; the person's left shoulder is on image right when
        # they face the camera, so (left - right) rotated by -90 degrees points up the body.
        up_dir = np.array([across[1], -across[0]])
        head = [kps[i, :2] for i in range(5) if seen[i]]
        if head and float(np.dot(np.mean(head, axis=0) - top, up_dir)) < 0:
            up_dir = -up_dir  # seen from behind: the head says which way is up
        centre = top - up_dir * TORSO_PER_SHOULDERS
        up = top - centre
    elif hips:
        centre = _mid(kps, "left_hip", "right_hip")
        up = np.array([0.0, -1.0])
    reach = _extremities(kps, seen)
    if len(reach) == 0:
        if box is None or not np.all(np.isfinite(box)):
            return None
        reach = np.array([[box[0], box[1]], [box[2], box[3]]], np.float64)
    if up is None:
        centre = (reach.min(axis=0) + reach.max(axis=0)) / 2.0
    if up is None or float(np.hypot(*up)) < 1e-6:
        up = np.array([0.0, -1.0])
    up = up / float(np.hypot(*up))
    radius = float(np.max(np.linalg.norm(reach - centre, axis=1)))
    if radius < 1.0:
        return None
    return roi_from_alignment(centre, centre + up * radius, ROI_SCALE)


def _extremities(kps: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Seen keypoints plus the estimated crown (what the ROI must hold)."""
    pts = [kps[seen, :2]]
    if seen[0] and _seen(kps, "left_shoulder", "right_shoulder"):
        nose = kps[0, :2]
        neck = _mid(kps, "left_shoulder", "right_shoulder")
        pts.append((nose + CROWN_PER_NECK * (nose - neck))[None])
    return np.concatenate(pts) if pts else np.zeros((0, 2))
