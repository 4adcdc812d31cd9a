"""One person, one entry: the pose tests the keypoint stage tells people apart with, and the
``Person`` each entry becomes.

* ``coco_pose``: the 17 COCO keypoints of BlazePose-shaped landmarks, to compare with MoveNet's.
* ``duplicate``: landmarks describing the same pose as landmarks already taken.
* ``known_person``: a detector candidate (MoveNet pose or BlazePose face box) already taken.
* ``agrees_with_any``: a landmark result agreeing with one of some MoveNet poses.
* ``landmark_person``, ``movenet_person``: the ``Person`` of a landmark result, or of a person
  only MoveNet describes; ``box_area`` orders them.

Example::

    if not known_person(candidate.box, candidate.keypoints, taken):
        result = stage.landmarks(image, candidate.roi)
        if not duplicate(result.landmarks, taken, max_distance=0.1):
            people.append(landmark_person(len(people), result, (width, height)))
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from livematte.frame import Person
from livematte.ops.movenet import BLAZEPOSE_FROM_COCO, SAME_PERSON_OKS, pose_similarity
from livematte.ops.pose_landmarks import LandmarkResult, landmarks_box

#: A BlazePose face box grown by this fraction of its side on each side still "holds" a nose.
FACE_BOX_MARGIN = 0.25


def coco_pose(landmarks: np.ndarray) -> np.ndarray:
    """(17, 3) COCO pose (x, y, visibility) from (33, >=3) BlazePose-shaped landmarks."""
    return np.asarray(landmarks)[BLAZEPOSE_FROM_COCO, :3]


def duplicate(landmarks: np.ndarray, others: list[np.ndarray], max_distance: float) -> bool:
    """True when ``landmarks`` describe the same pose as one of ``others``: their median
    landmark distance is under ``max_distance`` of the pose's size.

    Poses are compared landmark by landmark rather than by box overlap, so people standing
    behind one another are kept apart.
    """
    size = max(float(np.ptp(landmarks[:, 0])), float(np.ptp(landmarks[:, 1])), 1.0)
    for other in others:
        dist = np.linalg.norm(landmarks[:, :2] - other[:, :2], axis=1)
        if float(np.median(dist)) < max_distance * size:
            return True
    return False


def known_person(box: np.ndarray, keypoints: np.ndarray | None, taken: list[np.ndarray]) -> bool:
    """True when a detector candidate is someone in ``taken`` ((33, 4) landmarks): skip it.

    Args:
        box: the candidate's box (l, t, r, b): a face box for the BlazePose detector.
        keypoints: its (17, 3) MoveNet pose, or None for the BlazePose detector.
        taken: the landmarks of the people found so far.
    """
    if keypoints is None:
        # The BlazePose detector's box is a face box: one holding a known nose is known.
        # Grown by a quarter each side: a landmark model fitted from a MoveNet ROI put the
        # astronaut's nose 4 px above the detector's 102 px face box.
        x0, y0, x1, y1 = box
        m = FACE_BOX_MARGIN * max(x1 - x0, y1 - y0)
        return any(x0 - m <= o[0, 0] <= x1 + m and y0 - m <= o[0, 1] <= y1 + m for o in taken)
    return any(pose_similarity(keypoints, coco_pose(o)) > SAME_PERSON_OKS for o in taken)


def agrees_with_any(landmarks: np.ndarray, poses: Iterable[np.ndarray], min_oks: float) -> bool:
    """True when (33, >=3) landmarks agree with one of the (17, 3) MoveNet ``poses``: OKS over
    the keypoints both see of at least ``min_oks``."""
    pose = coco_pose(landmarks)
    return any(pose_similarity(kps, pose) >= min_oks for kps in poses)


def landmark_person(track_id: int, result: LandmarkResult, size: tuple[int, int]) -> Person:
    """The ``Person`` of a landmark result: its landmarks, their box in the image (width,
    height ``size``) and the pose flag."""
    box = landmarks_box(result.landmarks, *size)
    return _person(track_id, result.landmarks, box, result.score, "blazepose")


def movenet_person(
    track_id: int, landmarks: np.ndarray, box: np.ndarray, score: float, size: tuple[int, int]
) -> Person:
    """The ``Person`` of someone only MoveNet describes: (33, 4) landmarks made from its
    keypoints (``coco_landmarks.landmarks_from_keypoints``), its box clipped to the image
    (width, height ``size``) and its person score."""
    w, h = size
    return _person(track_id, landmarks, np.clip(box, 0, [w, h, w, h]), score, "movenet")


def _person(
    track_id: int, landmarks: np.ndarray, box: np.ndarray, score: float, source: str
) -> Person:
    return Person(
        track_id=track_id,
        landmarks=landmarks.astype(np.float32),
        box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
        score=score,
        source=source,
    )


def box_area(box: tuple[float, float, float, float]) -> float:
    """Area of a (l, t, r, b) box, 0 for an empty one."""
    return max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)
