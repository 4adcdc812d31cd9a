"""Tiny hand-written TF.js graph models for the converter's unit tests (no shared data needed).

``GraphWriter`` writes a ``model.json`` + ``weights.bin`` pair the way the TF.js converter does
(GraphDef nodes as JSON, AttrValues in protobuf's JSON mapping, Const tensors in the manifest);
``convert_and_run`` converts it with livematte's converter and runs it in ONNX Runtime.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np

_MANIFEST_NAMES = {np.float32: "float32", np.int32: "int32", np.bool_: "bool"}
_TF_NAMES = {np.float32: "DT_FLOAT", np.int32: "DT_INT32", np.bool_: "DT_BOOL"}


class T(str):
    """An attribute holding a TF dtype name, e.g. ``T("DT_INT32")``."""


def _attr(value: Any) -> dict[str, Any]:
    if isinstance(value, T):
        return {"type": str(value)}
    if isinstance(value, bool):
        return {"b": value}
    if isinstance(value, int):
        return {"i": str(value)}
    if isinstance(value, float):
        return {"f": value}
    if isinstance(value, str):
        return {"s": base64.b64encode(value.encode()).decode()}
    if isinstance(value, list) and all(isinstance(v, str) for v in value) and value:
        return {"list": {"s": [base64.b64encode(v.encode()).decode() for v in value]}}
    if isinstance(value, list):
        return {"list": {"i": [str(int(v)) for v in value]}}
    raise TypeError(value)


class GraphWriter:
    """Collects nodes and weights; ``write`` produces model.json and weights.bin."""

    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = []
        self.weights: list[dict[str, Any]] = []
        self.blobs: list[bytes] = []

    def const(self, name: str, array: Any, quant: str | None = None) -> str:
        arr = np.asarray(array)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        if arr.dtype == np.int64:
            arr = arr.astype(np.int32)
        entry: dict[str, Any] = {"name": name, "shape": list(arr.shape),
                                 "dtype": _MANIFEST_NAMES[arr.dtype.type]}
        if quant == "uint8":
            lo, hi = float(arr.min()), float(arr.max())
            scale = (hi - lo) / 255 or 1.0
            q = np.round((arr - lo) / scale).astype(np.uint8)
            entry["quantization"] = {"dtype": "uint8", "min": lo, "scale": scale,
                                     "original_dtype": "float32"}
            self.blobs.append(q.tobytes())
        elif quant == "float16":
            entry["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
            self.blobs.append(arr.astype(np.float16).tobytes())
        else:
            self.blobs.append(arr.tobytes())
        self.weights.append(entry)
        self.nodes.append({"name": name, "op": "Const",
                           "attr": {"dtype": {"type": _TF_NAMES[arr.dtype.type]}}})
        return name

    def placeholder(self, name: str, shape: list[int] | None, dtype: str = "DT_FLOAT") -> str:
        shape_attr = {"unknownRank": True} if shape is None else {
            "dim": [{"size": str(d)} for d in shape]}
        self.nodes.append({"name": name, "op": "Placeholder",
                           "attr": {"dtype": {"type": dtype}, "shape": {"shape": shape_attr}}})
        return name

    def op(self, op: str, name: str, inputs: list[str], **attrs: Any) -> str:
        self.nodes.append({"name": name, "op": op, "input": inputs,
                           "attr": {k: _attr(v) for k, v in attrs.items()}})
        return name

    def write(self, folder: Path, outputs: dict[str, str]) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "weights.bin").write_bytes(b"".join(self.blobs))
        model = {
            "format": "graph-model",
            "generatedBy": "tests",
            "modelTopology": {"node": self.nodes, "library": {}, "versions": {}},
            "signature": {"outputs": {k: {"name": v} for k, v in outputs.items()}},
            "weightsManifest": [{"paths": ["weights.bin"], "weights": self.weights}],
        }
        path = folder / "model.json"
        path.write_text(json.dumps(model))
        return path


def convert_and_run(path: Path, feeds: dict[str, np.ndarray], **kwargs: Any) -> dict:
    """Convert ``path`` (keyword args go to convert_graph_model) and run it; outputs by name."""
    import onnxruntime as ort

    from livematte.models.tfjs import convert_graph_model

    kwargs.setdefault("layout", "nhwc")
    model = convert_graph_model(path, **kwargs)
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds), strict=True))


def conv2d_nhwc(x: np.ndarray, w: np.ndarray, stride: int = 1, dilation: int = 1,
                padding: str = "VALID", depthwise: bool = False) -> np.ndarray:
    """Reference NHWC convolution (TensorFlow's SAME rule: the odd pixel at the end)."""
    kh, kw = w.shape[:2]
    n, h, wd, c = x.shape
    if padding == "SAME":
        pads = []
        for size, k in ((h, kh), (wd, kw)):
            out = -(-size // stride)
            total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        x = np.pad(x, [(0, 0), pads[0], pads[1], (0, 0)])
    ho = (x.shape[1] - (kh - 1) * dilation - 1) // stride + 1
    wo = (x.shape[2] - (kw - 1) * dilation - 1) // stride + 1
    out = 0.0
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i * dilation: i * dilation + stride * (ho - 1) + 1: stride,
                      j * dilation: j * dilation + stride * (wo - 1) + 1: stride]
            if depthwise:  # w [kh, kw, c, mult] -> output channel c*mult + m
                out = out + (patch[..., :, None] * w[i, j]).reshape(n, ho, wo, -1)
            else:
                out = out + patch @ w[i, j]
    return np.asarray(out, np.float32)


def resize_bilinear_tf(x: np.ndarray, size: tuple[int, int], align_corners: bool,
                       half_pixel: bool) -> np.ndarray:
    """TensorFlow's ResizeBilinear on NHWC ``x`` (its interpolation-weight rule)."""

    def weights(out_size: int, in_size: int):
        if align_corners and out_size > 1:
            scale = (in_size - 1) / (out_size - 1)
        else:
            scale = in_size / out_size
        pos = np.arange(out_size, dtype=np.float64)
        pos = (pos + 0.5) * scale - 0.5 if half_pixel else pos * scale
        lo_f = np.floor(pos)
        lo = np.maximum(lo_f, 0).astype(int)
        hi = np.minimum(np.ceil(pos), in_size - 1).astype(int)
        return lo, hi, pos - lo_f

    ylo, yhi, yl = weights(size[0], x.shape[1])
    xlo, xhi, xl = weights(size[1], x.shape[2])
    top = x[:, ylo][:, :, xlo] * (1 - xl)[:, None] + x[:, ylo][:, :, xhi] * xl[:, None]
    bot = x[:, yhi][:, :, xlo] * (1 - xl)[:, None] + x[:, yhi][:, :, xhi] * xl[:, None]
    return (top * (1 - yl)[:, None, None] + bot * yl[:, None, None]).astype(np.float32)
