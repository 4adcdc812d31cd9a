#!/usr/bin/env python3
"""CPU time of each pipeline stage per frame (``frame.timings``), this checkout and a baseline.

A shared machine inflates wall-clock stage times several-fold and unevenly; the CPU time a
stage spends is the steady figure.  Each run is a process of its own with OpenCV and ONNX
Runtime on one thread, so all of a stage's work happens on the calling thread and the stages'
``frame.timings`` are read as that thread's CPU time (``time.thread_time``).  Frames: a real
clip (../shared/data/video, else the bundled sample) scaled to each size, processed in order
in the preset's mode after 10 warm-up frames.  Runs of the checkouts alternate
(``--repeats``); the table gives per stage the median over frames, then min / median over
repeats.

    python scripts/bench_stages.py                                  # live + video, 720p + 1080p
    python scripts/bench_stages.py --presets live --sizes 720 --baseline-root ../main --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT.parent / "shared" / "data" / "video" / "pixabay_thumbs_up.mp4"
SAMPLE = ROOT / "livematte" / "samples" / "walk.mp4"
BACKGROUND = ROOT / "livematte" / "samples" / "beach.jpg"
SIZES = {"720": (1280, 720), "1080": (1920, 1080)}


def child(spec: dict[str, Any]) -> dict[str, float]:
    """One run in this process: median CPU ms per stage over the frames."""
    import time

    time.perf_counter = time.thread_time  # the stages' timings become this thread's CPU time
    import av
    import cv2

    cv2.setNumThreads(1)
    sys.path.insert(0, spec["root"])
    from livematte import build_pipeline, load_config
    from livematte.frame import Frame

    size, frames = tuple(spec["size"]), []
    while len(frames) < spec["frames"]:
        with av.open(spec["video"]) as container:
            for picture in container.decode(video=0):
                image = picture.to_ndarray(format="bgr24")
                frames.append(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
                if len(frames) == spec["frames"]:
                    break
    overrides = {"effects.background": spec["background"], "runtime.threads": 1}
    pipeline = build_pipeline(load_config(spec["preset"], overrides))
    for index, image in enumerate(frames[:10]):
        pipeline.process(Frame(image=image, index=index))
    pipeline.reset()
    stages: dict[str, list[float]] = {}
    for index, image in enumerate(frames):
        for name, ms in pipeline.process(Frame(image=image, index=index)).timings.items():
            stages.setdefault(name, []).append(ms)
    return {name: statistics.median(values) for name, values in stages.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="live,video")
    parser.add_argument("--sizes", default="720,1080", help="comma list of 720, 1080")
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--baseline-root", type=Path, help="another checkout to compare with")
    parser.add_argument("--video", type=Path, default=VIDEO if VIDEO.exists() else SAMPLE)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    roots = {"this": ROOT} | ({"base": args.baseline_root.resolve()} if args.baseline_root else {})
    runs: dict[tuple[str, str, str], list[dict[str, float]]] = {}
    for preset in args.presets.split(","):
        for size in args.sizes.split(","):
            for _ in range(args.repeats):
                for label, root in roots.items():
                    spec = {
                        "root": str(root),
                        "preset": preset,
                        "size": SIZES[size],
                        "frames": args.frames,
                        "video": str(args.video),
                        "background": str(BACKGROUND),
                    }
                    done = subprocess.run(
                        [sys.executable, __file__, "--child", json.dumps(spec)],
                        capture_output=True,
                        text=True,
                        check=False,
                    )
                    if done.returncode != 0:
                        print(
                            f"bench_stages: {label} {preset} {size}p failed:\n"
                            f"{done.stderr[-2000:]}",
                            file=sys.stderr,
                        )
                        return 1
                    row = json.loads(done.stdout.strip().splitlines()[-1])
                    runs.setdefault((preset, size, label), []).append(row)
    print(
        f"\nCPU ms per frame and stage (median over {args.frames} frames of {args.video.name}; "
        f"min / median over {args.repeats} runs; one thread)\n"
    )
    names = list(dict.fromkeys(k for rows in runs.values() for r in rows for k in r))
    print("| preset | size | code | " + " | ".join(names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    table = []
    for (preset, size, label), rows in runs.items():
        cells = {}
        for name in names:
            values = [r[name] for r in rows if name in r]
            cells[name] = (min(values), statistics.median(values)) if values else None
        table.append({"preset": preset, "size": size, "code": label, "stages": cells})
        text = [f"{v[0]:.2f} / {v[1]:.2f}" if v else "" for v in cells.values()]
        print(f"| {preset} | {size}p | {label} | " + " | ".join(text) + " |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"rows": table, "roots": {k: str(v) for k, v in roots.items()}}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
