"""The object that flows through the pipeline: one ``Frame`` per picture.

Each stage fills its own field and never mutates ``image``.  Images are BGR ``uint8`` end to
end (OpenCV, PyAV ``bgr24`` and pyvirtualcam all speak it); ``alpha`` is ``float32`` in 0..1 at
the frame's full resolution, and read-only once the matting stage set it: in VIDEO and LIVE
modes the same array is the temporal smoother's history for the next frame (replace it with a
new array, never write into it).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # frame.py sits below ops/: these are for the type checker only
    from livematte.ops.band import Band
    from livematte.ops.pose_landmarks import PersonMask


class Mode(enum.StrEnum):
    """How frames relate to each other.

    IMAGE: every frame is independent (no temporal state, detection every time).
    VIDEO: every frame in order, nothing dropped; temporal state carried between frames.
    LIVE: like VIDEO, but stale frames may be dropped so latency never grows.

    A ``str`` enum: ``Mode.LIVE == "live"``, and TOML, JSON and ``--set runtime.mode=live``
    read and write it as its value.
    """

    IMAGE = "image"
    VIDEO = "video"
    LIVE = "live"


#: The 33 BlazePose landmark names, in model output order.  "left" is the person's own left.
LANDMARK_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye_inner", "left_eye", "left_eye_outer",
    "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear",
    "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
    "left_pinky", "right_pinky",
    "left_index", "right_index",
    "left_thumb", "right_thumb",
    "left_hip", "right_hip",
    "left_knee", "right_knee",
    "left_ankle", "right_ankle",
    "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
)  # fmt: skip

#: Landmark name -> row in ``Person.landmarks``.
LANDMARK_INDEX: dict[str, int] = {name: i for i, name in enumerate(LANDMARK_NAMES)}


@dataclass
class Person:
    """One detected and/or tracked person.

    Attributes:
        track_id: stable across frames in VIDEO/LIVE modes (new ids are never reused).
        landmarks: (33, 4) float32: x, y in source-image pixels, visibility, presence (0..1).
        box: (left, top, right, bottom) in source-image pixels.
        score: probability that this is a person: the landmark model's pose flag, or for a
            MoveNet-only person MoveNet's person score.
        source: where the landmarks come from: "blazepose" (all 33 from the landmark model) or
            "movenet" (the 17 COCO keypoints from MoveNet MultiPose; the other 16 rows are
            estimated from body proportions with visibility and presence 0).
    """

    track_id: int
    landmarks: np.ndarray
    box: tuple[float, float, float, float]
    score: float
    source: str = "blazepose"

    def landmark(self, name: str) -> np.ndarray:
        """Row (x, y, visibility, presence) of a named landmark."""
        return self.landmarks[LANDMARK_INDEX[name]]


def largest_person(people: list[Person]) -> Person | None:
    """The person with the largest box (the first of equals), or None."""
    if not people:
        return None
    return max(people, key=lambda p: (p.box[2] - p.box[0]) * (p.box[3] - p.box[1]))


@dataclass
class Frame:
    """One picture and everything the stages learned about it.

    ``person_masks`` holds the keypoint stage's per-person segmentation
    (``keypoints.PersonMask``: ``track_id``, 256x256 ``logits`` of its ROI crop,
    ``crop_to_image`` 2x3 matrix) for each person with landmarks (``source == "blazepose"``),
    in the order of ``people``, matched by ``track_id``; the matting stage fuses them
    with its whole-frame mask when ``matting.person_roi`` is on.

    ``source_alpha`` is the input's own transparency (HxW uint8, e.g. an RGBA upload); the
    effects stage multiplies it into ``alpha`` before compositing.

    ``band`` (``livematte.ops.band.Band``) lists the pixels where ``alpha`` is
    fractional, found once by the matting stage for its foreground colours and reused by
    compositing; it describes ``alpha`` only while ``band.source is alpha``.

    ``timings`` holds milliseconds per stage (each stage adds its own key); the live
    overlay and the benchmarks show them.
    """

    image: np.ndarray
    index: int = 0
    pts: int | None = None
    time_base: Fraction | None = None
    mode: Mode = Mode.IMAGE
    alpha: np.ndarray | None = None
    foreground: np.ndarray | None = None
    people: list[Person] = field(default_factory=list)
    person_masks: list[PersonMask] = field(default_factory=list)
    output: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)
    source_alpha: np.ndarray | None = None
    band: Band | None = None

    def __post_init__(self) -> None:
        if self.image.dtype != np.uint8 or self.image.ndim != 3 or self.image.shape[2] != 3:
            raise ValueError(
                f"Frame.image must be HxWx3 uint8 BGR, got {self.image.dtype} {self.image.shape}"
            )

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.image.shape[1], self.image.shape[0]

    @property
    def time(self) -> float | None:
        """Presentation time in seconds, when known."""
        if self.pts is None or self.time_base is None:
            return None
        return float(self.pts * self.time_base)
