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

``--whole``: each variant is a whole process timed from start to exit, start-up included
(Python, imports, models), as a user runs it: ``bare`` is this script's bare transcode in a
process of its own, ``cli`` is ``python -m livematte video CLIP OUT --model embedded`` with the
pipeline's preset and ``--set`` overrides, and ``--baseline-root DIR`` adds ``cli@base``, the
same command run from another checkout (the code before a change), in the same run.  Both
checkouts are compiled to bytecode first (``precompile``), as an installed package is.

Every variant runs ``--repeats`` times, interleaved (a load change on a shared machine hits
all alike).  Per variant: wall time and fps (best / median), process CPU time per frame (min /
median: the steady figure when the machine is shared; all threads, from the kernel's
accounting of the finished process) and the fps ratio to ``bare`` of the same repeat (median
of the pairs).

    python scripts/bench_video.py                              # 720p + 1080p, preset "video"
    python scripts/bench_video.py --sizes 720 --frames 100 --json bench-results/video.json
    python scripts/bench_video.py --pipeline film --set effects.background=blur
    python scripts/bench_video.py --whole --frames 450 --repeats 3 --baseline-root ../main
    python scripts/bench_video.py --sizes 720 --variants bare,pipeline --thread-cpu  # by thread
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
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


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class ThreadCPU:
    """CPU seconds per thread of this process, by Python thread name (Linux, from
    /proc/self/task, sampled every 0.2 s and once at the end, so a thread that ended is counted
    up to its last sample); threads Python did not start (codec workers) go by their kernel name,
    those FFmpeg does not name are "native"."""

    def __init__(self) -> None:
        import threading

        self.seconds: dict[str, float] = {}
        self._names: dict[str, str] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        import threading

        for t in threading.enumerate():
            if t.native_id:
                self._names[str(t.native_id)] = t.name
        tick = os.sysconf("SC_CLK_TCK")
        for task in Path("/proc/self/task").iterdir():
            try:
                stat = (task / "stat").read_text().rsplit(")", 1)[1].split()
                comm = (task / "comm").read_text().strip()
            except OSError:
                continue
            name = self._names.get(task.name) or (comm if comm != "python" else "native")
            self.seconds[f"{task.name}:{name}"] = (int(stat[11]) + int(stat[12])) / tick

    def _run(self) -> None:
        while not self._done.wait(0.2):
            self._sample()

    def stop(self, frames: int) -> dict[str, float]:
        """ms per frame by thread name (threads of one name summed)."""
        self._done.set()
        self._thread.join()
        self._sample()
        out: dict[str, float] = {}
        for key, value in self.seconds.items():
            name = key.split(":", 1)[1]
            out[name] = out.get(name, 0.0) + value
        return {k: round(1000 * v / max(frames, 1), 2) for k, v in sorted(out.items())}


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement in this (child) process and return its row."""
    variant, clip, out = spec["variant"], spec["clip"], spec["out"]
    started, cpu0 = time.perf_counter(), _cpu()
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
        started, cpu0 = time.perf_counter(), _cpu()
        sampler = (
            ThreadCPU() if spec.get("thread_cpu") and Path("/proc/self/task").exists() else None
        )
        summary = transcode(
            clip,
            out,
            process,
            fmt="composite",
            quality="high",
            preset="veryfast",
            progress=False,
            notice=lambda m: None,
        )
        frames = summary.frames
        if sampler is not None:
            extra["thread_cpu_ms"] = sampler.stop(frames)
        stats = summary.results[0].stats
        if stats is not None:
            extra.update(
                {
                    f"{k}_ms_per_frame": round(v / max(frames, 1), 2)
                    for k, v in stats.timings_ms.items()
                }
            )
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu0
    peak = usage.ru_maxrss / 1024  # KiB -> MiB on Linux
    return {
        "frames": frames,
        "seconds": round(seconds, 3),
        "fps": round(frames / seconds, 2),
        "cpu_ms_per_frame": round(1000 * cpu / max(frames, 1), 2),
        "peak_rss_mib": round(peak, 1),
        **extra,
    }


def precompile(root: Path) -> None:
    """Compile the checkout's package to bytecode, as ``pip install`` does, before timing.

    With ``PYTHONDONTWRITEBYTECODE`` set (some sandboxes and CI images do) nothing is ever
    cached, and every run would compile ~60 modules from source at start-up (0.1-0.15 s CPU
    measured here), which no installed copy pays; the bare transcode imports none of them.
    """
    import compileall

    compileall.compile_dir(str(root / "livematte"), quiet=1)


def whole(cmd: list[str], cwd: Path, frames: int) -> dict[str, Any]:
    """Run ``cmd`` as a process of its own; wall time from start to exit, its CPU time (all
    threads, user + system, from the kernel's accounting) and peak RSS."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the checkout in ``cwd`` is the one imported (``-m``)
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        last = (err.decode(errors="replace").strip().splitlines() or ["(no output)"])[-1]
        return {"error": last}
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "frames": frames,
        "seconds": round(seconds, 3),
        "fps": round(frames / seconds, 2),
        "cpu_ms_per_frame": round(1000 * cpu / max(frames, 1), 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
    }


def whole_command(variant: str, spec: dict[str, Any], root: Path) -> list[str]:
    """The command line of a --whole variant."""
    if variant == "bare":
        return [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    sets = [
        a
        for item in spec["set"]
        if not item.startswith("effects.background=")
        for a in ("--set", item)
    ]
    bg = [item.split("=", 1)[1] for item in spec["set"] if item.startswith("effects.background=")]
    return [
        sys.executable,
        "-m",
        "livematte",
        "video",
        spec["clip"],
        spec["out"],
        "--preset",
        spec["pipeline"],
        "--model",
        "embedded",
        "--quality",
        "high",
        "--encoder-preset",
        ENCODER["preset"],
        "--no-progress",
        *(["--bg", bg[-1]] if bg else []),
        *sets,
    ]


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
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
    parser.add_argument(
        "--set",
        action="append",
        default=["effects.background=blue"],
        metavar="KEY=VALUE",
        help="config override (repeatable)",
    )
    parser.add_argument(
        "--variants",
        default=None,
        help="comma list (default: bare,bare-bgr,identity,pipeline; with "
        "--whole: bare,cli and cli@base with --baseline-root)",
    )
    parser.add_argument(
        "--whole", action="store_true", help="time whole processes, start-up included (see above)"
    )
    parser.add_argument(
        "--baseline-root",
        type=Path,
        default=None,
        help="another checkout: adds cli@base, its livematte video (--whole)",
    )
    parser.add_argument(
        "--thread-cpu",
        action="store_true",
        help="in-process variants: also CPU ms per frame by thread (decode, x264 workers...)",
    )
    parser.add_argument("--repeats", type=int, default=1)
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
    if args.variants:
        variants = args.variants.split(",")
    elif args.whole:
        variants = ["bare", "cli"] + (["cli@base"] if args.baseline_root else [])
    else:
        variants = ["bare", "bare-bgr", "identity", "pipeline"]
    if "cli@base" in variants and args.baseline_root is None:
        parser.error("cli@base needs --baseline-root")
    needs_pipeline = {"pipeline", "cli"} & set(variants)
    if needs_pipeline and (reason := pipeline_available(args.pipeline, args.set)):
        print(f"skipping {sorted(needs_pipeline)}: cannot build preset {args.pipeline!r}: {reason}")
        variants = [v for v in variants if v not in needs_pipeline]
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.whole:
        for root in {ROOT, *([args.baseline_root] if args.baseline_root else [])}:
            precompile(root.resolve())
    runs: list[dict[str, Any]] = []
    for size_name in args.sizes.split(","):
        size = SIZES[size_name]
        clip = args.workdir / f"clip_{size_name}p_{args.frames}.mp4"
        origin = make_clip(clip, size, args.frames, source) if not clip.exists() else "cached"
        for rep in range(args.repeats):
            base_fps = None
            for variant in variants:
                spec = {
                    "variant": variant,
                    "clip": str(clip),
                    "pipeline": args.pipeline,
                    "set": args.set,
                    "out": str(args.workdir / f"out_{variant}.mp4"),
                    "thread_cpu": args.thread_cpu,
                }
                if args.whole:
                    root = args.baseline_root if variant == "cli@base" else ROOT
                    measured = whole(
                        whole_command(variant, spec, ROOT), root.resolve(), args.frames
                    )
                else:
                    measured = measure(spec)
                row = {
                    "size": f"{size_name}p",
                    "variant": variant,
                    "repeat": rep + 1,
                    "clip": origin,
                    **measured,
                }
                if variant == "bare" and "fps" in row:
                    base_fps, base_cpu = row["fps"], row["cpu_ms_per_frame"]
                if base_fps and "fps" in row:
                    row["ratio"] = round(row["fps"] / base_fps, 3)
                    # CPU per frame of bare over this one: what the fps ratio comes to when
                    # the cores are busy anyway (a shared machine), whatever the load does.
                    row["cpu_ratio"] = round(base_cpu / max(row["cpu_ms_per_frame"], 1e-9), 3)
                runs.append(row)
                print(_format(row), flush=True)
    rows = summarise(runs)
    print(
        f"\n{args.frames} frames per clip, {args.repeats} repeat(s), "
        f"{'whole processes' if args.whole else 'in-process (start-up excluded)'}:\n"
    )
    print(table(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "machine": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "frames": args.frames,
            "encoder": ENCODER,
            "pipeline": args.pipeline,
            "set": args.set,
            "whole": args.whole,
            "repeats": args.repeats,
            "baseline_root": str(args.baseline_root) if args.baseline_root else None,
        }
        args.json.write_text(
            json.dumps({"meta": meta, "rows": rows, "runs": runs}, indent=2) + "\n"
        )
        print(f"wrote {args.json}")
    return 0


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (size, variant): min / median over repeats, median of the paired ratios."""
    out = []
    keys = dict.fromkeys((r["size"], r["variant"]) for r in runs)
    for size, variant in keys:
        ok = [r for r in runs if (r["size"], r["variant"]) == (size, variant) and "fps" in r]
        if not ok:
            out.append({"size": size, "variant": variant, "runs": 0})
            continue

        def med(key: str, rows: list[dict[str, Any]] = ok) -> float:
            return round(statistics.median(r[key] for r in rows), 3)

        row = {
            "size": size,
            "variant": variant,
            "runs": len(ok),
            "frames": ok[0]["frames"],
            "seconds_min": min(r["seconds"] for r in ok),
            "seconds_median": med("seconds"),
            "fps_best": max(r["fps"] for r in ok),
            "fps_median": med("fps"),
            "cpu_ms_min": min(r["cpu_ms_per_frame"] for r in ok),
            "cpu_ms_median": med("cpu_ms_per_frame"),
            "peak_rss_mib": med("peak_rss_mib"),
        }
        paired = [r for r in ok if "ratio" in r]
        if paired:
            row["cpu_ratio_median"] = med("cpu_ratio", paired)
            row["ratio_median"] = med("ratio", paired)
            row["ratio_min"] = min(r["ratio"] for r in paired)
            row["ratio_max"] = max(r["ratio"] for r in paired)
        stages = sorted(
            {k for r in ok for k in r if k.endswith("_ms_per_frame")} - {"cpu_ms_per_frame"}
        )
        row.update({k: med(k, [r for r in ok if k in r]) for k in stages})
        out.append(row)
    return out


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of ``summarise``'s rows."""
    lines = [
        "| size | variant | runs | wall s min / median | fps best / median | "
        "CPU ms/frame min / median | fps ratio vs bare (median of pairs; min-max) | "
        "CPU ratio (bare / this) | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if not r["runs"]:
            lines.append(f"| {r['size']} | {r['variant']} | 0 | failed | | | | | |")
            continue
        ratio = (
            f"**{r['ratio_median']:.2f}x** ({r['ratio_min']:.2f}-{r['ratio_max']:.2f})"
            if "ratio_median" in r
            else ""
        )
        cpu_ratio = f"{r['cpu_ratio_median']:.2f}x" if "cpu_ratio_median" in r else ""
        lines.append(
            f"| {r['size']} | {r['variant']} | {r['runs']} | {r['seconds_min']:.2f} / "
            f"{r['seconds_median']:.2f} | {r['fps_best']:.1f} / {r['fps_median']:.1f} | "
            f"{r['cpu_ms_min']:.1f} / {r['cpu_ms_median']:.1f} | {ratio} | {cpu_ratio} | "
            f"{r['peak_rss_mib']:.0f} |"
        )
    return "\n".join(lines)


def _format(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"{row['size']:>6} {row['variant']:<10} failed: {row['error']}"
    return (
        f"{row['size']:>6} {row['variant']:<10} #{row['repeat']} {row['fps']:7.1f} fps  "
        f"ratio {row.get('ratio', float('nan')):4.2f}  CPU {row['cpu_ms_per_frame']} ms/frame"
        f"  peak RSS {row['peak_rss_mib']:7.1f} MiB"
        + "".join(
            f"  {k.split('_')[0]} {v} ms"
            for k, v in row.items()
            if k.endswith("_ms_per_frame") and k != "cpu_ms_per_frame"
        )
        + "".join(
            f"\n        thread {k}: {v} ms/frame" for k, v in row.get("thread_cpu_ms", {}).items()
        )
    )


if __name__ == "__main__":
    sys.exit(main())
