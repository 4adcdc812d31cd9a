"""The server runs the CLI's pipeline: the same request gives the same pixels as the command.

``livematte image p.jpg out.png --bg blur:25`` and a POST of p.jpg with ``bg=blur:25`` to a
server on the same preset run one pipeline built from one config; what differs is only the
decoder (OpenCV for files, Pillow for uploads), hence "within 1 level".
"""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from server_helpers import NO_LIMIT, SAMPLE, TestClient

from livematte.server.app import create_app
from livematte.server.engine import ServerSettings


@pytest.fixture(scope="module")
def photo_client():
    """Keyless app on the real pipeline and the CLI's `image` preset ("photo")."""
    settings = ServerSettings(keyless="on", warmup=False, rate=NO_LIMIT)
    with TestClient(create_app("photo", settings=settings)) as client:
        yield client


def _cli(tmp_path, *flags: str, suffix: str = ".png") -> np.ndarray:
    out = tmp_path / f"cli{suffix}"
    run = subprocess.run(
        [sys.executable, "-m", "livematte", "image", str(SAMPLE), str(out), *flags],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return np.asarray(Image.open(out)).astype(np.int16)


def _api(client, **fields: str) -> np.ndarray:
    r = client.post("/api/v1/matting", files={"file": SAMPLE.read_bytes()}, data=fields)
    assert r.status_code == 200, r.text
    return np.asarray(Image.open(io.BytesIO(r.content))).astype(np.int16)


@pytest.mark.parametrize(
    ("flags", "fields"),
    [
        (("--bg", "blur:25"), {"bg": "blur:25"}),
        (("--bg", "original", "--desaturate", "1", "--dim", "0.3"),
         {"bg": "original", "desaturate": "1", "dim": "0.3"}),
        (("--bg", "#2060a0", "--light-wrap", "0.5"), {"bg_color": "#2060a0", "light_wrap": "0.5"}),
        ((), {}),  # transparent: the RGBA cut-out
    ],
)  # fmt: skip
def test_request_equals_command_line(photo_client, tmp_path, flags, fields):
    cli, api = _cli(tmp_path, *flags), _api(photo_client, **fields)
    assert cli.shape == api.shape
    assert np.abs(cli - api).mean() <= 1.0


def test_stickers_and_id_photo_over_http(photo_client, tmp_path):
    plain = _api(photo_client, bg="white")
    party = _api(photo_client, bg="white", stickers="party")
    assert party.shape == plain.shape and np.abs(party - plain).mean() > 1.0  # stickers drawn
    cli = _cli(tmp_path, "--bg", "white", "--stickers", "party")
    assert np.abs(cli - party).mean() <= 1.0
    r = photo_client.post(
        "/api/v1/matting",
        files={"file": SAMPLE.read_bytes()},
        data={"id_photo": "passport", "bg": "white"},
    )
    assert r.status_code == 200, r.text
    assert Image.open(io.BytesIO(r.content)).size == (413, 531)


def test_a_picture_unfit_for_an_id_photo_is_a_clear_422(photo_client):
    blank = io.BytesIO()
    Image.new("RGB", (200, 200), (128, 128, 128)).save(blank, "PNG")
    r = photo_client.post(
        "/api/v1/matting", files={"file": blank.getvalue()}, data={"id_photo": "passport"}
    )
    assert r.status_code == 422 and r.json()["code"] == 1110
    assert "face" in r.json()["msg"]
