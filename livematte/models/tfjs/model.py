"""Read a TF.js graph model: ``model.json`` (topology, signature) and its weight shards.

A TF.js graph model is a TensorFlow GraphDef written as JSON (``modelTopology.node``) plus a
``weightsManifest`` that lists every ``Const`` node's tensor, stored back to back in ``.bin``
shards.  Weights may be quantised: ``uint8``/``uint16`` affine (``value = q * scale + min``, as
TF.js itself dequantises) or ``float16``.  Everything is returned as plain numpy arrays in the
tensor's original dtype (float32 for dequantised weights).

Example::

    model = load_graph_model(Path("rvm.json"))
    print(len(model.nodes), model.outputs)
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from livematte.errors import ModelError

#: TensorFlow dtype enum names -> numpy dtypes (the ones graph models use).
TF_DTYPES: dict[str, np.dtype] = {
    "DT_FLOAT": np.dtype(np.float32),
    "DT_HALF": np.dtype(np.float16),
    "DT_DOUBLE": np.dtype(np.float64),
    "DT_INT32": np.dtype(np.int32),
    "DT_INT64": np.dtype(np.int64),
    "DT_UINT8": np.dtype(np.uint8),
    "DT_BOOL": np.dtype(np.bool_),
}
#: Manifest dtype names -> numpy dtypes.
_MANIFEST_DTYPES = {
    "float32": np.float32,
    "int32": np.int32,
    "bool": np.bool_,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "float16": np.float16,
    "int64": np.int64,
}


@dataclass(frozen=True)
class TfNode:
    """One GraphDef node: data inputs as ``(node, output index)``, control inputs dropped."""

    name: str
    op: str
    inputs: tuple[tuple[str, int], ...]
    attr: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def get(self, key: str, default: Any = None) -> Any:
        """The decoded attribute ``key`` (int, float, bool, str, dtype, list or shape)."""
        raw = self.attr.get(key)
        return default if raw is None else decode_attr(raw)


@dataclass(frozen=True)
class GraphModel:
    """A loaded graph model: nodes in file order, weights by Const name, signature I/O."""

    nodes: tuple[TfNode, ...]
    weights: dict[str, np.ndarray]
    #: signature output key -> (node, output index)
    outputs: dict[str, tuple[str, int]]
    source: Path


def parse_ref(ref: str) -> tuple[str, int]:
    """``"name:1"`` -> ``("name", 1)``; ``"name"`` -> ``("name", 0)``."""
    name, sep, index = ref.rpartition(":")
    if sep and index.isdigit():
        return name, int(index)
    return ref, 0


def decode_attr(raw: dict[str, Any]) -> Any:
    """Decode one JSON AttrValue (protobuf JSON mapping) into a Python value."""
    if "list" in raw:
        items = raw["list"]
        if "i" in items:
            return [int(v) for v in items["i"]]
        if "f" in items:
            return [float(v) for v in items["f"]]
        if "s" in items:
            return [base64.b64decode(v).decode() for v in items["s"]]
        if "type" in items:
            return list(items["type"])
        return []
    if "i" in raw:
        return int(raw["i"])
    if "f" in raw:
        return float(raw["f"])
    if "b" in raw:
        return bool(raw["b"])
    if "s" in raw:
        return base64.b64decode(raw["s"]).decode()
    if "type" in raw:
        return raw["type"]
    if "shape" in raw:
        shape = raw["shape"]
        if shape.get("unknownRank"):
            return None
        return [int(d.get("size", -1)) for d in shape.get("dim", [])]
    return raw


def tf_dtype(name: str, where: str) -> np.dtype:
    """numpy dtype of a TF dtype enum name; ModelError naming ``where`` when unsupported."""
    try:
        return TF_DTYPES[name]
    except KeyError:
        raise ModelError(f"{where}: unsupported TensorFlow dtype {name}") from None


def _decode_weights(manifest: list[dict[str, Any]], folder: Path) -> dict[str, np.ndarray]:
    weights: dict[str, np.ndarray] = {}
    for group in manifest:
        chunks = []
        for rel in group["paths"]:
            path = folder / rel
            try:
                chunks.append(path.read_bytes())
            except OSError as exc:
                raise ModelError(f"cannot read weight shard {path}: {exc.strerror}") from None
        buffer = b"".join(chunks)
        offset = 0
        for entry in group["weights"]:
            name, shape = entry["name"], tuple(int(d) for d in entry["shape"])
            count = int(np.prod(shape, dtype=np.int64))
            quant = entry.get("quantization") or {}
            stored = quant.get("dtype", entry["dtype"])
            if stored not in _MANIFEST_DTYPES:
                raise ModelError(f"weight {name}: unsupported stored dtype {stored!r}")
            raw_dtype = np.dtype(_MANIFEST_DTYPES[stored])
            nbytes = count * raw_dtype.itemsize
            if offset + nbytes > len(buffer):
                raise ModelError(
                    f"weight shards of {folder} are truncated: {name} needs bytes "
                    f"{offset}..{offset + nbytes}, the shards hold {len(buffer)}"
                )
            raw = np.frombuffer(buffer, raw_dtype, count, offset).reshape(shape)
            offset += nbytes
            weights[name] = _dequantise(raw, entry, quant)
        if offset != len(buffer):
            raise ModelError(f"weight shards of {folder}: {len(buffer) - offset} bytes unused")
    return weights


def _dequantise(raw: np.ndarray, entry: dict[str, Any], quant: dict[str, Any]) -> np.ndarray:
    target = np.dtype(_MANIFEST_DTYPES.get(entry["dtype"], np.float32))
    if not quant:
        return raw.copy()
    if quant["dtype"] == "float16":
        return raw.astype(np.float32)
    # Affine uint8/uint16: TF.js computes q * scale + min in double and stores float32.
    values = raw.astype(np.float64) * float(quant["scale"]) + float(quant["min"])
    if target.kind in "iu":
        values = np.round(values)
    return values.astype(target)


def load_graph_model(model_json: Path) -> GraphModel:
    """Parse ``model_json`` and the weight shards next to it.

    Raises:
        ModelError: unreadable file, not a graph model, or weights that do not match.
    """
    model_json = Path(model_json)
    try:
        data = json.loads(model_json.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelError(f"cannot read {model_json}: {exc.strerror}") from None
    except ValueError as exc:
        raise ModelError(f"{model_json} is not JSON: {exc}") from None
    if data.get("format") != "graph-model" or "modelTopology" not in data:
        raise ModelError(f"{model_json} is not a TF.js graph model (format must be graph-model)")
    topology = data["modelTopology"]
    if topology.get("library", {}).get("function"):
        raise ModelError(f"{model_json}: graph functions (control flow v2) are not supported")
    nodes = []
    for raw in topology.get("node", []):
        inputs = tuple(parse_ref(ref) for ref in raw.get("input", []) if not ref.startswith("^"))
        nodes.append(TfNode(raw["name"], raw["op"], inputs, raw.get("attr", {})))
    weights = _decode_weights(data.get("weightsManifest", []), model_json.parent)
    signature = data.get("signature") or topology.get("signature") or {}
    outputs = {key: parse_ref(spec["name"]) for key, spec in signature.get("outputs", {}).items()}
    if not outputs:
        raise ModelError(f"{model_json}: no signature outputs")
    return GraphModel(tuple(nodes), weights, outputs, model_json)
