"""Robust Video Matting as the matting engine: working size, person gating, crops, state.

RVM (MobileNetV3) mattes hair strand by strand where the embedded segmenter fills it in, but
on its own it has failure modes we measured on ../shared/data (issue 13): a human-shaped
statue matted as a person, speckles on poster text, and single passes whose quality swings
with the working resolution (one p3m photo went from SAD 6.5 to 125 at a fixed ratio 0.5).
``RvmMatting`` wraps the network so those do not reach the user:

* **Working size from the person's size**, not a fixed ratio: the evidence mask (below) gives
  the people's boxes; the frame is scaled so the largest person's long side is about
  ``PERSON_SIDE`` pixels, within ``MIN_SIDE..MAX_SIDE`` for the frame's long side.
* **Person gating**: RVM's alpha is kept only where the person evidence agrees - the embedded
  segmenter's mask, fused with the keypoint stage's per-person masks when there are any.  Each
  connected shape of RVM's alpha is kept or dropped whole by how much of it the evidence calls
  person; the kept shapes, dilated by a margin proportional to the person's size (hair is
  below 0.5) and feathered, are the gate; outside it alpha is zero.
* **Several people** (photos): each person is matted again in their own crop at the same
  person size (a small person is enlarged to it), and the crops are fused into the whole-frame
  alpha (inside a crop, feathered at its edge, the larger of the two alphas; the gate then
  decides what is a person).
* **Grey photos**: the segmenter loses people in black and white that it sees in colour, so
  a person RVM itself sees much larger than the evidence does sizes the working resolution
  (``OWN_LARGER``); the gate still comes from the evidence.
* **Video**: the recurrent state is owned here (through the adapter) and dropped on a scene
  cut, a resolution or working-size change and a seek (a frame index that does not follow the
  previous one); the working size is chosen on the first frame of each shot and kept, since
  changing it needs a state reset.

The result is a ``CoarseMatte`` on the RVM grid; ``MattingStage`` then applies its temporal
stabiliser (video) and the colour guided upsample (and closed-form band when configured).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from livematte.frame import Frame
from livematte.ops.compose import resize_image
from livematte.ops.grey import is_grey
from livematte.ops.temporal import is_scene_cut
from livematte.stages.matting_adapters import (
    CoarseMatte,
    RobustVideoMattingAdapter,
)

__all__ = ["RvmMatting", "gate_from_evidence", "person_boxes", "working_scale"]

#: Long side (pixels) a person gets in the network input.  p3m (15 portraits, photo preset,
#: gated): mean SAD 13.3 / 10.7 / 13.0 / 13.0 at 224 / 256 / 288 / 352, worst 33 / 19 / 31 /
#: 30; single photos swing with it (p_07141906: 33, 18, 28, 30), 256 was best on both counts.
PERSON_SIDE = 256
#: Bounds of the frame's long side in the network input.
MIN_SIDE = 256
MAX_SIDE = 1024
#: Evidence probability above which a pixel is a person for gating and boxes.
EVIDENCE_THRESHOLD = 0.5
#: Gate margin as a fraction of the person's long side (hair, loose clothes, raised hands).
GATE_MARGIN = 0.06
#: Share of an RVM shape that must be person in the evidence for the shape to be kept.
KEEP_OVERLAP = 0.5
#: Components of the evidence smaller than this share of the frame are noise, not people.
MIN_PERSON_AREA = 0.004
#: A photo's crop around each person: this share of the person's size added on every side.
CROP_MARGIN = 0.15
#: Person sizes a photo is matted at, averaged on the finest grid.  Averaging did not pay on
#: p3m: (256, 352) mean SAD 11.2 worst 23, (224, 288) 11.5 / 32, against 256 alone 10.7 / 19;
#: nor did adding the mirrored photo (11.5 / 23, though grey copies agreed a little better).
PHOTO_SIDES = (PERSON_SIDE,)
#: RVM passes per photo on the same input (the state of the first pass primes the second):
#: p3m guided, person at 256: mean SAD 12.6 / worst 23 with one pass, 11.9 / 19 with two.
PHOTO_PASSES = 2
#: Grey photos: RVM's own person (one pass at the frame's long side ``OWN_SIDE``) sizes the
#: working resolution when it is this much larger than the segmenter's.  In grey the segmenter
#: loses people it sees in colour: grey p_015cd10e, its largest person 525 px against RVM's
#: 1007 (colour evidence: 1019), so RVM ran at twice the size and lost her face (grey against
#: colour IoU 0.770 -> 0.979; with two passes at 512 px, 1019 px: 0.913, RVM's usual swing
#: with its working size).  On the black-and-white p3m photos the two agree within 0.6%
#: (983/989, 1028/1031, 1080/1080 px): unchanged.  The look costs ~40 ms CPU per 1080p photo
#: (p_0865636e grey, matting: min 433 -> 470 ms, median 465 -> 508).
OWN_LARGER = 1.25
OWN_SIDE = 256


@dataclass(frozen=True)
class Box:
    """A person's box in evidence-grid-independent units: pixels of the full frame."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def side(self) -> int:
        return max(self.x1 - self.x0, self.y1 - self.y0)


