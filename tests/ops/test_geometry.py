"""Body geometry: the derived points, and the JSON, stickers and ID photos agreeing on them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from livematte.frame import LANDMARK_NAMES, Person
from livematte.ops import geometry
from livematte.ops.body_parts import analysis_json
from livematte.stages.id_photo import head_geometry
from livematte.stages.stickers import Sticker, place

#: A frontal face in eye distances (x to the person's left = picture right, y down).
FACE = {
    "nose": (0, 0.55), "left_eye": (0.5, 0), "right_eye": (-0.5, 0),
    "left_ear": (1.0, 0.2), "right_ear": (-1.0, 0.2),
    "mouth_left": (0.4, 1.2), "mouth_right": (-0.4, 1.2),
    "left_shoulder": (1.8, 4.0), "right_shoulder": (-1.8, 4.0),
    "left_hip": (1.1, 9.0), "right_hip": (-1.1, 9.0),
}  # fmt: skip


def landmarks(cx=300.0, cy=200.0, d=40.0, angle=0.0, vis=0.9, facing_away=False):
    """(33, 4) landmarks: eye midpoint (cx, cy), eye distance d, head and body turned ``angle``
    degrees clockwise on screen about the eyes."""
    t = math.radians(angle)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    lm = np.zeros((33, 4), np.float64)
    lm[:, :2] = (cx, cy + 9 * d)
    lm[:, 2:] = (vis, 1.0)
    for name, (u, v) in FACE.items():
        u = -u if facing_away else u
        lm[LANDMARK_NAMES.index(name), :2] = np.array([cx, cy]) + rot @ (np.array([u, v]) * d)
    return lm


def test_top_head_neck_and_hair_top_of_a_frontal_face():
    d = 40.0
    lm = landmarks(d=d)
    # Eye-mouth 1.2 d -> 1.58 x 1.2 d = 1.9 d; ears 2 d -> 0.75 x 2 d = 1.5 d: the larger.
    top, score = geometry.top_head(lm)
    assert top == pytest.approx((300, 200 - geometry.CROWN_PER_EYE_MOUTH * 1.2 * d))
    assert score == pytest.approx(0.9)
    hair, _ = geometry.hair_top(lm)
    assert 200 - hair[1] == pytest.approx(geometry.HAIR_PER_TOP_HEAD * (200 - top[1]))
    neck, _ = geometry.neck(lm)
    # Shoulders at 4 d, mouth at 1.2 d below the eyes.
    assert neck == pytest.approx((300, 200 + (4.0 - geometry.NECK_ALONG * 2.8) * d))
    chin, _ = geometry.chin(lm)
    assert chin == pytest.approx((300, 200 + geometry.CHIN_PER_EYE_MOUTH * 1.2 * d))


def test_the_service_example_is_reproduced():
    """The analysis service's documented example: its parts in, its top_head / neck out."""
    lm = np.zeros((33, 3))
    lm[:, 2] = 0.9
    parts = {
        "left_eye": (482.62, 473.66), "right_eye": (333.38, 473.66),
        "left_ear": (587.98, 508.77), "right_ear": (236.80, 508.77),
        "mouth_left": (465.07, 640.46), "mouth_right": (359.71, 640.46),
        "left_shoulder": (728.44, 956.52), "right_shoulder": (87.56, 938.96),
    }  # fmt: skip
    for name, xy in parts.items():
        lm[LANDMARK_NAMES.index(name), :2] = xy
    top, _ = geometry.top_head(lm)
    neck, _ = geometry.neck(lm)
    # The service says top_head (412.39, 210.28), neck (412.39, 780.93).
    assert abs(top[1] - 210.28) < 3 and abs(top[0] - 412.39) < 6
    assert abs(neck[1] - 780.93) < 5 and abs(neck[0] - 412.39) < 6


