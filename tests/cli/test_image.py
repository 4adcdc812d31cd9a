"""``livematte image``: single photos, folders, analysis JSON, ID photos and bad input."""

from __future__ import annotations

import json
import shutil
import struct
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from media import (
    SHARED_DATA,
    file_mode,
    needs_shared,
    umask_fixture,  # noqa: F401 - the umask fixture
)

from livematte import cli
from livematte.outputs import read_image

SAMPLE = Path(__file__).resolve().parents[2] / "livematte" / "samples" / "astronaut.jpg"


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    target = tmp_path / "in" / "astronaut.jpg"
    target.parent.mkdir()
    shutil.copy(SAMPLE, target)
    return target


def _run(*args: str) -> int:
    return cli.main(["image", *args, "--preset", "default"])  # guided: fast enough for tests


def test_transparent_png_keeps_the_person_and_drops_the_background(photo, tmp_path):
    out = tmp_path / "out.png"
    assert _run(str(photo), str(out)) == 0
    rgba = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert rgba.shape == (512, 512, 4)
    alpha = rgba[..., 3]
    assert alpha[120, 225] == 255  # her face
    assert alpha[20, 20] == 0 and alpha[20, 490] == 0  # the wall behind her
    assert not list(tmp_path.glob("*.partial*")), "temporary files left behind"


def test_composite_matte_and_analysis(photo, tmp_path):
    out, matte, analysis = tmp_path / "c.jpg", tmp_path / "m.png", tmp_path / "a.json"
    assert _run(str(photo), str(out), "--bg", "#00ff00", "--json", str(analysis)) == 0
    composite = cv2.imread(str(out))
    assert composite.shape == (512, 512, 3)
    assert np.abs(composite[20, 20].astype(int) - (0, 255, 0)).max() < 30
    result = json.loads(analysis.read_text())
    assert result["person_num"] == 1
    parts = result["person_info"][0]["body_parts"]
    assert len(parts) == 21 and parts["nose"]["score"] > 0.9
    # the person's own left eye is on the image's right for someone facing the camera
    assert parts["left_eye"]["x"] > parts["right_eye"]["x"]
    assert _run(str(photo), str(matte), "--matte") == 0
    gray = cv2.imread(str(matte), cv2.IMREAD_UNCHANGED)
    assert gray.ndim == 2 and gray[120, 225] == 255 and gray[20, 20] == 0


def test_folder_in_folder_out_continues_past_a_bad_file(photo, tmp_path, capsys):
    (photo.parent / "broken.jpg").write_bytes(b"not a jpeg at all")
    outdir = tmp_path / "cutouts"
    assert _run(str(photo.parent), str(outdir) + "/") == 1
    assert (outdir / "astronaut.png").is_file()
    assert not (outdir / "broken.png").exists()
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "1/2 images" in err