def person_boxes(evidence: np.ndarray, size: tuple[int, int]) -> list[Box]:
    """Boxes (full-frame pixels) of the evidence's person components, largest first.

    Args:
        evidence: hxw float32 person probability covering the whole frame.
        size: (width, height) of the frame.
    """
    core = (evidence > EVIDENCE_THRESHOLD).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(core, connectivity=8)
    h, w = evidence.shape
    sx, sy = size[0] / w, size[1] / h
    boxes = []
    for i in range(1, n):
        x, y, bw, bh, area = stats[i]
        if area < MIN_PERSON_AREA * h * w:
            continue
        boxes.append(
            Box(
                int(x * sx),
                int(y * sy),
                min(size[0], math.ceil((x + bw) * sx)),
                min(size[1], math.ceil((y + bh) * sy)),
            )
        )
    return sorted(boxes, key=lambda b: -(b.x1 - b.x0) * (b.y1 - b.y0))


def working_scale(size: tuple[int, int], person_side: int | None, target: int = 0) -> float:
    """Scale of the frame in the network input: the person at ``target`` px (default
    ``PERSON_SIDE``), the frame's long side within ``MIN_SIDE..MAX_SIDE`` and never enlarged."""
    long_side = max(size)
    target = target or PERSON_SIDE
    scale = target / person_side if person_side else MAX_SIDE / long_side
    scale = min(scale, MAX_SIDE / long_side, 1.0)
    return max(scale, min(1.0, MIN_SIDE / long_side))


