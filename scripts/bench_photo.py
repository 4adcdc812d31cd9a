"""Benchmark of the PHOTO path (issue 16): ``livematte image`` cold and warm, 1080p and 12 MP.

Rows, for this checkout and (``--baseline ROOT``) another one side by side in the same run:

* ``cold``: the whole ``python -m livematte image IN OUT --preset P`` process, once per repeat,
  with a fresh empty ``LIVEMATTE_CACHE`` (embedded models only: no RVM is pulled), for the
  ``photo`` preset and the ``live`` preset on the same photo; wall and CPU (user + system of
  the child), min and median, and the photo/live ratio of the medians (floor: <= 2.5x wall).
* ``warm``: the ``photo`` preset's pipeline built once in a fresh process, then the photo
  processed ``--repeats`` times: wall and process CPU per photo (min, median) and the median
  of each stage's ``frame.timings`` (floor: <= 0.5 s).
* ``12mp``: a 4000x3000 photo (a p3m portrait scaled up), cold process and warm (floor: <= 4 s).

``--no-spin`` adds rows for this checkout with ONNX Runtime's intra-op threads not spin-waiting
(the setting patched into ``InferenceSession`` in the child processes, livematte unchanged).
``--blas`` measures this checkout twice instead, with ``OPENBLAS_NUM_THREADS`` set in the child
processes to 1 and to one per core (OpenBLAS's own default), and prints their ratio.  Cold
processes are interleaved across rows (one of each per repeat), so a load change hits all rows;
the load average is printed before and after.

The machine is shared: CPU time is the steady figure, wall moves with the load.

Usage::

    python scripts/bench_photo.py --json bench-results/photo.json
    python scripts/bench_photo.py --baseline /path/to/other/checkout --repeats 5 --no-spin
    python scripts/bench_photo.py --blas --repeats 7 --cold-repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PORTRAIT = DATA / "matting" / "p3m_pseudo_gt" / "p_09ba26b4.jpg"  # 1920x1080
FLOORS = {"cold_ratio": 2.5, "warm_s": 0.5, "12mp_s": 4.0}


def _git(root: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def _env(root: Path, cache: str, no_spin: bool = False, blas: str = "") -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(root), LIVEMATTE_CACHE=cache)
    env.pop("PYTHONSTARTUP", None)
    env[NO_SPIN] = "1" if no_spin else ""
    if blas:
        env["OPENBLAS_NUM_THREADS"] = blas
    return env


#: Environment flag of the child processes: ONNX Runtime's intra-op threads do not spin-wait
#: (``session.intra_op.allow_spinning = 0``), set here by patching ``InferenceSession`` so the
#: proposed setting is measured without changing livematte (``--no-spin`` rows).
NO_SPIN = "LIVEMATTE_BENCH_NO_SPIN"


def _patch_spinning() -> None:
    import onnxruntime as ort

    init = ort.InferenceSession.__init__

    def no_spin(self, path, sess_options=None, **kwargs):
        sess_options = sess_options or ort.SessionOptions()
        sess_options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        init(self, path, sess_options=sess_options, **kwargs)

    ort.InferenceSession.__init__ = no_spin


def cold(
    root: Path, image: Path, preset: str, out_dir: Path, no_spin: bool = False, blas: str = ""
) -> dict[str, float]:
    """One whole ``livematte image`` process: wall and CPU seconds."""
    with tempfile.TemporaryDirectory(prefix="lm-bench-cache-") as cache:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        # --cli: this script runs ``livematte`` itself (to apply --no-spin when asked)
        proc = subprocess.run(
            [sys.executable, __file__, "--cli", "image", str(image),
             str(out_dir / f"{preset}.png"), "--preset", preset],
            env=_env(root, cache, no_spin, blas), cwd=root, capture_output=True, text=True,
        )  # fmt: skip
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"livematte image failed ({root}): {proc.stderr.strip()[-400:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu}


def warm_child(spec: dict[str, Any]) -> dict[str, Any]:
    """In a fresh process: build the pipeline once, process the photo ``repeats`` times."""
    import cv2

    from livematte.api import build_pipeline
    from livematte.config import load_config
    from livematte.frame import Frame

    image = cv2.imread(spec["image"])
    pipeline = build_pipeline(load_config(spec["preset"]))
    first = time.perf_counter()
    pipeline.process(Frame(image=image))  # first call: lazy imports, sessions
    first = time.perf_counter() - first
    walls, cpus, stages = [], [], {}
    for _ in range(spec["repeats"]):
        w0, c0 = time.perf_counter(), time.process_time()
        frame = pipeline.process(Frame(image=image))
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
        for name, ms in frame.timings.items():
            stages.setdefault(name, []).append(ms)
    pipeline.close()
    return {
        "first_s": first,
        "wall_s": walls,
        "cpu_s": cpus,
        "stages_ms": {k: statistics.median(v) for k, v in stages.items()},
    }


def warm(
    root: Path, image: Path, preset: str, repeats: int, no_spin: bool = False, blas: str = ""
) -> dict[str, Any]:
    spec = {"image": str(image), "preset": preset, "repeats": repeats}
    with tempfile.TemporaryDirectory(prefix="lm-bench-cache-") as cache:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps(spec)],
            env=_env(root, cache, no_spin, blas), cwd=root, capture_output=True, text=True,
        )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"warm run failed ({root}): {proc.stderr.strip()[-400:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def make_12mp(target: Path) -> Path:
    """A 4000x3000 photo: a p3m portrait cropped to 4:3 and scaled up."""
    import cv2

    image = cv2.imread(str(DATA / "matting" / "p3m_pseudo_gt" / "p_0865636e.jpg"))
    h, w = image.shape[:2]
    cw = min(w, round(h * 4 / 3))
    x0 = (w - cw) // 2
    big = cv2.resize(image[:, x0 : x0 + cw], (4000, 3000), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(target), big, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return target


def _stats(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values)}


def run_cold(roots: list[tuple], photo_12mp: Path, args, out_dir: Path) -> list[dict]:
    """Cold processes of every row, interleaved (one of each per repeat)."""
    runs = [{"photo": [], "live": [], "12mp": []} for _ in roots]
    for _ in range(args.cold_repeats):
        for (_, root, no_spin, blas), run in zip(roots, runs, strict=True):
            run["live"].append(cold(root, PORTRAIT, "live", out_dir, no_spin, blas))
            run["photo"].append(cold(root, PORTRAIT, "photo", out_dir, no_spin, blas))
            if not args.skip_12mp:
                run["12mp"].append(cold(root, photo_12mp, "photo", out_dir, no_spin, blas))
    return runs


def run_root(
    label: str, root: Path, no_spin: bool, blas: str, runs: dict, photo_12mp: Path, args
) -> dict[str, Any]:
    result: dict[str, Any] = {"label": label, "root": str(root), "commit": _git(root)}
    for name, items in runs.items():
        if items:
            result[f"cold_{name}"] = {
                key: _stats([item[key] for item in items]) for key in ("wall_s", "cpu_s")
            }
            result[f"cold_{name}"]["runs"] = items
    cp, cl = result["cold_photo"], result["cold_live"]
    result["cold_ratio"] = {
        key: cp[key]["median"] / cl[key]["median"] for key in ("wall_s", "cpu_s")
    }
    w = warm(root, PORTRAIT, "photo", args.repeats, no_spin, blas)
    result["warm"] = {
        "wall_s": _stats(w["wall_s"]), "cpu_s": _stats(w["cpu_s"]),
        "first_s": w["first_s"], "stages_ms": w["stages_ms"],
    }  # fmt: skip
    if not args.skip_12mp:
        w = warm(root, photo_12mp, "photo", max(1, args.repeats // 2), no_spin, blas)
        result["warm_12mp"] = {
            "wall_s": _stats(w["wall_s"]), "cpu_s": _stats(w["cpu_s"]),
            "stages_ms": w["stages_ms"],
        }  # fmt: skip
    return result


WALL_CPU = ("wall_s", "cpu_s")


def blas_ratios(one: dict[str, Any], many: dict[str, Any]) -> str:
    """The one-thread row over the one-per-core row, wall / CPU: cold processes as the median
    of the ratios of each repeat's pair (run one after the other), warm as the ratio of the
    medians (each row's warm repeats run in one process)."""
    cells = []
    for key in ("cold_photo", "cold_12mp", "warm", "warm_12mp"):
        if key not in one:
            continue
        if "runs" in one[key]:
            pairs = list(zip(one[key]["runs"], many[key]["runs"], strict=True))
            wall, cpu = (statistics.median(a[k] / b[k] for a, b in pairs) for k in WALL_CPU)
        else:
            wall, cpu = (one[key][k]["median"] / many[key][k]["median"] for k in WALL_CPU)
        cells.append(f"{key} {wall:.2f}x / {cpu:.2f}x")
    return ", ".join(cells)


def _row(r: dict[str, Any]) -> list[str]:
    def pair(d: dict[str, dict[str, float]]) -> str:
        return (
            f"{d['wall_s']['median']:.2f} / {d['cpu_s']['median']:.2f} "
            f"(min {d['wall_s']['min']:.2f} / {d['cpu_s']['min']:.2f})"
        )

    cells = [
        f"{r['label']} ({r['commit']})",
        pair(r["cold_live"]),
        pair(r["cold_photo"]),
        f"{r['cold_ratio']['wall_s']:.2f}x / {r['cold_ratio']['cpu_s']:.2f}x",
        pair(r["warm"]),
    ]
    cells.append(pair(r["cold_12mp"]) if "cold_12mp" in r else "-")
    cells.append(pair(r["warm_12mp"]) if "warm_12mp" in r else "-")
    return cells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, help="another checkout, measured alongside")
    parser.add_argument("--baseline-commit", help="its commit, if it is not a git checkout")
    parser.add_argument("--repeats", type=int, default=7, help="warm repeats (default 7)")
    parser.add_argument("--cold-repeats", type=int, default=3, help="cold processes per row")
    parser.add_argument("--skip-12mp", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--no-spin", action="store_true",
        help="add rows with ONNX Runtime's thread spin-waiting off (a proposed setting)",
    )  # fmt: skip
    parser.add_argument(
        "--blas", action="store_true",
        help="this checkout with OPENBLAS_NUM_THREADS=1 and =one per core, side by side",
    )  # fmt: skip
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--cli", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    # Child processes: PYTHONPATH (set by _env) says whose code runs.
    if os.environ.get(NO_SPIN) and (args.child or args.cli is not None):
        _patch_spinning()
    if args.cli is not None:
        from livematte.cli import main as livematte_main

        return livematte_main(args.cli)
    if args.child:
        print(json.dumps(warm_child(json.loads(args.child))))
        return 0
    if not PORTRAIT.is_file():
        print(f"bench_photo: needs {PORTRAIT}", file=sys.stderr)
        return 2
    cores = str(os.cpu_count() or 1)
    if args.blas:
        roots = [("this, 1 BLAS thread", ROOT, False, "1"),
                 (f"this, {cores} BLAS threads", ROOT, False, cores)]  # fmt: skip
    else:
        roots = [("this", ROOT, False, "")]
    if args.no_spin:
        roots.append(("this, no spin", ROOT, True, ""))
    if args.baseline:
        roots.append(("baseline", args.baseline.resolve(), False, ""))
    load = [os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="lm-bench-photo-") as tmp:
        out_dir = Path(tmp)
        photo_12mp = make_12mp(out_dir / "photo_12mp.jpg")
        runs = run_cold(roots, photo_12mp, args, out_dir)
        rows = [
            run_root(*root, run, photo_12mp, args) for root, run in zip(roots, runs, strict=True)
        ]
    load.append(os.getloadavg())
    for row in rows:
        if row["label"] == "baseline" and args.baseline_commit:
            row["commit"] = args.baseline_commit
    head = [
        "code", "cold live: wall / CPU s", "cold photo", "photo/live (wall / CPU)",
        "warm photo 1080p", "cold 12 MP", "warm 12 MP",
    ]  # fmt: skip
    print(f"`livematte image` on {PORTRAIT.name} (1920x1080); medians (min); seconds\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(_row(r)) + " |")
    if args.blas:
        ratios = blas_ratios(*rows[:2])
        print(f"\n1 / {cores} BLAS threads (wall / CPU; cold: median of paired ratios): {ratios}")
    print("load average (1, 5, 15 min): before " + ", after ".join(
        " ".join(f"{x:.2f}" for x in avg) for avg in load
    ))  # fmt: skip
    print("\nwarm photo stages, median ms:")
    for r in rows:
        stages = ", ".join(f"{k} {v:.0f}" for k, v in r["warm"]["stages_ms"].items())
        print(f"- {r['label']}: {stages}")
        if "warm_12mp" in r:
            stages = ", ".join(f"{k} {v:.0f}" for k, v in r["warm_12mp"]["stages_ms"].items())
            print(f"- {r['label']} 12 MP: {stages}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        meta = {"floors": FLOORS, "image": str(PORTRAIT), "cpus": os.cpu_count(), "load": load}
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
