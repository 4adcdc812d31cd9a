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

Derived parts (BlazePose has no such landmarks): ``top_head`` and ``neck`` from
``geometry.top_head`` / ``geometry.neck``, the same points the stickers and ID photos use (the
module says how their constants were measured; score = the lowest visibility they were built
from).

``location`` is the person's box (``Person.box``) grown to include ``geometry.hair_top`` (a
person's box holds their hair: on the service's own example its location's top is 90, its
top_head 210 and our hair top 120, our top_head 210), clipped to the image when its size is
given; its score is the person's score (the landmark model's pose flag, or MoveNet's person
score for a MoveNet-only person).

Example::

    json.dump(analysis_json(frame.people, frame.size), fp)
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

import numpy as np

from livematte.frame import LANDMARK_INDEX, LANDMARK_NAMES, Person
from livematte.ops import geometry

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


class PartJSON(TypedDict):
    """One body part: position (pixels) and score."""

    score: float
    x: float
    y: float


class LocationJSON(TypedDict):
    """A person's box (pixels) and score."""

    score: float
    top: float
    left: float
    width: float
    height: float


class LandmarkJSON(TypedDict):
    """One of the 33 landmarks (extension)."""

    x: float
    y: float
    visibility: float
    presence: float


class PersonJSON(TypedDict):
    """One entry of ``person_info``."""

    body_parts: dict[str, PartJSON]
    location: LocationJSON
    source: str
    track_id: NotRequired[int]
    landmarks: NotRequired[dict[str, LandmarkJSON]]


class AnalysisJSON(TypedDict):
    """The service's body-analysis result."""

    person_num: int
    person_info: list[PersonJSON]


def _part(x: float, y: float, score: float) -> PartJSON:
    return {"score": round(float(score), 4), "x": round(float(x), 2), "y": round(float(y), 2)}


#: The derived parts' definitions.
DERIVED_PARTS = {"top_head": geometry.top_head, "neck": geometry.neck}


def body_parts(person: Person) -> dict[str, PartJSON]:
    """The 21 service body parts of one person: ``{name: {"score", "x", "y"}}``."""
    lm = person.landmarks
    parts: dict[str, PartJSON] = {}
    for name, source in BODY_PARTS.items():
        if source is not None:
            row = lm[LANDMARK_INDEX[source]]
            parts[name] = _part(row[0], row[1], row[2])
        else:
            point, score = DERIVED_PARTS[name](lm)
            parts[name] = _part(point[0], point[1], score)
    return parts


def location(person: Person, image_size: tuple[int, int] | None = None) -> LocationJSON:
    """``{"score", "top", "left", "width", "height"}``: the person's box including the hair top.

    Args:
        person: the person.
        image_size: (width, height) to clip the box to, or None to leave it unclipped.
    """
    left, top, right, bottom = (float(v) for v in person.box)
    head, _ = geometry.hair_top(person.landmarks)
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


def landmarks_json(person: Person) -> dict[str, LandmarkJSON]:
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
) -> AnalysisJSON:
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
        entry: PersonJSON = {
            "body_parts": body_parts(person),
            "location": location(person, image_size),
            "source": person.source,
        }
        if include_landmarks:
            entry["track_id"] = int(person.track_id)
            entry["landmarks"] = landmarks_json(person)
        info.append(entry)
    return {"person_num": len(info), "person_info": info}
