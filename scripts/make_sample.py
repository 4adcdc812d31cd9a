#!/usr/bin/env python3
"""Make the sample photo livematte ships, from a pinned public-domain source.

The photo is NASA's portrait of astronaut Eileen Collins ("No known copyright restrictions,
released into the public domain"), as bundled in the scikit-image 0.26.0 wheel
(``skimage/data/astronaut.png``).  Run once at development time::

    pip download scikit-image==0.26.0 --no-deps --only-binary=:all: -d /tmp/ski
    python scripts/make_sample.py /tmp/ski/scikit_image-0.26.0-*.whl

It writes ``livematte/samples/astronaut.jpg`` (JPEG, quality 92, deterministic) and prints the
sha256 values recorded in ``livematte/samples/SOURCES.md``.
"""

from __future__ import annotations

import hashlib
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np

OUT = Path(__file__).resolve().parents[1] / "livematte" / "samples" / "astronaut.jpg"
MEMBER = "skimage/data/astronaut.png"


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_file():
        print("usage: make_sample.py scikit_image-0.26.0-...whl", file=sys.stderr)
        return 2
    wheel = Path(argv[0])
    png = zipfile.ZipFile(wheel).read(MEMBER)
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    OUT.write_bytes(jpeg.tobytes())
    for label, data in (("wheel", wheel.read_bytes()), (MEMBER, png), (OUT.name, jpeg.tobytes())):
        print(f"{label}: sha256 {hashlib.sha256(data).hexdigest()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
