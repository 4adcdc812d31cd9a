#!/usr/bin/env python3
"""Parity and speed of livematte's TF.js -> ONNX converter against TensorFlow's own outputs.

Converts RVM (low-res branch, and the full branch at ratio 0.25 with RVM's refiner) and MoveNet
MultiPose from ../shared/models/human-models-3.0.4, runs them in ONNX Runtime and compares with
../shared/models/reference/*.npz (TensorFlow 2.21 executing the same graphs).  Then times one
inference per model at one thread (min, median, CPU time), float32 weights side by side with
float16 weight storage, and counts the Transpose nodes of each converted graph::

    python scripts/check_tfjs_parity.py [--shared ../shared/models] [--runs 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from livematte.models.tfjs import convert_graph_model, convert_rvm  # noqa: E402

STATES = [f"r{i}i" for i in range(1, 5)]


def _session(model: bytes):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _rvm_feed(src_nchw: np.ndarray, state: list[np.ndarray]) -> dict[str, np.ndarray]:
    return {"src": src_nchw, **dict(zip(STATES, state, strict=True))}


def _nchw(nhwc_u8: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray((nhwc_u8.astype(np.float32) / 255.0).transpose(0, 3, 1, 2))


def rvm_parity(models: Path, rows: list[dict]) -> tuple[bytes, bytes]:
    json_path = models / "human-models-3.0.4" / "rvm.json"
    t0 = time.perf_counter()
    lowres = convert_rvm(json_path)
    seconds = time.perf_counter() - t0
    session = _session(lowres)
    ref = np.load(models / "reference" / "rvm_lowres_tf_reference.npz")
    for k in range(3):
        src = _nchw(ref[f"lowres{k}_src_u8"])
        state = [np.zeros((1, 1, 1, 1), np.float32)] * 4
        for step in range(2):
            fgr, pha, *state = session.run(None, _rvm_feed(src, state))
            want_fgr = ref[f"lowres{k}_step{step}_fgr_f16"].astype(np.float32)
            want_pha = ref[f"lowres{k}_step{step}_pha"]
            rows.append({
                "model": "rvm low-res", "case": f"photo {k} step {step} {src.shape[2]}x"
                f"{src.shape[3]}",
                "alpha": float(np.abs(pha.transpose(0, 2, 3, 1) - want_pha).max()),
                "fgr": float(np.abs(fgr.transpose(0, 2, 3, 1) - want_fgr).max()),
                "convert_s": round(seconds, 2),
            })
    shapes = {s: (None,) * 4 for s in STATES}
    full = convert_graph_model(json_path, bind={"downsample_ratio": 0.25}, input_shapes=shapes)
    ref = np.load(models / "reference" / "rvm_full_tf_reference.npz")
    zeros = [np.zeros((1, 1, 1, 1), np.float32)] * 4
    fgr, pha, *_ = _session(full).run(None, _rvm_feed(_nchw(ref["full_src_u8"]), zeros))
    rows.append({
        "model": "rvm full (0.25 + refiner)", "case": f"golden portrait {pha.shape[2]}x"
        f"{pha.shape[3]}",
        "alpha": float(np.abs(pha.transpose(0, 2, 3, 1) - ref["full_pha"]).max()),
        "fgr": float(np.abs(fgr.transpose(0, 2, 3, 1) - ref["full_fgr_f16"].astype(np.float32))
                     .max()),
    })
    return lowres, convert_rvm(json_path, fp16_weights=True)


def movenet_parity(models: Path, rows: list[dict]) -> tuple[bytes, bytes]:
    json_path = models / "human-models-3.0.4" / "movenet-multipose.json"
    variants = [convert_graph_model(json_path, layout="nhwc", fp16_weights=fp16)
                for fp16 in (False, True)]
    embedded = (REPO / "livematte" / "models" / "data" / "movenet_multipose.onnx").read_bytes()
    ref = np.load(models / "reference" / "movenet_multipose_tf_reference.npz")
    session = _session(embedded)
    for k in range(3):
        (out,) = session.run(None, {"input": ref[f"movenet{k}_input"]})
        diff = np.abs(out - ref[f"movenet{k}_output"])[0]
        keypoints = diff[:, :51].reshape(6, 17, 3)
        rows.append({
            "model": "movenet (embedded)", "case": f"photo {k} 256x160",
            "keypoint_yx": float(keypoints[..., :2].max()),
            "keypoint_score": float(keypoints[..., 2].max()),
            "box": float(diff[:, 51:].max()),
            "same_bytes_as_fresh_fp16": embedded == variants[1],
        })
    return variants[0], variants[1]


def _time(session, feed: dict, runs: int, recurrent: bool) -> dict:
    state = [np.zeros((1, 1, 1, 1), np.float32)] * 4
    walls, cpus = [], []
    for i in range(runs + 2):
        if recurrent:
            feed = {**feed, **dict(zip(STATES, state, strict=True))}
        w0, c0 = time.perf_counter(), time.process_time()
        outs = session.run(None, feed)
        if i >= 2:  # two warm-up runs
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
        if recurrent:
            state = outs[2:]
    return {"min_ms": 1000 * min(walls), "median_ms": 1000 * float(np.median(walls)),
            "cpu_ms": 1000 * float(np.median(cpus))}


def speed(rvm: tuple[bytes, bytes], movenet: tuple[bytes, bytes], runs: int) -> list[dict]:
    import onnx

    rows = []
    rng = np.random.default_rng(0)
    cases = [("rvm low-res", rvm, (288, 512)), ("rvm low-res", rvm, (180, 320)),
             ("movenet", movenet, (160, 256))]
    for name, variants, (h, w) in cases:
        for label, model in zip(("fp32", "fp16 storage"), variants, strict=True):
            graph = onnx.load_from_string(model).graph
            session = _session(model)
            if name == "movenet":
                feed = {"input": rng.integers(0, 256, (1, h, w, 3), np.int32)}
            else:
                feed = {"src": rng.random((1, 3, h, w), np.float32)}
            rows.append({"model": name, "weights": label, "input": f"{w}x{h}",
                         "MB": round(len(model) / 1e6, 1),
                         "transposes": sum(n.op_type == "Transpose" for n in graph.node),
                         "nodes": len(graph.node),
                         **_time(session, feed, runs, name != "movenet")})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "models")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", type=Path, help="also write the tables as JSON")
    args = parser.parse_args(argv)
    if not (args.shared / "reference").is_dir():
        print(f"check_tfjs_parity: error: {args.shared}/reference not found", file=sys.stderr)
        return 2
    parity: list[dict] = []
    rvm = rvm_parity(args.shared, parity)
    movenet = movenet_parity(args.shared, parity)
    print("| model | case | max abs diff vs TensorFlow |")
    print("|---|---|---|")
    for row in parity:
        diffs = ", ".join(f"{k} {v:.2e}" for k, v in row.items()
                          if isinstance(v, float) and k != "convert_s")
        print(f"| {row['model']} | {row['case']} | {diffs} |")
    timing = speed(rvm, movenet, args.runs)
    print("\n| model | weights | input WxH | MB | Transpose nodes | nodes | min ms | median ms "
          "| CPU ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in timing:
        print(f"| {r['model']} | {r['weights']} | {r['input']} | {r['MB']} | {r['transposes']} | "
              f"{r['nodes']} | {r['min_ms']:.1f} | {r['median_ms']:.1f} | {r['cpu_ms']:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"parity": parity, "speed": timing}, indent=2))
    worst = max(max(r.get("alpha", 0), r.get("fgr", 0) - 2.5e-4) for r in parity)
    return 0 if worst <= 3e-3 else 1


if __name__ == "__main__":
    raise SystemExit(main())
