"""Shared fixtures for the server tests: generated images, a fake pipeline, a live server."""

from __future__ import annotations

import io
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the server extra (fastapi) is not installed")

with warnings.catch_warnings():
    # Starlette >= 1.x prefers httpx2 for its TestClient and warns when it finds httpx.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from livematte.server.app import create_app  # noqa: E402
from livematte.server.engine import MattingResult, ServerSettings  # noqa: E402
from livematte.server.keys import KeyStore  # noqa: E402

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


@pytest.fixture
def make_client() -> Iterator[Callable[..., TestClient]]:
    """``make_client(settings=..., process=..., key_store=..., config=...)`` -> TestClient."""
    clients: list[TestClient] = []

    def make(*, settings: ServerSettings | None = None, process=fake_process, **kwargs):
        settings = settings or ServerSettings(keyless="on", warmup=False, rate=NO_LIMIT)
        client = TestClient(create_app(settings=settings, process=process, **kwargs))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client) -> TestClient:
    """Keyless app on the fake pipeline."""
    return make_client()


@pytest.fixture(scope="session")
def real_client() -> Iterator[TestClient]:
    """Keyless app on the real pipeline ("default" preset: guided refinement, fast)."""
    settings = ServerSettings(keyless="on", warmup=False, rate=NO_LIMIT)
    app = create_app("default", settings=settings)
    with TestClient(app) as client:
        yield client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(tmp_path_factory) -> Iterator[str]:
    """uvicorn on a free 127.0.0.1 port in a thread, real pipeline, keyless for local clients
    (an empty key database of its own: never the user's)."""
    uvicorn = pytest.importorskip("uvicorn")
    port = free_port()
    store = KeyStore(tmp_path_factory.mktemp("live-keys") / "keys.sqlite3")
    settings = ServerSettings(keyless="auto", rate=NO_LIMIT)
    app = create_app("default", settings=settings, key_store=store)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
