#!/usr/bin/env python3
"""livematte's live preset against MediaPipe 0.10.21's own pipelines, on the same frames.

Cases, each in its own process so its CPU time is its own (``--cases``, default all):

* ``mediapipe-selfie``: MediaPipe's legacy selfie segmentation (landscape model, the one it
  recommends for 16:9) + a numpy background replace (``m*frame + (1-m)*bg``);
* ``mediapipe-pose-seg``: MediaPipe Pose with ``enable_segmentation`` (complexity 1) + the same;
* ``livematte-live``: our ``live`` preset (matting, refine, temporal, foreground, background);
* ``livematte-live+keypoints``: the same with the keypoint stage on;
* ``livematte-live@base``: the live preset of another checkout (``--baseline-root``, e.g. the
  code before a change), so before and after come from the same run.

MediaPipe 0.10.21 needs numpy < 2, so it runs in its own venv, made by
``scripts/setup_peers_venv.sh`` (``.venv-peers``, pinned). Every case processes the same decoded
frames (a real clip, scaled to ``--size``) and background, synchronously, one frame at a time.
Per repeat: wall ms/frame, process CPU ms/frame (the steady figure on a shared machine) and fps;
the table shows min and median over ``--repeats``, and fps ratios against ``mediapipe-selfie``
(the median of the ratios within each repeat, so a load change hits both sides of a pair);
livematte's rows also give the median of each stage's ``frame.timings`` (wall ms).

    .venv/bin/python scripts/bench_peers.py                         # 300 frames x 3 repeats, 720p
    .venv/bin/python scripts/bench_peers.py --frames 150 --repeats 5 --json bench-results/peers.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
VIDEO = DATA / "video" / "pixabay_thumbs_up.mp4"
SAMPLE_VIDEO = ROOT / "livematte" / "samples" / "walk.mp4"
BACKGROUND = ROOT / "livematte" / "samples" / "beach.jpg"
CASES = (
    "mediapipe-selfie",
    "mediapipe-pose-seg",
    "livematte-live",
    "livematte-live+keypoints",
    "livematte-live@base",
)
WARMUP = 10


# ---------------------------------------------------------------- workers (one process a case)
def _time_loop(step, frames) -> dict:
    for frame in frames[:WARMUP]:
        step(frame)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for frame in frames:
        step(frame)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    n = len(frames)
    return {"frames": n, "wall_ms": 1000 * wall / n, "cpu_ms": 1000 * cpu / n, "fps": n / wall}


def _replace(frame, mask, background):
    import numpy as np

    m = mask[..., None].astype(np.float32)
    return (frame * m + background * (1.0 - m)).astype(np.uint8)


def worker(
    case: str, frames_path: str, bg_path: str, root: Path = ROOT, cv_threads: int | None = None
) -> dict:
    import cv2
    import numpy as np

    frames = list(np.load(frames_path))
    h, w = frames[0].shape[:2]
    background = cv2.resize(cv2.imread(bg_path), (w, h), interpolation=cv2.INTER_AREA)
    if case.startswith("mediapipe"):
        import mediapipe as mp

        if case == "mediapipe-selfie":
            model = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=1)
        else:
            model = mp.solutions.pose.Pose(
                static_image_mode=False, model_complexity=1, enable_segmentation=True
            )

        def step(frame):
            result = model.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            mask = result.segmentation_mask
            if mask is None:  # Pose finds nobody: nothing to keep
                mask = np.zeros(frame.shape[:2], np.float32)
            return _replace(frame, mask, background)

        out = _time_loop(step, frames)
        out["version"] = f"mediapipe {mp.__version__}"
        return out
    sys.path.insert(0, str(root))
    if cv_threads is not None:
        cv2.setNumThreads(cv_threads)
    from livematte import __version__, build_pipeline, load_config
    from livematte.frame import Frame

    overrides = {"effects.background": bg_path}
    if case.endswith("+keypoints"):
        overrides["keypoints.enabled"] = True
    pipeline = build_pipeline(load_config("live", overrides))
    if cv_threads is None:
        try:  # the thread policy `livematte live`'s runner applies (none before it existed)
            from livematte.runner.threads import pipeline_threads
        except ImportError:
            pass
        else:
            if (policy := pipeline_threads(pipeline)) > 0:
                cv2.setNumThreads(policy)
    index = iter(range(10**9))
    stages: dict[str, list[float]] = {}

    def step(frame):
        done = pipeline.process(Frame(image=frame, index=next(index)))
        for name, ms in done.timings.items():
            stages.setdefault(name, []).append(ms)
        return done.output

    out = _time_loop(step, frames)
    out["version"] = f"livematte {__version__}"
    out["cv_threads"] = cv2.getNumThreads()
    out["stages_ms"] = {k: round(statistics.median(v), 2) for k, v in stages.items()}
    return out


# ---------------------------------------------------------------- driver
def _frames(path: Path, count: int, size: tuple[int, int], out: Path) -> Path:
    import av
    import cv2
    import numpy as np

    frames = []
    while len(frames) < count:  # loop short clips
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                image = frame.to_ndarray(format="bgr24")
                frames.append(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
                if len(frames) == count:
                    break
    np.save(out, np.stack(frames))
    return out


def _python_for(case: str, peers: Path) -> str:
    return str(peers) if case.startswith("mediapipe") else sys.executable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--video", type=Path, default=VIDEO if VIDEO.exists() else SAMPLE_VIDEO)
    parser.add_argument("--background", type=Path, default=BACKGROUND)
    parser.add_argument(
        "--peers-python", type=Path, default=ROOT / ".venv-peers" / "bin" / "python"
    )
    parser.add_argument(
        "--baseline-root", type=Path, help="another checkout, for the livematte-live@base case"
    )
    parser.add_argument(
        "--cv-threads",
        type=int,
        help="cv2.setNumThreads for the livematte cases (default: what the checkout's live "
        "runner sets: runtime.threads since livematte.runner.threads, else OpenCV's own)",
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--frames-file", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        row = worker(
            args.worker, args.frames_file, str(args.background), args.root, args.cv_threads
        )
        print(json.dumps(row))
        return 0
    cases = [c for c in args.cases.split(",") if c]
    if "livematte-live@base" in cases and args.baseline_root is None:
        parser.error("livematte-live@base needs --baseline-root")
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {unknown}; known: {', '.join(CASES)}")
    if any(c.startswith("mediapipe") for c in cases) and not args.peers_python.exists():
        print(
            f"bench_peers: error: {args.peers_python} not found: run scripts/setup_peers_venv.sh",
            file=sys.stderr,
        )
        return 2
    w, h = (int(v) for v in args.size.split("x"))
    results: dict[str, list[dict]] = {c: [] for c in cases}
    with tempfile.TemporaryDirectory() as tmp:
        frames = _frames(args.video, args.frames, (w, h), Path(tmp) / "frames.npy")
        for rep in range(args.repeats):  # cases interleaved, so load changes hit all alike
            for case in cases:
                cmd = [
                    _python_for(case, args.peers_python),
                    __file__,
                    "--worker",
                    case,
                    "--frames-file",
                    str(frames),
                    "--background",
                    str(args.background),
                ]
                if case.endswith("@base"):
                    cmd += ["--root", str(args.baseline_root.resolve())]
                if args.cv_threads is not None:
                    cmd += ["--cv-threads", str(args.cv_threads)]
                run = subprocess.run(cmd, capture_output=True, text=True)
                if run.returncode != 0:
                    print(f"bench_peers: {case} failed:\n{run.stderr[-3000:]}", file=sys.stderr)
                    return 1
                results[case].append(json.loads(run.stdout.strip().splitlines()[-1]))
                print(
                    f"  repeat {rep + 1}/{args.repeats} {case}: {results[case][-1]['fps']:.1f} fps",
                    file=sys.stderr,
                )

    def stat(case, key, fn):
        return fn(r[key] for r in results[case])

    base = "mediapipe-selfie" if "mediapipe-selfie" in cases else cases[0]
    rows = []
    for case in cases:
        # Ratios pair each repeat with the baseline's run of the same repeat.
        ratios = [r["fps"] / b["fps"] for r, b in zip(results[case], results[base], strict=True)]
        stages = results[case][0].get("stages_ms", {})
        rows.append(
            {
                "case": case,
                "version": results[case][0]["version"],
                "fps_median": round(stat(case, "fps", statistics.median), 1),
                "wall_ms_min": round(stat(case, "wall_ms", min), 2),
                "wall_ms_median": round(stat(case, "wall_ms", statistics.median), 2),
                "cpu_ms_min": round(stat(case, "cpu_ms", min), 2),
                "cpu_ms_median": round(stat(case, "cpu_ms", statistics.median), 2),
                "fps_vs_" + base: round(statistics.median(ratios), 2),
                "stages_ms": {
                    k: round(statistics.median(r["stages_ms"][k] for r in results[case]), 2)
                    for k in stages
                },
            }
        )
    print(
        f"\n{args.frames} frames {w}x{h} of {args.video.name}, {args.repeats} repeats "
        f"(min / median over repeats; one process per case and repeat)\n"
    )
    print(f"| case | fps | wall ms/frame | CPU ms/frame | fps vs {base} | stages, median ms |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        stages = " ".join(f"{k} {v}" for k, v in r["stages_ms"].items())
        print(
            f"| {r['case']} | {r['fps_median']} | {r['wall_ms_min']} / {r['wall_ms_median']} | "
            f"{r['cpu_ms_min']} / {r['cpu_ms_median']} | {r['fps_vs_' + base]}x | {stages} |"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "runs": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
