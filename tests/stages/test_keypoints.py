"""Keypoint stage: heatmap refinement, goldens on real photos, multi-person tracking."""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from media import SHARED_DATA, needs_shared

import livematte
from livematte.config import KeypointsConfig, RuntimeConfig
from livematte.frame import Frame, Mode
from livematte.ops.body_parts import analysis_json
from livematte.stages.keypoints import landmarks_box, refine_from_heatmap

DATA = SHARED_DATA
GOLDEN = DATA / "mediapipe_golden"
SAMPLE = Path(__file__).resolve().parents[2] / "livematte" / "samples" / "astronaut.jpg"
MODELS = Path(livematte.__file__).parent / "models" / "data"

needs_models = pytest.mark.skipif(
    not (MODELS / "pose_detection.onnx").is_file()
    or not (MODELS / "pose_landmark_full.onnx").is_file(),
    reason="pose ONNX models absent from livematte/models/data (run scripts/convert_mediapipe.py)",
)
needs_golden = needs_shared("mediapipe_golden", "pose.jpg")


# -- pure maths -------------------------------------------------------------------------------
def test_refine_from_heatmap_moves_to_peak() -> None:
    hm = np.full((64, 64, 3), -10.0, np.float32)
    hm[10, 20, 0] = 10.0  # confident peak near landmark 0
    hm[40, 40, 1] = -1.0  # weak peak: landmark 1 keeps its regression
    xy = np.array([[21.5 / 64, 11.2 / 64], [40 / 64, 40 / 64], [1.2, 0.5]])
    out = refine_from_heatmap(xy, hm, kernel=7)
    assert out[0] == pytest.approx([20 / 64, 10 / 64], abs=1e-3)
    assert out[1] == pytest.approx(xy[1])
    assert out[2] == pytest.approx(xy[2])  # outside the heatmap


def test_landmarks_box_uses_present_points_and_clips() -> None:
    lm = np.array(
        [[10, 20, 1, 1], [50, 60, 1, 0.9], [900, 900, 0.1, 0.1], [-5, 30, 1, 1]], np.float32
    )
    assert landmarks_box(lm, 100, 100).tolist() == [0, 20, 50, 60]


# -- with the models ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def make_stage():
    from livematte.stages.keypoints import KeypointStage

    stages = []

    def make(mode: str = "image", **overrides):
        cfg = KeypointsConfig(enabled=True, **overrides)
        stage = KeypointStage(cfg, RuntimeConfig(mode=mode, threads=1))
        stages.append(stage)
        return stage

    yield make
    for stage in stages:
        stage.close()


def _pbtxt_numbers(text: str, key: str) -> list[float]:
    return [float(v) for v in re.findall(rf"\b{key}: (-?[\d.e-]+)", text)]


@needs_models
@needs_golden
def test_detector_matches_mediapipe_golden(make_stage) -> None:
    from livematte.ops.pose_detection import roi_from_alignment

    img = cv2.imread(str(GOLDEN / "pose.jpg"))
    h, w = img.shape[:2]
    stage = make_stage(detector="blazepose")
    dets = stage.finder.detect(img)
    assert len(dets) == 1
    text = (GOLDEN / "pose_expected_detection.pbtxt").read_text()
    assert dets.scores[0] == pytest.approx(_pbtxt_numbers(text, "score")[0], abs=1e-3)
    kx, ky = _pbtxt_numbers(text, "x"), _pbtxt_numbers(text, "y")
    assert dets.keypoints[0, :, 0] / w == pytest.approx(kx, abs=2e-3)
    assert dets.keypoints[0, :, 1] / h == pytest.approx(ky, abs=2e-3)
    rect = (GOLDEN / "pose_expected_expanded_rect.pbtxt").read_text()
    roi = roi_from_alignment(dets.keypoints[0, 0], dets.keypoints[0, 1])
    assert roi.cx / w == pytest.approx(_pbtxt_numbers(rect, "x_center")[0], abs=2e-3)
    assert roi.size / w == pytest.approx(_pbtxt_numbers(rect, "width")[0], abs=2e-3)
    assert roi.rotation == pytest.approx(_pbtxt_numbers(rect, "rotation")[0], abs=5e-3)


@needs_models
@needs_golden
def test_landmarks_match_mediapipe_golden(make_stage) -> None:
    img = cv2.imread(str(GOLDEN / "pose.jpg"))
    frame = make_stage().process(Frame(img))
    assert len(frame.people) == 1
    expected = np.array(
        json.loads((GOLDEN / "pose_expected_landmarks.json").read_text())["landmarks_xy_px"], float
    )
    err = np.linalg.norm(frame.people[0].landmarks[:, :2] - expected, axis=1)
    assert err.mean() / max(img.shape[:2]) < 0.01
    assert frame.timings["keypoints"] > 0
    out = analysis_json(frame.people, frame.size)
    assert out["person_num"] == 1 and len(out["person_info"][0]["body_parts"]) == 21


