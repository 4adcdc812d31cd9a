"""ID photo crop geometry on synthetic keypoints, and DPI metadata."""

from __future__ import annotations

import io
import math
import struct

import cv2
import numpy as np
import pytest

from livematte.config import load_config
from livematte.errors import ConfigError, SourceError
from livematte.frame import LANDMARK_NAMES, Frame, Mode, Person
from livematte.ops.geometry import (
    CHIN_PER_EYE_MOUTH,
    CROWN_PER_EYE_MOUTH,
    HAIR_PER_TOP_HEAD,
)
from livematte.stages.id_photo import (
    SIZES,
    IdPhotoStage,
    encode_image,
    head_geometry,
    id_photo_enabled,
    id_photo_matrix,
    main_person,
    make_id_photo,
    read_dpi,
    resolve_size,
    sizes_table,
    write_image,
)

#: Without a matte the crown is geometry.hair_top: eye-mouth distance 1.1 d (no ears here).
HAIR = HAIR_PER_TOP_HEAD * CROWN_PER_EYE_MOUTH * 1.1

LAYOUT = {
    "nose": (0, 0.55), "left_eye": (0.5, 0), "right_eye": (-0.5, 0),
    "mouth_left": (0.4, 1.1), "mouth_right": (-0.4, 1.1),
    "left_shoulder": (1.6, 3.2), "right_shoulder": (-1.6, 3.2),
}  # fmt: skip


def make_person(cx, cy, d, angle=0.0, vis=1.0):
    t = math.radians(angle)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    lm = np.zeros((33, 4), np.float32)
    lm[:, :2] = (cx, cy + 5 * d)
    lm[:, 2:] = (vis, 1.0)
    for name, (u, v) in LAYOUT.items():
        lm[LANDMARK_NAMES.index(name), :2] = np.array([cx, cy]) + rot @ (np.array([u, v]) * d)
    return Person(1, lm, (cx - 3 * d, cy - 3 * d, cx + 3 * d, cy + 6 * d), 1.0)


def apply(matrix, point):
    return matrix @ np.array([point[0], point[1], 1.0])


@pytest.mark.parametrize("name", list(SIZES))
@pytest.mark.parametrize("angle", [0.0, 12.0, -25.0])
@pytest.mark.parametrize("d", [15.0, 60.0, 200.0])
def test_crop_geometry(name, angle, d):
    size = SIZES[name]
    w, h = size.pixels
    head = head_geometry(make_person(700, 500, d, angle))
    m = id_photo_matrix(head, size)
    crown, chin, eyes = apply(m, head.crown), apply(m, head.chin), apply(m, head.eyes)
    # Level, centred, head fills the standard's fraction, crown at the standard's margin.
    assert abs(crown[0] - (w / 2 - 0.5)) < 1e-6 and abs(chin[0] - (w / 2 - 0.5)) < 1e-6
    assert abs((chin[1] - crown[1]) - size.head * h) < 1e-6
    assert abs(crown[1] - (size.top * h - 0.5)) < 1e-6
    assert abs(eyes[0] - (w / 2 - 0.5)) < 1e-6  # eye line level: the eyes' midpoint centred
    le = apply(m, make_person(700, 500, d, angle).landmark("left_eye")[:2])
    re = apply(m, make_person(700, 500, d, angle).landmark("right_eye")[:2])
    assert abs(le[1] - re[1]) < 1e-6


def test_standards_are_met():
    # Head heights (chin to crown) and pixel sizes per the published standards.
    mm = {n: s.head * s.height_mm for n, s in SIZES.items()}
    assert 32 <= mm["passport"] <= 36 and SIZES["passport"].pixels == (413, 531)
    assert 25.4 <= mm["us"] <= 34.9 and SIZES["us"].pixels == (600, 600)
    assert 28 <= mm["33x48"] <= 33 and SIZES["33x48"].pixels == (390, 567)
    assert SIZES["1inch"].pixels == (295, 413) and SIZES["2inch"].pixels == (413, 579)
    # US: eyes 1 1/8 to 1 3/8 in from the bottom, with the crown (hair top) and chin of
    # geometry (chin 1.7 eye-mouth distances below the eyes).
    us = SIZES["us"]
    crown, chin = HAIR_PER_TOP_HEAD * CROWN_PER_EYE_MOUTH, CHIN_PER_EYE_MOUTH
    eyes_from_bottom = (1 - us.top - us.head * crown / (crown + chin)) * 2.0
    assert 1.125 <= eyes_from_bottom <= 1.375


