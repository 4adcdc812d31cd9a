"""What the server tests share: generated pictures, the fake pipeline, request helpers.

Test modules import these explicitly (``from server_helpers import ...``); the fixtures built on
them stay in ``conftest.py``.
"""

from __future__ import annotations

import io
import struct
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the server extra (fastapi) is not installed")

with warnings.catch_warnings():
    # Starlette >= 1.x prefers httpx2 for its TestClient and warns when it finds httpx.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from livematte.server.engine import MattingResult  # noqa: E402

__all__ = [
    "NO_LIMIT", "SAMPLE", "TestClient", "assert_error", "fake_alpha", "fake_process",
    "image_bytes", "png_bomb", "post", "truncated_jpeg",
]  # fmt: skip

#: A rate no test reaches: rate limits are tested on their own (test_app.py).
NO_LIMIT = 1000.0
SAMPLE = Path(__file__).resolve().parents[2] / "livematte" / "samples" / "astronaut.jpg"


def image_bytes(fmt: str = "PNG", size=(64, 48), mode: str = "RGB", **save) -> bytes:
    """A small picture (colour gradient) encoded as ``fmt``."""
    w, h = size
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :].repeat(h, 0)
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None].repeat(w, 1)
    rgb = np.stack([x, y, 255 - x], axis=2).astype(np.uint8)
    img = Image.fromarray(rgb, "RGB")
    if mode != "RGB":
        img = img.convert(mode)
    buf = io.BytesIO()
    img.save(buf, fmt, **save)
    return buf.getvalue()


def fake_alpha(h: int, w: int) -> np.ndarray:
    """An ellipse of 1s in the middle, 0 at the borders: a stand-in person."""
    yy, xx = np.mgrid[0:h, 0:w]
    inside = ((xx - w / 2) / (w * 0.35)) ** 2 + ((yy - h / 2) / (h * 0.45)) ** 2 <= 1.0
    return inside.astype(np.float32)


def fake_process(bgr: np.ndarray, analysis: bool) -> MattingResult:
    """Stands in for the pipeline in routing/limit tests (the real one is tested separately)."""
    h, w = bgr.shape[:2]
    body = None
    if analysis:
        body = {"person_num": 1, "person_info": [{"body_parts": {}, "location": {"score": 1.0}}]}
    return MattingResult(fake_alpha(h, w), bgr.copy(), body)


def png_bomb(width: int = 20000, height: int = 20000) -> bytes:
    """A valid 1-bit PNG of width x height, all black, compressed to ~50 kB (made row by row,
    never holding the 50 MB of raw rows)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def truncated_jpeg() -> bytes:
    """The first half of a JPEG: a header that decodes, pixels that do not."""
    data = image_bytes("JPEG", (200, 150))
    return data[: len(data) // 2]


def post(client, route="/api/v1/matting", data=None, files=None, headers=None, name="a.png"):
    """POST one picture (or ``files``) to ``route`` as a multipart form."""
    if files is None:
        files = {"file": (name, image_bytes("PNG", (64, 48)), "image/png")}
    return client.post(route, files=files, data=data or {}, headers=headers or {})


def assert_error(response, code: int, status: int):
    """``response`` is the JSON error envelope with ``code`` and HTTP ``status``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and body["data"] is None and body["msg"]
    assert abs(body["time"] - time.time() * 1000) < 60_000