def _canvas(left: bool, right: bool) -> np.ndarray:
    img = cv2.imread(str(GOLDEN / "pose.jpg"))
    canvas = np.zeros((img.shape[0], img.shape[1] * 2, 3), np.uint8)
    if left:
        canvas[:, : img.shape[1]] = img
    if right:
        canvas[:, img.shape[1] :] = img[:, ::-1]
    return canvas


@needs_models
@needs_golden
def test_image_mode_finds_several_people(make_stage) -> None:
    stage = make_stage()
    frame = stage.process(Frame(_canvas(True, True)))
    assert len(frame.people) == 2
    xs = sorted(p.landmark("nose")[0] for p in frame.people)
    assert xs[0] < 1000 < xs[1]
    masks = stage.person_masks()
    assert [m.track_id for m in masks] == [p.track_id for p in frame.people]
    full = masks[0].to_image(*frame.size)
    assert full.shape == (667, 2000) and full.min() >= 0.0 and full.max() <= 1.0
    assert full.max() > 0.9
    assert len(make_stage(max_people=1).process(Frame(_canvas(True, True))).people) == 1
    # Upper-body shots: the ROIs extrapolated from off-frame hips overlap a lot, yet these
    # are three different people.
    group = cv2.imread(str(GOLDEN / "three_people.jpg"))
    noses = sorted(p.landmark("nose")[0] for p in stage.process(Frame(group)).people)
    assert len(noses) == 3 and min(np.diff(noses)) > 100


@needs_models
@needs_golden
def test_video_mode_tracks_and_picks_up_newcomers(make_stage) -> None:
    stage = make_stage("video", detect_interval=3)
    calls = []
    find = stage.finder.find
    stage.finder.find = lambda image, image_mode: calls.append(1) or find(image, image_mode)
    one, two, none = _canvas(True, False), _canvas(True, True), np.zeros_like(_canvas(True, True))
    sequence = [one, one, one, two, two, two, none, one]
    ids, detections = [], []
    for i, img in enumerate(sequence):
        frame = Frame(img, index=i, pts=i, time_base=Fraction(1, 30), mode=Mode.VIDEO)
        before = len(calls)
        ids.append(sorted(p.track_id for p in stage.process(frame).people))
        detections.append(len(calls) - before)
    assert ids[:3] == [[0], [0], [0]]
    # First frame, then every 3rd frame while fewer than max_people are tracked.
    assert detections[:4] == [1, 0, 0, 1]
    assert ids[3:6] == [[0, 1]] * 3  # the newcomer gets the next id at that detection
    assert ids[6] == []  # everyone lost
    assert ids[7] and ids[7][0] > 1  # ids are never reused
    assert detections[6] == 1 and detections[7] == 1


@needs_models
@needs_golden
def test_tracking_is_steady_on_a_still_image(make_stage) -> None:
    stage = make_stage("video")
    img = cv2.imread(str(GOLDEN / "pose.jpg"))
    tracks = []
    for i in range(6):
        frame = stage.process(Frame(img, index=i, mode=Mode.VIDEO))
        assert [p.track_id for p in frame.people] == [0]
        tracks.append(frame.people[0].landmarks[:, :2].copy())
    # The first ROI comes from the detector, later ones from landmarks: allow that one step,
    # then a still person must stay still.
    drift = np.abs(np.diff(np.array(tracks[2:]), axis=0)).max()
    assert drift < 1.0
    stage.reset()
    assert stage.process(Frame(img, index=7, mode=Mode.VIDEO)).people[0].track_id == 1


@needs_shared("keypoints", "coco_val2017_mini")
@needs_models
def test_coco_photo_analysis_json(make_stage) -> None:
    img = cv2.imread(str(DATA / "keypoints" / "coco_val2017_mini" / "000000397133.jpg"))
    frame = make_stage().process(Frame(img))
    out = analysis_json(frame.people, frame.size)
    assert out["person_num"] >= 1
    for info in out["person_info"]:
        loc = info["location"]
        assert 0 <= loc["left"] <= loc["left"] + loc["width"] <= img.shape[1]


@needs_models
def test_live_landmark_interval_runs_the_model_on_every_nth_frame(make_stage) -> None:
    image = cv2.imread(str(SAMPLE))
    stage = make_stage("live", landmark_interval=2)
    calls = []
    run = stage._landmarker.run
    stage._landmarker.run = lambda inputs: calls.append(1) or run(inputs)
    people = [stage.process(Frame(image, index=i, mode=Mode.LIVE)).people for i in range(7)]
    assert all(len(p) == 1 for p in people)
    # frames 0 (twice: a new track is refitted on the ROI its first result implies) and 1 run
    # the model (nothing held at first), then every second frame: 3 and 5
    assert len(calls) == 5
    assert people[2] is people[1] and people[3] is not people[2] and people[4] is people[3]


