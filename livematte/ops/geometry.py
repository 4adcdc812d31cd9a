"""Body geometry from the 33 pose landmarks: the one definition of every derived point.

Pure functions of a person's ``(33, >=3)`` landmarks (x, y pixels, visibility[, presence]);
used by the analysis JSON (``body_parts``), the stickers (``stickers.place``) and ID photos
(``id_photo.head_geometry``), so the three always agree on the same person.

Derived points (each returned with a score = the lowest visibility of what it was built from):

* ``top_head``: the top of the head (the skull, as the analysis service places it), above the
  eye midpoint along the face's ``up`` axis by ``CROWN_PER_EYE_MOUTH`` eye-mouth distances or
  ``CROWN_PER_EARS`` ear-to-ear distances, whichever is larger.
* ``hair_top``: the top of the hair, ``HAIR_PER_TOP_HEAD`` times further up the same line
  (ID photos' crown when there is no matte to find it in; hats).
* ``neck``: on the segment shoulder midpoint -> mouth midpoint at ``NECK_ALONG`` (the middle of
  the neck, not the shoulder line).
* ``chin``, ``forehead``, ``between_eyes``, ``mouth``, ``mid_shoulders``, ``mid_hips``,
  ``chest``; the lengths ``eye_distance``, ``face``, ``shoulder_width``, ``head_height``
  (chin to hair top).

See the constants below for how each was measured.

``up`` is the face's own axis (it follows head tilt): perpendicular to the eye line, on the side
away from the mouth; when the eyes nearly overlap (a profile) the mouth -> eyes direction; when
that collapses too, the shoulders -> eyes direction.

Example::

    point, score = top_head(person.landmarks)
    points = anchor_points(person.landmarks)   # every named point, for stickers
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from livematte.frame import LANDMARK_INDEX

Vec = NDArray[np.float64]
Point = tuple[Vec, float]

# How the constants were chosen (``scripts/measure_geometry.py``; figures and commands in
# BENCHMARKS.md, "People finding speed and body geometry"):
#
# * ``top_head`` and ``neck`` are the analysis service's keys, so they follow the service's own
#   example (../shared/reference/portrait-matting-service.md, the only published output): its
#   top_head is 1.579 eye-mouth distances = 0.750 ear-to-ear distances above the eye midpoint
#   (the top of the skull, ~11 cm for a 7 cm eye-mouth distance), and its neck lies 0.543 of
#   the way from the shoulder midpoint to the mouth.  The person outlines agree on the neck:
#   MediaPipe's golden pose.jpg mask narrows most at 0.55, and COCO's human-drawn outlines at a
#   median 0.78 (quartiles 0.50..0.95, 34 people; collars and hair blur it): the neck is well
#   above the shoulder line, where the JSON had it (0) and the stickers put it (0.35).
# * ``hair_top`` (the top of the hair, what ID-photo standards measure to and hats sit on) is
#   measured on COCO / OCHuman's human-drawn outlines: for the 54 people our keypoint stage
#   found (OKS >= 0.5, eyes inside the outline, head not cut by the edge) the outline ends, up
#   the face from the eyes, a median 1.34 times the top_head distance away (spread 19%); the
#   point's median error is then 0.117 of the crown-to-mouth distance (the stickers' and ID
#   photos' crown before: 0.126, the JSON's top_head before: 0.178).
#   Of the lengths that could scale it, the eye-mouth distance varies least across those people
#   (median absolute deviation 19% of the median, ear-to-ear 30%, eye-to-eye 34%: heads turn),
#   which is why top_head takes the larger of the two estimates (the eye-mouth one, except when
#   the face is foreshortened, looking down, where the ears' one takes over).
#: Top of the head above the eye midpoint, per eye-mouth distance and per ear-to-ear distance.
CROWN_PER_EYE_MOUTH = 1.58
CROWN_PER_EARS = 0.75
#: Top of the hair above the eye midpoint, per top_head distance.
HAIR_PER_TOP_HEAD = 1.34
#: Neck on the shoulders (0) -> mouth (1) segment.
NECK_ALONG = 0.55
#: Chin below the eyes, in eye-mouth distances (average adult face: mouth ~7 cm and chin ~12 cm
#: below the eye line).
CHIN_PER_EYE_MOUTH = 1.7
#: Forehead above the eyes, in ``face`` units.
FOREHEAD_PER_FACE = 0.8
#: Chest on the shoulders (0) -> hips (1) segment.
CHEST_ALONG = 0.25
#: ``face`` unit: the eye distance, or the eye-mouth distance / this when the head turns sideways
#: (the eye distance collapses in a profile, the eye-mouth distance does not).
EYE_MOUTH_PER_FACE = 1.1

#: Derived anchors (``anchor_points`` also has the 33 landmark names).
DERIVED = (
    "between_eyes", "mouth", "top_head", "hair_top", "forehead", "chin", "neck",
    "mid_shoulders", "mid_hips", "chest",
)  # fmt: skip
UNITS = ("eye_distance", "face", "shoulder_width", "head_height")


def _xy(lm: NDArray[np.float64], name: str) -> Vec:
    return lm[LANDMARK_INDEX[name], :2]


def _vis(lm: NDArray[np.float64], name: str) -> float:
    return float(lm[LANDMARK_INDEX[name], 2])


def landmarks_array(landmarks: ArrayLike) -> NDArray[np.float64]:
    """The landmarks as float64 (33, >=3)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 2 or lm.shape[0] != len(LANDMARK_INDEX) or lm.shape[1] < 3:
        raise ValueError(f"landmarks must be (33, >=3), got {lm.shape}")
    return lm


