#!/usr/bin/env python3
"""Speed of the RVM network as livematte runs it, old conversion against new, in one run.

Both ONNX files are converted here from the same TF.js export (``rvm.json`` + ``rvm.bin``):

  plain    ``convert_rvm(..., optimize=False)``: the op-by-op graph, byte for byte what the
           converter wrote before the peephole rewrites (its sha256 is printed; on
           2026-12-03 it was c6513314..., the conversion ``models pull`` made until then)
  new      ``convert_rvm(...)``: with ``livematte.models.tfjs.peephole``

``--baseline FILE`` replaces "plain" by any ONNX file with RVM's signature (an old cache).
``--variants`` adds ``fp16`` (float16 weight storage, ``fp16_weights=True``) and ``int8``
(ONNX Runtime's static QDQ quantisation of every Conv, int8 per-channel weights, uint8
activations calibrated on --calibration p3m photos), both from the new graph.
Each model runs through ``livematte.models.session.create_session`` (the session options
livematte uses) on a real 1280x720 frame (../shared/data/video, else a synthetic one) scaled
to RVM's working size at each ``--ratios`` (sides multiples of 16, as the adapter rounds),
recurrently (the state carried over, as in a video).  The variants take turns, one inference
each, so a shared machine's load hits them alike; reported per variant: min and median wall
ms and median process CPU ms per frame.  Also: Transpose nodes, nodes, and the layout
reorders ONNX Runtime inserts (its optimised graph), the max alpha difference between the
variants on the same frames, and on the p3m portraits (../shared/data/matting) each variant's
alpha against plain's: mean |difference| and the share of pixels more than 0.1 apart.

    python scripts/bench_rvm.py                       # ratios 0.25, 0.5; threads 1, 2
    python scripts/bench_rvm.py --runs 40 --json bench-results/rvm.json
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from timing import summarise  # noqa: E402

SHARED = ROOT.parent / "shared"
RVM_JSON = SHARED / "models" / "human-models-3.0.4" / "rvm.json"
VIDEO = SHARED / "data" / "video" / "pixabay_thumbs_up.mp4"
P3M = SHARED / "data" / "matting" / "p3m_pseudo_gt"
#: Long side of a p3m portrait in the network for the alpha comparison (about RVM's photo size).
PHOTO_SIDE = 384
FRAME = (1280, 720)
SPIN_OFF = {"session.intra_op.allow_spinning": "0"}


def frame_720p() -> tuple[np.ndarray, str]:
    """A 1280x720 BGR frame: the 30th of the shared clip, else a synthetic one."""
    import cv2

    if VIDEO.is_file():
        import av

        with av.open(str(VIDEO)) as container:
            for i, f in enumerate(container.decode(video=0)):
                if i == 30:
                    image = f.to_ndarray(format="bgr24")
                    return cv2.resize(image, FRAME, interpolation=cv2.INTER_AREA), VIDEO.name
    from livematte.io.synthetic import SyntheticSource

    return next(iter(SyntheticSource(*FRAME, 1, 25))).image, "synthetic"


def graph_counts(path: Path) -> dict[str, int]:
    """Transposes and nodes of the file; reorders in ONNX Runtime's optimised graph."""
    import onnx
    import onnxruntime as ort

    nodes = onnx.load(str(path)).graph.node
    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.optimized_model_filepath = str(Path(tmp) / "optimised.onnx")
        options.log_severity_level = 3
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        optimised = onnx.load(options.optimized_model_filepath).graph.node
    ops = collections.Counter(n.op_type for n in optimised)
    return {
        "transposes": sum(n.op_type == "Transpose" for n in nodes),
        "nodes": len(nodes),
        "ort_nodes": len(optimised),
        "ort_reorders": ops["ReorderInput"] + ops["ReorderOutput"],
    }


class Variant:
    """One model file under one session setting, with its own recurrent state."""

    def __init__(self, name: str, path: Path, threads: int, config: dict | None) -> None:
        from livematte.models.session import create_session

        self.name = name
        self.session = create_session(path, ("cpu",), threads, config=config)
        self.state: list[np.ndarray] | None = None
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def run(self, src: np.ndarray) -> np.ndarray:
        state = self.state or [np.zeros((1, c, 1, 1), np.float32) for c in (16, 20, 40, 64)]
        feed = {"src": src, **{f"r{i + 1}i": s for i, s in enumerate(state)}}
        out = self.session.run(feed)
        self.state = [out[f"r{i}o"] for i in range(1, 5)]
        return out["pha"]

    def timed(self, src: np.ndarray) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        self.run(src)
        self.wall.append((time.perf_counter() - wall) * 1000.0)
        self.cpu.append((time.process_time() - cpu) * 1000.0)


