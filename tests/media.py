"""What several test modules share: where ../shared/data lives, and tiny clips made on the spot.

Importable from every test module (``pythonpath = ["tests"]`` in pyproject.toml).
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
#: The evaluation data next to the checkout (see its SOURCES.md); absent on a bare clone.
SHARED_DATA = REPO.parent / "shared" / "data"

#: A standing person facing the camera (their left on image right), 400 px tall, hips at (0, 0):
#: BlazePose landmark name -> (x, y) offset in pixels (hands and feet left out).
STANDING_POSE: dict[str, tuple[float, float]] = {
    "nose": (0, -160), "left_eye": (8, -170), "right_eye": (-8, -170),
    "left_eye_inner": (4, -170), "right_eye_inner": (-4, -170),
    "left_eye_outer": (12, -170), "right_eye_outer": (-12, -170),
    "left_ear": (18, -166), "right_ear": (-18, -166),
    "mouth_left": (6, -150), "mouth_right": (-6, -150),
    "left_shoulder": (40, -120), "right_shoulder": (-40, -120),
    "left_elbow": (50, -70), "right_elbow": (-50, -70),
    "left_wrist": (55, -20), "right_wrist": (-55, -20),
    "left_hip": (25, 0), "right_hip": (-25, 0),
    "left_knee": (25, 80), "right_knee": (-25, 80),
    "left_ankle": (25, 160), "right_ankle": (-25, 160),
}  # fmt: skip


def needs_shared(*parts: str) -> pytest.MarkDecorator:
    """Skip unless ``SHARED_DATA / parts...`` exists, saying which path is missing."""
    path = SHARED_DATA.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"shared test data not found: {path}")


def write_h264(
    path: str | Path, images: Iterable[np.ndarray], fps: int = 30, **options: str
) -> str:
    """Encode BGR ``images`` (all one size) as an H.264 file at ``fps``; returns the path.

    ``options`` go to libx264 after ``preset=ultrafast`` (e.g. ``crf="10"``).
    """
    import av

    with av.open(str(path), "w") as container:
        stream = None
        for i, image in enumerate(images):
            if stream is None:
                stream = container.add_stream("libx264", rate=fps)
                stream.height, stream.width = image.shape[:2]
                stream.pix_fmt = "yuv420p"
                stream.options = {"preset": "ultrafast", **options}
            picture = av.VideoFrame.from_ndarray(image, format="bgr24")
            picture.pts, picture.time_base = i, Fraction(1, fps)
            container.mux(stream.encode(picture))
        if stream is not None:
            container.mux(stream.encode())
    return str(path)
