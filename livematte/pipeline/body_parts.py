"""The analysis service's schema: 21 named body parts and a box per person.

``analysis_json(people)`` returns::

    {"person_num": N,
     "person_info": [{"body_parts": {"nose": {"score": s, "x": x, "y": y}, ...},
                      "location": {"score": s, "top": t, "left": l, "width": w, "height": h}}]}

All coordinates are source-image pixels; "left"/"right" are the person's own left/right (as in
BlazePose).  A part's ``score`` is the landmark's visibility (probability that it is inside the
image and not occluded).  Each person also says where its parts come from (``"source"``, an
extension of the service's schema): ``"blazepose"`` (the landmark model) or ``"movenet"`` (a
person the landmark model could not fit: MoveNet's 17 keypoints, scores are MoveNet's keypoint
scores; mouth corners are placed by face proportions with score 0, since nothing saw them).

Derived parts (BlazePose has no such landmarks):

* ``neck`` = midpoint of the two shoulders; score = the lower shoulder score.
* ``top_head`` = eye midpoint moved "up" the head by one head-top distance, where
  "up" is the face axis mouth midpoint -> eye midpoint (it follows head tilt), or, when the face
  is seen too foreshortened for that axis to be trusted (eye-mouth distance under 0.3 x the ear
  distance), the body axis neck -> ear midpoint; and the head-top distance is the larger of
  1.7 x eye-mouth distance and 0.75 x ear-to-ear distance (adult proportions: the crown sits
  ~11.5 cm above the eyes, the mouth ~7 cm below them, the ears ~15 cm apart; taking the larger
  estimate survives both profile views, where the ears overlap, and a tilted-down face, where
  the eye-mouth distance shrinks).  Score = mean visibility of the eyes and ears.

``location`` is the person's box (``Person.box``) grown to include ``top_head``, clipped to the
image when its size is given; its score is the person's score (the landmark model's pose flag,
or MoveNet's person score for a MoveNet-only person).

Example::

    json.dump(analysis_json(frame.people, frame.size), fp)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from livematte.frame import LANDMARK_INDEX, LANDMARK_NAMES, Person

#: Service part name -> BlazePose landmark name (None: derived, see the module docstring).
BODY_PARTS: dict[str, str | None] = {
    "nose": "nose",
    "left_eye": "left_eye",
    "right_eye": "right_eye",
    "left_ear": "left_ear",
    "right_ear": "right_ear",
    "left_mouth_corner": "mouth_left",
    "right_mouth_corner": "mouth_right",
    "top_head": None,
    "neck": None,
    "left_shoulder": "left_shoulder",
    "right_shoulder": "right_shoulder",
    "left_elbow": "left_elbow",
    "right_elbow": "right_elbow",
    "left_wrist": "left_wrist",
    "right_wrist": "right_wrist",
    "left_hip": "left_hip",
    "right_hip": "right_hip",
    "left_knee": "left_knee",
    "right_knee": "right_knee",
    "left_ankle": "left_ankle",
    "right_ankle": "right_ankle",
}

#: Head-top distance as multiples of the eye-mouth and ear-to-ear distances.
TOP_HEAD_PER_FACE = 1.7
TOP_HEAD_PER_EARS = 0.75
#: Below this eye-mouth / ear-distance ratio the face axis is too foreshortened to trust.
MIN_FACE_AXIS_RATIO = 0.3


def _part(x: float, y: float, score: float) -> dict[str, float]:
    return {"score": round(float(score), 4), "x": round(float(x), 2), "y": round(float(y), 2)}


def _mid(lm: np.ndarray, a: str, b: str) -> np.ndarray:
    return (lm[LANDMARK_INDEX[a], :2] + lm[LANDMARK_INDEX[b], :2]) / 2.0


def derive_neck(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """Neck point (x, y) and score from (33, >=3) landmarks: the shoulder midpoint."""
    lm = np.asarray(landmarks, dtype=np.float64)
    score = min(lm[LANDMARK_INDEX["left_shoulder"], 2], lm[LANDMARK_INDEX["right_shoulder"], 2])
    return _mid(lm, "left_shoulder", "right_shoulder"), float(score)


def derive_top_head(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """Top-of-head point (x, y) and score from (33, >=3) landmarks (see module docstring)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    eyes = _mid(lm, "left_eye", "right_eye")
    mouth = _mid(lm, "mouth_left", "mouth_right")
    ears = _mid(lm, "left_ear", "right_ear")
    neck, _ = derive_neck(lm)
    face_axis = eyes - mouth
    face_len = float(np.hypot(*face_axis))
    ear_dist = float(
        np.hypot(*(lm[LANDMARK_INDEX["left_ear"], :2] - lm[LANDMARK_INDEX["right_ear"], :2]))
    )
    if face_len > 1e-6 and face_len >= MIN_FACE_AXIS_RATIO * ear_dist:
        up = face_axis / face_len
    else:
        body_axis = ears - neck
        norm = float(np.hypot(*body_axis))
        up = body_axis / norm if norm > 1e-6 else np.array([0.0, -1.0])
    distance = max(TOP_HEAD_PER_FACE * face_len, TOP_HEAD_PER_EARS * ear_dist)
    names = ("left_eye", "right_eye", "left_ear", "right_ear")
    score = float(np.mean([lm[LANDMARK_INDEX[n], 2] for n in names]))
    return eyes + up * distance, score


