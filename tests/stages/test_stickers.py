"""Sticker placement geometry, visibility, z-order, smoothing and the shipped packs."""

from __future__ import annotations

import math
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from livematte.config import load_config
from livematte.errors import ConfigError, SourceError
from livematte.frame import LANDMARK_NAMES, Frame, Mode, Person
from livematte.ops.geometry import CROWN_PER_EYE_MOUTH, anchor_points
from livematte.stages.stickers import (
    ART_DIR,
    StickerStage,
    list_packs,
    load_pack,
    place,
    stickers_enabled,
)

ROOT = Path(__file__).resolve().parents[2]

# Person-relative layout in eye distances, (x to the person's left = picture right, y down).
LAYOUT = {
    "nose": (0, 0.55), "left_eye": (0.5, 0), "right_eye": (-0.5, 0),
    "left_eye_inner": (0.3, 0), "right_eye_inner": (-0.3, 0),
    "left_eye_outer": (0.7, 0), "right_eye_outer": (-0.7, 0),
    "left_ear": (1.0, 0.2), "right_ear": (-1.0, 0.2),
    "mouth_left": (0.4, 1.1), "mouth_right": (-0.4, 1.1),
    "left_shoulder": (1.6, 3.2), "right_shoulder": (-1.6, 3.2),
    "left_elbow": (2.0, 5.0), "right_elbow": (-2.0, 5.0),
    "left_wrist": (2.0, 7.0), "right_wrist": (-2.0, 7.0),
    "left_hip": (1.0, 7.5), "right_hip": (-1.0, 7.5),
}  # fmt: skip


def make_person(cx, cy, d, angle=0.0, vis=1.0, track_id=1, box=None):
    """A frontal upright person whose eye centre is (cx, cy), eye distance d, tilted ``angle``."""
    t = math.radians(angle)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    lm = np.zeros((33, 4), np.float32)
    lm[:, :2] = (cx, cy + 8 * d)
    lm[:, 2:] = (vis, 1.0)
    for name, (u, v) in LAYOUT.items():
        lm[LANDMARK_NAMES.index(name), :2] = np.array([cx, cy]) + rot @ (np.array([u, v]) * d)
    box = box or (cx - 3 * d, cy - 3 * d, cx + 3 * d, cy + 9 * d)
    return Person(track_id=track_id, landmarks=lm, box=box, score=1.0)


def write_pack(tmp_path, **rule):
    """A one-sticker pack with a solid red 100x50 rectangle."""
    art = np.zeros((50, 100, 4), np.uint8)
    art[:] = (0, 0, 255, 255)
    cv2.imwrite(str(tmp_path / "rect.png"), art)
    lines = ["[[sticker]]"]
    rule = {
        "image": "rect.png",
        "anchor": "between_eyes",
        "width": 2.0,
        "unit": "eye_distance",
    } | rule
    for key, value in rule.items():
        lines.append(f"{key} = {value!r}".replace("'", '"').replace("(", "[").replace(")", "]"))
    path = tmp_path / "test.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def make_stage(pack, **cfg):
    overrides = {"stickers.pack": pack, **{f"stickers.{k}": v for k, v in cfg.items()}}
    config = load_config(None, overrides)
    return StickerStage(config.stickers, config.runtime)


def render(stage, people, w=400, h=300, mode=Mode.IMAGE, alpha=None, index=0, fps=None):
    frame = Frame(image=np.zeros((h, w, 3), np.uint8), people=people, mode=mode, alpha=alpha)
    frame.index = index
    if fps is not None:
        frame.pts, frame.time_base = index, Fraction(1, fps)
    frame.foreground = np.full((h, w, 3), 255, np.uint8) if alpha is not None else None
    return stage.process(frame)


def red_blob(out):
    """Centroid, coverage-weighted area and orientation (degrees) of the red sticker pixels."""
    cover = np.where(out[..., 0] < 128, out[..., 2], 0).astype(np.float32) / 255.0
    m = cv2.moments(cover)
    if m["m00"] == 0:
        return None
    angle = 0.5 * math.degrees(math.atan2(2 * m["mu11"], m["mu20"] - m["mu02"]))
    return m["m10"] / m["m00"], m["m01"] / m["m00"], m["m00"], angle


@pytest.mark.parametrize("angle", [0.0, 20.0, -35.0, 80.0])
@pytest.mark.parametrize("d", [20.0, 37.5])
def test_sticker_lands_where_the_rule_says(tmp_path, angle, d):
    stage = make_stage(write_pack(tmp_path))
    out = render(stage, [make_person(200, 140, d, angle)]).output
    cx, cy, area, got = red_blob(out)
    assert abs(cx - 200) < 0.6 and abs(cy - 140) < 0.6
    assert abs(area - (2 * d) * d) / (2 * d * d) < 0.04  # width 2 units, aspect 2:1
    assert abs(got - angle) < 1.0  # follows the eye line