def midpoint(landmarks: ArrayLike, a: str, b: str) -> Point:
    """Midpoint of two landmarks and the lower of their visibilities."""
    lm = landmarks_array(landmarks)
    return (_xy(lm, a) + _xy(lm, b)) / 2.0, min(_vis(lm, a), _vis(lm, b))


def distance(landmarks: ArrayLike, a: str, b: str) -> float:
    """Distance in pixels between two landmarks."""
    lm = landmarks_array(landmarks)
    return float(np.hypot(*(_xy(lm, a) - _xy(lm, b))))


def mouth_score(landmarks: ArrayLike) -> float:
    """Visibility of the mouth; for a MoveNet-only person (mouth corners at presence 0, placed
    by face proportions from the eyes and nose, ``coco_landmarks``) the nose's, which was seen."""
    lm = landmarks_array(landmarks)
    corners = [LANDMARK_INDEX["mouth_left"], LANDMARK_INDEX["mouth_right"]]
    if lm.shape[1] > 3 and not lm[corners, 3].any():
        return _vis(lm, "nose")
    return float(min(lm[corners, 2]))


def face_up(landmarks: ArrayLike) -> Vec:
    """Unit vector pointing up the face (see the module docstring)."""
    lm = landmarks_array(landmarks)
    eyes, _ = midpoint(lm, "left_eye", "right_eye")
    mouth, _ = midpoint(lm, "mouth_left", "mouth_right")
    eye_vec = _xy(lm, "left_eye") - _xy(lm, "right_eye")
    eye_dist = float(np.hypot(*eye_vec))
    to_eyes = eyes - mouth
    em = float(np.hypot(*to_eyes))
    shoulders, _ = midpoint(lm, "left_shoulder", "right_shoulder")
    body = eyes - shoulders
    if eye_dist > 0.25 * em and eye_dist > 1e-6:
        up = np.array([eye_vec[1], -eye_vec[0]]) / eye_dist
        # Away from the mouth; with the mouth on the eye line, away from the shoulders.
        side = to_eyes if abs(float(up @ to_eyes)) > 0.1 * eye_dist else body
        return -up if float(up @ side) < 0 else up
    if em > 1e-6:
        return to_eyes / em
    norm = float(np.hypot(*body))
    return body / norm if norm > 1e-6 else np.array([0.0, -1.0])


def face_unit(landmarks: ArrayLike) -> float:
    """The ``face`` length: max(eye distance, eye-mouth distance / ``EYE_MOUTH_PER_FACE``)."""
    lm = landmarks_array(landmarks)
    eyes, _ = midpoint(lm, "left_eye", "right_eye")
    mouth, _ = midpoint(lm, "mouth_left", "mouth_right")
    em = float(np.hypot(*(eyes - mouth)))
    return max(distance(lm, "left_eye", "right_eye"), em / EYE_MOUTH_PER_FACE)


def crown_line(lm: NDArray[np.float64]) -> tuple[Vec, Vec, float, float]:
    """(eye midpoint, up, top_head's distance from the eye midpoint, score) of float64
    landmarks: the line top_head and hair_top lie on."""
    eyes, s_eyes = midpoint(lm, "left_eye", "right_eye")
    mouth, _ = midpoint(lm, "mouth_left", "mouth_right")
    by_face = CROWN_PER_EYE_MOUTH * float(np.hypot(*(eyes - mouth)))
    by_ears = CROWN_PER_EARS * distance(lm, "left_ear", "right_ear")
    if by_face >= by_ears:
        score = min(s_eyes, mouth_score(lm))
    else:
        score = min(s_eyes, _vis(lm, "left_ear"), _vis(lm, "right_ear"))
    return eyes, face_up(lm), max(by_face, by_ears), score


def top_head(landmarks: ArrayLike) -> Point:
    """Top of the head (x, y) and its score (see ``CROWN_PER_*``)."""
    eyes, up, dist, score = crown_line(landmarks_array(landmarks))
    return eyes + up * dist, score


def hair_top(landmarks: ArrayLike) -> Point:
    """Top of the hair (x, y) and its score (see ``HAIR_PER_TOP_HEAD``)."""
    eyes, up, dist, score = crown_line(landmarks_array(landmarks))
    return eyes + up * HAIR_PER_TOP_HEAD * dist, score


def neck(landmarks: ArrayLike) -> Point:
    """The middle of the neck (x, y) and its score (see ``NECK_ALONG``)."""
    lm = landmarks_array(landmarks)
    shoulders, s_sh = midpoint(lm, "left_shoulder", "right_shoulder")
    mouth, _ = midpoint(lm, "mouth_left", "mouth_right")
    return shoulders + NECK_ALONG * (mouth - shoulders), min(s_sh, mouth_score(lm))


