"""One person, one entry: duplicates, known candidates, agreement with MoveNet, the Person made."""

from __future__ import annotations

import numpy as np
import pytest
from media import STANDING_POSE

from livematte.frame import LANDMARK_INDEX, LANDMARK_NAMES
from livematte.ops.coco_landmarks import landmarks_from_keypoints
from livematte.ops.movenet import BLAZEPOSE_FROM_COCO
from livematte.ops.person_match import (
    agrees_with_any,
    box_area,
    coco_pose,
    duplicate,
    known_person,
    landmark_person,
    movenet_person,
)
from livematte.ops.pose_detection import Roi
from livematte.ops.pose_landmarks import LandmarkResult


def landmarks(at=(300.0, 250.0), visibility=0.9) -> np.ndarray:
    """(33, 4) landmarks of ``STANDING_POSE`` (about 400 px tall) moved to ``at``; hands on
    their wrist, feet on their ankle."""
    lm = np.zeros((33, 4), np.float32)
    for name in LANDMARK_NAMES:
        side, _, part = name.partition("_")
        joint = "wrist" if part in ("pinky", "index", "thumb") else "ankle"
        xy = STANDING_POSE.get(name, STANDING_POSE.get(f"{side}_{joint}"))
        lm[LANDMARK_INDEX[name], :2] = np.array(xy, float) + at
    lm[:, 2:] = visibility
    return lm


def test_coco_pose_takes_the_17_coco_rows() -> None:
    lm = landmarks()
    pose = coco_pose(lm)
    assert pose.shape == (17, 3)
    assert pose[0, :2] == pytest.approx(lm[LANDMARK_INDEX["nose"], :2])
    assert pose == pytest.approx(lm[BLAZEPOSE_FROM_COCO, :3])


def test_duplicate_compares_poses_not_boxes() -> None:
    a = landmarks()
    assert duplicate(a + [5.0, 5.0, 0, 0], [a], max_distance=0.1)  # 7 px on a ~400 px pose
    assert not duplicate(a + [80.0, 0, 0, 0], [a], max_distance=0.1)  # someone beside them
    assert not duplicate(a, [], max_distance=0.1)
    assert not duplicate(a + [5.0, 5.0, 0, 0], [a], max_distance=0.0)


def test_a_face_box_holding_a_known_nose_is_known() -> None:
    taken = [landmarks()]
    nose = taken[0][LANDMARK_INDEX["nose"], :2]
    face = np.array([nose[0] - 20, nose[1] + 2, nose[0] + 20, nose[1] + 42])  # nose 2 px above
    assert known_person(face, None, taken)  # within the quarter-side margin
    assert not known_person(face + [0, 30, 0, 30], None, taken)  # 32 px above: beyond it
    assert not known_person(face, None, [])


def test_a_movenet_pose_like_a_taken_one_is_known() -> None:
    taken = [landmarks()]
    same = coco_pose(taken[0]) + [3.0, -2.0, 0.0]
    other = coco_pose(taken[0]) + [250.0, 0.0, 0.0]
    assert known_person(np.zeros(4), same, taken)
    assert not known_person(np.zeros(4), other, taken)


def test_agrees_with_any_pose_over_the_threshold() -> None:
    lm = landmarks()
    here, there = coco_pose(lm), coco_pose(lm) + [250.0, 0.0, 0.0]
    assert agrees_with_any(lm, [there, here], min_oks=0.5)
    assert not agrees_with_any(lm, [there], min_oks=0.5)
    assert not agrees_with_any(lm, [], min_oks=0.0)


def test_landmark_person_boxes_the_present_landmarks_in_the_image() -> None:
    lm = landmarks(at=(30.0, 250.0))
    lm[LANDMARK_INDEX["left_ankle"], 1] += 50.0  # lowest, and not present: outside the box
    lm[LANDMARK_INDEX["left_ankle"], 3] = 0.1
    roi, logits = Roi(0.0, 0.0, 1.0, 0.0), np.zeros((1, 1))
    result = LandmarkResult(0.8, lm.astype(np.float64), np.zeros((2, 2)), roi, logits)
    person = landmark_person(4, result, (640, 480))
    assert (person.track_id, person.score, person.source) == (4, 0.8, "blazepose")
    assert person.landmarks.dtype == np.float32
    assert person.box[0] == 0.0  # clipped to the image
    assert person.box[3] == pytest.approx(lm[LANDMARK_INDEX["right_ankle"], 1])
    assert all(isinstance(v, float) for v in person.box)


def test_movenet_person_keeps_the_clipped_box_and_score() -> None:
    lm = landmarks_from_keypoints(coco_pose(landmarks()))
    person = movenet_person(2, lm, np.array([-10.0, 40.0, 700.0, 500.0]), 0.6, (640, 480))
    assert (person.track_id, person.score, person.source) == (2, 0.6, "movenet")
    assert person.box == (0.0, 40.0, 640.0, 480.0)
    assert box_area(person.box) == 640.0 * 440.0
    assert box_area((10.0, 10.0, 5.0, 20.0)) == 0.0