def test_offset_and_pivot_are_in_body_units_and_rotate(tmp_path):
    d, angle = 30.0, 30.0
    pack = write_pack(tmp_path, offset=(0.0, -1.5), pivot=(0.5, 1.0))
    out = render(make_stage(pack), [make_person(200, 150, d, angle)]).output
    cx, cy, _, _ = red_blob(out)
    t = math.radians(angle)
    # Pivot (bottom centre) at anchor + R(offset); the centre sits half a height (0.5 d) above.
    along_up = -1.5 * d - 0.5 * d
    ex, ey = 200 - math.sin(t) * along_up, 150 + math.cos(t) * along_up
    assert math.hypot(cx - ex, cy - ey) < 0.8


def test_shoulder_unit_and_rotation(tmp_path):
    pack = write_pack(
        tmp_path, anchor="mid_shoulders", unit="shoulder_width", width=1.0, rotate="shoulders"
    )
    d = 20.0
    out = render(make_stage(pack), [make_person(200, 60, d, 10.0)], h=300).output
    cx, cy, area, angle = red_blob(out)
    p = make_person(200, 60, d, 10.0)
    mid = (p.landmark("left_shoulder")[:2] + p.landmark("right_shoulder")[:2]) / 2
    sw = 3.2 * d
    assert math.hypot(cx - mid[0], cy - mid[1]) < 0.8
    assert abs(area - sw * sw / 2) / (sw * sw / 2) < 0.04
    assert abs(angle - 10.0) < 1.0


def test_mean_of_anchors_and_no_rotation(tmp_path):
    pack = write_pack(tmp_path, anchor=["left_wrist", "right_wrist"], rotate="none")
    p = make_person(200, 60, 20.0, 25.0)
    cx, cy, _, angle = red_blob(render(make_stage(pack), [p]).output)
    mid = (p.landmark("left_wrist")[:2] + p.landmark("right_wrist")[:2]) / 2
    assert math.hypot(cx - mid[0], cy - mid[1]) < 0.8 and abs(angle) < 1.0


def test_person_facing_away_does_not_flip_the_sticker(tmp_path):
    p = make_person(200, 140, 25.0)
    p.landmarks[:, 0] = 400 - p.landmarks[:, 0]  # mirror: left eye now on the picture's left
    _, _, _, angle = red_blob(render(make_stage(write_pack(tmp_path)), [p]).output)
    assert abs(angle) < 1.0


@pytest.mark.parametrize("vis,shown", [(0.3, False), (0.49, False), (0.5, True), (0.9, True)])
def test_hidden_below_min_score(tmp_path, vis, shown):
    p = make_person(200, 140, 25.0)
    p.landmarks[LANDMARK_NAMES.index("left_eye"), 2] = vis
    out = render(make_stage(write_pack(tmp_path), min_score=0.5), [p]).output
    assert (red_blob(out) is not None) == shown


def test_behind_is_occluded_by_the_person(tmp_path):
    w, h = 400, 300
    alpha = np.zeros((h, w), np.float32)
    alpha[:, :200] = 1.0  # the person covers the left half (and the sticker's left half)
    person = [make_person(200, 140, 30.0)]
    front = render(make_stage(write_pack(tmp_path, z="front")), person, alpha=alpha).output
    behind = render(make_stage(write_pack(tmp_path, z="behind")), person, alpha=alpha).output
    assert (front[140, 175:225] == (0, 0, 255)).all()
    assert (behind[140, 175:195] == 255).all()  # the person's colour: they stay on top
    assert (behind[140, 205:225] == (0, 0, 255)).all()


def test_every_person_or_only_the_largest(tmp_path):
    small = make_person(100, 100, 15.0, track_id=1)
    big = make_person(300, 100, 25.0, track_id=2)
    out = render(make_stage(write_pack(tmp_path)), [small, big]).output
    assert out[100, 100, 2] == 255 and out[100, 300, 2] == 255
    out = render(make_stage(write_pack(tmp_path), first_person_only=True), [small, big]).output
    assert out[100, 100, 2] == 0 and out[100, 300, 2] == 255


def test_smoothing_per_track_and_snap_back(tmp_path):
    stage = make_stage(write_pack(tmp_path), smoothing=0.5)
    render(stage, [make_person(150, 140, 25.0)], mode=Mode.VIDEO, index=0)
    out = render(stage, [make_person(170, 140, 25.0)], mode=Mode.VIDEO, index=1).output
    assert abs(red_blob(out)[0] - 160) < 0.8  # half-way after 1/30 s: jitter is damped
    # Another track id is not smoothed towards the first one.
    p9 = make_person(250, 140, 25.0, track_id=9)
    assert abs(red_blob(render(stage, [p9], mode=Mode.VIDEO, index=2).output)[0] - 250) < 0.8
    # The factor is per 1/30 s: at 10 fps one frame decays 0.5 ** 3.
    stage.reset()
    render(stage, [make_person(150, 140, 25.0)], mode=Mode.VIDEO, index=0, fps=10)
    out = render(stage, [make_person(170, 140, 25.0)], mode=Mode.VIDEO, index=1, fps=10).output
    assert abs(red_blob(out)[0] - (170 - 20 * 0.125)) < 0.8
    # IMAGE mode is stateless.
    stage.reset()
    render(stage, [make_person(150, 140, 25.0)])
    assert abs(red_blob(render(stage, [make_person(170, 140, 25.0)]).output)[0] - 170) < 0.8