def chin(landmarks: ArrayLike) -> Point:
    """The chin (x, y) and its score: below the eyes along ``up``."""
    lm = landmarks_array(landmarks)
    eyes, s_eyes = midpoint(lm, "left_eye", "right_eye")
    mouth, _ = midpoint(lm, "mouth_left", "mouth_right")
    up = face_up(lm)
    drop = max(float(-up @ (mouth - eyes)), 0.0) * CHIN_PER_EYE_MOUTH
    return eyes - up * drop, min(s_eyes, mouth_score(lm))


def fold_angle(angle: float) -> float:
    """Fold a line's angle into (-90, 90] degrees (radians)."""
    # People are assumed upright: a line seen "backwards" (person facing away, so their left is
    # on the picture's left) must not turn a hat or an ID photo upside down.
    if angle > math.pi / 2:
        return angle - math.pi
    if angle <= -math.pi / 2:
        return angle + math.pi
    return angle


def eye_line_angle(landmarks: ArrayLike) -> float:
    """Angle of the eye line (right eye -> left eye), folded (0 = level)."""
    lm = landmarks_array(landmarks)
    d = _xy(lm, "left_eye") - _xy(lm, "right_eye")
    return fold_angle(math.atan2(d[1], d[0]))


def anchor_points(landmarks: ArrayLike) -> dict[str, Point]:
    """Every named point of one person: name -> (xy float64 pixels, score).

    The 33 landmarks, the ``DERIVED`` points, the ``UNITS`` as ``unit:NAME`` -> ((length, 0),
    score) and ``up`` (unit vector).
    """
    lm = landmarks_array(landmarks)
    out: dict[str, Point] = {n: (lm[i, :2], float(lm[i, 2])) for n, i in LANDMARK_INDEX.items()}
    eyes, s_eyes = midpoint(lm, "left_eye", "right_eye")
    mouth, _ = midpoint(lm, "mouth_left", "mouth_right")
    s_mouth = mouth_score(lm)
    shoulders, s_sh = midpoint(lm, "left_shoulder", "right_shoulder")
    hips, s_hips = midpoint(lm, "left_hip", "right_hip")
    # The same points as top_head / hair_top / chin, with the shared parts computed once (a
    # live frame places stickers on every person).
    _, up, dist, s_crown = crown_line(lm)
    face = face_unit(lm)
    s_face = min(s_eyes, s_mouth)
    crown, hair = eyes + up * dist, eyes + up * HAIR_PER_TOP_HEAD * dist
    low = eyes - up * max(float(-up @ (mouth - eyes)), 0.0) * CHIN_PER_EYE_MOUTH
    s_chin = s_face
    out["between_eyes"] = (eyes, s_eyes)
    out["mouth"] = (mouth, s_mouth)
    out["top_head"] = (crown, s_crown)
    out["hair_top"] = (hair, s_crown)
    out["forehead"] = (eyes + up * FOREHEAD_PER_FACE * face, s_face)
    out["chin"] = (low, s_chin)
    out["neck"] = neck(lm)
    out["mid_shoulders"] = (shoulders, s_sh)
    out["mid_hips"] = (hips, s_hips)
    out["chest"] = (shoulders + CHEST_ALONG * (hips - shoulders), min(s_sh, s_hips))
    head_height = float(np.hypot(*(hair - low)))
    out["unit:eye_distance"] = (np.array([distance(lm, "left_eye", "right_eye"), 0.0]), s_eyes)
    out["unit:face"] = (np.array([face, 0.0]), s_face)
    sw = distance(lm, "left_shoulder", "right_shoulder")
    out["unit:shoulder_width"] = (np.array([sw, 0.0]), s_sh)
    out["unit:head_height"] = (np.array([head_height, 0.0]), min(s_crown, s_chin))
    out["up"] = (up, s_face)
    return out


def matte_crown(alpha: NDArray[np.floating], eyes: Vec, up: Vec, face: float, fallback: Vec) -> Vec:
    """Top of the hair in a matte: walk up from the eyes along ``up`` until the matte ends
    (1.4..3.2 ``face`` units; outside that the matte is missing or merged with something, and
    ``fallback`` is returned)."""
    h, w = alpha.shape[:2]
    side = np.array([-up[1], up[0]])
    steps = np.arange(1.0, 3.6, 0.05) * face
    best = 0.0
    for lateral in (-0.3, 0.0, 0.3):  # a few parallel lines: a parting must not stop the walk
        pts = eyes + lateral * face * side + steps[:, None] * up
        xs = np.clip(np.round(pts[:, 0]).astype(int), 0, w - 1)
        ys = np.clip(np.round(pts[:, 1]).astype(int), 0, h - 1)
        inside = alpha[ys, xs] > 0.5
        inside &= (pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)
        n = int(np.argmin(inside)) if not inside.all() else len(inside)
        if n > 0:
            best = max(best, float(steps[n - 1]))
    if best < 1.4 * face or best > 3.2 * face:
        return fallback
    return eyes + up * best
