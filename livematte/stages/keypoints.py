"""Body keypoints stage: find every person, 33 BlazePose landmarks each, multi-person tracking.

Per frame (``KeypointStage.process``):

* Finding people: ``person_finder.PersonFinder`` (MoveNet MultiPose by default, with tiles for
  big photos, or MediaPipe's face-based BlazePose detector) proposes a rotated ROI per person.
* IMAGE mode: candidates largest first; the landmark model runs on a 256x256 crop of each ROI.
  Its 17 COCO points are fused with MoveNet's (``coco_landmarks.fuse_keypoints``).  A person whose
  result has a pose flag below ``min_tracking_score``, or disagrees with the MoveNet pose that
  asked for it (it slid onto someone else, then listed in their own right when MoveNet saw
  them too), keeps MoveNet's 17 keypoints instead (``Person.source == "movenet"``, the 16
  landmarks COCO lacks at visibility 0) rather than vanishing.  One person = one entry: a
  candidate whose pose matches someone already found is skipped, and so is a result
  duplicating one.  People come largest first, ``track_id`` 0, 1, ... in that order.  (A
  second landmark pass on the ROI implied by the first result changed the mean OKS of matched
  people by 0.0002 on the shared COCO/OCHuman people for up to twice the cost: not done.)
* VIDEO / LIVE: each tracked person's ROI comes from the previous frame's auxiliary landmarks
  (hip centre and scale point, heavily smoothed as MediaPipe does), so the detector only runs
  when nobody is tracked, when a track was lost on this frame, and every ``detect_interval``
  frames while fewer than ``max_people`` are tracked.  Detections matching a tracked person
  are ignored; new people get fresh, increasing ``track_id`` values.  Only people with
  landmarks are tracked.  Landmarks are smoothed per person with a One Euro filter
  (``landmark_filter.py``) in source-image pixels.

The landmark model's 256x256 person mask is kept per person with landmarks (``person_masks()``,
also stored as ``frame.person_masks``, in the order of ``frame.people``, matched by
``track_id``) so matting can fuse it.  Its decoder is a model of its own that runs when a
mask's logits are first read (``PersonMask``): keypoints and stickers alone never pay for it.

Example::

    stage = KeypointStage(config.keypoints, config.runtime)
    frame = stage.process(frame)
    for person in frame.people:
        print(person.track_id, person.source, person.landmark("nose"))
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from livematte.config import KeypointsConfig, RuntimeConfig
from livematte.frame import Frame, Mode, Person
from livematte.models.session import create_session
from livematte.ops.coco_landmarks import fuse_keypoints, landmarks_from_keypoints
from livematte.ops.landmark_filter import LandmarkSmoother, OneEuroFilter
from livematte.ops.movenet import SAME_PERSON_OKS
from livematte.ops.person_match import (
    agrees_with_any,
    box_area,
    duplicate,
    known_person,
    landmark_person,
    movenet_person,
)
from livematte.ops.pose_detection import REFILLS, ROI_SCALE, Roi, crop_roi, roi_from_alignment
from livematte.ops.pose_landmarks import (
    LANDMARK_SIZE,
    LandmarkResult,
    PersonMask,
    decode_landmarks,
    landmarks_box,
    refine_from_heatmap,
)
from livematte.stages.person_finder import Candidate, PersonFinder

__all__ = [
    "KeypointStage",
    "LandmarkResult",
    "PersonMask",
    "landmarks_box",
    "refine_from_heatmap",
]

LANDMARK_MODEL = "pose_landmark_full"
#: The landmark model's person-mask decoder, split off it (``scripts/convert_mediapipe.py``):
#: ~7.5 of the whole model's ~17.5 ms on one core, run only for masks someone reads.
MASK_MODEL = "pose_landmark_full_mask"
#: Auxiliary landmarks 33 (hip centre) and 34 (scale point) steer the next frame's ROI; MediaPipe
#: smooths them harder than the visible landmarks so the crop stays put while a person is still.
AUX_MIN_CUTOFF = 0.01
AUX_BETA = 10.0
#: Frame rate assumed for VIDEO frames without timestamps.
FALLBACK_FPS = 30.0
#: A landmark result agreeing with its MoveNet pose less than this (OKS over the keypoints both
#: see) went to someone else or nowhere; the person keeps MoveNet's keypoints.
AGREE_OKS = 0.3


@dataclass
class _Found:
    """One person found on this frame: landmarks, or MoveNet keypoints only."""

    candidate: Candidate
    result: LandmarkResult | None
    landmarks: np.ndarray  # (33, 4)


@dataclass
class _Track:
    track_id: int
    roi: Roi
    smoother: LandmarkSmoother
    aux_filter: OneEuroFilter = field(
        default_factory=lambda: OneEuroFilter(AUX_MIN_CUTOFF, AUX_BETA, 1.0)
    )


class KeypointStage:
    """Pipeline stage that fills ``frame.people`` with up to ``max_people`` people.

    Args:
        config: detection/tracking/smoothing settings.
        runtime: execution providers and threads for the models.

    Raises:
        ModelError, ProviderError: a model cannot be loaded on the requested providers.

    Example::

        stage = KeypointStage(KeypointsConfig(enabled=True), RuntimeConfig(mode=Mode.VIDEO))
        people = stage.process(frame).people
    """

    def __init__(self, config: KeypointsConfig, runtime: RuntimeConfig) -> None:
        self.config = config
        self.runtime = runtime
        self.finder = PersonFinder(config, runtime)
        self._landmarker = create_session(LANDMARK_MODEL, runtime.providers, runtime.threads)
        self._mask_decoder = create_session(MASK_MODEL, runtime.providers, runtime.threads)
        self._next_id = 0
        #: Tuning switches (``scripts/eval_keypoints.py`` measures them off and on).
        self.agree_oks = AGREE_OKS
        self.fuse = True
        self.reset()

    @property
    def provider(self) -> str:
        """Execution provider that runs the landmark model ("cpu", "cuda", ...)."""
        return self._landmarker.provider

    def reset(self) -> None:
        """Drop all tracks (new shot or resolution change); track ids keep increasing."""
        self._tracks: list[_Track] = []
        self._frames_since_detect = 0
        self._size: tuple[int, int] | None = None
        self._last_time: float | None = None
        self._masks: list[PersonMask] = []
        self._live_frames = 0
        self._held: list[Person] = []

    def close(self) -> None:
        """Release the model sessions."""
        self.finder.close()
        self._landmarker.close()
        self._mask_decoder.close()

    def person_masks(self) -> list[PersonMask]:
        """Per-person segmentation from the last processed frame (people with landmarks only)."""
        return list(self._masks)

    # -- models ---------------------------------------------------------------------------
    def landmarks(self, image: np.ndarray, roi: Roi) -> LandmarkResult:
        """Run the landmark model on one ROI of a BGR image."""
        out = self._run_landmarker(crop_roi(image, roi, LANDMARK_SIZE))
        return decode_landmarks(out, roi, self.config.refine_heatmap, self._mask_logits(out))

    def _run_landmarker(self, crop: np.ndarray) -> dict[str, np.ndarray]:
        # Colour conversion on the small crop is cheaper than on the whole frame.
        rgb = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32) * np.float32(1.0 / 255.0)
        return dict(self._landmarker.run({"image": rgb[None]}))

    def _mask_logits(self, out: dict[str, np.ndarray]) -> Callable[[], np.ndarray]:
        """The mask decoder on one landmark run's features, deferred (``PersonMask``)."""
        decoder = self._mask_decoder
        features = {name: out[name] for name in decoder.input_names}
        return lambda: decoder.run(features)["segmentation"][0, :, :, 0]

    def _refill_logits(self, image: np.ndarray, roi: Roi) -> Callable[[], np.ndarray] | None:
        """IMAGE mode, an ROI past the image's edge: the masks of the crop filled black and
        mirrored there, (2, 256, 256) logits, deferred (two more landmark runs, only if
        matting reads them); else None.  ``person_roi.fuse_person_masks`` says why."""
        if not roi.past_edge(image.shape[1], image.shape[0]):
            return None

        def logits() -> np.ndarray:
            return np.stack(
                [
                    self._mask_logits(
                        self._run_landmarker(crop_roi(image, roi, LANDMARK_SIZE, fill=fill))
                    )()
                    for fill in REFILLS
                ]
            )

        return logits

    # -- stage ----------------------------------------------------------------------------
    def process(self, frame: Frame) -> Frame:
        """Fill ``frame.people`` and ``frame.timings['keypoints']`` (ms); returns ``frame``."""
        start = time.perf_counter()
        image = frame.image
        size = (image.shape[1], image.shape[0])
        if frame.mode is Mode.IMAGE or size != self._size:
            self.reset()
            self._size = size
        if frame.mode is Mode.IMAGE:
            people = self._image_people(image, size)
        elif frame.mode is Mode.LIVE and self._hold_landmarks():
            # LIVE may run the landmark model on every Nth frame only (keypoints.
            # landmark_interval): the people of the last run are shown in between, which
            # keeps stickers on the body at a fraction of the cost.
            people = self._held
        else:
            people = self._track(image, self._frame_time(frame), size)
            self._held = people
        frame.people = people
        frame.person_masks = self.person_masks()
        frame.timings["keypoints"] = (time.perf_counter() - start) * 1000.0
        return frame

    def _image_people(self, image: np.ndarray, size: tuple[int, int]) -> list[Person]:
        found = self._detect_people(image, [], image_mode=True)
        people = [self._person(0, f, size) for f in found]
        order = sorted(range(len(people)), key=lambda i: -box_area(people[i].box))
        people, found = [people[i] for i in order], [found[i] for i in order]
        self._masks = []
        for track_id, (person, f) in enumerate(zip(people, found, strict=True)):
            person.track_id = track_id
            if f.result is not None:
                refills = self._refill_logits(image, f.result.roi)
                self._masks.append(self._mask(track_id, f.result, refills))
        return people

    def _hold_landmarks(self) -> bool:
        """True on the LIVE frames between two landmark runs (never while nobody is tracked)."""
        self._live_frames += 1
        interval = self.config.landmark_interval
        return interval > 1 and bool(self._held) and self._live_frames % interval != 0

    def _frame_time(self, frame: Frame) -> float:
        t = frame.time
        if t is None:
            t = time.monotonic() if frame.mode is Mode.LIVE else frame.index / FALLBACK_FPS
        if self._last_time is not None and t <= self._last_time:
            t = self._last_time + 1.0 / FALLBACK_FPS  # repeated/unknown pts: keep time moving
        self._last_time = t
        return t

    def _detect_people(
        self, image: np.ndarray, taken: list[np.ndarray], image_mode: bool
    ) -> list[_Found]:
        """Detector + landmarks for people not in ``taken`` ((33, 4) landmarks, extended).

        Without ``image_mode`` only people with landmarks are returned (they can be tracked).
        """
        found: list[_Found] = []
        candidates = self.finder.find(image, image_mode)
        for candidate in candidates:
            if len(taken) >= self.config.max_people:
                break
            kps = candidate.keypoints
            if known_person(candidate.box, kps, taken):
                continue
            result = self.landmarks(image, candidate.roi)
            present = result.score >= self.config.min_tracking_score
            if not image_mode and kps is not None and present:
                # A new track starts from the ROI the landmark model itself implies, as it will
                # follow from the next frame on (pose_squats.mp4, 30 fps clock: error 4.07 ->
                # 4.06 px, feet jitter 1.61 -> 1.55 px/frame^2; one landmark run per newcomer).
                roi = roi_from_alignment(result.aux[0], result.aux[1])
                if math.isfinite(roi.size) and roi.size >= 1.0:
                    second = self.landmarks(image, roi)
                    if second.score >= self.config.min_tracking_score:
                        result = second
            agrees = present and (
                kps is None or agrees_with_any(result.landmarks, [kps], self.agree_oks)
            )
            entries: list[tuple[LandmarkResult | None, np.ndarray]] = []
            if agrees:
                if image_mode and self.fuse and kps is not None:
                    result.landmarks = fuse_keypoints(result.landmarks, kps)
                entries.append((result, result.landmarks))
            elif present and agrees_with_any(
                result.landmarks,
                [c.keypoints for c in candidates if c is not candidate and c.keypoints is not None],
                max(self.agree_oks, SAME_PERSON_OKS),
            ):
                # A result that slid onto another person MoveNet saw is that person (a result
                # agreeing with nobody is a poor fit, not a person: one portrait gave two)...
                entries.append((result, result.landmarks))
            if not agrees and kps is not None and image_mode:
                # ...and the person MoveNet saw keeps MoveNet's keypoints rather than vanishing.
                entries.append((None, landmarks_from_keypoints(kps)))
            for res, landmarks in entries:
                if len(taken) >= self.config.max_people or duplicate(
                    landmarks, taken, self.config.duplicate_distance
                ):
                    continue
                taken.append(landmarks)
                found.append(_Found(candidate, res, landmarks))
        return found

    def _track(self, image: np.ndarray, t: float, size: tuple[int, int]) -> list[Person]:
        kept: list[tuple[_Track, LandmarkResult]] = []
        taken: list[np.ndarray] = []
        lost = False
        for track in self._tracks:
            result = self.landmarks(image, track.roi)
            # Two tracks drifting onto one person: the older (listed first) wins.
            if result.score < self.config.min_tracking_score or duplicate(
                result.landmarks, taken, self.config.duplicate_distance
            ):
                lost = True
                continue
            kept.append((track, result))
            taken.append(result.landmarks)

        self._frames_since_detect += 1
        interval = self.config.detect_interval
        periodic = interval > 0 and self._frames_since_detect >= interval
        if not kept or lost or (periodic and len(kept) < self.config.max_people):
            self._frames_since_detect = 0
            for f in self._detect_people(image, taken, image_mode=False):
                assert f.result is not None  # tracking asks for people with landmarks only
                track = _Track(
                    self._next_id,
                    f.result.roi,
                    LandmarkSmoother(
                        self.config.min_cutoff, self.config.beta, self.config.derivative_cutoff
                    ),
                )
                self._next_id += 1
                kept.append((track, f.result))

        people: list[Person] = []
        self._masks = []
        for track, result in kept:
            # Object scale for speed normalisation: the ROI side without its training margin.
            object_size = result.roi.size / ROI_SCALE
            aux = track.aux_filter(result.aux, t=t, value_scale=1.0 / max(object_size, 1e-3))
            track.roi = roi_from_alignment(aux[0], aux[1])
            if self.config.smoothing:
                result.landmarks = track.smoother(result.landmarks, t, object_size)
            people.append(landmark_person(track.track_id, result, size))
            self._masks.append(self._mask(track.track_id, result))
        self._tracks = [track for track, _ in kept]
        return people

    @staticmethod
    def _mask(
        track_id: int, result: LandmarkResult, refills: Callable[[], np.ndarray] | None = None
    ) -> PersonMask:
        matrix = result.roi.crop_to_image(LANDMARK_SIZE)
        return PersonMask(track_id, result.mask_logits, matrix, refills)

    @staticmethod
    def _person(track_id: int, found: _Found, size: tuple[int, int]) -> Person:
        """A ``Person``: landmarks and pose flag, or MoveNet's keypoints, box and score."""
        if found.result is not None:
            return landmark_person(track_id, found.result, size)
        c = found.candidate
        return movenet_person(track_id, found.landmarks, c.box, c.score, size)
