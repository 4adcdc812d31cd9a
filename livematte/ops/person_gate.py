"""Person gating of the embedded segmenter's coarse mask: keep what the evidence stands behind.

The embedded segmenter (and the median of its views, ``MultiViewAdapter``) is sure about the
people it sees: their body sits at 0.9+.  What it is not sure about is either the edge of such
a person (hair, a dark jacket, a limb) or a separate object it half takes for one: a statue
next to a man (p3m p_71bcce3a, SAD 132), a tarp behind a woman (p_51c916fc, 49).  Those
objects sit at 0.5-0.8 and, once the refinement's probability clip and closed-form solve
push them up, come out opaque.

``core_gate`` keeps the coarse mask only near its confident *core* (probability above
``CORE``) and near the people the keypoint stage found (their boxes, any finder); elsewhere
it is faded out.  When people were found, a small core far from all of them (poster text)
does not count either.  Two rules keep it from cutting real people the model doubts (measured on
COCO/OCHuman, where a plain core gate cost 0.556 -> 0.547 IoU):

* a shape (connected area above 0.5) that has no confident core worth the name (under
  ``SURE_SHARE`` of it is core) and is large is the model's doubt about a whole person (a
  grey copy of a photo, p_015cd10e), not an object: kept whole;
* a shape the gate would cut deeply into (it would lose more than ``DEEP_CUT`` of its mass)
  is a person whose body the model doubts in part (COCO 069468: a plaid shirt at 0.6 over
  legs at 0.95): kept whole.  The statue of p_71bcce3a is 2% of its shape's mass.

Pure functions on the coarse grid (~256 px): well under a millisecond.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = ["core_gate"]

#: Probability above which the segmenter is sure (the statue is below it, the man beside it
#: above).  p3m photo preset: 0.85 gave mean SAD 16.9 / worst 54.8, 0.7 17.2 / 58.0.
CORE = 0.85
#: Core components smaller than this share of the largest one are noise, not people.
MIN_CORE = 0.02
#: Gate margin around the core, as a fraction of the largest core's long side (hair and soft
#: edges are below ``CORE``).  0.06: p3m worst 54.8; 0.12: 70.7 (the statue is that close).
MARGIN = 0.06
#: A shape with less than this share of core pixels has no core to trust ...
SURE_SHARE = 0.5
#: ... and is kept whole when at least this share of the largest shape's area.
BIG_SHAPE = 0.25
#: A shape that contains core and would lose more than this share of its mass is kept whole.
#: COCO/OCHuman IoU 0.547 without this rule, 0.554 with it; p3m unchanged (the statue: 0.018).
DEEP_CUT = 0.05
#: When people were found, a core must come within this share of a person's box size of one
#: of them, or be at least ``BIG_CORE`` of the largest core, to count.  COCO/OCHuman IoU
#: 0.554 -> 0.558 (COCO 040083 0.43 -> 0.53: a poster person beside two players).
AWAY = 0.25
BIG_CORE = 0.5


def core_gate(
    alpha: np.ndarray,
    boxes: Sequence[tuple[float, float, float, float]],
    image_size: tuple[int, int],
) -> np.ndarray:
    """Soft 0..1 gate on ``alpha``'s grid: where the person evidence stands behind the mask.

    Args:
        alpha: hxw float32 0..1 person probability covering the whole image.
        boxes: people found (left, top, right, bottom) in image pixels, any finder; inside
            them nothing is gated.
        image_size: (width, height) of the image ``alpha`` covers.

    Returns:
        hxw float32 gate: 1 on the core, the kept shapes and the boxes, feathered to 0 over
        the margin around them.  All ones when the mask has no core at all (nothing to go by).
    """
    h, w = alpha.shape
    core = (alpha > CORE).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(core, connectivity=8)
    if n <= 1:
        return np.ones_like(alpha, dtype=np.float32)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.zeros(n, bool)
    keep[1:] = areas >= MIN_CORE * areas.max()
    if len(boxes):
        # People were found: a small core away from all of them is an object (poster text
        # of a grey p_07141906, grey vs colour IoU 0.79 -> 0.94), not a person nobody found.
        near = _boxes_mask((h, w), boxes, image_size, AWAY)
        touch = np.bincount(labels.ravel(), weights=near.ravel(), minlength=n) > 0
        keep[1:] &= touch[1:] | (areas >= BIG_CORE * areas.max())
    kept = keep[labels].astype(np.uint8)
    side = float(np.maximum(stats[1:, 2], stats[1:, 3])[keep[1:]].max())

    shapes_n, shapes = cv2.connectedComponents((alpha > 0.5).astype(np.uint8), connectivity=8)
    area = np.bincount(shapes.ravel(), minlength=shapes_n)
    sure = np.bincount(shapes.ravel(), weights=kept.ravel(), minlength=shapes_n)
    doubt = (sure < SURE_SHARE * np.maximum(area, 1)) & (area >= BIG_SHAPE * area[1:].max())
    doubt[0] = False
    kept |= doubt[shapes].astype(np.uint8)

    kept |= _boxes_mask((h, w), boxes, image_size, 0.0)

    r = max(2, round(MARGIN * side))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    k = 2 * max(1, r // 2) + 1  # feather over the outer half of the margin

    def soft(mask: np.ndarray) -> np.ndarray:
        grown = cv2.dilate(mask, kernel).astype(np.float32)
        return np.maximum(cv2.blur(grown, (k, k)), mask.astype(np.float32))

    gate = soft(kept)
    mass = np.bincount(shapes.ravel(), weights=alpha.ravel(), minlength=shapes_n)
    lost = np.bincount(shapes.ravel(), weights=(alpha * (1.0 - gate)).ravel(), minlength=shapes_n)
    deep = (lost > DEEP_CUT * np.maximum(mass, 1e-6)) & (sure > 0)
    deep[0] = False
    if deep.any():
        gate = np.maximum(gate, soft(deep[shapes].astype(np.uint8)))
    return gate


def _boxes_mask(
    shape: tuple[int, int],
    boxes: Sequence[tuple[float, float, float, float]],
    image_size: tuple[int, int],
    grow: float,
) -> np.ndarray:
    """uint8 mask on a grid of ``shape`` covering the image: 1 inside each box (image pixels),
    grown by ``grow`` times its long side on every side."""
    h, w = shape
    sx, sy = w / image_size[0], h / image_size[1]
    out = np.zeros(shape, np.uint8)
    for left, top, right, bottom in boxes:
        m = grow * max((right - left) * sx, (bottom - top) * sy)
        x0, y0 = max(0, int(left * sx - m)), max(0, int(top * sy - m))
        x1 = min(w, int(np.ceil(right * sx + m)) + 1)
        y1 = min(h, int(np.ceil(bottom * sy + m)) + 1)
        out[y0:y1, x0:x1] = 1
    return out