def body_parts(person: Person) -> dict[str, dict[str, float]]:
    """The 21 service body parts of one person: ``{name: {"score", "x", "y"}}``."""
    lm = person.landmarks
    parts: dict[str, dict[str, float]] = {}
    for name, source in BODY_PARTS.items():
        if source is not None:
            row = lm[LANDMARK_INDEX[source]]
            parts[name] = _part(row[0], row[1], row[2])
        elif name == "neck":
            point, score = derive_neck(lm)
            parts[name] = _part(point[0], point[1], score)
        else:
            point, score = derive_top_head(lm)
            parts[name] = _part(point[0], point[1], score)
    return parts


def location(person: Person, image_size: tuple[int, int] | None = None) -> dict[str, float]:
    """``{"score", "top", "left", "width", "height"}``: the person's box including the head top.

    Args:
        person: the person.
        image_size: (width, height) to clip the box to, or None to leave it unclipped.
    """
    left, top, right, bottom = (float(v) for v in person.box)
    head, _ = derive_top_head(person.landmarks)
    left, right = min(left, head[0]), max(right, head[0])
    top, bottom = min(top, head[1]), max(bottom, head[1])
    if image_size is not None:
        w, h = image_size
        left, right = float(np.clip(left, 0, w)), float(np.clip(right, 0, w))
        top, bottom = float(np.clip(top, 0, h)), float(np.clip(bottom, 0, h))
    return {
        "score": round(float(person.score), 4),
        "top": round(top, 2),
        "left": round(left, 2),
        "width": round(right - left, 2),
        "height": round(bottom - top, 2),
    }


def landmarks_json(person: Person) -> dict[str, dict[str, float]]:
    """All 33 named landmarks: ``{name: {"x", "y", "visibility", "presence"}}``."""
    return {
        name: {
            "x": round(float(row[0]), 2),
            "y": round(float(row[1]), 2),
            "visibility": round(float(row[2]), 4),
            "presence": round(float(row[3]), 4),
        }
        for name, row in zip(LANDMARK_NAMES, person.landmarks, strict=True)
    }


def analysis_json(
    people: list[Person],
    image_size: tuple[int, int] | None = None,
    include_landmarks: bool = False,
) -> dict[str, Any]:
    """The service's body-analysis result for a list of people.

    Args:
        people: ``frame.people``.
        image_size: (width, height) to clip locations to (``frame.size``), or None.
        include_landmarks: also add ``"landmarks"`` (all 33, named) and ``"track_id"`` to each
            person (extensions; the service's own keys are unchanged).

    Example::

        >>> analysis_json([])
        {'person_num': 0, 'person_info': []}
    """
    info = []
    for person in people:
        entry: dict[str, Any] = {
            "body_parts": body_parts(person),
            "location": location(person, image_size),
            "source": person.source,
        }
        if include_landmarks:
            entry["track_id"] = int(person.track_id)
            entry["landmarks"] = landmarks_json(person)
        info.append(entry)
    return {"person_num": len(info), "person_info": info}
