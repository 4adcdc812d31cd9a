#!/usr/bin/env python3
"""Make the sample media livematte ships, each from a pinned source, deterministically.

Run at development time; each prints the sha256 values in ``livematte/samples/SOURCES.md``::

    # the photo: NASA's public-domain portrait of Eileen Collins, from the scikit-image wheel
    pip download scikit-image==0.26.0 --no-deps --only-binary=:all: -d /tmp/ski
    python scripts/make_sample.py photo /tmp/ski/scikit_image-0.26.0-*.whl
    # the clip: 6 s of Intel's CC-BY-4.0 "one-by-one-person-detection.mp4" (a man walks in)
    python scripts/make_sample.py clip ../shared/data/video/one-by-one-person-detection.mp4
    # the background: drawn by this script (a beach at sunset), no source
    python scripts/make_sample.py background
"""

from __future__ import annotations

import hashlib
import sys
import zipfile
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

SAMPLES = Path(__file__).resolve().parents[1] / "livematte" / "samples"
MEMBER = "skimage/data/astronaut.png"
CLIP_FRAMES = range(740, 800)  # 6 s at 10 fps: the man in black walks in and stops
CLIP_SIZE = (640, 360)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def photo(wheel: Path) -> None:
    png = zipfile.ZipFile(wheel).read(MEMBER)
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    (SAMPLES / "astronaut.jpg").write_bytes(jpeg.tobytes())
    for label, data in (
        ("wheel", wheel.read_bytes()),
        (MEMBER, png),
        ("astronaut.jpg", jpeg.tobytes()),
    ):
        print(f"{label}: sha256 {_sha(data)}")


def clip(source: Path) -> None:
    """H.264 (CRF 30, 10 fps, 640x360) plus a quiet 440 Hz AAC tone, so audio handling shows."""
    import av

    out = SAMPLES / "walk.mp4"
    frames = []
    with av.open(str(source)) as src:
        for i, frame in enumerate(src.decode(video=0)):
            if i in CLIP_FRAMES:
                frames.append(
                    cv2.resize(
                        frame.to_ndarray(format="bgr24"), CLIP_SIZE, interpolation=cv2.INTER_AREA
                    )
                )
            if i >= CLIP_FRAMES.stop:
                break
    rate = 48000
    with av.open(str(out), "w", options={"fflags": "+bitexact"}) as dst:
        v = dst.add_stream("libx264", rate=10)
        v.width, v.height = CLIP_SIZE
        v.pix_fmt = "yuv420p"
        v.options = {"crf": "30", "preset": "slow", "threads": "1", "x264-params": "bframes=0"}
        a = dst.add_stream("aac", rate=rate)
        a.layout = "mono"
        for i, image in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(image, format="bgr24")
            vf.pts, vf.time_base = i, Fraction(1, 10)
            dst.mux(v.encode(vf))
        dst.mux(v.encode())
        n = rate * len(frames) // 10
        t = np.arange(n) / rate
        tone = (0.05 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
        for start in range(0, n, 1024):
            af = av.AudioFrame.from_ndarray(
                tone[:, start : start + 1024], format="flt", layout="mono"
            )
            af.sample_rate, af.pts = rate, start
            dst.mux(a.encode(af))
        dst.mux(a.encode())
    print(f"{source.name}: sha256 {_sha(source.read_bytes())}")
    size = out.stat().st_size
    print(f"walk.mp4: sha256 {_sha(out.read_bytes())} ({size} bytes, {len(frames)} frames)")


def background() -> None:
    """A beach at sunset, drawn: sky gradient, sun, sea with glints, sand."""
    w, h = 1280, 720
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    horizon, shore = 0.55, 0.78
    top, low = np.array([120, 60, 40], np.float32), np.array([90, 160, 250], np.float32)  # BGR
    sky = top + (low - top) * (y / horizon) ** 0.8
    sea = np.array([110, 80, 30], np.float32) + np.array([40, 40, 20], np.float32) * (
        (y - horizon) / (shore - horizon)
    )
    sand = np.array([140, 190, 220], np.float32) - np.array([30, 40, 40], np.float32) * (
        (y - shore) / (1 - shore)
    )
    img = np.where(y < horizon, sky, np.where(y < shore, sea, sand)) * np.ones(
        (1, w, 1), np.float32
    )
    sun = np.zeros((h, w), np.float32)
    cv2.circle(sun, (int(w * 0.68), int(h * horizon) - 40), 70, 1.0, -1, cv2.LINE_AA)
    sun[int(h * horizon) :] = 0
    sun = cv2.GaussianBlur(sun, (0, 0), 3)
    img = img * (1 - sun[..., None]) + np.array([150, 230, 255], np.float32) * sun[..., None]
    rng = np.random.default_rng(7)
    for _ in range(400):  # glints on the water below the sun
        yy = int(rng.uniform(horizon, shore) * h)
        xx = int(w * 0.68 + rng.normal(0, 40 + (yy - horizon * h)))
        cv2.line(img, (xx - 6, yy), (xx + 6, yy), (170, 220, 250), 1, cv2.LINE_AA)
    img = np.clip(img, 0, 255).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 88])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    (SAMPLES / "beach.jpg").write_bytes(jpeg.tobytes())
    print(f"beach.jpg: sha256 {_sha(jpeg.tobytes())}")


def main(argv: list[str]) -> int:
    if argv[:1] == ["photo"] and len(argv) == 2:
        photo(Path(argv[1]))
    elif argv[:1] == ["clip"] and len(argv) == 2:
        clip(Path(argv[1]))
    elif argv == ["background"]:
        background()
    else:
        print("usage: make_sample.py photo WHEEL | clip VIDEO | background", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
