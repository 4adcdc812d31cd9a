#!/usr/bin/env python3
"""Benchmark ``livematte video`` against the physical limit: a bare PyAV decode + encode.

Variants, each measured in its own child process (so peak RSS is per variant), side by side in
the same run and on the same clip, all encoding libx264 ``veryfast`` CRF 18 (what
``transcode(quality="high")`` uses):

  bare       decode -> encode, frames stay YUV (the physical limit)
  bare-bgr   decode -> BGR ndarray -> encode (what any numpy pipeline must pay)
  identity   ``transcode`` with a do-nothing process: the cost of our plumbing
  pipeline   ``transcode`` with ``build_pipeline(load_config(PRESET, --set ...))``

Clips at 720p and 1080p are made from a real video in ../shared/data/video when present
(scaled, looped to --frames), else from the synthetic source.

    python scripts/bench_video.py                              # 720p + 1080p, preset "video"
    python scripts/bench_video.py --sizes 720 --frames 100 --json bench-results/video.json
    python scripts/bench_video.py --pipeline film --set effects.background=blur
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# Run from a checkout without installing: make `import livematte` find the source tree.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = {"720": (1280, 720), "1080": (1920, 1080)}
ENCODER = {"preset": "veryfast", "crf": "18"}
SHARED_VIDEO = ROOT.parent / "shared" / "data" / "video"
DEFAULT_SOURCE = "pixabay_thumbs_up.mp4"


def make_clip(path: Path, size: tuple[int, int], frames: int, source: Path | None) -> str:
    """Write a ``frames``-long H.264 clip at ``size``; return a description of its origin."""
    import av
    import cv2

    from livematte.io.synthetic import SyntheticSource

    def pictures():
        made = 0
        while made < frames:
            if source is None:
                it = (f.image for f in SyntheticSource(size[0], size[1], frames, 25))
            else:
                it = (f.to_ndarray(format="bgr24") for f in av.open(str(source)).decode(video=0))
            for image in it:
                if made >= frames:
                    return
                yield cv2.resize(image, size, interpolation=cv2.INTER_AREA)
                made += 1

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options=ENCODER)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for n, image in enumerate(pictures()):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = n
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return source.name if source else "synthetic"


def _bare(clip: str, out: str, to_bgr: bool) -> int:
    import av

    count = 0
    with av.open(clip) as inp, av.open(out, "w") as outp:
        ins = inp.streams.video[0]
        ins.thread_type = "AUTO"
        stream = outp.add_stream("libx264", rate=ins.average_rate, options=ENCODER)
        stream.width, stream.height, stream.pix_fmt = ins.width, ins.height, "yuv420p"
        stream.time_base = stream.codec_context.time_base = ins.time_base
        for frame in inp.decode(ins):
            if to_bgr:
                image = frame.to_ndarray(format="bgr24")
                new = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
                new.pts, new.time_base, frame = frame.pts, frame.time_base, new
            else:
                frame.pict_type = 0  # let the encoder choose frame types, as ffmpeg does
            for packet in stream.encode(frame):
                outp.mux(packet)
            count += 1
        for packet in stream.encode(None):
            outp.mux(packet)
    return count


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement in this (child) process and return its row."""
    variant, clip, out = spec["variant"], spec["clip"], spec["out"]
    started = time.perf_counter()
    extra: dict[str, Any] = {}
    if variant in ("bare", "bare-bgr"):
        frames = _bare(clip, out, to_bgr=variant == "bare-bgr")
    else:
        from livematte.video import transcode

        if variant == "identity":
            process: Any = lambda frame: frame  # noqa: E731
        else:
            from livematte.api import build_pipeline
            from livematte.config import load_config

            overrides = dict(item.split("=", 1) for item in spec["set"])
            overrides.setdefault("runtime.mode", "video")
            process = build_pipeline(load_config(spec["pipeline"], overrides))
        started = time.perf_counter()
        summary = transcode(clip, out, process, fmt="composite", quality="high",
                            preset="veryfast", progress=False, notice=lambda m: None)  # fmt: skip
        frames = summary.frames
        stats = summary.results[0].stats
        if stats is not None:
            extra = {f"{k}_ms_per_frame": round(v / max(frames, 1), 2)
                     for k, v in stats.timings_ms.items()}  # fmt: skip
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    return {"frames": frames, "seconds": round(seconds, 3), "fps": round(frames / seconds, 2),
            "peak_rss_mib": round(peak, 1), **extra}  # fmt: skip


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"error": last}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def pipeline_available(name: str, sets: list[str]) -> str | None:
    """None when the pipeline builds, else the one-line reason it does not."""
    try:
        from livematte.api import build_pipeline
        from livematte.config import load_config

        overrides = dict(item.split("=", 1) for item in sets)
        build_pipeline(load_config(name, overrides)).close()
    except Exception as exc:  # noqa: BLE001 - report any failure and skip that variant
        return f"{type(exc).__name__}: {exc}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="720,1080", help="comma list of 720, 1080")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--source", type=Path, default=None, help="video to scale into clips")
    parser.add_argument("--pipeline", default="video", help="preset (or TOML) for the pipeline")
    parser.add_argument("--set", action="append", default=["effects.background=blue"],
                        metavar="KEY=VALUE", help="config override (repeatable)")  # fmt: skip
    parser.add_argument("--variants", default="bare,bare-bgr,identity,pipeline")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/livematte-bench-video"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0

    source = args.source
    if source is None and (SHARED_VIDEO / DEFAULT_SOURCE).exists():
        source = SHARED_VIDEO / DEFAULT_SOURCE
    variants = args.variants.split(",")
    if "pipeline" in variants and (reason := pipeline_available(args.pipeline, args.set)):
        print(f"skipping 'pipeline': cannot build preset {args.pipeline!r}: {reason}")
        variants.remove("pipeline")
    args.workdir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for size_name in args.sizes.split(","):
        size = SIZES[size_name]
        clip = args.workdir / f"clip_{size_name}p_{args.frames}.mp4"
        origin = make_clip(clip, size, args.frames, source) if not clip.exists() else "cached"
        base_fps = None
        for variant in variants:
            spec = {"variant": variant, "clip": str(clip), "pipeline": args.pipeline,
                    "set": args.set, "out": str(args.workdir / f"out_{variant}.mp4")}  # fmt: skip
            row = {"size": f"{size_name}p", "variant": variant, "clip": origin, **measure(spec)}
            if variant == "bare" and "fps" in row:
                base_fps = row["fps"]
            if base_fps and "fps" in row:
                row["ratio"] = round(row["fps"] / base_fps, 2)
            rows.append(row)
            print(_format(row), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        meta = {"machine": platform.platform(), "python": platform.python_version(),
                "cpus": os.cpu_count(), "frames": args.frames, "encoder": ENCODER,
                "pipeline": args.pipeline, "set": args.set}  # fmt: skip
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def _format(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"{row['size']:>6} {row['variant']:<10} failed: {row['error']}"
    return (f"{row['size']:>6} {row['variant']:<10} {row['fps']:7.1f} fps  "
            f"ratio {row.get('ratio', float('nan')):4.2f}  peak RSS {row['peak_rss_mib']:7.1f} MiB"
            + "".join(f"  {k.split('_')[0]} {v} ms" for k, v in row.items()
                      if k.endswith("_ms_per_frame")))  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
