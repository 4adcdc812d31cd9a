"""TF.js graph model -> ONNX: the driver (placeholders, tf.cond resolution, outputs).

Nodes are emitted in topological order, only those the signature outputs need.  ``Switch`` /
``Merge`` (TF1 ``tf.cond``) are resolved statically: the predicate must fold to a constant
(``bind`` turns a scalar placeholder into one), the untaken branch is dead and never emitted.

Example::

    onnx_bytes = convert_graph_model(Path("rvm.json"), bind={"downsample_ratio": 1.0})
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from onnx import helper

from livematte.errors import ModelError
from livematte.models.tfjs import ops_array, ops_math, ops_nn  # noqa: F401 - register emitters
from livematte.models.tfjs.emit import EMITTERS, fail
from livematte.models.tfjs.graph import ONNX_TYPES, Builder, Value, const_value
from livematte.models.tfjs.layout import NCHW_PERM, to_perm
from livematte.models.tfjs.model import GraphModel, TfNode, load_graph_model, tf_dtype
from livematte.models.tfjs.version import CONVERTER_VERSION  # noqa: F401 - re-exported

_DEAD = Value("<dead branch>", np.dtype(np.float32), 0)
_AXIS_LABELS = {4: "nhwc", 3: "hwc", 2: "hw", 1: "n"}


class _Converter:
    def __init__(
        self,
        model: GraphModel,
        builder: Builder,
        bind: Mapping[str, float],
        layout: str,
        input_shapes: Mapping[str, tuple[int | None, ...]],
    ) -> None:
        self.model, self.b, self.bind, self.layout = model, builder, bind, layout
        self.input_shapes = input_shapes
        self.nodes = {n.name: n for n in model.nodes}
        self._consumers: dict[str, list[TfNode]] = defaultdict(list)
        for n in model.nodes:
            for src, _ in n.inputs:
                self._consumers[src].append(n)
        self.values: dict[str, list[Value]] = {}
        self.dilated: dict[str, tuple[list[int], list[int]]] = {}
        self.inputs: list[tuple[bool, str, Any]] = []

    # --- Context -------------------------------------------------------------------------------

    def node(self, name: str) -> TfNode:
        try:
            return self.nodes[name]
        except KeyError:
            raise ModelError(f"graph refers to a missing node {name!r}") from None

    def consumers(self, name: str) -> list[TfNode]:
        return self._consumers.get(name, [])

    def value(self, ref: tuple[str, int]) -> Value:
        name, index = ref
        if name not in self.values:
            self.emit(self.node(name))
        outs = self.values[name]
        if index >= len(outs):
            raise ModelError(f"node {name!r} has no output {index}")
        return outs[index]

    # --- emission ------------------------------------------------------------------------------

    def order(self, roots: list[str]) -> list[str]:
        """Nodes the roots depend on, dependencies first (iterative DFS, file order)."""
        done: set[str] = set()
        out: list[str] = []
        for root in roots:
            stack: list[tuple[str, bool]] = [(root, False)]
            while stack:
                name, expanded = stack.pop()
                if expanded:
                    if name not in done:
                        done.add(name)
                        out.append(name)
                    continue
                if name in done:
                    continue
                stack.append((name, True))
                for src, _ in reversed(self.node(name).inputs):
                    if src not in done:
                        stack.append((src, False))
        return out

    def emit(self, node: TfNode) -> None:
        if node.op == "Const":
            if node.name not in self.model.weights:
                raise fail(node, "no value in the weights manifest")
            self.values[node.name] = [const_value(self.model.weights[node.name])]
            return
        if node.op == "Placeholder":
            self.values[node.name] = [self.placeholder(node)]
            return
        inputs = [self.value(ref) for ref in node.inputs]
        if node.op == "Merge":
            alive = [v for v in inputs if v is not _DEAD]
            self.values[node.name] = [alive[0], const_value(np.int32(inputs.index(alive[0])))] \
                if alive else [_DEAD, _DEAD]
            return
        if any(v is _DEAD for v in inputs):
            self.values[node.name] = [_DEAD] * 2
            return
        if node.op == "Switch":
            pred = inputs[1]
            if not pred.is_const:
                raise fail(node, "the tf.cond predicate is not constant; bind its placeholder")
            taken = bool(np.asarray(pred.const).reshape(()))
            self.values[node.name] = [_DEAD, inputs[0]] if taken else [inputs[0], _DEAD]
            return
        emitter = EMITTERS.get(node.op)
        if emitter is None:
            raise fail(node, "unsupported op")
        out = emitter(self, node, inputs)
        self.values[node.name] = out if isinstance(out, list) else [out]

    def placeholder(self, node: TfNode) -> Value:
        dtype = tf_dtype(node.get("dtype", "DT_FLOAT"), f"placeholder {node.name!r}")
        if node.name in self.bind:
            return const_value(np.array(self.bind[node.name], dtype))
        shape = self.input_shapes.get(node.name)
        if shape is None:
            shape = node.get("shape")
        if shape is None:
            raise ModelError(
                f"placeholder {node.name!r} has no declared shape: give its rank in input_shapes"
            )
        logical = [None if d is None or int(d) < 0 else int(d) for d in shape]
        rank = len(logical)
        perm = NCHW_PERM if rank == 4 and self.layout == "nchw" else None
        order = perm or tuple(range(rank))
        labels = _AXIS_LABELS.get(rank, "abcdefgh"[:rank])
        dims = [logical[a] if logical[a] is not None else f"{node.name}_{labels[a]}" for a in order]
        declared = node.get("shape") is not None
        self.inputs.append((not declared, node.name,
                            helper.make_tensor_value_info(node.name, ONNX_TYPES[dtype], dims)))
        return Value(node.name, dtype, rank, perm, None, tuple(logical))


def convert_graph_model(
    model_json: Path,
    *,
    bind: dict[str, float] | None = None,
    fp16_weights: bool = False,
    output_names: dict[str, str] | None = None,
    layout: str = "nchw",
    input_shapes: dict[str, tuple[int | None, ...]] | None = None,
    optimize: bool = True,
) -> bytes:
    """Convert a TF.js graph model to a serialized ONNX model (opset 18, deterministic bytes).

    Args:
        model_json: the model.json; its weight shards are read from the same folder.
        bind: placeholders replaced by scalar constants (resolves ``tf.cond`` on them).
        fp16_weights: store float weights as float16 (cast to float32 inside the graph).
        output_names: signature output key -> ONNX output name; listed outputs come first,
            in this order, the others follow sorted by key.
        layout: "nchw" (4-D inputs and outputs transposed like PyTorch exports) or "nhwc"
            (TensorFlow's own layout at the graph boundary; NCHW inside either way).
        input_shapes: logical (NHWC) shapes of placeholders that declare none, None for a
            dynamic dimension.
        optimize: apply the ``peephole`` rewrites (same values, faster in ONNX Runtime);
            False gives the plain op-by-op graph (benchmarks, debugging).

    Raises:
        ModelError: unreadable model, or an op or pattern the converter does not support
            (one line naming the op and node).
    """
    if layout not in ("nchw", "nhwc"):
        raise ModelError(f"layout must be 'nchw' or 'nhwc', not {layout!r}")
    model = load_graph_model(Path(model_json))
    builder = Builder(fp16_weights=fp16_weights, optimize=optimize)
    conv = _Converter(model, builder, dict(bind or {}), layout, dict(input_shapes or {}))
    for name in bind or {}:
        if name not in conv.nodes or conv.nodes[name].op != "Placeholder":
            raise ModelError(f"bind: {name!r} is not a placeholder of {model_json}")
    names = dict(output_names or {})
    unknown = sorted(set(names) - set(model.outputs))
    if unknown:
        raise ModelError(f"output_names: {', '.join(unknown)} not among the model's outputs "
                         f"({', '.join(sorted(model.outputs))})")
    keys = [k for k in names] + sorted(k for k in model.outputs if k not in names)
    for name in conv.order([model.outputs[k][0] for k in keys]):
        if name not in conv.values:
            conv.emit(conv.node(name))
    outputs = []
    for key in keys:
        value = conv.value(model.outputs[key])
        if value is _DEAD:
            raise ModelError(f"output {key!r} lies in an untaken tf.cond branch")
        target = NCHW_PERM if value.rank == 4 and layout == "nchw" else None
        outputs.append((to_perm(builder, value, target), names.get(key, key)))
    inputs = [info for _, _, info in sorted(conv.inputs, key=lambda t: (t[0], t[1]))]
    digest = hashlib.sha256(Path(model_json).read_bytes()).hexdigest()
    doc = f"converted from the TF.js graph model {Path(model_json).name} (sha256 {digest})"
    proto = builder.model(inputs, outputs, doc=doc)
    return proto.SerializeToString(deterministic=True)


#: RVM's recurrent state channels (r1..r4), from its signature outputs.
RVM_STATE_CHANNELS = (16, 20, 40, 64)


def convert_rvm(json_path: Path, *, fp16_weights: bool = False, optimize: bool = True) -> bytes:
    """Robust Video Matting's TF.js export as ONNX with the official release's signature.

    The ``downsample_ratio == 1`` branch is kept (no internal resize, no refiner: the caller
    resizes).  Inputs ``src`` [1,3,H,W] float 0..1 and ``r1i..r4i`` [1,C,h,w] (zeros of any
    broadcastable shape, e.g. [1,1,1,1], on the first frame); outputs ``fgr``, ``pha``,
    ``r1o..r4o``, all NCHW.
    """
    shapes = {f"r{i}i": (None, None, None, None) for i in range(1, 5)}
    names = {k: k for k in ("fgr", "pha", "r1o", "r2o", "r3o", "r4o")}
    return convert_graph_model(
        json_path, bind={"downsample_ratio": 1.0}, fp16_weights=fp16_weights,
        output_names=names, layout="nchw", input_shapes=shapes, optimize=optimize,
    )