@needs_models
def test_person_masks_run_the_decoder_only_when_read(make_stage) -> None:
    image = cv2.imread(str(SAMPLE))
    stage = make_stage("video")
    calls = []
    run = stage._mask_decoder.run
    stage._mask_decoder.run = lambda inputs: calls.append(1) or run(inputs)
    frames = [stage.process(Frame(image, index=i, mode=Mode.VIDEO)) for i in range(3)]
    assert all(len(f.person_masks) == 1 for f in frames)
    assert calls == [] and not frames[-1].person_masks[0].computed
    mask = frames[-1].person_masks[0]
    prob = mask.to_image(image.shape[1], image.shape[0])
    assert len(calls) == 1 and mask.computed
    nose = frames[-1].people[0].landmark("nose")
    assert prob[int(nose[1]), int(nose[0])] > 0.9  # the astronaut's face is in her mask
    assert prob[5, 5] < 0.1  # the top-left corner is not
    assert mask.probability.shape == (256, 256)
    assert len(calls) == 1  # computed once


# -- MoveNet candidates (the detector's output given, the landmark model real) -----------------
REFERENCE = DATA.parent / "models" / "reference" / "movenet_multipose_tf_reference.npz"


def _movenet_pose_on_golden() -> np.ndarray:
    """TensorFlow's MoveNet pose for pose.jpg (shared reference output) in canvas pixels."""
    from livematte.ops.movenet import decode_movenet

    raw = np.load(REFERENCE)["movenet2_output"]
    return decode_movenet(raw, (160, 256), np.array([256 / 1000, 160 / 667])).keypoints[0]


@needs_models
@needs_golden
@pytest.mark.skipif(not REFERENCE.is_file(), reason=f"MoveNet reference not found: {REFERENCE}")
def test_movenet_candidates_merge_fall_back_and_come_largest_first(make_stage) -> None:
    from livematte.ops.movenet import roi_from_keypoints
    from livematte.stages.person_finder import Candidate

    canvas = _canvas(True, False)  # the golden on the left, black on the right
    real = _movenet_pose_on_golden()
    # A small "person" MoveNet reported on the black half: no landmark model result there.
    ghost = real.copy()
    ghost[:, :2] = (real[:, :2] - real[:, :2].mean(0)) * 0.5 + [1500, 330]
    echo = real.copy()
    echo[:, :2] += 4.0  # the same person found twice (e.g. by a tile)

    def candidate(kps: np.ndarray, score: float) -> Candidate:
        box = np.concatenate([kps[:, :2].min(0), kps[:, :2].max(0)])
        return Candidate(roi_from_keypoints(kps, box), score, box, kps)

    stage = make_stage(max_people=4)
    stage.finder.find = lambda image, image_mode: [
        candidate(ghost, 0.3), candidate(real, 0.7), candidate(echo, 0.6)
    ]
    frame = stage.process(Frame(canvas))
    assert [p.source for p in frame.people] == ["blazepose", "movenet"]  # largest first
    assert [p.track_id for p in frame.people] == [0, 1]
    expected = np.array(
        json.loads((GOLDEN / "pose_expected_landmarks.json").read_text())["landmarks_xy_px"], float
    )
    err = np.linalg.norm(frame.people[0].landmarks[:, :2] - expected, axis=1)
    assert err.mean() / 1000 < 0.02
    ghost_person = frame.people[1]
    assert ghost_person.score == pytest.approx(0.3)  # MoveNet's score, not a pose flag
    assert ghost_person.box[0] > 1000
    # Only people with landmarks have a mask, and the masks say whose they are.
    assert [m.track_id for m in frame.person_masks] == [0]
    out = analysis_json(frame.people, frame.size)
    assert out["person_num"] == 2
    assert [p["source"] for p in out["person_info"]] == ["blazepose", "movenet"]
    # max_people counts people, whatever their source
    stage = make_stage(max_people=1)
    stage.finder.find = lambda image, image_mode: [candidate(ghost, 0.3), candidate(real, 0.7)]
    assert [p.source for p in stage.process(Frame(canvas)).people] == ["movenet"]
    # VIDEO mode tracks people with landmarks only
    stage = make_stage("video")
    stage.finder.find = lambda image, image_mode: [candidate(ghost, 0.3), candidate(real, 0.7)]
    frame = stage.process(Frame(canvas, mode=Mode.VIDEO))
    assert [p.source for p in frame.people] == ["blazepose"]


@needs_models
def test_image_mode_masks_past_the_edge_get_two_more_fills_when_read(make_stage) -> None:
    # The astronaut sample is cut by the bottom edge: her ROI reaches past it, so her mask in
    # IMAGE mode carries the crop filled black and mirrored there, run only when read.
    image = cv2.imread(str(SAMPLE))
    stage = make_stage()
    calls = []
    run = stage._landmarker.run
    stage._landmarker.run = lambda inputs: calls.append(1) or run(inputs)
    frame = stage.process(Frame(image, mode=Mode.IMAGE))
    mask = frame.person_masks[0]
    ran = len(calls)
    refills = mask.refills
    assert len(refills) == 2 and len(calls) == ran + 2
    nose = frame.people[0].landmark("nose")
    m = mask.crop_to_image
    u, v = np.linalg.solve(m[:, :2], np.asarray(nose[:2]) - m[:, 2])
    assert all(r[int(v), int(u)] > 0.9 for r in refills)  # her face, in both looks
    # VIDEO mode tracks never pay for them.
    video = make_stage("video").process(Frame(image, index=0, mode=Mode.VIDEO))
    assert all(m.refills == () for m in video.person_masks)
