"""Where are the people: person proposals (a BlazePose ROI each) from MoveNet or BlazePose.

``PersonFinder`` owns the detector session named by ``keypoints.detector``:

* ``"movenet"``: MoveNet MultiPose on the whole image (longer side ``image_detect_size`` in IMAGE
  mode, ``detect_size`` in VIDEO/LIVE), plus, in IMAGE mode, N x N overlapping tiles
  (``image_tiles``) when small people may have been missed; poses found twice are merged.  Each
  pose gives the ROI BlazePose's own detector would (``movenet.roi_from_keypoints``).
* ``"blazepose"``: MediaPipe's face-based SSD detector (224 px) and its alignment-point ROI.
  With MoveNet it also runs (``face_detector``) when MoveNet found fewer than ``max_people``:
  close-up, upper-body people are its strength and MoveNet's weakness (MediaPipe's
  three_people.jpg: MoveNet finds 2 of the 3, the face detector all 3).

Example::

    finder = PersonFinder(config.keypoints, config.runtime)
    for c in finder.find(image_bgr, image_mode=True):
        print(c.score, c.roi, c.keypoints is not None)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from livematte.config import KeypointsConfig, RuntimeConfig
from livematte.errors import ModelError
from livematte.models.session import create_session
from livematte.ops.movenet import (
    MAX_CANDIDATES,
    MovenetPeople,
    cut_by_tile,
    decode_movenet,
    largest_first,
    merge_people,
    movenet_input,
    roi_from_keypoints,
    shift,
    tiles,
)
from livematte.ops.pose_detection import (
    Detections,
    Roi,
    decode_detections,
    letterbox,
    remove_letterbox,
    roi_from_alignment,
    ssd_anchors,
    weighted_nms,
)

DETECTOR_MODEL = "pose_detection"
MOVENET_MODEL = "movenet_multipose"
#: Tiles are searched when the smallest person found is shorter than this fraction of the image.
TILE_BELOW_HEIGHT = 0.5


@dataclass
class Candidate:
    """A person proposal: the ROI for the landmark model and what the detector saw.

    Attributes:
        roi: rotated square for the BlazePose landmark model.
        score: the detector's score for this person.
        box: left, top, right, bottom in pixels (a face box for the BlazePose detector).
        keypoints: (17, 3) MoveNet pose x, y, score (COCO order), None for BlazePose.
    """

    roi: Roi
    score: float
    box: np.ndarray
    keypoints: np.ndarray | None = None


class PersonFinder:
    """Runs the configured person detector and turns its output into ``Candidate`` lists.

    Raises:
        ModelError, ProviderError: the model cannot be loaded on the requested providers.
    """

    def __init__(self, config: KeypointsConfig, runtime: RuntimeConfig) -> None:
        self.config = config
        self.uses_movenet = config.detector == "movenet"
        self._movenet = None
        if self.uses_movenet:
            self._movenet = create_session(MOVENET_MODEL, runtime.providers, runtime.threads)
        self._faces = None
        if not self.uses_movenet or config.face_detector:
            self._faces = create_session(DETECTOR_MODEL, runtime.providers, runtime.threads)
        self._anchors = ssd_anchors()

    def close(self) -> None:
        """Release the model sessions."""
        for session in (self._movenet, self._faces):
            if session is not None:
                session.close()

    def detect(self, image: np.ndarray) -> Detections:
        """BlazePose detector: detections in source-image pixels, best first (weighted NMS).

        Raises:
            ModelError: the detector is not loaded (``detector = "movenet"`` without
                ``face_detector``).
        """
        if self._faces is None:
            raise ModelError("the BlazePose detector is off (keypoints.face_detector = false)")
        tensor, pad = letterbox(image)
        out = self._faces.run({"image": tensor})
        dets = decode_detections(
            out["boxes"][0], out["scores"][0], self._anchors, self.config.min_detection_score
        )
        dets = weighted_nms(dets)
        return remove_letterbox(dets, pad, image.shape[1], image.shape[0])

    def faces(self, image: np.ndarray) -> list[Candidate]:
        """Candidates from the BlazePose detector, best first."""
        dets = self.detect(image)
        out = []
        for i in range(len(dets)):
            roi = roi_from_alignment(dets.keypoints[i, 0], dets.keypoints[i, 1])
            if math.isfinite(roi.size) and roi.size >= 1.0:
                out.append(Candidate(roi, float(dets.scores[i]), dets.boxes[i]))
        return out

    def movenet(self, image: np.ndarray, long_side: int) -> MovenetPeople:
        """MoveNet on all of ``image`` at ``long_side``: people in its pixels, best first."""
        assert self._movenet is not None, "MoveNet is not loaded (keypoints.detector)"
        session = self._movenet
        tensor, scale = movenet_input(image, long_side)
        raw = session.run({session.input_names[0]: tensor})[session.output_names[0]]
        return decode_movenet(raw, tensor.shape[1:3], scale, self.config.min_person_score)

    def find_movenet(self, image: np.ndarray, long_side: int, grid: int = 0) -> MovenetPeople:
        """MoveNet people, plus N x N tiles where small people may have been missed.

        Tiles run when ``grid`` > 1, the image is at least twice ``long_side`` (a tile then
        sees finer detail than the whole-image pass) or larger than ``long_side`` with
        ``max_people`` above the 6 one pass can return, fewer than ``max_people`` were found,
        and nobody was found or the smallest person found is under half the image's height (a
        portrait, one big person, never pays for them).  Measured by ``eval_keypoints.py``: on
        the COCO/OCHuman photos themselves (640 px) tiles at 384 px found no labelled person the
        face detector did not (same recall, 20 more unlabelled people, +20% time), so
        they are kept for big photos; on 3x3 mosaics of those photos see BENCHMARKS.md.
        Photos the tiles skip for their size get, under the same other conditions, a second
        whole-photo pass at ``image_fine_size`` when it is larger than ``long_side``.
        Returns people largest first.
        """
        people = self.movenet(image, long_side)
        h, w = image.shape[:2]
        # Twice the size: a tile sees finer detail.  Asked for more people than one pass can
        # return (6), any photo larger than one pass qualifies.
        big = max(w, h) >= 2 * long_side or (
            max(w, h) > long_side and self.config.max_people > MAX_CANDIDATES
        )
        heights = people.boxes[:, 3] - people.boxes[:, 1]
        small = len(people) < self.config.max_people and (
            len(people) == 0 or float(heights.min()) < TILE_BELOW_HEIGHT * h
        )
        fine = self.config.image_fine_size
        if grid > 1 and big and small:
            parts = [people]
            for x0, y0, x1, y1 in tiles(w, h, grid):
                found = self.movenet(image[y0:y1, x0:x1], long_side)
                found = found.select(~cut_by_tile(found.boxes, (x0, y0, x1, y1), (w, h)))
                parts.append(shift(found, x0, y0))
            people = merge_people(MovenetPeople.concat(parts))
        elif fine > long_side and small:
            # Too small for tiles: one more look at a finer input (BENCHMARKS.md, "People in
            # groups": COCO/OCHuman person IoU of the photo preset 0.576 -> 0.588 at 768 px).
            people = merge_people(MovenetPeople.concat([people, self.movenet(image, fine)]))
        return largest_first(people)

    def find(self, image: np.ndarray, image_mode: bool) -> list[Candidate]:
        """Person proposals: MoveNet's, largest first, then, when MoveNet found fewer than
        ``max_people`` and ``face_detector`` is on, the BlazePose detector's, best first
        (the stage skips those holding a known person's nose)."""
        if not self.uses_movenet:
            return self.faces(image)
        if image_mode:
            found = self.find_movenet(image, self.config.image_detect_size, self.config.image_tiles)
        else:
            found = largest_first(self.movenet(image, self.config.detect_size))
        out = []
        for kps, box, score in zip(found.keypoints, found.boxes, found.scores, strict=True):
            roi = roi_from_keypoints(kps, box)
            if roi is not None and math.isfinite(roi.size) and roi.size >= 1.0:
                out.append(Candidate(roi, float(score), box, kps))
        if self._faces is not None and len(out) < self.config.max_people:
            out += self.faces(image)
        return out