def test_id_photo_has_the_size_and_dpi(photo, tmp_path):
    from livematte.stages.id_photo import read_dpi

    out = tmp_path / "id.jpg"
    assert _run(str(photo), str(out), "--id-photo", "passport", "--bg", "white") == 0
    image = cv2.imread(str(out))
    assert image.shape[:2] == (531, 413)
    assert read_dpi(out.read_bytes()) == (300, 300)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["missing.jpg", "out.png"], 3, "input not found"),
        (["{photo}", "out.jpg"], 4, "no transparency"),
        (["{photo}", "out.xyz"], 4, "unsupported image format"),
        (["{photo}", "no/such/folder/out.png"], 4, "output folder does not exist"),
        (["{notimage}", "out.png"], 3, "not a readable image"),
        (["{photo}", "out.png", "--bg", "blur:0"], 2, "blur"),
        (["{photo}", "out.png", "--matte", "--bg", "white"], 2, "--bg has no effect"),
        (["{photo}", "out.png", "--matte", "--id-photo", "us"], 2, "cannot be an --id-photo"),
        (["{photo}", "out.png", "--id-photo", "A4"], 2, "passport"),
        (["{photo}", "{photo}", "out", "--json", "a.json"], 4, "a folder for --json"),
        (["{photo}", "out/", "--ext", ".jpg"], 4, "no transparency"),
        (["{photo}", "out/", "--ext", ".gif"], 4, "unsupported image format"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(
    photo, tmp_path, capsys, monkeypatch, no_model, args, code, message
):
    monkeypatch.chdir(tmp_path)
    notimage = tmp_path / "fake.png"
    notimage.write_bytes(b"\x89PNG but not really")
    args = [a.format(photo=photo, notimage=notimage) for a in args]
    assert _run(*args) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not [p for p in tmp_path.rglob("*") if "partial" in p.name]


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_output_that_is_the_input_is_refused(photo, tmp_path, capsys, no_model):
    png = tmp_path / "x.png"
    cv2.imwrite(str(png), np.full((40, 30, 3), 90, np.uint8))
    before = png.read_bytes()
    assert _run(str(png), str(png)) == 4
    assert "overwrite the input" in _error_line(capsys)
    (tmp_path / "link.png").symlink_to(png)  # another name for the same file
    assert _run(str(png), str(tmp_path / "link.png")) == 4
    assert "overwrite the input" in _error_line(capsys)
    # folder mode: in/astronaut.jpg would be written over by itself
    assert _run(str(photo.parent), str(photo.parent), "--ext", ".jpg", "--bg", "white") == 4
    assert "overwrite the input" in _error_line(capsys)
    assert png.read_bytes() == before and photo.read_bytes() == SAMPLE.read_bytes()


@pytest.mark.parametrize("several", [["{photo}", "{photo2}"], ["{folder}"], ["{folder}/*.jpg"]])
def test_several_inputs_into_an_image_file_name_is_an_error(
    photo, tmp_path, capsys, no_model, several
):
    photo2 = tmp_path / "b.jpg"
    shutil.copy(photo, photo2)
    inputs = [a.format(photo=photo, photo2=photo2, folder=photo.parent) for a in several]
    assert _run(*inputs, str(tmp_path / "out.png"), "--bg", "white") == 4
    assert "need an output folder, not the image file" in _error_line(capsys)
    assert not (tmp_path / "out.png").exists()


def _png_bomb(width: int, height: int) -> bytes:
    """A valid all-black 1-bit PNG of width x height in a few dozen kB."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    packer = zlib.compressobj(9)
    row = bytes(1 + (width + 7) // 8)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def test_pixel_bomb_is_refused_from_its_header(tmp_path, capsys, no_model):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_bomb(20000, 20000))
    assert bomb.stat().st_size < 100_000
    start = time.perf_counter()
    assert _run(str(bomb), str(tmp_path / "out.png")) == 3
    assert time.perf_counter() - start < 5  # decoding it took 80 s
    line = _error_line(capsys)
    assert "bomb.png: image is over 179.0 MP (million pixels); the limit is 40.0 MP" in line
    assert "--max-megapixels" in line


def test_max_megapixels_lowers_and_raises_the_limit(photo, tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "out.png")
    assert _run(str(photo), out, "--max-megapixels", "0.25") == 3  # 512x512 = 0.26 MP
    assert "the limit is 0.2 MP" in _error_line(capsys)

    class Loaded(Exception):
        pass

    def loaded(*_args, **_kwargs):
        raise Loaded

    monkeypatch.setattr("livematte.api.build_pipeline", loaded)
    with pytest.raises(Loaded):  # past the check, on to the model
        _run(str(photo), out, "--max-megapixels", "0.27")


def test_result_mode_follows_the_umask(photo, tmp_path, umask):
    out = tmp_path / "out.png"
    assert _run(str(photo), str(out), "--matte") == 0
    assert file_mode(out) == 0o666 & ~umask


def test_says_which_model_ran_and_embedded_works_with_nothing_pulled(
    photo, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("LIVEMATTE_CACHE", str(tmp_path / "empty-cache"))
    assert _run(str(photo), str(tmp_path / "a.png"), "--model", "embedded") == 0
    assert capsys.readouterr().err.splitlines()[-1] == (
        "livematte: matting model selfie_segmentation (cpu)"
    )
    # "auto" with nothing pulled is the embedded model too; a named model must be pulled.
    assert _run(str(photo), str(tmp_path / "b.png")) == 0
    assert "matting model selfie_segmentation (cpu)" in capsys.readouterr().err
    assert _run(str(photo), str(tmp_path / "c.png"), "--model", "rvm_mobilenetv3") == 5
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "livematte: error: model 'rvm_mobilenetv3' is not downloaded; "
        "run: livematte models pull rvm_mobilenetv3"
    ]
    assert not (tmp_path / "c.png").exists()
@needs_shared("matting", "p3m_pseudo_gt", "p_015cd10e.jpg")
def test_a_16_bit_grey_png_is_read_exactly_and_not_cut_out_empty(tmp_path):
    # A black-and-white copy of a colour portrait, saved as a 16-bit grey PNG (scanners and
    # raw converters write those), is read as the same 8-bit grey, and its cut-out keeps most
    # of the colour original's: the landscape model alone kept 7% of the frame instead of 38%
    # (IoU 0.19); the photo views' median keeps ~0.6 (the model is weaker on grey).
    colour = cv2.imread(str(SHARED_DATA / "matting" / "p3m_pseudo_gt" / "p_015cd10e.jpg"))
    colour = cv2.resize(colour, (colour.shape[1] // 2, colour.shape[0] // 2))
    grey8 = cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(tmp_path / "colour.png"), colour)
    cv2.imwrite(str(tmp_path / "grey16.png"), grey8.astype(np.uint16) * 257)
    assert np.array_equal(read_image(tmp_path / "grey16.png"), cv2.merge([grey8] * 3))
    mattes = []
    for name in ("colour", "grey16"):
        out = tmp_path / f"{name}_matte.png"
        assert cli.main(["image", str(tmp_path / f"{name}.png"), str(out), "--matte"]) == 0
        mattes.append(cv2.imread(str(out), cv2.IMREAD_UNCHANGED) > 127)
    inter, union = (mattes[0] & mattes[1]).sum(), (mattes[0] | mattes[1]).sum()
    assert inter / union > 0.5