def test_make_id_photo_finds_the_marked_eyes():
    d, angle = 30.0, 10.0
    person = make_person(320, 200, d, angle)
    image = np.full((480, 640, 3), 255, np.uint8)
    for name in ("left_eye", "right_eye"):
        x, y = person.landmark(name)[:2]
        cv2.circle(image, (round(x * 16), round(y * 16)), 64, (0, 0, 0), -1, cv2.LINE_AA, 4)
    size = resolve_size("passport")
    photo = make_id_photo(image, person, size)
    assert photo.shape == (531, 413, 3)
    dark = (photo[..., 0] < 128).astype(np.uint8)
    n, _, _, centroids = cv2.connectedComponentsWithStats(dark)
    assert n == 3  # background + two eyes
    (x1, y1), (x2, y2) = sorted(centroids[1:].tolist())
    m = id_photo_matrix(head_geometry(person), size)
    ex, ey = apply(m, head_geometry(person).eyes)
    assert abs(y1 - y2) < 1.0  # levelled
    assert abs((x1 + x2) / 2 - ex) < 1.0 and abs((y1 + y2) / 2 - ey) < 1.0
    # Beyond the picture the edge repeats (white), never black bands.
    assert photo[0].min() >= 250 and photo[:, 0].min() >= 250


def test_big_photo_is_shrunk_without_aliasing_and_bgra_kept():
    person = make_person(1500, 1000, 180.0)
    image = np.zeros((3000, 3000, 4), np.uint8)
    image[..., :3] = (((np.indices((3000, 3000)).sum(0)) % 2) * 255)[..., None]  # 1 px checker
    image[..., 3] = 255
    photo = make_id_photo(image, person, resolve_size("us"))
    assert photo.shape == (600, 600, 4)
    # A fine checker must come out as flat grey, not moire.
    assert abs(float(photo[..., 0].mean()) - 127.5) < 3 and photo[..., 0].std() < 10


@pytest.mark.parametrize(
    "name,canonical",
    [("passport", "passport"), ("EU", "passport"), ("35x45", "passport"), ("2x2", "us"),
     ("one-inch", "1inch"), ("cn-visa", "33x48")],
)  # fmt: skip
def test_resolve_size(name, canonical):
    assert resolve_size(name).name == canonical


def test_unknown_size_lists_known():
    with pytest.raises(ConfigError, match="passport"):
        resolve_size("A4")


def test_sizes_table_has_every_size():
    table = sizes_table()
    assert all(f"`{n}`" in table for n in SIZES)


@pytest.mark.parametrize("ext", [".png", ".jpg"])
@pytest.mark.parametrize("dpi", [300, 600, 72])
def test_dpi_metadata(ext, dpi):
    img = np.random.default_rng(0).integers(0, 256, (31, 17, 3), dtype=np.uint8)
    data = encode_image(img, ext, dpi)
    assert read_dpi(data) == (dpi, dpi)  # exactly: 300, not 299.9994
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == img.shape
    if ext == ".png":
        assert np.array_equal(decoded, img)
        # Re-encoding replaces the chunks rather than adding second ones.
        again = encode_image(decoded, ".png", 150)
        assert read_dpi(again) == (150.0, 150.0)
        assert again.count(b"pHYs") == 1 and again.count(b"eXIf") == 1


