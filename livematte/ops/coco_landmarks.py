"""BlazePose-shaped landmarks from MoveNet's 17 COCO keypoints: fill-in and fusion.

* ``landmarks_from_keypoints``: the (33, 4) landmarks of a person only MoveNet describes (the
  16 landmarks COCO lacks placed by body proportions, at visibility and presence 0).
* ``fuse_keypoints``: the landmark model's 17 COCO points fused with MoveNet's.

Example::

    lm = landmarks_from_keypoints(people.keypoints[0])
    fused = fuse_keypoints(result.landmarks, people.keypoints[0])
"""

from __future__ import annotations

import numpy as np

from livematte.frame import LANDMARK_INDEX
from livematte.ops.movenet import BLAZEPOSE_FROM_COCO, COCO_INDEX, COCO_NAMES

#: Landmarks BlazePose has and COCO lacks, estimated from COCO keypoints for MoveNet-only people:
#: name -> (anchor keypoint, (keypoint a, keypoint b, factor)): anchor + factor * (a - b).
_ESTIMATED: dict[str, tuple[str, tuple[str, str, float] | None]] = {
    "left_eye_inner": ("left_eye", ("right_eye", "left_eye", 0.25)),
    "left_eye_outer": ("left_eye", ("left_eye", "right_eye", 0.25)),
    "right_eye_inner": ("right_eye", ("left_eye", "right_eye", 0.25)),
    "right_eye_outer": ("right_eye", ("right_eye", "left_eye", 0.25)),
    "left_pinky": ("left_wrist", ("left_wrist", "left_elbow", 0.35)),
    "right_pinky": ("right_wrist", ("right_wrist", "right_elbow", 0.35)),
    "left_index": ("left_wrist", ("left_wrist", "left_elbow", 0.4)),
    "right_index": ("right_wrist", ("right_wrist", "right_elbow", 0.4)),
    "left_thumb": ("left_wrist", ("left_wrist", "left_elbow", 0.25)),
    "right_thumb": ("right_wrist", ("right_wrist", "right_elbow", 0.25)),
    "left_heel": ("left_ankle", None),
    "right_heel": ("right_ankle", None),
    "left_foot_index": ("left_ankle", None),
    "right_foot_index": ("right_ankle", None),
}
#: Mouth centre below the nose per eye-centre-to-nose distance (~2.5 cm under ~4.5 cm), and
#: mouth half-width per eye distance (~2.5 cm per ~6.3 cm).
MOUTH_PER_NOSE = 0.55
MOUTH_HALF_WIDTH = 0.4


def landmarks_from_keypoints(kps: np.ndarray) -> np.ndarray:
    """BlazePose-shaped (33, 4) landmarks for a MoveNet-only person.

    The 17 COCO keypoints go to their BlazePose rows with visibility = presence = MoveNet's
    score.  The other 16 (eye corners, mouth corners, hands, feet) are placed where body
    proportions put them, so derived parts (``top_head``) and drawings have a position, but
    with visibility and presence 0: they were not observed.
    """
    kps = np.asarray(kps, dtype=np.float64)
    lm = np.zeros((33, 4), np.float32)
    lm[BLAZEPOSE_FROM_COCO, :2] = kps[:, :2]
    lm[BLAZEPOSE_FROM_COCO, 2] = kps[:, 2]
    lm[BLAZEPOSE_FROM_COCO, 3] = kps[:, 2]
    p = {n: kps[i, :2] for i, n in enumerate(COCO_NAMES)}
    for name, (anchor, offset) in _ESTIMATED.items():
        point = p[anchor]
        if offset is not None:
            a, b, f = offset
            point = point + f * (p[a] - p[b])
        lm[LANDMARK_INDEX[name], :2] = point
    eyes = (p["left_eye"] + p["right_eye"]) / 2.0
    mouth = p["nose"] + MOUTH_PER_NOSE * (p["nose"] - eyes)
    half = MOUTH_HALF_WIDTH * (p["left_eye"] - p["right_eye"])
    lm[LANDMARK_INDEX["mouth_left"], :2] = mouth + half
    lm[LANDMARK_INDEX["mouth_right"], :2] = mouth - half
    return lm


#: Two estimates of a keypoint closer than this fraction of the pose's size are averaged.
FUSE_DISTANCE = 0.1
#: Landmarks that move with a COCO keypoint when that keypoint is taken from MoveNet.
_CARRIED: dict[str, tuple[str, ...]] = {
    "left_eye": ("left_eye_inner", "left_eye_outer"),
    "right_eye": ("right_eye_inner", "right_eye_outer"),
    "left_wrist": ("left_pinky", "left_index", "left_thumb"),
    "right_wrist": ("right_pinky", "right_index", "right_thumb"),
    "left_ankle": ("left_heel", "left_foot_index"),
    "right_ankle": ("right_heel", "right_foot_index"),
}


def fuse_keypoints(landmarks: np.ndarray, kps: np.ndarray) -> np.ndarray:
    """BlazePose landmarks (33, 4) with their 17 COCO points fused with MoveNet's (17, 3).

    Where the two models put a keypoint within ``FUSE_DISTANCE`` of the pose's size of each
    other, the point is their mean (two independent estimates) and keeps the landmark model's
    visibility (a trained probability of being seen; MoveNet's keypoint scores run lower and
    are no such probability); elsewhere the more confident model's point and score win, and
    the hand, foot and eye-corner landmarks move with their wrist, ankle or eye.  On the
    shared COCO and OCHuman people this raised the mean OKS of matched people from 0.809
    (BlazePose landmarks alone) to 0.835 at the same recall; MoveNet alone: 0.830
    (``scripts/eval_keypoints.py``).
    """
    out = np.array(landmarks, dtype=np.float32, copy=True)
    kps = np.asarray(kps, dtype=np.float32)
    rows = BLAZEPOSE_FROM_COCO
    pb, vb = out[rows, :2], out[rows, 2]
    pm, sm = kps[:, :2], kps[:, 2]
    size = max(float(np.ptp(pm[:, 0])), float(np.ptp(pm[:, 1])), 1.0)
    close = np.linalg.norm(pb - pm, axis=1) < FUSE_DISTANCE * size
    take = ~close & (sm > vb)
    target = np.where(close[:, None], (pb + pm) / 2.0, np.where(take[:, None], pm, pb))
    for name, carried in _CARRIED.items():
        i = COCO_INDEX[name]
        if take[i]:
            out[[LANDMARK_INDEX[c] for c in carried], :2] += target[i] - pb[i]
    out[rows, :2] = target
    out[rows, 2] = np.where(take, sm, vb)
    return out