def test_output_is_created_when_missing_and_timed(tmp_path):
    stage = make_stage(write_pack(tmp_path))
    frame = render(stage, [])
    assert frame.output is not None and frame.output is not frame.image
    assert "stickers" in frame.timings
    stage.close()


def test_derived_anchors_of_a_frontal_face():
    d = 40.0
    pts = anchor_points(make_person(200, 200, d).landmarks)
    assert np.allclose(pts["between_eyes"][0], (200, 200))
    # Eye-mouth distance 1.1 d (the ears' estimate, 0.75 x 2 d, is smaller).
    assert np.allclose(pts["top_head"][0], (200, 200 - CROWN_PER_EYE_MOUTH * 1.1 * d), atol=1e-3)
    assert np.allclose(pts["chin"][0], (200, 200 + 1.87 * d), atol=1e-3)
    assert pts["unit:eye_distance"][0][0] == pytest.approx(d)
    assert pts["unit:shoulder_width"][0][0] == pytest.approx(3.2 * d)


@pytest.mark.parametrize(
    "rule,error",
    [
        ({"anchor": "elbow"}, ConfigError),
        ({"unit": "cubits"}, ConfigError),
        ({"rotate": "knees"}, ConfigError),
        ({"z": "middle"}, ConfigError),
        ({"colour": "red"}, ConfigError),
        ({"width": 0.0}, ConfigError),
        ({"anchor": []}, ConfigError),
        ({"rotate": ["nose"]}, ConfigError),
        ({"image": "missing.png"}, SourceError),
    ],
)
def test_bad_packs(tmp_path, rule, error):
    with pytest.raises(error):
        load_pack(write_pack(tmp_path, **rule))


def test_unknown_pack_lists_shipped_ones():
    with pytest.raises(ConfigError, match="party"):
        load_pack("no-such-pack")


def test_enabled_flag():
    assert not stickers_enabled(load_config(None, {}))
    assert stickers_enabled(load_config(None, {"stickers.pack": "party"}))


@pytest.mark.parametrize("pack", ["party", "royal", "bunny", "angel"])
def test_shipped_packs_render(pack):
    assert pack in list_packs()
    stage = make_stage(pack)
    w, h = 480, 360
    alpha = np.zeros((h, w), np.float32)
    cv2.ellipse(alpha, (240, 250), (90, 200), 0, 0, 360, 1.0, -1)
    people = [make_person(240, 130, 24.0, 8.0)]
    out = render(stage, people, w, h, mode=Mode.VIDEO, alpha=alpha).output
    assert out.shape == (h, w, 3) and out.any()


def test_art_is_reproducible(tmp_path):
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_stickers.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    for shipped in sorted(ART_DIR.glob("*.png")):
        made = cv2.imread(str(tmp_path / shipped.name), cv2.IMREAD_UNCHANGED)
        ref = cv2.imread(str(shipped), cv2.IMREAD_UNCHANGED)
        assert made is not None and made.shape == ref.shape
        assert np.abs(made.astype(int) - ref).mean() < 0.5, shipped.name


@pytest.mark.parametrize("pack", ["party", "bunny", "royal", "angel"])
def test_movenet_only_people_get_their_head_stickers(pack):
    from livematte.ops.coco_landmarks import landmarks_from_keypoints
    from livematte.ops.movenet import COCO_NAMES

    # A frontal face seen by MoveNet alone: 17 keypoints, the mouth only estimated.
    seen = make_person(240, 130, 24.0).landmarks
    kps = np.array([[*seen[LANDMARK_NAMES.index(n), :2], 0.8] for n in COCO_NAMES], np.float32)
    lm = landmarks_from_keypoints(kps)
    points = anchor_points(lm)
    assert points["top_head"][1] == pytest.approx(0.8)  # scored on the eyes and nose seen
    assert points["top_head"][0][1] < points["between_eyes"][0][1]
    placed = [place(s, points, 0.3, 1.0) for s in load_pack(pack)]
    assert all(p is not None for p in placed)  # hats, ears, halos, glasses alike
    # The pack draws on that person as on one with all 33 landmarks.
    person = Person(0, lm, (150.0, 40.0, 330.0, 400.0), 0.8, source="movenet")
    out = render(make_stage(pack), [person], 480, 360).output
    assert out.any()