def gate_from_evidence(alpha: np.ndarray, evidence: np.ndarray, person_side: float) -> np.ndarray:
    """Soft 0..1 gate on ``alpha``'s grid: RVM's shapes the person evidence agrees with.

    Each connected shape of RVM's alpha (> 0.5) is kept whole when at least ``KEEP_OVERLAP``
    of it is person in the evidence, and dropped whole otherwise; the kept shapes are dilated
    by a margin proportional to the person's size (their hair and soft edges are below 0.5)
    and feathered.  Whole shapes, not pixels: the segmenter's mask misses a dark jacket or
    a hand that RVM has, and a pixel gate cut them off (p3m p_51c916fc: SAD 17 without a gate,
    165 with the dilated evidence as a pixel gate).

    Args:
        alpha: hxw float32 RVM alpha.
        evidence: person probability on any grid covering the same frame.
        person_side: the largest person's long side in ``alpha``-grid pixels.
    """
    h, w = alpha.shape
    person = cv2.resize(evidence, (w, h), interpolation=cv2.INTER_LINEAR) > EVIDENCE_THRESHOLD
    n, labels = cv2.connectedComponents((alpha > 0.5).astype(np.uint8), connectivity=8)
    area = np.bincount(labels.ravel(), minlength=n)
    agree = np.bincount(labels.ravel(), weights=person.ravel(), minlength=n)
    keep = agree >= KEEP_OVERLAP * np.maximum(area, 1)
    keep[0] = False
    if n > 1:
        # The shape sharing the most pixels with the evidence is the person, however little
        # of it the segmenter saw (at 0.7 instead of 0.5, p_51c916fc lost its whole person).
        keep[1 + int(np.argmax(agree[1:]))] = agree[1:].max() > 0
    kept = keep[labels].astype(np.uint8)
    r = max(2, round(GATE_MARGIN * person_side))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    grown = cv2.dilate(kept, kernel).astype(np.float32)
    # Feather over the outer half of the margin: no hard step where the gate ends.
    k = 2 * max(1, r // 2) + 1
    return np.maximum(cv2.blur(grown, (k, k)), kept.astype(np.float32))


class RvmMatting:
    """RVM with person gating, person-sized working resolution, crops and owned state.

    Args:
        rvm: the RVM adapter (official or converted signature).
        evidence: ``frame -> hxw float32`` whole-frame person probability (the embedded
            segmenter, fused with the keypoint stage's person masks: ``MattingStage``).
    """

    def __init__(
        self, rvm: RobustVideoMattingAdapter, evidence: Callable[[Frame], np.ndarray]
    ) -> None:
        self.rvm = rvm
        self.evidence = evidence
        self._shot: tuple[int, int, int, int] | None = None  # frame w, h, working w, h
        self._index: int | None = None
        self._gray: np.ndarray | None = None
        self._held: tuple[np.ndarray, list[Box]] | None = None
        #: Times the recurrent state was dropped mid-stream (cut, seek, size change).
        self.resets = 0

    def reset(self) -> None:
        """New shot: forget the recurrent state and the working size."""
        self.rvm.reset()
        self._shot = None
        self._index = None
        self._gray = None
        self._held = None

    def photo(self, frame: Frame) -> CoarseMatte:
        """One photo: whole frame at the person's size, then each person's crop; gated."""
        image = frame.image
        size = frame.size
        evidence = self.evidence(frame)
        boxes = person_boxes(evidence, size)
        side = boxes[0].side if boxes else None
        if side is not None and is_grey(image):
            side = self._own_side(image, side)
        coarse = self._multi_pass(image, side)
        alpha = coarse.alpha
        grid = (alpha.shape[1], alpha.shape[0])
        if len(boxes) > 1:
            for box in boxes:
                alpha = self._fuse_crop(alpha, image, box, grid)
        coarse.alpha = alpha * self._gate(alpha, evidence, boxes, size)
        return coarse

    def video(self, frame: Frame, scene_cut_threshold: float) -> CoarseMatte:
        """One video frame, recurrent; the working size is fixed per shot."""
        image = frame.image
        size = frame.size
        evidence = self.evidence(frame)
        small = cv2.cvtColor(resize_image(image, (64, 36)), cv2.COLOR_BGR2GRAY)
        cut = self._gray is not None and is_scene_cut(small, self._gray, scene_cut_threshold)
        seek = self._index is not None and frame.index != self._index + 1
        boxes = person_boxes(evidence, size)
        if self._shot is None or self._shot[:2] != size or cut or seek:
            if self._shot is not None:
                self.resets += 1
            self.rvm.reset()
            self._held = None
            scale = working_scale(size, boxes[0].side if boxes else None)
            self._shot = (*size, *self._grid(size, scale))
        self._index, self._gray = frame.index, small
        if boxes:
            self._held = (evidence, boxes)
        elif self._held is not None and not (cut or seek):
            # The segmenter lost the person for a frame (motion blur): gate with its last
            # answer rather than blank the frame; RVM's recurrence still follows the person.
            evidence, boxes = self._held
        coarse = self.rvm.predict_at(image, self._shot[2:])
        coarse.alpha = coarse.alpha * self._gate(coarse.alpha, evidence, boxes, size)
        return coarse

    # --- helpers ---------------------------------------------------------------------------

    def _grid(self, size: tuple[int, int], scale: float) -> tuple[int, int]:
        return self.rvm.working_size(size[0], size[1], scale)

    def _own_side(self, image: np.ndarray, side: int) -> int:
        """``side``, or RVM's own largest person when ``OWN_LARGER`` times larger."""
        size = (image.shape[1], image.shape[0])
        self.rvm.reset()
        own = self.rvm.predict_at(image, self._grid(size, min(1.0, OWN_SIDE / max(size))))
        self.rvm.reset()
        boxes = person_boxes(own.alpha, size)
        if boxes and boxes[0].side > OWN_LARGER * side:
            return boxes[0].side
        return side

    def _multi_pass(self, image: np.ndarray, side: int | None) -> CoarseMatte:
        """The photo at each of ``PHOTO_SIDES`` person sizes, averaged on the finest grid."""
        size = (image.shape[1], image.shape[0])
        runs = []
        for person_side in PHOTO_SIDES:
            scale = working_scale(size, side, person_side)
            runs.append(self._photo_pass(image, self._grid(size, scale)))
        best = max(runs, key=lambda c: c.alpha.size)
        grid = (best.alpha.shape[1], best.alpha.shape[0])
        best.alpha = np.mean(
            [cv2.resize(c.alpha, grid, interpolation=cv2.INTER_LINEAR) for c in runs], axis=0
        ).astype(np.float32)
        return best

    def _photo_pass(self, image: np.ndarray, grid: tuple[int, int]) -> CoarseMatte:
        """A still image from a fresh state, ``PHOTO_PASSES`` times (the last one counts)."""
        self.rvm.reset()
        coarse = self.rvm.predict_at(image, grid)
        for _ in range(PHOTO_PASSES - 1):
            coarse = self.rvm.predict_at(image, grid)
        self.rvm.reset()
        return coarse

    def _fuse_crop(
        self, alpha: np.ndarray, image: np.ndarray, box: Box, grid: tuple[int, int]
    ) -> np.ndarray:
        """Matte one person's crop at ``PERSON_SIDE`` and blend it into the grid's alpha."""
        height, width = image.shape[:2]
        m = round(CROP_MARGIN * box.side)
        x0, y0 = max(0, box.x0 - m), max(0, box.y0 - m)
        x1, y1 = min(width, box.x1 + m), min(height, box.y1 + m)
        crop = image[y0:y1, x0:x1]
        local = self._multi_pass(crop, box.side).alpha
        # Crop rectangle on the grid, and the crop's alpha resampled onto it.
        sx, sy = grid[0] / width, grid[1] / height
        gx0, gy0 = round(x0 * sx), round(y0 * sy)
        gx1, gy1 = max(gx0 + 1, round(x1 * sx)), max(gy0 + 1, round(y1 * sy))
        patch = cv2.resize(local, (gx1 - gx0, gy1 - gy0), interpolation=cv2.INTER_AREA)
        ramp = max(1, round(0.5 * m * sx))
        weight = _edge_weight(patch.shape, ramp, (x0 > 0, y0 > 0, x1 < width, y1 < height))
        out = alpha.copy()
        region = out[gy0:gy1, gx0:gx1]
        region += weight * (np.maximum(patch, region) - region)
        return out

    def _gate(
        self, alpha: np.ndarray, evidence: np.ndarray, boxes: list[Box], size: tuple[int, int]
    ) -> np.ndarray:
        if not boxes:
            # No person found: nothing is kept (a statue or a poster alone is not a person).
            return np.zeros_like(alpha)
        side = boxes[0].side * alpha.shape[1] / size[0]
        return gate_from_evidence(alpha, evidence, side)


def _edge_weight(
    shape: tuple[int, ...], ramp: int, inner: tuple[bool, bool, bool, bool]
) -> np.ndarray:
    """1 inside a patch, ramping to 0 over ``ramp`` px at the edges that lie inside the frame."""
    h, w = shape[:2]
    x = np.ones(w, np.float32)
    y = np.ones(h, np.float32)
    ramp_up = np.clip((np.arange(max(w, h)) + 0.5) / ramp, 0.0, 1.0).astype(np.float32)
    left, top, right, bottom = inner
    if left:
        x = np.minimum(x, ramp_up[:w])
    if right:
        x = np.minimum(x, ramp_up[:w][::-1])
    if top:
        y = np.minimum(y, ramp_up[:h])
    if bottom:
        y = np.minimum(y, ramp_up[:h][::-1])
    return np.minimum.outer(y, x)