def working_input(image: np.ndarray, ratio: float) -> np.ndarray:
    """The frame at RVM's working size for ``ratio`` (the adapter's rounding), NCHW 0..1."""
    import cv2

    from livematte.stages.matting_adapters import RobustVideoMattingAdapter

    m = RobustVideoMattingAdapter.MULTIPLE
    size = (max(m, round(FRAME[0] * ratio / m) * m), max(m, round(FRAME[1] * ratio / m) * m))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB).transpose(2, 0, 1)[None]
    return np.ascontiguousarray(rgb, np.float32) / np.float32(255.0)


def photo_input(path: Path) -> np.ndarray:
    """A p3m portrait at PHOTO_SIDE, sides multiples of 16, NCHW 0..1."""
    import cv2

    image = cv2.imread(str(path))
    h, w = image.shape[:2]
    s = PHOTO_SIDE / max(h, w)
    size = (max(16, round(w * s / 16) * 16), max(16, round(h * s / 16) * 16))
    rgb = cv2.cvtColor(cv2.resize(image, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], np.float32) / np.float32(255.0)


def quantize_int8(source: Path, target: Path, photos: list[Path]) -> None:
    """Static QDQ int8 of every Conv, calibrated on ``photos`` (two recurrent steps each)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            zeros = {f"r{i + 1}i": np.zeros((1, c, 1, 1), np.float32)
                     for i, c in enumerate((16, 20, 40, 64))}
            self.feeds = iter([{"src": photo_input(p), **zeros} for p in photos])

        def get_next(self) -> dict | None:
            return next(self.feeds, None)

    quantize_static(str(source), str(target), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"])


def alpha_change(models: dict[str, Path], photos: list[Path]) -> dict[str, dict]:
    """Each model's alpha on the photos (2nd recurrent step) against the first model's."""
    alphas: dict[str, list[np.ndarray]] = {}
    for name, path in models.items():
        variant = Variant(name, path, 1, None)
        alphas[name] = []
        for photo in photos:
            src, variant.state = photo_input(photo), None
            variant.run(src)
            alphas[name].append(variant.run(src))
    first = alphas[next(iter(models))]
    out = {}
    for name, found in alphas.items():
        diffs = [np.abs(a - b) for a, b in zip(found, first, strict=True)]
        out[name] = {"photos": len(photos),
                     "mean_abs": float(np.mean([d.mean() for d in diffs])),
                     "share_over_0.1": float(np.mean([(d > 0.1).mean() for d in diffs])),
                     "max_abs": float(max(d.max() for d in diffs))}
    return out


def bench(models: dict[str, Path], image: np.ndarray, args: argparse.Namespace) -> list[dict]:
    rows = []
    # A bare path has no spec: ONNX Runtime's default, threads spinning (what RVM ran with
    # before); "no spin" is what create_session now does for RVM (ModelSpec.spin).
    settings = [(t, None, "spinning" if t > 1 else "") for t in args.threads]
    if args.spin_off:
        settings += [(t, SPIN_OFF, "no spin") for t in args.threads if t > 1]
    for ratio in args.ratios:
        src = working_input(image, ratio)
        for threads, config, note in settings:
            variants = [Variant(n, p, threads, config) for n, p in models.items()]
            alphas = {}
            for v in variants:
                for _ in range(args.warmup):
                    alphas[v.name] = v.run(src)
            for _ in range(args.runs):
                for v in variants:  # taking turns: the machine's load hits each alike
                    v.timed(src)
            base = alphas[variants[0].name]
            for v in variants:
                stats = summarise(v.wall)
                rows.append({
                    "ratio": ratio, "input": f"{src.shape[3]}x{src.shape[2]}",
                    "threads": threads, "setting": note or "-", "model": v.name,
                    "min_ms": stats["min_ms"], "median_ms": stats["median_ms"],
                    "cpu_ms": round(float(np.median(v.cpu)), 2),
                    "alpha_diff_vs_first": float(np.abs(alphas[v.name] - base).max()),
                })
    return rows


def print_tables(rows: list[dict], counts: dict[str, dict], shas: dict[str, str]) -> None:
    print("| model | sha256 | Transpose nodes | nodes | ORT nodes | ORT layout reorders |")
    print("|---|---|---|---|---|---|")
    for name, c in counts.items():
        print(f"| {name} | {shas[name][:12]} | {c['transposes']} | {c['nodes']} | "
              f"{c['ort_nodes']} | {c['ort_reorders']} |")
    print()
    print("| ratio | input | threads | setting | model | min ms | median ms | CPU ms | "
          "vs first (median CPU) | max alpha diff |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    first: dict[tuple, float] = {}
    for r in rows:
        key = (r["ratio"], r["threads"], r["setting"])
        first.setdefault(key, r["cpu_ms"])
        ratio = r["cpu_ms"] / first[key] if first[key] else float("nan")
        print(f"| {r['ratio']} | {r['input']} | {r['threads']} | {r['setting']} | {r['model']} "
              f"| {r['min_ms']:.1f} | {r['median_ms']:.1f} | {r['cpu_ms']:.1f} | {ratio:.2f}x "
              f"| {r['alpha_diff_vs_first']:.1e} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rvm-json", type=Path, default=RVM_JSON)
    parser.add_argument("--baseline", type=Path, help="ONNX file to compare instead of plain")
    parser.add_argument("--ratios", type=float, nargs="+", default=[0.25, 0.5])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--spin-off", action="store_true",
                        help="also each multi-thread setting with thread spinning off")
    parser.add_argument("--variants", action="store_true",
                        help="also fp16 weight storage and int8 (static QDQ) conversions")
    parser.add_argument("--calibration", type=int, default=6,
                        help="p3m photos calibrating the int8 variant")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if not args.rvm_json.is_file():
        print(f"bench_rvm: error: {args.rvm_json} not found (the TF.js export of RVM)",
              file=sys.stderr)
        return 2

    from livematte.models.tfjs import CONVERTER_VERSION, convert_rvm

    with tempfile.TemporaryDirectory(prefix="bench-rvm-") as tmp:
        models: dict[str, Path] = {}
        if args.baseline is not None:
            if not args.baseline.is_file():
                print(f"bench_rvm: error: {args.baseline} not found", file=sys.stderr)
                return 2
            models["baseline"] = args.baseline
        else:
            models["plain"] = Path(tmp) / "plain.onnx"
            models["plain"].write_bytes(convert_rvm(args.rvm_json, optimize=False))
        models["new"] = Path(tmp) / "new.onnx"
        started = time.perf_counter()
        models["new"].write_bytes(convert_rvm(args.rvm_json))
        convert_s = time.perf_counter() - started
        photos = sorted(P3M.glob("*.jpg"))
        if args.variants:
            models["fp16"] = Path(tmp) / "fp16.onnx"
            models["fp16"].write_bytes(convert_rvm(args.rvm_json, fp16_weights=True))
            if photos:
                models["int8"] = Path(tmp) / "int8.onnx"
                quantize_int8(models["new"], models["int8"], photos[: args.calibration])
        shas = {n: hashlib.sha256(p.read_bytes()).hexdigest() for n, p in models.items()}
        counts = {n: graph_counts(p) for n, p in models.items()}
        image, origin = frame_720p()
        rows = bench(models, image, args)
        quality = alpha_change(models, photos) if photos else {}
    print(f"RVM MobileNetV3 from {args.rvm_json.name}, frame: {origin} at {FRAME[0]}x{FRAME[1]}, "
          f"converter version {CONVERTER_VERSION} ({convert_s:.1f} s), {args.runs} runs")
    print()
    print_tables(rows, counts, shas)
    if quality:
        print()
        print(f"Alpha against {next(iter(models))} on {len(photos)} p3m portraits "
              f"(long side {PHOTO_SIDE}, 2nd recurrent step):")
        print()
        print("| model | mean abs diff | pixels > 0.1 apart | max abs diff |")
        print("|---|---|---|---|")
        for name, q in quality.items():
            print(f"| {name} | {q['mean_abs']:.2e} | {100 * q['share_over_0.1']:.2f}% | "
                  f"{q['max_abs']:.2e} |")
    if args.json:
        import onnxruntime

        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "machine": {"python": platform.python_version(), "machine": platform.machine(),
                        "onnxruntime": onnxruntime.__version__},
            "frame": origin, "converter_version": CONVERTER_VERSION, "runs": args.runs,
            "models": {n: {"sha256": shas[n], **counts[n]} for n in models},
            "rows": rows, "alpha_change_p3m": quality,
        }, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
