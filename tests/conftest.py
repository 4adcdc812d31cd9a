"""Fixtures several test modules use (plain helpers are in ``media.py``)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


@pytest.fixture(scope="module")
def x_display():
    """A display: the one we run under, or a private Xvfb; skipped when neither exists."""
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("window test needs a display: no DISPLAY and no Xvfb (apt install xvfb)")
    # -displayfd: Xvfb picks a free display number and writes it once it accepts clients.
    server = subprocess.Popen(
        [xvfb, "-displayfd", "1", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    number = server.stdout.readline().strip() if server.stdout else ""
    if not number.isdigit():
        server.kill()
        pytest.skip("Xvfb could not start")
    yield f":{number}"
    server.terminate()
    server.wait(5)


@pytest.fixture
def vcam_backend():
    """A pyvirtualcam backend that records what it is sent, registered for one test."""
    import pyvirtualcam
    from media import RecordingBackend

    pyvirtualcam.camera.register_backend("livematte-test", RecordingBackend)
    yield "livematte-test"
    pyvirtualcam.camera.BACKENDS.pop("livematte-test", None)


@pytest.fixture
def clip(tmp_path) -> str:
    """A short H.264 clip of a moving square (modules that need another clip override it)."""
    from media import write_moving_square

    return write_moving_square(tmp_path / "clip.mp4")
