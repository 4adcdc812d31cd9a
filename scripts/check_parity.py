#!/usr/bin/env python3
"""Compare the embedded ONNX models with the TFLite originals, output by output.

Development-time check (needs the ``dev`` extra: ai-edge-litert runs the TFLite files with its
default XNNPACK delegate, custom op included)::

    python scripts/check_parity.py /tmp/mp/mediapipe-0.10.21-*.whl [--images DIR ...]

Inputs are real photos from ../shared/data (resized to each model's input), plus random noise.
Prints max |onnx - tflite| and the same relative to the output's range, per model and output.
``--write-reference`` stores the TFLite originals' outputs on the shipped sample photo as the
reference values of the runtime test (tests/models/tflite_reference.npz), so the suite checks
parity on every run without needing TFLite.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import zipfile
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
from convert_mediapipe import MODELS, OUT_DIR, SPLIT  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
SAMPLE = REPO / "livematte" / "samples" / "astronaut.jpg"
REFERENCE = REPO / "tests" / "models" / "tflite_reference.npz"
DEFAULT_IMAGES = [
    SHARED / "mediapipe_golden" / "portrait.jpg",
    SHARED / "mediapipe_golden" / "pose.jpg",
    SHARED / "mediapipe_golden" / "three_people.jpg",
    SHARED / "matting" / "p3m_pseudo_gt" / "p_015cd10e.jpg",
    SHARED / "keypoints" / "coco_val2017_mini" / "000000000139.jpg",
]

#: normalisation of each model's input: value = pixel / 255 * scale + offset
NORMALISATION = {
    "selfie_segmentation": (1.0, 0.0),
    "selfie_segmentation_landscape": (1.0, 0.0),
    "pose_detection": (2.0, -1.0),
    "pose_landmark_full": (1.0, 0.0),
}


def model_input(image_bgr: np.ndarray, name: str, shape: tuple[int, ...]) -> np.ndarray:
    height, width = shape[1], shape[2]
    rgb = cv2.cvtColor(
        cv2.resize(image_bgr, (width, height), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB
    )
    scale, offset = NORMALISATION[name]
    return (rgb.astype(np.float32) / 255.0 * scale + offset)[None]


def run_onnx(name: str, batch: np.ndarray, output_names: tuple[str, ...]) -> list[np.ndarray]:
    """The converted model's outputs, in ``output_names`` order; a split model's trunk feeds
    the part split off it (``convert_mediapipe.SPLIT``) for the outputs that part computes."""
    cpu = ["CPUExecutionProvider"]
    session = ort.InferenceSession(str(OUT_DIR / f"{name}.onnx"), providers=cpu)
    names = [o.name for o in session.get_outputs()]
    out = dict(zip(names, session.run(None, {"image": batch}), strict=True))
    if name in SPLIT:
        head = ort.InferenceSession(str(OUT_DIR / f"{SPLIT[name][0]}.onnx"), providers=cpu)
        feed = {i.name: out[i.name] for i in head.get_inputs()}
        out.update(zip([o.name for o in head.get_outputs()], head.run(None, feed), strict=True))
    return [out[n] for n in output_names]


def run_tflite(path: Path, batch: np.ndarray, *, xnnpack: bool = True) -> list[np.ndarray]:
    """Run the TFLite original: XNNPACK (the default) or TFLite's own builtin kernels."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = Interpreter(model_path=str(path), experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], batch)
    interpreter.invoke()
    return [interpreter.get_tensor(d["index"]).copy() for d in interpreter.get_output_details()]


def write_reference(wheel: Path) -> None:
    """Store the TFLite outputs for the sample photo (fp16: ample for the test's tolerances)."""
    image = cv2.imread(str(SAMPLE))
    arrays = {}
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(wheel) as archive:
        for name, (member, output_names) in MODELS.items():
            path = Path(tmp) / Path(member).name
            path.write_bytes(archive.read(member))
            session = ort.InferenceSession(
                str(OUT_DIR / f"{name}.onnx"), providers=["CPUExecutionProvider"]
            )
            batch = model_input(image, name, tuple(session.get_inputs()[0].shape))
            for out_name, value in zip(output_names, run_tflite(path, batch), strict=True):
                arrays[f"{name}/{out_name}"] = value.astype(np.float16)
    np.savez_compressed(REFERENCE, **arrays)
    print(f"wrote {REFERENCE} ({REFERENCE.stat().st_size} bytes)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", type=Path)
    parser.add_argument("--images", type=Path, nargs="*", default=DEFAULT_IMAGES)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument(
        "--write-reference",
        action="store_true",
        help=f"write TFLite outputs on the sample photo to {REFERENCE}",
    )
    args = parser.parse_args(argv)
    if args.write_reference:
        write_reference(args.wheel)

    images = [cv2.imread(str(p)) for p in args.images if p.is_file()]
    rng = np.random.default_rng(0)
    images.append(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8))
    results = []
    # "tflite spread" is XNNPACK vs TFLite's builtin kernels on the same file: the precision the
    # original itself has, which is the yardstick for ours.
    header = f"{'model':30s} {'output':16s} {'max|diff|':>10s} {'range':>9s} {'rel':>9s}"
    print(header + f" {'tflite spread':>13s}")
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(args.wheel) as archive:
        for name, (member, output_names) in MODELS.items():
            tflite_path = Path(tmp) / Path(member).name
            tflite_path.write_bytes(archive.read(member))
            session = ort.InferenceSession(
                str(OUT_DIR / f"{name}.onnx"), providers=["CPUExecutionProvider"]
            )
            shape = tuple(session.get_inputs()[0].shape)
            worst = {o: [0.0, 0.0, 0.0] for o in output_names}
            spread_known = True
            for image in images:
                batch = model_input(image, name, shape)
                expected = run_tflite(tflite_path, batch)
                try:
                    builtin = run_tflite(tflite_path, batch, xnnpack=False)
                except RuntimeError:  # the custom op exists only as an XNNPACK kernel
                    builtin, spread_known = expected, False
                got = run_onnx(name, batch, output_names)
                for out_name, e, b, g in zip(output_names, expected, builtin, got, strict=True):
                    row = worst[out_name]
                    row[0] = max(row[0], float(np.max(np.abs(e.astype(np.float64) - g))))
                    row[1] = max(row[1], float(np.ptp(e)) or 1.0)
                    row[2] = max(row[2], float(np.max(np.abs(e.astype(np.float64) - b))))
            for out_name, (diff, span, spread) in worst.items():
                rel = diff / span
                spread_rel = spread / span if spread_known else None
                shown = f"{spread_rel:13.2e}" if spread_known else f"{'n/a':>13s}"
                print(f"{name:30s} {out_name:16s} {diff:10.2e} {span:9.3g} {rel:9.2e} {shown}")
                results.append(
                    {
                        "model": name,
                        "output": out_name,
                        "max_abs_diff": diff,
                        "range": span,
                        "relative": rel,
                        "tflite_xnnpack_vs_builtin_relative": spread_rel,
                    }
                )
    print(f"images: {len(images)} ({len(images) - 1} photos + 1 noise)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
