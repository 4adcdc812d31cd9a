#!/usr/bin/env python3
"""Cost per background effect and sticker pack at 720p (synthetic frame, no models).

The frame carries a ready-made matte and keypoints, so only the effects / sticker stages are
timed.  Callable from scripts/bench.py::

    from bench_effects import bench_effects
    rows, columns = bench_effects(runs=args.runs, warmup=args.warmup)

or on its own::

    python scripts/bench_effects.py --runs 100 --json bench-results/effects.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import summarise, timings_ms  # noqa: E402

from livematte.config import load_config  # noqa: E402
from livematte.frame import LANDMARK_NAMES, Frame, Mode, Person  # noqa: E402
from livematte.stages.effects import EffectsStage  # noqa: E402
from livematte.stages.stickers import StickerStage  # noqa: E402

COLUMNS = ["effect", "median_ms", "p95_ms", "mean_ms"]


def _scene(width: int, height: int) -> tuple[np.ndarray, np.ndarray, Person]:
    """A textured picture, a soft person-shaped matte and matching keypoints."""
    rng = np.random.default_rng(0)
    noise = cv2.resize(rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8),
                       (width, height), interpolation=cv2.INTER_CUBIC)  # fmt: skip
    alpha = np.zeros((height, width), np.float32)
    cx, d = width / 2, height / 14
    cv2.ellipse(alpha, (int(cx), int(height * 0.3)), (int(1.9 * d), int(2.4 * d)), 0, 0, 360, 1, -1)
    cv2.ellipse(alpha, (int(cx), height), (int(3.6 * d), int(height * 0.55)), 0, 0, 360, 1, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 2.0)
    layout = {
        "left_eye": (0.5, 0), "right_eye": (-0.5, 0), "nose": (0, 0.55),
        "mouth_left": (0.4, 1.1), "mouth_right": (-0.4, 1.1),
        "left_shoulder": (1.6, 3.2), "right_shoulder": (-1.6, 3.2),
        "left_hip": (1.0, 7.5), "right_hip": (-1.0, 7.5),
    }  # fmt: skip
    lm = np.zeros((33, 4), np.float32)
    lm[:, :2] = (cx, height * 0.9)
    lm[:, 2:] = 1.0
    for name, (u, v) in layout.items():
        lm[LANDMARK_NAMES.index(name), :2] = (cx + u * d, height * 0.28 + v * d)
    person = Person(1, lm, (cx - 4 * d, 0, cx + 4 * d, height), 1.0)
    return noise, alpha, person


def _media(folder: Path, width: int, height: int) -> tuple[Path, Path]:
    """A 1080p JPEG and a 2 s 1080p clip to use as backgrounds."""
    import av

    rng = np.random.default_rng(1)
    still = cv2.resize(rng.integers(0, 256, (54, 96, 3), dtype=np.uint8), (1920, 1080))
    image = folder / "bg.jpg"
    cv2.imwrite(str(image), still)
    clip = folder / "bg.mp4"
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        for k in range(50):
            picture = np.roll(still, 8 * k, axis=1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return image, clip


def bench_effects(
    width: int = 1280, height: int = 720, runs: int = 50, warmup: int = 5
) -> tuple[list[dict[str, Any]], list[str]]:
    """Time each effect on a width x height frame; returns (rows, columns) like bench.py."""
    image, alpha, person = _scene(width, height)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        still, clip = _media(Path(tmp), width, height)
        cases: list[tuple[str, dict[str, Any], str]] = [
            ("colour #00ff00", {"effects.background": "#00ff00"}, ""),
            ("transparent (BGRA)", {"effects.background": "transparent"}, ""),
            ("image 1080p, cover-fit", {"effects.background": str(still)}, ""),
            ("video 1080p @25 fps, looped", {"effects.background": str(clip)}, ""),
            ("blur:8 lens", {"effects.background": "blur:8"}, ""),
            ("blur:25 lens", {"effects.background": "blur:25"}, ""),
            ("blur:60 lens", {"effects.background": "blur:60"}, ""),
            (
                "blur:25 gaussian",
                {"effects.background": "blur:25", "effects.blur_kind": "gaussian"},
                "",
            ),
            (
                "blur:25 + dim 0.3 + desaturate 0.5",
                {"effects.background": "blur:25", "effects.dim": 0.3, "effects.desaturate": 0.5},
                "",
            ),
            (
                "colour + light wrap 0.5",
                {"effects.background": "#00ff00", "effects.light_wrap": 0.5},
                "",
            ),
            ("stickers party (1 person)", {"effects.background": "#00ff00"}, "party"),
            ("stickers angel (1 person, wings behind)", {"effects.background": "#00ff00"}, "angel"),
        ]
        for label, overrides, pack in cases:
            cfg = load_config(None, {**overrides, "stickers.pack": pack})
            effects = EffectsStage(cfg.effects, cfg.runtime)
            stickers = StickerStage(cfg.stickers, cfg.runtime) if pack else None
            counter = iter(range(10**9))

            def run(e=effects, s=stickers, c=counter) -> None:
                i = next(c)
                frame = Frame(
                    image=image,
                    index=i,
                    pts=i,
                    time_base=Fraction(1, 30),
                    mode=Mode.VIDEO,
                    alpha=alpha,
                    foreground=image,
                    people=[person],
                )
                frame = e.process(frame)
                if s is not None:
                    start = time.perf_counter()
                    s.process(frame)
                    run.sticker_ms.append((time.perf_counter() - start) * 1000.0)  # type: ignore[attr-defined]

            run.sticker_ms = []  # type: ignore[attr-defined]
            row = {
                "effect": label,
                **summarise(timings_ms(run, warmup, runs)),
                "size": f"{width}x{height}",
            }
            if pack:  # the sticker stage's own share, on top of the colour background
                row["stickers_only_ms"] = round(statistics.median(run.sticker_ms), 2)  # type: ignore[attr-defined]
            rows.append(row)
            effects.close()
            print(f"{label:42s} {row['median_ms']:8.2f} ms", file=sys.stderr, flush=True)
    return rows, COLUMNS + ["stickers_only_ms"]


def main(argv: list[str] | None = None) -> int:
    """Print the table and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=-1, help="cv2.setNumThreads (-1: default)")
    parser.add_argument("--json", type=Path, default=Path("bench-results/effects.json"))
    args = parser.parse_args(argv)
    if args.threads >= 0:
        cv2.setNumThreads(args.threads)
    rows, columns = bench_effects(args.width, args.height, args.runs, args.warmup)
    print(f"\n## effects ({args.width}x{args.height}, cv2 threads {cv2.getNumThreads()})")
    print(f"{'effect':42s} " + " ".join(f"{c:>16s}" for c in columns[1:]))
    for row in rows:
        print(f"{row['effect']:42s} " + " ".join(f"{row.get(c, ''):>16}" for c in columns[1:]))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    payload = {"cv2_threads": cv2.getNumThreads(), "cpu": cv2.getNumberOfCPUs(), "rows": rows}
    args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
