"""MoveNet maths: input sizing, decoding [1, 6, 56], tiles, merging, ROIs, landmark fill-in."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
from media import SHARED_DATA, STANDING_POSE, needs_shared

from livematte.frame import LANDMARK_INDEX, Person
from livematte.ops.body_parts import analysis_json
from livematte.ops.coco_landmarks import fuse_keypoints, landmarks_from_keypoints
from livematte.ops.movenet import (
    BLAZEPOSE_FROM_COCO,
    COCO_INDEX,
    MovenetPeople,
    cut_by_tile,
    decode_movenet,
    input_size,
    largest_first,
    merge_people,
    movenet_input,
    pose_similarity,
    roi_from_keypoints,
    shift,
    tiles,
)

REFERENCE = SHARED_DATA.parent / "models" / "reference" / "movenet_multipose_tf_reference.npz"
GOLDEN = SHARED_DATA / "mediapipe_golden"

def pose(at=(300.0, 250.0), angle_deg=0.0, scale=1.0, score=0.9, hidden=()) -> np.ndarray:
    """(17, 3) COCO pose of ``STANDING_POSE`` rotated (clockwise on screen), scaled and moved."""
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    kps = np.zeros((17, 3), np.float32)
    for name, i in COCO_INDEX.items():
        kps[i, :2] = rot @ (np.array(STANDING_POSE[name], float) * scale) + at
        kps[i, 2] = 0.05 if name in hidden else score
    return kps


def raw_output(poses: list[np.ndarray], scores: list[float], in_w: int, in_h: int) -> np.ndarray:
    """A [1, 6, 56] MoveNet output holding ``poses`` given in input pixels (rest: score 0)."""
    raw = np.zeros((1, 6, 56), np.float32)
    for k, (kps, s) in enumerate(zip(poses, scores, strict=True)):
        raw[0, k, :51] = np.stack([kps[:, 1] / in_h, kps[:, 0] / in_w, kps[:, 2]], 1).reshape(-1)
        lo, hi = kps[:, :2].min(0), kps[:, :2].max(0)
        raw[0, k, 51:55] = [lo[1] / in_h, lo[0] / in_w, hi[1] / in_h, hi[0] / in_w]
        raw[0, k, 55] = s
    return raw


# -- input ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("w", "h", "side", "expected"),
    [(1920, 1080, 256, (256, 160)), (1080, 1920, 384, (224, 384)), (640, 480, 256, (256, 192)),
     (100, 50, 256, (256, 128)), (33, 1000, 64, (32, 64))],
)  # fmt: skip
def test_input_size_keeps_aspect_and_rounds_up_to_32(w, h, side, expected) -> None:
    in_w, in_h, sx, sy = input_size(w, h, side)
    assert (in_w, in_h) == expected
    assert round(w * sx) <= in_w and round(h * sy) <= in_h
    assert max(round(w * sx), round(h * sy)) == side
    s = side / max(w, h)  # aspect kept: each side scaled by s, up to rounding to a pixel
    assert abs(w * sx - w * s) <= 0.5 and abs(h * sy - h * s) <= 0.5


def test_input_size_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="long_side"):
        input_size(100, 100, 16)
    with pytest.raises(ValueError, match="at least 1x1"):
        input_size(0, 100, 256)


def test_movenet_input_is_rgb_int32_top_left_with_black_padding() -> None:
    img = np.zeros((90, 160, 3), np.uint8)
    img[:] = (10, 20, 30)  # BGR
    tensor, scale = movenet_input(img, 256)
    assert tensor.dtype == np.int32 and tensor.shape == (1, 160, 256, 3)
    rh = round(90 * scale[1])
    assert rh == 144
    assert tensor[0, :rh].reshape(-1, 3).tolist()[0] == [30, 20, 10]
    assert np.all(tensor[0, rh:] == 0)


# -- decoding ---------------------------------------------------------------------------------
def test_decode_maps_back_to_source_pixels_best_first() -> None:
    w, h = 1920, 1080
    in_w, in_h, sx, sy = input_size(w, h, 256)
    a, b = pose((600, 500)), pose((1400, 600), scale=0.5)
    to_input = np.array([sx, sy, 1.0], np.float32)
    raw = raw_output([a * to_input, b * to_input], [0.4, 0.8], in_w, in_h)
    people = decode_movenet(raw, (in_h, in_w), np.array([sx, sy]), min_score=0.2)
    assert len(people) == 2 and people.scores.tolist() == pytest.approx([0.8, 0.4])
    assert people.keypoints[0] == pytest.approx(b, abs=1e-2)
    assert people.keypoints[1] == pytest.approx(a, abs=1e-2)
    box = people.boxes[1]  # left, top, right, bottom
    lo, hi = a[:, :2].min(axis=0), a[:, :2].max(axis=0)
    assert box == pytest.approx([lo[0], lo[1], hi[0], hi[1]], abs=1e-2)
    assert len(decode_movenet(raw, (in_h, in_w), np.array([sx, sy]), min_score=0.5)) == 1
    assert len(decode_movenet(np.zeros((1, 6, 56)), (in_h, in_w), np.ones(2), 0.2)) == 0


def test_decode_rejects_a_wrong_output() -> None:
    with pytest.raises(ValueError, match="56"):
        decode_movenet(np.zeros((1, 6, 55)), (160, 256), np.ones(2))


@needs_shared("mediapipe_golden", "pose.jpg")
@pytest.mark.skipif(not REFERENCE.is_file(), reason=f"MoveNet reference not found: {REFERENCE}")
def test_decoded_tf_reference_agrees_with_the_blazepose_golden() -> None:
    """TensorFlow's own MoveNet output for pose.jpg, decoded, lands on MediaPipe's landmarks."""
    ref = np.load(REFERENCE)
    img = cv2.imread(str(GOLDEN / "pose.jpg"))
    h, w = img.shape[:2]
    # The reference input is the photo squeezed to 256x160 (INTER_AREA, RGB).
    squeezed = cv2.resize(img, (256, 160), interpolation=cv2.INTER_AREA)[..., ::-1]
    assert np.array_equal(ref["movenet2_input"][0], squeezed.astype(np.int32))
    people = decode_movenet(ref["movenet2_output"], (160, 256), np.array([256 / w, 160 / h]))
    assert len(people) == 1
    golden = json.loads((GOLDEN / "pose_expected_landmarks.json").read_text())
    expected = np.array(golden["landmarks_xy_px"], float)[BLAZEPOSE_FROM_COCO]
    err = np.linalg.norm(people.keypoints[0, :, :2] - expected, axis=1)
    assert np.median(err) / max(w, h) < 0.02
    # and its ROI is close to the one BlazePose's own detector gives (expanded rect golden)
    roi = roi_from_keypoints(people.keypoints[0], people.boxes[0])
    assert roi.cx / w == pytest.approx(0.492, abs=0.02)
    assert roi.cy / h == pytest.approx(0.701, abs=0.02)
    assert roi.size / w == pytest.approx(0.632, rel=0.1)
    assert abs(roi.rotation) < 0.1


# -- tiles and merging ------------------------------------------------------------------------
def test_tiles_cover_the_image_with_overlap() -> None:
    assert tiles(100, 50, 1) == [(0, 0, 100, 50)]
    grid = tiles(1000, 600, 2, overlap=0.25)
    assert len(grid) == 4
    cover = np.zeros((600, 1000), bool)
    for x0, y0, x1, y1 in grid:
        assert x1 - x0 == 625 and y1 - y0 == 375
        cover[y0:y1, x0:x1] = True
    assert cover.all()
    assert grid[0][2] - grid[1][0] == 250  # horizontal overlap
    with pytest.raises(ValueError):
        tiles(10, 10, 0)


def test_cut_by_tile_only_at_edges_inside_the_image() -> None:
    # Top-right tile of a 1000x600 image: its left and bottom edges are inner edges.
    tile, size = (375, 0, 1000, 375), (1000, 600)
    boxes = np.array([
        [0, 100, 50, 200],  # touches the inner left edge: cut
        [200, 300, 260, 375],  # touches the inner bottom edge: cut
        [500, 0, 625, 100],  # touches the image's own top and right edges: whole
        [100, 100, 200, 300],  # inside
    ], np.float32)  # fmt: skip
    assert cut_by_tile(boxes, tile, size).tolist() == [True, True, False, False]
    assert not cut_by_tile(boxes, (0, 0, 1000, 600), size).any()  # one tile = the image


def _people(poses: list[np.ndarray], scores: list[float]) -> MovenetPeople:
    kps = np.stack(poses).astype(np.float32)
    boxes = np.concatenate([kps[..., :2].min(1), kps[..., :2].max(1)], axis=1)
    return MovenetPeople(kps, boxes, np.array(scores, np.float32))


def test_merge_keeps_one_entry_per_person() -> None:
    whole = pose((300, 250))
    # The same person found again in a tile, cut at the knees and slightly off.
    part = pose((302, 251), hidden=("left_knee", "right_knee", "left_ankle", "right_ankle"))
    other = pose((520, 250))  # a neighbour standing 220 px to the right
    behind = pose((330, 240), scale=0.6)  # someone smaller behind, overlapping the first
    tile = shift(_people([part - [100, 50, 0]], [0.5]), 100, 50)
    people = MovenetPeople.concat([_people([whole, other, behind], [0.7, 0.6, 0.4]), tile])
    merged = merge_people(people)
    assert len(merged) == 3
    assert merged.scores.tolist() == pytest.approx([0.7, 0.6, 0.4])
    assert pose_similarity(whole, part) > 0.9 and pose_similarity(whole, other) < 0.01
    assert pose_similarity(whole, pose(hidden=tuple(COCO_INDEX))) == 0.0  # nothing shared


def test_largest_first() -> None:
    people = _people([pose(scale=0.5), pose(scale=1.2), pose(scale=0.8)], [0.9, 0.3, 0.5])
    assert largest_first(people).scores.tolist() == pytest.approx([0.3, 0.5, 0.9])


# -- ROIs -------------------------------------------------------------------------------------
def test_roi_of_a_standing_person_is_upright_on_the_hips_and_holds_the_body() -> None:
    kps = pose((300, 250))
    roi = roi_from_keypoints(kps)
    assert (roi.cx, roi.cy) == pytest.approx((300, 250))
    assert roi.rotation == pytest.approx(0.0, abs=1e-6)
    crop = roi.to_crop(kps[:, :2])
    assert crop.min() > 0.05 and crop.max() < 0.95  # everyone inside, with a margin
    # The crown (estimated above the nose) is inside the ROI too, so the ROI reaches above it.
    assert roi.size > 2 * 190


@pytest.mark.parametrize("angle", [90.0, -90.0, 180.0, 30.0])
def test_roi_follows_the_body_axis(angle) -> None:
    roi = roi_from_keypoints(pose((400, 400), angle_deg=angle))
    assert math.degrees(roi.rotation) == pytest.approx(angle if angle != 180 else -180, abs=1e-3)


def test_roi_of_an_upper_body_shot_extrapolates_the_hips() -> None:
    legs = ("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")
    kps = pose((300, 250), hidden=legs)
    roi = roi_from_keypoints(kps)
    # shoulder width 80 px -> hips 1.3 x 80 = 104 px under the shoulders (at y = -120)
    assert roi.cx == pytest.approx(300) and roi.cy == pytest.approx(250 - 120 + 104)
    assert roi.rotation == pytest.approx(0.0, abs=1e-6)
    # Seen from behind (shoulders swapped), the head still says which way is up.
    back = kps.copy()
    ls, rs = COCO_INDEX["left_shoulder"], COCO_INDEX["right_shoulder"]
    back[[ls, rs]] = back[[rs, ls]]
    assert roi_from_keypoints(back).cy == pytest.approx(roi.cy)


def test_roi_without_a_torso_uses_what_is_seen_or_the_box() -> None:
    torso = ("left_shoulder", "right_shoulder", "left_hip", "right_hip")
    kps = pose((300, 250), hidden=torso)
    roi = roi_from_keypoints(kps)
    assert roi is not None and roi.rotation == pytest.approx(0.0)
    nothing = pose(hidden=tuple(COCO_INDEX))
    assert roi_from_keypoints(nothing) is None
    roi = roi_from_keypoints(nothing, box=np.array([100, 100, 200, 300], np.float32))
    assert (roi.cx, roi.cy) == pytest.approx((150, 200))


# -- MoveNet-only people ----------------------------------------------------------------------
def test_landmarks_from_keypoints_marks_the_estimated_rows() -> None:
    kps = pose((300, 250))
    lm = landmarks_from_keypoints(kps)
    assert lm.shape == (33, 4)
    assert lm[BLAZEPOSE_FROM_COCO, :2] == pytest.approx(kps[:, :2])
    assert lm[BLAZEPOSE_FROM_COCO, 2] == pytest.approx(kps[:, 2])
    estimated = np.setdiff1d(np.arange(33), BLAZEPOSE_FROM_COCO)
    assert len(estimated) == 16 and np.all(lm[estimated, 2:] == 0)
    mouth_l, mouth_r = lm[LANDMARK_INDEX["mouth_left"], :2], lm[LANDMARK_INDEX["mouth_right"], :2]
    assert mouth_l[0] > 300 > mouth_r[0]  # the person's left is on image right here
    assert mouth_l[1] > kps[COCO_INDEX["nose"], 1]  # below the nose
    person = Person(0, lm, (245.0, 80.0, 355.0, 410.0), 0.6, source="movenet")
    info = analysis_json([person], (640, 480))["person_info"][0]
    assert len(info["body_parts"]) == 21
    assert info["body_parts"]["left_mouth_corner"]["score"] == 0.0
    assert info["body_parts"]["nose"]["score"] == pytest.approx(0.9)
    assert info["body_parts"]["top_head"]["y"] < kps[COCO_INDEX["left_eye"], 1]
    assert info["source"] == "movenet" and info["location"]["score"] == 0.6


def test_analysis_marks_landmark_people_as_blazepose() -> None:
    person = Person(3, landmarks_from_keypoints(pose()), (245.0, 80.0, 355.0, 410.0), 0.9)
    assert analysis_json([person])["person_info"][0]["source"] == "blazepose"



def test_fuse_averages_agreeing_points_and_takes_the_surer_model_elsewhere() -> None:
    kps = pose((300, 250))  # MoveNet, score 0.9 everywhere
    lm = landmarks_from_keypoints(kps)
    lm[:, 2:] = 0.95  # the landmark model's visibility
    nose, wrist = COCO_INDEX["nose"], COCO_INDEX["left_wrist"]
    lm[BLAZEPOSE_FROM_COCO[nose], :2] += [10, 0]  # 10 px off: within 10% of a 400 px pose
    lm[BLAZEPOSE_FROM_COCO[wrist], :2] += [0, 80]  # 80 px off: they disagree
    lm[BLAZEPOSE_FROM_COCO[wrist], 2] = 0.2  # and the landmark model is unsure of it
    thumb = LANDMARK_INDEX["left_thumb"]
    before = lm[thumb, :2].copy()
    out = fuse_keypoints(lm, kps)
    assert out[BLAZEPOSE_FROM_COCO[nose], :2] == pytest.approx(kps[nose, :2] + [5, 0])
    assert out[BLAZEPOSE_FROM_COCO[nose], 2] == pytest.approx(0.95)  # visibility kept
    assert out[BLAZEPOSE_FROM_COCO[wrist], :2] == pytest.approx(kps[wrist, :2])
    assert out[BLAZEPOSE_FROM_COCO[wrist], 2] == pytest.approx(0.9)  # MoveNet's score
    assert out[thumb, :2] == pytest.approx(before - [0, 80])  # the hand follows the wrist
    lm[BLAZEPOSE_FROM_COCO[wrist], 2] = 0.99  # the landmark model is surer: it stays
    assert fuse_keypoints(lm, kps)[BLAZEPOSE_FROM_COCO[wrist], :2] == pytest.approx(
        lm[BLAZEPOSE_FROM_COCO[wrist], :2]
    )
    assert np.array_equal(out[:, 3], lm[:, 3])  # presence untouched