@pytest.mark.parametrize("angle", [-30.0, 0.0, 20.0])
def test_up_follows_tilt_and_survives_a_back_view(angle):
    lm = landmarks(angle=angle)
    up = geometry.face_up(lm)
    t = math.radians(angle)
    assert up == pytest.approx((math.sin(t), -math.cos(t)), abs=1e-9)
    # Facing away (their left on the picture's left): still up, not down.
    assert geometry.face_up(landmarks(angle=angle, facing_away=True)) == pytest.approx(up)
    assert abs(geometry.eye_line_angle(landmarks(angle=angle, facing_away=True)) - t) < 1e-9


def test_profile_and_collapsed_faces_keep_a_head_top():
    lm = landmarks()
    # Profile: the eyes overlap; up comes from the mouth -> eyes axis.
    lm[LANDMARK_NAMES.index("left_eye"), :2] = lm[LANDMARK_NAMES.index("right_eye"), :2] + 1
    lm[[9, 10], 0] = lm[LANDMARK_NAMES.index("right_eye"), 0] + 2
    assert geometry.face_up(lm) @ np.array([0.0, -1.0]) > 0.95
    # Looking down: the mouth on the eye line; the ears' estimate and the body axis take over.
    lm = landmarks()
    lm[[9, 10], 1] = 200.0
    top, score = geometry.top_head(lm)
    assert top == pytest.approx((300, 200 - geometry.CROWN_PER_EARS * 80.0))
    assert score == pytest.approx(0.9)


def test_movenet_only_head_is_scored_on_what_was_seen():
    lm = landmarks()
    lm[[9, 10], 2:] = 0.0  # mouth placed by proportions: not observed (presence 0)
    lm[0, 2] = 0.7  # the nose was
    assert geometry.top_head(lm)[1] == pytest.approx(0.7)
    assert geometry.neck(lm)[1] == pytest.approx(0.7)


def test_anchor_points_are_the_geometry_functions():
    lm = landmarks(angle=10.0)
    pts = geometry.anchor_points(lm)
    for name, fn in (("top_head", geometry.top_head), ("hair_top", geometry.hair_top),
                     ("neck", geometry.neck), ("chin", geometry.chin)):  # fmt: skip
        assert pts[name][0] == pytest.approx(fn(lm)[0]) and pts[name][1] == fn(lm)[1]
    assert set(geometry.DERIVED) | set(LANDMARK_NAMES) <= set(pts)
    head = pts["unit:head_height"][0][0]
    assert head == pytest.approx(np.hypot(*(pts["hair_top"][0] - pts["chin"][0])))


def test_bad_landmarks_are_refused():
    with pytest.raises(ValueError, match="33"):
        geometry.top_head(np.zeros((17, 3)))


@pytest.mark.parametrize("angle", [0.0, 15.0])
def test_json_stickers_and_id_photo_agree_on_one_person(angle):
    lm = landmarks(angle=angle).astype(np.float32)
    person = Person(0, lm, (200.0, 50.0, 400.0, 600.0), 0.9)
    info = analysis_json([person])["person_info"][0]["body_parts"]
    top, _ = geometry.top_head(lm)
    neck, _ = geometry.neck(lm)
    assert (info["top_head"]["x"], info["top_head"]["y"]) == pytest.approx(top, abs=0.01)
    assert (info["neck"]["x"], info["neck"]["y"]) == pytest.approx(neck, abs=0.01)
    # A sticker anchored on top_head / neck, no offset, lands on the JSON's points.
    for name in ("top_head", "neck"):
        sticker = Sticker(image=None, anchor=(name,), width=1.0)  # type: ignore[arg-type]
        p = place(sticker, geometry.anchor_points(lm), 0.3)
        assert p is not None
        assert (p.x, p.y) == pytest.approx((info[name]["x"], info[name]["y"]), abs=0.01)
    # The ID photo's crown (no matte) is on the same line, at the hair top above that top_head.
    head = head_geometry(person)
    assert head.crown == pytest.approx(geometry.hair_top(lm)[0])
    eyes = lm[[2, 5], :2].mean(axis=0)
    along = (head.crown - eyes) / np.hypot(*(head.crown - eyes))
    assert along == pytest.approx((top - eyes) / np.hypot(*(top - eyes)), abs=1e-6)
    assert head.score == pytest.approx(info["top_head"]["score"], abs=1e-4)
