#!/usr/bin/env python3
"""CPU ms of the people-finding models alone, one core, under ONNX Runtime session variants.

Models: the BlazePose landmark trunk (``pose_landmark_full``), its split-off mask decoder
(``pose_landmark_full_mask``, fed the trunk's features), MoveNet MultiPose at a given input
size, and with ``--whole PATH`` an unsplit landmark model for comparison (e.g. main's file:
``git show cd7497f:livematte/models/data/pose_landmark_full.onnx > /tmp/whole.onnx``).
Variants: ours (the spec's level: ALL, EXTENDED for the mask decoder; sequential, one
intra-op thread, no spinning), spinning, level ALL, level EXTENDED, parallel execution mode,
denormals as zero.  The runs of all variants alternate, so
a loaded machine disturbs them alike; prints min and median CPU ms (``time.process_time``).

Usage::

    python scripts/bench_pose_models.py --runs 20 --movenet 224x384 --whole /tmp/whole.onnx
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from livematte.models.registry import get_spec, model_path  # noqa: E402
from livematte.models.session import import_onnxruntime  # noqa: E402

ort = import_onnxruntime()
LEVEL = ort.GraphOptimizationLevel
VARIANTS: dict[str, dict] = {
    "ours": {},
    "spinning": {"spin": "1"},
    "level ALL": {"level": LEVEL.ORT_ENABLE_ALL},
    "level EXTENDED": {"level": LEVEL.ORT_ENABLE_EXTENDED},
    "parallel mode": {"mode": ort.ExecutionMode.ORT_PARALLEL},
    "denormals as zero": {"extra": {"session.set_denormal_as_zero": "1"}},
}


def session(path: Path, level=LEVEL.ORT_ENABLE_ALL, spin="0", mode=None, extra=None):
    """A one-thread CPU session with these options."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = level
    options.execution_mode = mode if mode is not None else ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", spin)
    for key, value in (extra or {}).items():
        options.add_session_config_entry(key, value)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--movenet", default="224x384", help="MoveNet input HxW (x32)")
    parser.add_argument("--whole", type=Path, help="an unsplit landmark model to compare")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    crop = rng.random((1, 256, 256, 3), dtype=np.float32)
    h, w = (int(v) for v in args.movenet.split("x"))
    image = (rng.random((1, h, w, 3)) * 255).astype(np.int32)
    trunk_path = model_path(get_spec("pose_landmark_full"))
    features = dict(zip([o.name for o in session(trunk_path).get_outputs()],
                        session(trunk_path).run(None, {"image": crop}), strict=True))  # fmt: skip
    decoder_path = model_path(get_spec("pose_landmark_full_mask"))
    decoder_inputs = [i.name for i in session(decoder_path).get_inputs()]
    extended = LEVEL.ORT_ENABLE_EXTENDED
    cases = {
        "landmark trunk": (trunk_path, {"image": crop}, LEVEL.ORT_ENABLE_ALL),
        "mask decoder": (decoder_path, {n: features[n] for n in decoder_inputs}, extended),
        f"movenet {h}x{w}": (model_path(get_spec("movenet_multipose")), {"input": image},
                             LEVEL.ORT_ENABLE_ALL),
    }  # fmt: skip
    if args.whole is not None:
        cases["landmarks, unsplit"] = (args.whole, {"image": crop}, LEVEL.ORT_ENABLE_ALL)
    print(f"{'model':24s} {'variant':20s} {'min':>7s} {'median':>7s}   (CPU ms, one core)")
    for name, (path, feed, level) in cases.items():
        sessions = {v: session(path, **{"level": level, **kw}) for v, kw in VARIANTS.items()}
        times: dict[str, list[float]] = {v: [] for v in sessions}
        for _ in range(args.runs):
            for v, s in sessions.items():
                start = time.process_time()
                s.run(None, feed)
                times[v].append((time.process_time() - start) * 1000.0)
        for v, t in times.items():
            print(f"{name:24s} {v:20s} {min(t):7.2f} {np.median(t):7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
