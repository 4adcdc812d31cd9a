"""The service schema: 21 named body parts, derived neck / top_head, location, JSON shape."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from media import STANDING_POSE

from livematte.frame import LANDMARK_NAMES, Person
from livematte.ops import geometry
from livematte.ops.body_parts import BODY_PARTS, analysis_json, body_parts, location

SERVICE_PARTS = {
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_mouth_corner",
    "right_mouth_corner", "top_head", "neck", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
    "right_knee", "left_ankle", "right_ankle",
}  # fmt: skip


def _upright_person(angle_deg: float = 0.0, track_id: int = 0) -> Person:
    """A frontal person facing the camera (their left is image right), head tilted by angle."""
    pts = STANDING_POSE
    lm = np.zeros((33, 4), np.float32)
    lm[:, 2:] = 0.9
    head_pivot = np.array([0.0, -120.0])
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    for i, name in enumerate(LANDMARK_NAMES):
        p = np.array(pts.get(name, (0, 0)), float)
        if p[1] < -120:  # face points rotate about the neck
            p = head_pivot + rot @ (p - head_pivot)
        lm[i, :2] = p + [300, 250]
    return Person(track_id, lm, (245.0, 80.0, 355.0, 410.0), 0.95)


def test_part_names_and_mapping() -> None:
    assert set(BODY_PARTS) == SERVICE_PARTS and len(BODY_PARTS) == 21
    for source in BODY_PARTS.values():
        assert source is None or source in LANDMARK_NAMES
    assert BODY_PARTS["left_mouth_corner"] == "mouth_left"


def test_body_parts_values_and_sides() -> None:
    person = _upright_person()
    parts = body_parts(person)
    assert set(parts) == SERVICE_PARTS
    for part in parts.values():
        assert set(part) == {"score", "x", "y"}
    # The person's own left is on the image right for a person facing the camera.
    assert parts["left_shoulder"]["x"] > parts["right_shoulder"]["x"]
    assert parts["left_wrist"] == {"score": pytest.approx(0.9), "x": 355.0, "y": 230.0}


def test_neck_is_above_the_shoulder_midpoint() -> None:
    person = _upright_person()
    person.landmarks[12, 2] = 0.4
    neck, score = geometry.neck(person.landmarks)
    mouth_y = person.landmarks[[9, 10], 1].mean()
    assert neck == pytest.approx([300, 130 + geometry.NECK_ALONG * (mouth_y - 130)])
    assert score == pytest.approx(0.4)
    assert body_parts(person)["neck"]["y"] == pytest.approx(neck[1], abs=0.01)


def test_top_head_above_eyes_and_follows_tilt() -> None:
    upright, _ = geometry.top_head(_upright_person().landmarks)
    eyes_y = 250 - 170
    assert upright[0] == pytest.approx(300)
    assert eyes_y - 40 < upright[1] < eyes_y - 25  # ~1.58 x the 20 px eye-mouth distance
    tilted, _ = geometry.top_head(_upright_person(30).landmarks)
    assert tilted[0] > 300 + 10  # tilting clockwise moves the crown to the image right


def test_top_head_falls_back_to_body_axis() -> None:
    person = _upright_person()
    lm = person.landmarks
    lm[[9, 10], :2] = lm[[2, 5], :2].mean(axis=0)  # mouth collapsed onto the eyes
    top, _ = geometry.top_head(lm)
    assert top[1] < 250 - 170 and abs(top[0] - 300) < 1.0


def test_location_includes_head_and_clips() -> None:
    person = _upright_person()
    loc = location(person)
    top, _ = geometry.hair_top(person.landmarks)
    assert loc["top"] == pytest.approx(top[1], abs=0.01)
    assert loc["left"] == 245.0 and loc["width"] == pytest.approx(110.0)
    assert loc["score"] == pytest.approx(0.95)
    clipped = location(person, image_size=(320, 300))
    assert clipped["left"] + clipped["width"] <= 320 and clipped["top"] + clipped["height"] <= 300


def test_analysis_json_shape() -> None:
    people = [_upright_person(track_id=3), _upright_person(10, track_id=7)]
    out = analysis_json(people, image_size=(640, 480))
    assert out["person_num"] == 2 and len(out["person_info"]) == 2
    assert set(out["person_info"][0]) == {"body_parts", "location", "source"}
    assert out["person_info"][0]["source"] == "blazepose"
    assert set(out["person_info"][0]["location"]) == {"score", "top", "left", "width", "height"}
    json.dumps(out)  # plain Python types only
    assert analysis_json([]) == {"person_num": 0, "person_info": []}
    extended = analysis_json(people, include_landmarks=True)["person_info"][1]
    assert extended["track_id"] == 7
    assert list(extended["landmarks"]) == list(LANDMARK_NAMES)
    assert set(extended["landmarks"]["nose"]) == {"x", "y", "visibility", "presence"}