def test_png_dpi_reads_back_exactly_in_pillow():
    from PIL import Image

    data = encode_image(np.zeros((8, 8, 3), np.uint8), ".png", 300)
    with Image.open(io.BytesIO(data)) as img:
        exif = img.getexif()
        # EXIF XResolution, YResolution, ResolutionUnit (2 = inch): the exact value
        assert (exif[0x011A], exif[0x011B], exif[0x0128]) == (300, 300, 2)
        # pHYs can only hold whole pixels per metre: the nearest to 300 dpi, 11811
        assert img.info["dpi"] == pytest.approx((300, 300), abs=0.0127)
    phys = data.index(b"pHYs")
    assert struct.unpack(">IIB", data[phys + 4 : phys + 13]) == (11811, 11811, 1)


def test_write_image_is_atomic_and_tagged(tmp_path):
    path = tmp_path / "id.jpg"
    write_image(path, np.full((20, 10, 3), 128, np.uint8), dpi=300)
    assert read_dpi(path.read_bytes()) == (300.0, 300.0)
    assert [p.name for p in tmp_path.iterdir()] == ["id.jpg"]


def test_stage_crops_and_errors():
    cfg = load_config(None, {"effects.background": "white", "effects.id_photo": "us"}).effects
    assert id_photo_enabled(cfg)
    assert not id_photo_enabled(load_config(None, {}).effects)
    stage = IdPhotoStage(cfg)
    image = np.full((480, 640, 3), 200, np.uint8)
    frame = stage.process(Frame(image=image, people=[make_person(320, 200, 30.0)]))
    assert frame.output.shape == (600, 600, 3) and "id_photo" in frame.timings
    with pytest.raises(SourceError, match="face"):
        stage.process(Frame(image=image))
    hidden = make_person(320, 200, 30.0, vis=0.1)
    with pytest.raises(SourceError):
        stage.process(Frame(image=image, people=[hidden]))
    # Video/live: same output size, no error.
    frame = stage.process(Frame(image=image, mode=Mode.VIDEO))
    assert frame.output.shape == (600, 600, 3)
    with pytest.raises(ConfigError):
        IdPhotoStage(load_config(None, {"effects.id_photo": "A4"}).effects)


@pytest.mark.parametrize("top,expected", [(2.4, 2.4), (1.6, 1.6), (5.0, HAIR), (0.5, HAIR)])
def test_crown_follows_the_hair_in_the_matte(top, expected):
    d = 30.0
    person = make_person(320, 300, d)
    alpha = np.zeros((600, 640), np.float32)
    alpha[int(round(300 - top * d)) :, 240:400] = 1.0  # the person (hair) up to ``top`` units
    alpha[:, 318:322] = 0.0 if top < 3 else alpha[:, 318:322]  # a parting must not stop it
    head = head_geometry(person, alpha)
    assert abs(head.crown[1] - (300 - expected * d)) <= 0.06 * d
    assert abs(head.crown[0] - 320) < 1e-6
    assert head_geometry(person).crown[1] == pytest.approx(300 - HAIR * d)


def test_stage_uses_the_main_person_and_says_there_are_several():
    cfg = load_config(None, {"effects.background": "white", "effects.id_photo": "us"}).effects
    said = []
    stage = IdPhotoStage(cfg, notice=said.append)
    image = np.full((480, 640, 3), 200, np.uint8)
    near, far = make_person(420, 200, 30.0), make_person(150, 150, 12.0)
    # A big body whose face is not seen does not win over a clear face.
    body = make_person(300, 100, 45.0, vis=0.1)
    assert main_person([far, body, near]) is near
    assert main_person([body]) is body and main_person([]) is None
    frame = stage.process(Frame(image=image, people=[far, near]))
    alone = IdPhotoStage(cfg, notice=said.append).process(Frame(image=image, people=[near]))
    assert np.array_equal(frame.output, alone.output)
    assert len(said) == 1 and "2 people" in said[0]
    stage.process(Frame(image=image, people=[far, near], mode=Mode.VIDEO))
    assert len(said) == 1  # not once per video frame
