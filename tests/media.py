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


@pytest.fixture(name="umask", params=[0o022, 0o077], ids=["umask022", "umask077"])
def umask_fixture(request: pytest.FixtureRequest):
    """``umask``: run the test under each umask (``from media import umask_fixture`` first)."""
    import os

    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def file_mode(path: str | Path) -> int:
    """The permission bits of ``path`` (0o644, ...)."""
    import stat

    return stat.S_IMODE(Path(path).stat().st_mode)
